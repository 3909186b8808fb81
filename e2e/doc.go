// Package e2e holds end-to-end tests that run the real controller and agent
// binaries against real Glances, nginx, sshd and Chromium.
package e2e
