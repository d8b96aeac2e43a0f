// Package bpffs gives tests a bpf file system of their own to pin maps in.
//
// The machine's /sys/fs/bpf may not be mounted, and `ip netns exec`
// replaces /sys with a fresh sysfs, so tests do not pin there: each mounts
// a private bpffs instance on a temporary directory, which processes the
// test starts afterwards (also through `ip netns exec`, whose mount
// namespace starts as a copy of the test's) see as well.
package bpffs

import (
	"os"
	"testing"

	"github.com/demixdp/demixdp/internal/priv"
	"golang.org/x/sys/unix"
)

// ForTest mounts a new bpf file system on a temporary directory and
// returns that directory; the mount goes away when t ends. It skips (or in
// strict mode fails) t without privileges.
func ForTest(t testing.TB) string {
	t.Helper()
	priv.Require(t, "mounting a bpf file system")
	dir, err := os.MkdirTemp("", "demixdp-bpffs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		os.Remove(dir)
		priv.Unavailable(t, "cannot mount a bpf file system: "+err.Error())
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return dir
}
