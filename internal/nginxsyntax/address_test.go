package nginxsyntax

import (
	"fmt"
	"strings"
	"testing"
)

func TestValidServerAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:80":                          true,
		"[::1]:8003":                            true,
		"[2001:db8::1]:65535":                   true,
		"localhost:1":                           true,
		"Backend-1.internal:80":                 true,
		"a.example.:80":                         true,
		"xn--bcher-kva.ch:443":                  true,
		"":                                      false,
		":80":                                   false,
		"localhost":                             false,
		"localhost:":                            false,
		"localhost:0":                           false,
		"localhost:99999":                       false,
		"[::1]:80:80":                           false,
		"[::1:80":                               false,
		"[::ffff:1.2.3.4%0]:80":                 false,
		"1.2.3.4.5:80":                          false,
		"a..b:80":                               false,
		"a b:80":                                false,
		"é.example:80":                          false,
		strings.Repeat("a", 64) + ".example:80": false,
		strings.Repeat(strings.Repeat("a", 63)+".", 4) + "example:80": false,
		strings.Repeat(strings.Repeat("a", 60)+".", 4) + "example:80": true,
		"1.2.3.4:80 ": false,
		fmt.Sprintf("%s:%d", strings.Repeat("1", 3)+".0.0.1", 80):    true,
		fmt.Sprintf("%s:%d", strings.Repeat("1", 3)+".0.0.1", 1<<16): false,
		"local\x00host:80": false,
		"localhost:8\n0":   false,
		"-:80":             false,
		"a-.example:80":    false,
		"a-b.example:80":   true,
		"example.123:80":   false,
		"123.example:80":   true,
		"[" + strings.Repeat("0", 4) + "::" + strings.Repeat("f", 4) + "]:80": true,
	} {
		if got := ValidServerAddress(addr); got != want {
			t.Errorf("ValidServerAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}
