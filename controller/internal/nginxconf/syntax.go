package nginxconf

import (
	"fmt"
	"strings"

	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
)

// tokenKind classifies a token of nginx configuration syntax.
type tokenKind = nginxsyntax.Kind

const (
	tokWord      = nginxsyntax.Word
	tokSemicolon = nginxsyntax.Semicolon
	tokOpen      = nginxsyntax.Open
	tokClose     = nginxsyntax.Close
)

type token struct {
	kind   tokenKind
	text   string // unescaped word
	quoted bool
	line   int
}

// SyntaxError reports text that nginx's own parser would reject.
type SyntaxError = nginxsyntax.SyntaxError

// tokenize splits nginx configuration text the way nginx's reader does (see
// nginxsyntax.Tokenize).
func tokenize(src string) ([]token, error) {
	ts, _, err := nginxsyntax.Tokenize(src)
	if err != nil {
		return nil, err
	}
	toks := make([]token, len(ts))
	for i, t := range ts {
		toks[i] = token{kind: t.Kind, text: t.Text, quoted: t.Quoted, line: t.Line}
	}
	return toks, nil
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
