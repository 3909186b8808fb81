// Package nginxsyntax splits nginx configuration text into tokens the way
// nginx's own reader (ngx_conf_read_token) does. The controller uses it to
// check snippets and the files it renders; the agent, to read the upstream
// blocks of the release it runs, which may have been edited by hand.
package nginxsyntax

import (
	"fmt"
	"strings"
)

// Kind classifies a token.
type Kind int

// Token kinds.
const (
	Word Kind = iota
	Semicolon
	Open  // "{"
	Close // "}"
)

// Token is one word or punctuation mark.
type Token struct {
	Kind   Kind
	Text   string // the word unescaped, or the punctuation mark
	Quoted bool   // the word was written in quotes
	Line   int    // where it starts, from 1
}

// SyntaxError reports text that nginx's own reader would reject.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Tokenize splits src as nginx does: whitespace separates words, "#" at the
// start of a word comments out the rest of the line, single and double
// quotes group (and must be followed by whitespace, ";", "{" or ")"), a
// backslash escapes the next byte, ";" and "{" end a word, "}" is
// punctuation only at the start of one, and "{" right after "$" belongs to
// a variable name ("${host}"). On a syntax error it returns the tokens read
// before it together with the error. Lines counts the lines of src.
func Tokenize(src string) (toks []Token, lines int, err error) {
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
			toks = append(toks, Token{Kind: Semicolon, Text: ";", Line: line})
			i++
			continue
		case '{':
			toks = append(toks, Token{Kind: Open, Text: "{", Line: line})
			i++
			continue
		case '}':
			toks = append(toks, Token{Kind: Close, Text: "}", Line: line})
			i++
			continue
		}
		start := line
		var b strings.Builder
		if c == '"' || c == '\'' {
			i++
			closed := false
			for i < len(src) {
				ch := src[i]
				if ch == '\\' && i+1 < len(src) {
					if src[i+1] == '\n' {
						line++
					}
					unescape(&b, src[i+1])
					i += 2
					continue
				}
				i++
				if ch == '\n' {
					line++
				}
				if ch == c {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return toks, line, &SyntaxError{Line: start, Msg: "unterminated quoted string"}
			}
			if i < len(src) {
				switch src[i] {
				case ' ', '\t', '\r', '\n', ';', '{', ')':
				default:
					return toks, line, &SyntaxError{Line: line, Msg: fmt.Sprintf("unexpected %q after a quoted string", src[i])}
				}
			}
			toks = append(toks, Token{Kind: Word, Text: b.String(), Quoted: true, Line: start})
			continue
		}
		variable := false
	word:
		for i < len(src) {
			ch := src[i]
			if ch == '{' && variable {
				b.WriteByte(ch)
				i++
				continue
			}
			variable = false
			switch ch {
			case ' ', '\t', '\r', '\n', ';', '{':
				break word
			case '\\':
				if i+1 < len(src) {
					if src[i+1] == '\n' {
						line++
					}
					unescape(&b, src[i+1])
					i += 2
					continue
				}
			case '$':
				variable = true
			}
			b.WriteByte(ch)
			i++
		}
		toks = append(toks, Token{Kind: Word, Text: b.String(), Line: start})
	}
	return toks, line, nil
}

// unescape writes the value of "\" + next as nginx does: \" \' \\ \t \r \n
// are translated, any other byte keeps its backslash.
func unescape(b *strings.Builder, next byte) {
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
}
