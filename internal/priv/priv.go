// Package priv decides what a test does when it needs privileges it lacks.
//
// Tests that create namespaces, load eBPF programs or open AF_XDP sockets
// call Require first. Without root they skip with a reason; when the
// environment variable DEMIXDP_REQUIRE_PRIV is set to 1 (as .ci/run does) the
// skip becomes a failure, so CI can never go green by skipping the tests that
// matter.
package priv

import (
	"os"
	"testing"
)

// EnvRequire is the environment variable that turns a privilege skip into a
// failure.
const EnvRequire = "DEMIXDP_REQUIRE_PRIV"

// Strict reports whether privileged tests must run (DEMIXDP_REQUIRE_PRIV=1).
func Strict() bool { return os.Getenv(EnvRequire) == "1" }

// Require skips (or, in strict mode, fails) t unless the process runs as root.
// what names the feature the test needs, for the message.
func Require(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, what+" needs root (or CAP_NET_ADMIN+CAP_BPF+CAP_NET_RAW)")
}

// Unavailable skips t with reason, or fails it in strict mode. Use it when a
// privileged test finds the machine cannot run it (no AF_XDP, no netns...).
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s; %s=1 forbids skipping", reason, EnvRequire)
	}
	t.Skip(reason)
}
