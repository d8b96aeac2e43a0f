package xdp

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// A failed step is named by OpenError, and ModeAuto on a veth says why it
// fell back to copy mode.
func TestOpenErrorStepAndZeroCopyRefusal(t *testing.T) {
	l := newLab(t)
	umem := mapUmem(t)
	base := Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize}

	bad := base
	bad.Umem = umem[1:]
	_, err := Open(bad)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Step != stepUmemReg || !errors.Is(err, unix.EINVAL) {
		t.Errorf("unaligned UMEM: %v, want an OpenError at %q wrapping EINVAL", err, stepUmemReg)
	}
	bad = base
	bad.QueueID = 7
	_, err = Open(bad)
	if !errors.As(err, &oe) || oe.Step != stepBind {
		t.Errorf("queue 7: %v, want an OpenError at %q", err, stepBind)
	}

	s := openOrFail(t, base) // ModeAuto
	if s.ZeroCopy() {
		t.Skip("zero-copy granted on a veth")
	}
	if r := s.ZeroCopyRefusal(); r == nil || !zeroCopyRefused(r) {
		t.Errorf("ZeroCopyRefusal() = %v, want the refused zero-copy bind", r)
	} else {
		t.Logf("zero-copy refusal on veth: %v", r)
	}
}
