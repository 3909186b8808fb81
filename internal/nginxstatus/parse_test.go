package nginxstatus

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// format writes s the way ngx_http_stub_status_module does.
func format(s Status) string {
	return fmt.Sprintf("Active connections: %d \nserver accepts handled requests\n %d %d %d \nReading: %d Writing: %d Waiting: %d \n",
		s.Active, s.Accepts, s.Handled, s.Requests, s.Reading, s.Writing, s.Waiting)
}

func TestParseRealOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		want Status
	}{
		{
			"fresh nginx 1.22 answering its first request",
			"Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n",
			Status{Active: 1, Accepts: 1, Handled: 1, Requests: 1, Writing: 1},
		},
		{
			"busy server (nginx documentation)",
			"Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n",
			Status{Active: 291, Accepts: 16630948, Handled: 16630948, Requests: 31070465, Reading: 6, Writing: 179, Waiting: 106},
		},
		{
			"dropped connections: handled below accepts",
			"Active connections: 1024 \nserver accepts handled requests\n 5000 4990 12000 \nReading: 0 Writing: 1 Waiting: 1023 \n",
			Status{Active: 1024, Accepts: 5000, Handled: 4990, Requests: 12000, Writing: 1, Waiting: 1023},
		},
		{
			"zeros",
			"Active connections: 0 \nserver accepts handled requests\n 0 0 0 \nReading: 0 Writing: 0 Waiting: 0 \n",
			Status{},
		},
		{
			"every counter at its largest",
			"Active connections: 4294967295 \nserver accepts handled requests\n 18446744073709551615 18446744073709551615 18446744073709551615 \nReading: 4294967295 Writing: 4294967295 Waiting: 4294967295 \n",
			Status{Active: 1<<32 - 1, Reading: 1<<32 - 1, Writing: 1<<32 - 1, Waiting: 1<<32 - 1, Accepts: 1<<64 - 1, Handled: 1<<64 - 1, Requests: 1<<64 - 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tc.want {
				t.Fatalf("Parse = %+v, want %+v", got, tc.want)
			}
			if f := format(got); f != tc.body {
				t.Fatalf("format(Parse(body)) = %q, want the body back", f)
			}
		})
	}
}

func TestParseRefusesWhatNginxDoesNotWrite(t *testing.T) {
	t.Parallel()
	const good = "Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n"
	for _, tc := range []struct {
		name string
		body string
		want string // in the error
	}{
		{"empty", "", "ends after line 0"},
		{"html error page", "<html><head><title>404 Not Found</title></head></html>\n", `line 1 "<html>`},
		{"crlf line ends", strings.ReplaceAll(good, "\n", "\r\n"), `line 1 "Active connections: 1 \r": unexpected '\r'`},
		{"no trailing space", strings.Replace(good, "1 \n", "1\n", 1), "line 1 \"Active connections: 1\": line ends early"},
		{"tab for space", strings.Replace(good, "Reading: 0", "Reading:\t0", 1), `line 4`},
		{"double space", strings.Replace(good, " 1 1 1 ", " 1  1 1 ", 1), "line 3"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "line 4 \"Reading: 0 Writing: 1 Waiting: 0 \": no newline at its end"},
		{"three lines", good[:strings.Index(good, "Reading")], "ends after line 3"},
		{"extra line", good + "Dropped: 0 \n", "unexpected bytes after line 4"},
		{"trailing nul", good + "\x00", "1 unexpected bytes after line 4"},
		{"lowercase header", strings.Replace(good, "Active", "active", 1), "line 1"},
		{"missing counter", strings.Replace(good, " 1 1 1 ", " 1 1 ", 1), "line 3 \" 1 1 \": want a number at byte 6"},
		{"extra counter", strings.Replace(good, " 1 1 1 ", " 1 1 1 1 ", 1), "line 3"},
		{"negative", strings.Replace(good, "Reading: 0", "Reading: -1", 1), "want a number at byte 10"},
		{"plus sign", strings.Replace(good, "Reading: 0", "Reading: +1", 1), "want a number"},
		{"leading zero", strings.Replace(good, " 1 1 1 ", " 01 1 1 ", 1), `number "01" at byte 2 has a leading zero`},
		{"fraction", strings.Replace(good, "Waiting: 0", "Waiting: 0.5", 1), "unexpected '.'"},
		{"hex", strings.Replace(good, "Waiting: 0", "Waiting: 0x10", 1), "unexpected 'x'"},
		{"arabic-indic digit", strings.Replace(good, "Waiting: 0", "Waiting: \u0661", 1), "want a number"},
		{"active beyond 32 bits", strings.Replace(good, "connections: 1 ", "connections: 4294967296 ", 1), "active connections 4294967296 is beyond 4294967295"},
		{"waiting beyond 32 bits", strings.Replace(good, "Waiting: 0", "Waiting: 99999999999", 1), "waiting 99999999999 is beyond"},
		{"requests beyond 64 bits", strings.Replace(good, " 1 1 1 ", " 1 1 18446744073709551616 ", 1), `number "18446744073709551616" at byte 6 is beyond 64 bits`},
		{"a hundred digits", strings.Replace(good, " 1 1 1 ", " 1 1 "+strings.Repeat("9", 100)+" ", 1), "has 100 digits, beyond 64 bits"},
		{"over 1 KiB", good + strings.Repeat(" ", MaxBodySize+1-len(good)), "1025 bytes, more than the 1024 allowed"},
		{"log forging", "Active connections: 1\x1b[31m\nforged line\n", `"Active connections: 1\x1b[31m"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.body))
			if err == nil {
				t.Fatalf("Parse accepted %q as %+v", tc.body, s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if s != (Status{}) {
				t.Fatalf("Parse returned %+v with its error", s)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x1b\x00") {
				t.Fatalf("error carries control characters: %q", err)
			}
		})
	}
}

// A body of exactly MaxBodySize bytes is judged on its content, not its size.
func TestParseSizeLimitIsInclusive(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("x"), MaxBodySize)
	_, err := Parse(body)
	if err == nil || strings.Contains(err.Error(), "allowed") {
		t.Fatalf("Parse of %d bytes: %v, want a line error", MaxBodySize, err)
	}
}

// FuzzParse checks that Parse never panics, that what it accepts is exactly
// what nginx would write for those counters, and that its errors stay on one
// line.
func FuzzParse(f *testing.F) {
	f.Add([]byte("Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n"))
	f.Add([]byte("Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n"))
	f.Add([]byte("Active connections: 4294967296 \nserver accepts handled requests\n 18446744073709551616 0 0 \nReading: 0 Writing: 0 Waiting: 0 \n"))
	f.Add([]byte("Active connections: 01 \r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Parse(body)
		if err != nil {
			if s != (Status{}) {
				t.Fatalf("Parse returned %+v with error %v", s, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if f := format(s); f != string(body) {
			t.Fatalf("Parse accepted %q as %+v, which nginx writes as %q", body, s, f)
		}
	})
}
