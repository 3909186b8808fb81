package nginxsyntax

import (
	"strings"
	"testing"
)

func TestValidVersion(t *testing.T) {
	for _, v := range []string{"nginx/1.22.1", "openresty/1.21.4.1", "angie/1.5", "nginx/1.27.3", "freenginx/1.27.4"} {
		if !ValidVersion(v) {
			t.Errorf("%q refused", v)
		}
	}
	for _, v := range []string{
		"", "nginx", "nginx/", "/1.2.3", "nginx/1", "nginx/1.2.3.4.5", "nginx/1..2", "nginx/1.2a", "Nginx/1.2.3",
		"nginx/1.22.1 (Ubuntu)", "nginx/1.2.3;", "<b>nginx</b>/1.2", "nginx/1.2.3\n", "nginx/1.2.3\x00", "nginx/12345.1",
		"-nginx/1.2", "ng inx/1.2", strings.Repeat("n", 40) + "/1.2.3", "nginx/1.2/3",
	} {
		if ValidVersion(v) {
			t.Errorf("%q accepted", v)
		}
	}
}
