package nginx

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Limits on what a release may contain.
const (
	MaxFiles         = 50000
	MaxFileSize      = 8 << 20
	MaxTotalSize     = 256 << 20
	MaxPathLen       = 255
	MaxComponentLen  = 128
	MaxPathDepth     = 8
	defaultFileMode  = fs.FileMode(0o644)
	maxListedProblem = 20
)

// Validate checks a release against the allowlists and limits, reporting
// every problem with the index and path of the file concerned.
func (r Release) Validate() error {
	var p problems
	if r.Revision == 0 {
		p.add("revision: must be greater than 0")
	}
	if len(r.Files) > MaxFiles {
		p.add(fmt.Sprintf("files: %d files, at most %d allowed", len(r.Files), MaxFiles))
	}
	var total int64
	seen := make(map[string]int, len(r.Files))
	for i, f := range r.Files {
		if msg := checkPath(f.Path); msg != "" {
			p.add(fmt.Sprintf("file[%d] path %q: %s", i, f.Path, msg))
			continue
		}
		if j, dup := seen[f.Path]; dup {
			p.add(fmt.Sprintf("file[%d] path %q: duplicate of file[%d]", i, f.Path, j))
			continue
		}
		seen[f.Path] = i
		if len(f.Content) > MaxFileSize {
			p.add(fmt.Sprintf("file[%d] %q: %d bytes, at most %d allowed", i, f.Path, len(f.Content), MaxFileSize))
		}
		total += int64(len(f.Content))
		if msg := checkMode(f.Mode); msg != "" {
			p.add(fmt.Sprintf("file[%d] %q mode %#o: %s", i, f.Path, uint32(f.Mode), msg))
		}
	}
	if total > MaxTotalSize {
		p.add(fmt.Sprintf("files: %d bytes in total, at most %d allowed", total, MaxTotalSize))
	}
	// A path cannot be both a file and a directory of another file.
	paths := make([]string, 0, len(seen))
	for fp := range seen {
		paths = append(paths, fp)
	}
	sort.Strings(paths)
	for _, fp := range paths {
		for dir := path.Dir(fp); dir != "."; dir = path.Dir(dir) {
			if j, ok := seen[dir]; ok {
				p.add(fmt.Sprintf("file[%d] path %q: is also used as a directory by %q", j, dir, fp))
			}
		}
	}
	return p.err()
}

// checkPath returns why a release path is refused, or "".
func checkPath(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case len(p) > MaxPathLen:
		return fmt.Sprintf("longer than %d bytes", MaxPathLen)
	case strings.HasPrefix(p, "/"):
		return "must be relative, not absolute"
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxPathDepth {
		return fmt.Sprintf("more than %d levels deep", MaxPathDepth)
	}
	for _, c := range parts {
		switch {
		case c == "":
			return "must not contain empty components (// or a trailing /)"
		case c == "..":
			return "must not contain .."
		case c == ".":
			return "must be clean (no . components)"
		case strings.HasPrefix(c, "."):
			return "components must not start with a dot"
		case len(c) > MaxComponentLen:
			return fmt.Sprintf("component longer than %d bytes", MaxComponentLen)
		}
		for _, r := range c {
			if !allowedNameRune(r) {
				return fmt.Sprintf("character %q not allowed; use letters, digits, '.', '_' and '-'", r)
			}
		}
	}
	return ""
}

func allowedNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// checkMode returns why a file mode is refused, or "".
func checkMode(m fs.FileMode) string {
	if m == 0 {
		return ""
	}
	switch {
	case m&^fs.ModePerm != 0:
		return "only permission bits are allowed"
	case m&0o111 != 0:
		return "execute bits are not allowed"
	case m&0o400 == 0:
		return "must be readable by its owner"
	}
	return ""
}

func fileMode(m fs.FileMode) fs.FileMode {
	if m == 0 {
		return defaultFileMode
	}
	return m
}

type problems struct {
	list    []string
	dropped int
}

func (p *problems) add(msg string) {
	if len(p.list) >= maxListedProblem {
		p.dropped++
		return
	}
	p.list = append(p.list, msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	list := p.list
	if p.dropped > 0 {
		list = append(list, fmt.Sprintf("and %d more problems", p.dropped))
	}
	return &InvalidError{Problems: list}
}
