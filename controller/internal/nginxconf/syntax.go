package nginxconf

import (
	"fmt"
	"strings"
)

// tokenKind classifies a token of nginx configuration syntax.
type tokenKind int

const (
	tokWord tokenKind = iota
	tokSemicolon
	tokOpen
	tokClose
)

type token struct {
	kind   tokenKind
	text   string // unescaped word
	quoted bool
	line   int
}

// SyntaxError reports text that nginx's own parser would reject.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// tokenize splits nginx configuration text the way ngx_conf_read_token does: whitespace
// separates words, "#" starts a comment at the start of a word, single and double quotes
// group, a backslash escapes the next byte, and ";", "{" and "}" are punctuation.
func tokenize(src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch c {
		case '\n':
			line++
			i++
			continue
		case ' ', '\t', '\r':
			i++
			continue
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case ';':
			toks = append(toks, token{kind: tokSemicolon, text: ";", line: line})
			i++
			continue
		case '{':
			toks = append(toks, token{kind: tokOpen, text: "{", line: line})
			i++
			continue
		case '}':
			toks = append(toks, token{kind: tokClose, text: "}", line: line})
			i++
			continue
		}
		start := line
		var b strings.Builder
		if c == '"' || c == '\'' {
			quote := c
			i++
			closed := false
			for i < len(src) {
				ch := src[i]
				if ch == '\\' && i+1 < len(src) {
					if src[i+1] == '\n' {
						line++
					}
					i += unescape(&b, src[i+1])
					continue
				}
				if ch == '\n' {
					line++
				}
				i++
				if ch == quote {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return nil, &SyntaxError{Line: start, Msg: "unterminated quoted string"}
			}
			if i < len(src) {
				switch src[i] {
				case ' ', '\t', '\r', '\n', ';', '{', '}':
				default:
					return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("unexpected %q after a quoted string", src[i])}
				}
			}
			toks = append(toks, token{kind: tokWord, text: b.String(), quoted: true, line: start})
			continue
		}
		for i < len(src) {
			ch := src[i]
			if ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '{' || ch == '}' {
				break
			}
			if ch == '\\' && i+1 < len(src) {
				i += unescape(&b, src[i+1])
				continue
			}
			b.WriteByte(ch)
			i++
		}
		toks = append(toks, token{kind: tokWord, text: b.String(), line: start})
	}
	return toks, nil
}

// unescape writes the value of the escape sequence "\" + next and returns the number of
// source bytes consumed, mirroring nginx: \" \' \\ \t \r \n are translated, any other byte
// keeps its backslash.
func unescape(b *strings.Builder, next byte) int {
	switch next {
	case '"', '\'', '\\':
		b.WriteByte(next)
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case 'n':
		b.WriteByte('\n')
	default:
		b.WriteByte('\\')
		b.WriteByte(next)
	}
	return 2
}

// directive is one parsed nginx directive, with its block when it opens one.
type directive struct {
	name     string
	args     []token
	block    []directive
	hasBlock bool
	line     int
}

// parseConfig parses nginx configuration text into a directive tree.
func parseConfig(src string) ([]directive, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := parser{toks: toks}
	ds, err := p.parseBlock(false)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) parseBlock(inner bool) ([]directive, error) {
	var out []directive
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch t.kind {
		case tokClose:
			if !inner {
				return nil, &SyntaxError{Line: t.line, Msg: `unexpected "}"`}
			}
			p.pos++
			return out, nil
		case tokSemicolon, tokOpen:
			return nil, &SyntaxError{Line: t.line, Msg: fmt.Sprintf("unexpected %q", t.text)}
		}
		d := directive{name: t.text, line: t.line}
		p.pos++
		for {
			if p.pos >= len(p.toks) {
				return nil, &SyntaxError{Line: t.line, Msg: fmt.Sprintf("directive %q is not terminated by \";\"", d.name)}
			}
			a := p.toks[p.pos]
			p.pos++
			if a.kind == tokWord {
				d.args = append(d.args, a)
				continue
			}
			if a.kind == tokSemicolon {
				break
			}
			if a.kind == tokOpen {
				block, err := p.parseBlock(true)
				if err != nil {
					return nil, err
				}
				d.block, d.hasBlock = block, true
				break
			}
			return nil, &SyntaxError{Line: a.line, Msg: fmt.Sprintf("directive %q is not terminated by \";\"", d.name)}
		}
		out = append(out, d)
	}
	if inner {
		return nil, &SyntaxError{Line: lastLine(p.toks), Msg: `unexpected end of text, expecting "}"`}
	}
	return out, nil
}

func lastLine(toks []token) int {
	if len(toks) == 0 {
		return 1
	}
	return toks[len(toks)-1].line
}

// quoteArg renders a directive argument so that nginx reads back exactly s: bare when it is
// made only of bytes that carry no syntax, otherwise double-quoted with backslash escapes.
func quoteArg(s string) string {
	if s != "" && isBare(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func isBare(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("$_-./:=,+*@%^~!?&|()[]<>", c) >= 0:
		default:
			return false
		}
	}
	return true
}
