package provision

import (
	"fmt"
	"regexp"
	"strings"
)

var httpOpenRE = regexp.MustCompile(`^\s*http\s*\{\s*(#.*)?$`)

// AddInclude returns conf with line inserted as the first statement of its
// top-level http block. It changes nothing if the line is already present
// anywhere, and fails if conf has no "http {" line to anchor on.
func AddInclude(conf, line string) (string, bool, error) {
	lines := strings.SplitAfter(conf, "\n")
	for _, l := range lines {
		if strings.TrimSpace(l) == line {
			return conf, false, nil
		}
	}
	for i, l := range lines {
		if httpOpenRE.MatchString(strings.TrimRight(l, "\r\n")) {
			if !strings.HasSuffix(l, "\n") {
				lines[i] = l + "\n"
			}
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			out := strings.Join(lines[:i+1], "") + indent + "    " + line + "\n" + strings.Join(lines[i+1:], "")
			return out, true, nil
		}
	}
	return conf, false, fmt.Errorf("no line opening an http { block; add %q inside it by hand", line)
}

// RemoveInclude returns conf without any line consisting of line.
func RemoveInclude(conf, line string) (string, bool) {
	lines := strings.SplitAfter(conf, "\n")
	out := lines[:0]
	changed := false
	for _, l := range lines {
		if strings.TrimSpace(l) == line {
			changed = true
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, ""), changed
}

var streamOpenRE = regexp.MustCompile(`^\s*stream\s*\{\s*(#.*)?$`)

// streamBlock is the one-line stream block AddStreamInclude appends when
// conf has none.
func streamBlock(line string) string { return "stream { " + line + " }" }

// AddStreamInclude returns conf with line inserted as the first statement of
// its top-level stream block, or, without one, with a one-line
// "stream { line }" appended at the end. It changes nothing if the line is
// already present anywhere outside a comment.
func AddStreamInclude(conf, line string) (string, bool, error) {
	lines := strings.SplitAfter(conf, "\n")
	for _, l := range lines {
		code, _, _ := strings.Cut(l, "#")
		if strings.Contains(code, line) {
			return conf, false, nil
		}
	}
	eol := "\n"
	if strings.Contains(conf, "\r\n") {
		eol = "\r\n"
	}
	for i, l := range lines {
		if streamOpenRE.MatchString(strings.TrimRight(l, "\r\n")) {
			if !strings.HasSuffix(l, "\n") {
				lines[i] = l + eol
			}
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			out := strings.Join(lines[:i+1], "") + indent + "    " + line + eol + strings.Join(lines[i+1:], "")
			return out, true, nil
		}
	}
	if conf != "" && !strings.HasSuffix(conf, "\n") {
		conf += eol
	}
	return conf + streamBlock(line) + eol, true, nil
}

// RemoveStreamInclude returns conf without any line consisting of line or of
// the one-line stream block AddStreamInclude appends; other lines, including
// a stream block the user wrote, stay.
func RemoveStreamInclude(conf, line string) (string, bool) {
	block := streamBlock(line)
	lines := strings.SplitAfter(conf, "\n")
	out := lines[:0]
	changed := false
	for _, l := range lines {
		if s := strings.TrimSpace(l); s == line || s == block {
			changed = true
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, ""), changed
}
