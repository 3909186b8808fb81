// Package version holds the build's version, set by the linker.
package version

// Version is the release this build came from; "dev" for local builds.
var Version = "dev"
