package bpf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"runtime"
	"testing"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vethLab is a veth pair inside a network namespace the test created.
type vethLab struct {
	ns      netns.NsHandle
	nl      *netlink.Handle
	a, b    netlink.Link // a carries the program under test; b is its peer
	nsName  string
	ifindex int
}

// inVethLab creates a namespace with a veth pair (both ends up), runs fn on
// a thread switched into that namespace, and deletes the namespace (and so
// the pair) afterwards, even when fn fails. Nothing outside the namespace is
// touched.
func inVethLab(t *testing.T, fn func(lab *vethLab)) {
	t.Helper()
	priv.Require(t, "creating network namespaces")
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(rnd[:])
	lab := &vethLab{nsName: "dxb" + suffix}

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	lab.ns, err = netns.NewNamed(lab.nsName)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(lab.nsName); err != nil {
			t.Errorf("delete netns %s: %v", lab.nsName, err)
		}
	})
	defer lab.ns.Close()
	defer func() {
		// Only a thread back in its own namespace may be reused by Go.
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v (thread left locked)", err)
			return
		}
		runtime.UnlockOSThread()
	}()

	lab.nl, err = netlink.NewHandleAt(lab.ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	defer lab.nl.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dxa" + suffix}, PeerName: "dxp" + suffix}
	if err := lab.nl.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{veth.Name, veth.PeerName} {
		l, err := lab.nl.LinkByName(name)
		if err != nil {
			t.Fatalf("link %s: %v", name, err)
		}
		if err := lab.nl.LinkSetUp(l); err != nil {
			t.Fatalf("up %s: %v", name, err)
		}
	}
	if lab.a, err = lab.nl.LinkByName(veth.Name); err != nil {
		t.Fatal(err)
	}
	if lab.b, err = lab.nl.LinkByName(veth.PeerName); err != nil {
		t.Fatal(err)
	}
	lab.ifindex = lab.a.Attrs().Index
	fn(lab)
}

// xdpAttached reports whether the interface with index ifindex in the lab
// namespace has an XDP program, and its id.
func (lab *vethLab) xdpAttached(t *testing.T, ifindex int) (bool, uint32) {
	t.Helper()
	l, err := lab.nl.LinkByIndex(ifindex)
	if err != nil {
		t.Fatalf("link %d: %v", ifindex, err)
	}
	x := l.Attrs().Xdp
	if x == nil {
		return false, 0
	}
	return x.Attached, x.ProgId
}

func TestAttachDetach(t *testing.T) {
	inVethLab(t, func(lab *vethLab) {
		s, err := Load(Config{Mode: Dedicated})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		info, err := s.Program().Info()
		if err != nil {
			t.Fatal(err)
		}
		wantID, _ := info.ID()

		if ok, _ := lab.xdpAttached(t, lab.ifindex); ok {
			t.Fatal("fresh veth already has an XDP program")
		}
		if err := s.Attach(lab.ifindex); err != nil {
			t.Fatalf("Attach: %v", err)
		}
		ok, id := lab.xdpAttached(t, lab.ifindex)
		if !ok || id != uint32(wantID) {
			t.Fatalf("after Attach: attached=%v id=%d, want program %d", ok, id, wantID)
		}
		if err := s.Attach(lab.ifindex); !errors.Is(err, ErrAttached) {
			t.Fatalf("second Attach = %v, want ErrAttached", err)
		}
		if ok, _ := lab.xdpAttached(t, lab.b.Attrs().Index); ok {
			t.Fatal("the peer got a program too")
		}

		// Detach, then attach again: the Steering is reusable.
		if err := s.Detach(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := lab.xdpAttached(t, lab.ifindex); ok {
			t.Fatal("still attached after Detach")
		}
		if err := s.Detach(); err != nil {
			t.Fatalf("second Detach: %v", err)
		}
		if err := s.Attach(lab.ifindex); err != nil {
			t.Fatalf("re-Attach: %v", err)
		}

		// A second program cannot take the interface while ours holds it.
		other, err := Load(Config{Mode: Shared})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if err := other.Attach(lab.ifindex); err == nil {
			t.Fatal("a second program attached over ours")
		}

		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if ok, _ := lab.xdpAttached(t, lab.ifindex); ok {
			t.Fatal("still attached after Close")
		}
		if err := other.Attach(lab.ifindex); err != nil {
			t.Fatalf("interface not free after Close: %v", err)
		}
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := lab.xdpAttached(t, lab.ifindex); ok {
			t.Fatal("still attached after the second Close")
		}
	})
}

func TestAttachBadInterface(t *testing.T) {
	s := loadForTest(t, Dedicated)
	if err := s.Attach(0); err == nil {
		t.Fatal("Attach(0) succeeded")
	}
	if err := s.Detach(); err != nil {
		t.Fatalf("Detach after a failed Attach: %v", err)
	}
}
