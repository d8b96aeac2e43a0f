package ethtool

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGetOnLoopback: a GET reaches the kernel and comes back (the loopback
// device has tx-checksumming on, and needs no privilege to be asked).
func TestGetOnLoopback(t *testing.T) {
	v, err := Get("lo", unix.ETHTOOL_GTXCSUM)
	if err != nil {
		t.Fatalf("ETHTOOL_GTXCSUM on lo: %v", err)
	}
	if v == 0 {
		t.Fatal("lo reports tx-checksumming off")
	}
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("x", unix.IFNAMSIZ)} {
		if _, err := Get(name, unix.ETHTOOL_GTXCSUM); !errors.Is(err, unix.EINVAL) {
			t.Errorf("name %q: %v, want EINVAL", name, err)
		}
	}
	if _, err := Get("dx-no-such-if", unix.ETHTOOL_GTXCSUM); !errors.Is(err, unix.ENODEV) {
		t.Errorf("a missing interface: %v, want ENODEV", err)
	}
}
