package nginxstatus

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/internal/testutil/freeport"
)

// freePort returns a TCP port free on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	return freeport.Get(t)
}

// statusBlock is the server block the controller renders for the agent, on
// the given listen addresses, allowing the given clients besides loopback.
func statusBlock(listen []string, allow ...string) string {
	var b strings.Builder
	b.WriteString("server {\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "    listen %s;\n", l)
	}
	fmt.Fprintf(&b, "    server_name %s;\n    server_tokens off;\n    access_log off;\n", Host)
	for _, a := range append([]string{"127.0.0.1", "::1"}, allow...) {
		fmt.Fprintf(&b, "    allow %s;\n", a)
	}
	fmt.Fprintf(&b, "    deny all;\n    location = %s { stub_status; }\n    location / { return 404; }\n}\n", Path)
	return b.String()
}

// siteBlocks are what else a node serves on the same listeners: a catch-all
// default server that knows no name, and one domain.
func siteBlocks(listen []string) string {
	var b strings.Builder
	b.WriteString("server {\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "    listen %s default_server;\n", l)
	}
	b.WriteString("    return 404;\n}\nserver {\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "    listen %s;\n", l)
	}
	b.WriteString("    server_name app.test;\n    location / { return 200 \"app\\n\"; }\n}\n")
	return b.String()
}
