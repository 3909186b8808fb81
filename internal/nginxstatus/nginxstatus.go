// Package nginxstatus is the contract between the controller, which renders a
// small server block exposing nginx's stub_status on every node that serves
// domains, and the agent, which reads it with each metrics sample.
//
// The block listens where the node's domains listen (its HTTP port, on its
// bind address or all addresses), answers only the reserved name Host and
// only clients on the node itself, and serves the counters at Path.
package nginxstatus

const (
	// Host is the server name of the status block. The .invalid top-level
	// domain is reserved (RFC 2606), so no real site can claim it.
	Host = "gatehouse-status.invalid"
	// Path is where the counters are served.
	Path = "/gatehouse/stub_status"
	// File is the block's file in a release, relative to the release. The
	// agent reads the counters only while its current release has it, so
	// it never asks another web server on the HTTP port.
	File = "http/zz-gatehouse-status.conf"
)
