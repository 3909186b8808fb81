package telegramtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// allowedTags lists the tags of Telegram's HTML parse mode and the attributes
// each may carry (a nil set: none).
var allowedTags = map[string]map[string]bool{
	"b": nil, "strong": nil, "i": nil, "em": nil, "u": nil, "ins": nil,
	"s": nil, "strike": nil, "del": nil, "tg-spoiler": nil,
	"span":       {"class": true},
	"a":          {"href": true},
	"code":       {"class": true},
	"pre":        nil,
	"blockquote": {"expandable": true},
	"tg-emoji":   {"emoji-id": true},
}

// ParseHTML checks text the way Telegram's HTML parse mode does and returns
// what a client would display. Every '<', '>' and '&' that is not part of an
// allowed tag or one of the entities &lt; &gt; &amp; &quot; or &#N; must be
// escaped; tags must nest properly. Errors carry the byte offset.
func ParseHTML(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", fmt.Errorf("text must be encoded in UTF-8")
	}
	var plain strings.Builder
	var stack []string
	for i := 0; i < len(text); {
		c := text[i]
		switch c {
		case '<':
			end := strings.IndexByte(text[i:], '>')
			if end < 0 {
				return "", fmt.Errorf("unclosed start tag at byte offset %d", i)
			}
			inner := text[i+1 : i+end]
			if strings.HasPrefix(inner, "/") {
				name := strings.TrimSpace(inner[1:])
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "", fmt.Errorf("unexpected end tag %q at byte offset %d", name, i)
				}
				stack = stack[:len(stack)-1]
			} else {
				name, err := checkStartTag(inner)
				if err != nil {
					return "", fmt.Errorf("%w at byte offset %d", err, i)
				}
				stack = append(stack, name)
			}
			i += end + 1
		case '>':
			return "", fmt.Errorf("unescaped '>' at byte offset %d", i)
		case '&':
			r, n, err := decodeEntity(text[i:])
			if err != nil {
				return "", fmt.Errorf("%w at byte offset %d", err, i)
			}
			plain.WriteRune(r)
			i += n
		default:
			plain.WriteByte(c)
			i++
		}
	}
	if len(stack) != 0 {
		return "", fmt.Errorf("tag %q is not closed", stack[len(stack)-1])
	}
	return plain.String(), nil
}

func checkStartTag(inner string) (string, error) {
	name, rest, _ := strings.Cut(inner, " ")
	attrs, ok := allowedTags[name]
	if !ok {
		return "", fmt.Errorf("unsupported start tag %q", name)
	}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		var attr, value string
		attr, rest, _ = strings.Cut(rest, "=")
		attr = strings.TrimSpace(attr)
		if !attrs[attr] {
			return "", fmt.Errorf("unsupported attribute %q in tag %q", attr, name)
		}
		if !strings.HasPrefix(rest, `"`) {
			return "", fmt.Errorf("attribute %q of tag %q must be quoted", attr, name)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return "", fmt.Errorf("unclosed attribute value in tag %q", name)
		}
		value, rest = rest[1:1+end], strings.TrimSpace(rest[2+end:])
		if strings.ContainsAny(value, "<") {
			return "", fmt.Errorf("'<' inside attribute %q", attr)
		}
	}
	if name == "a" && !strings.Contains(inner, "href=") {
		return "", fmt.Errorf("tag \"a\" needs href")
	}
	return name, nil
}

func decodeEntity(s string) (rune, int, error) {
	end := strings.IndexByte(s, ';')
	if end < 0 || end > 10 {
		return 0, 0, fmt.Errorf("unescaped '&'")
	}
	name := s[1:end]
	switch name {
	case "lt":
		return '<', end + 1, nil
	case "gt":
		return '>', end + 1, nil
	case "amp":
		return '&', end + 1, nil
	case "quot":
		return '"', end + 1, nil
	}
	if strings.HasPrefix(name, "#") {
		num := name[1:]
		base := 10
		if strings.HasPrefix(num, "x") || strings.HasPrefix(num, "X") {
			num, base = num[1:], 16
		}
		n, err := strconv.ParseInt(num, base, 32)
		if err == nil && n > 0 && n <= utf8.MaxRune {
			return rune(n), end + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("unsupported HTML entity %q", "&"+name+";")
}

func utf16Len(s string) int {
	return len(utf16.Encode([]rune(s)))
}
