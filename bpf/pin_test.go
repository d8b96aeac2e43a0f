package bpf

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/demixdp/demixdp/internal/bpffs"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inMultiQueueNetns creates a namespace holding a veth whose first end has
// eight receive queues, and runs fn on a thread inside that namespace with
// that end's ifindex. The namespace (and the veth) is deleted afterwards.
func inMultiQueueNetns(t *testing.T, fn func(ifindex int)) {
	t.Helper()
	priv.Require(t, "creating network namespaces")
	var rnd [4]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	name := "dxq" + suffix
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	defer ns.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v (thread left locked)", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "dxa" + suffix, NumRxQueues: 8, NumTxQueues: 8},
		PeerName:  "dxp" + suffix,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	l, err := netlink.LinkByName(veth.Name)
	if err != nil {
		t.Fatal(err)
	}
	fn(l.Attrs().Index)
}

// runOnQueue runs the program over frame as if it arrived on queue q of
// the interface ifindex (struct xdp_md as the context).
func runOnQueue(t *testing.T, s *Steering, frame []byte, ifindex, q int) {
	t.Helper()
	ctx := make([]byte, 24) // data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
	binary.NativeEndian.PutUint32(ctx[4:], uint32(len(frame)))
	binary.NativeEndian.PutUint32(ctx[12:], uint32(ifindex))
	binary.NativeEndian.PutUint32(ctx[16:], uint32(q))
	if _, err := s.Program().Run(&ebpf.RunOptions{Data: frame, Context: ctx}); err != nil {
		t.Fatalf("run on queue %d: %v", q, err)
	}
}

func TestCountersPerQueue(t *testing.T) {
	inMultiQueueNetns(t, func(ifindex int) {
		s, err := Load(Config{Mode: Dedicated, MaxQueues: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ours := netip.MustParseAddr("198.51.100.1")
		if err := s.AddAddr(ours); err != nil {
			t.Fatal(err)
		}
		mine := ipv4Frame(ours, 17, 7)
		other := ipv4Frame(netip.MustParseAddr("198.51.100.9"), 17, 7)
		short := ipv4Frame(ours, 17, 7)[:14+10] // truncated IPv4 header
		runOnQueue(t, s, mine, ifindex, 0)
		for range 2 {
			runOnQueue(t, s, mine, ifindex, 3)
		}
		runOnQueue(t, s, other, ifindex, 3)
		runOnQueue(t, s, short, ifindex, 6) // beyond MaxQueues: the shared last row
		runOnQueue(t, s, mine, ifindex, 7)
		qs, err := s.QueueCounters()
		if err != nil {
			t.Fatal(err)
		}
		want := []QueueCounters{
			{Queue: 0, Counters: Counters{Redirected: 1}},
			{Queue: 3, Counters: Counters{Redirected: 2, Passed: 1}},
			{Queue: -1, Counters: Counters{Redirected: 1, Passed: 1, Malformed: 1}},
		}
		if len(qs) != len(want) {
			t.Fatalf("QueueCounters = %+v, want %+v", qs, want)
		}
		for i := range want {
			if qs[i] != want[i] {
				t.Errorf("queue row %d = %+v, want %+v", i, qs[i], want[i])
			}
		}
		if c := counters(t, s); c != (Counters{Redirected: 4, Passed: 2, Malformed: 1}) {
			t.Errorf("Counters = %+v, want the sum of the rows", c)
		}
	})
}

// ipv4Frame is a minimal Ethernet+IPv4 frame to dst with protocol proto
// and 4 L4 bytes naming port as the destination.
func ipv4Frame(dst netip.Addr, proto uint8, port uint16) []byte {
	f := make([]byte, 14+20+8)
	binary.BigEndian.PutUint16(f[12:], ethTypeIPv4)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 28)
	ip[8] = 64
	ip[9] = proto
	d := dst.As4()
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[22:], port)
	return f
}

func TestPinOpenPinnedUnpin(t *testing.T) {
	root := filepath.Join(bpffs.ForTest(t), "demixdp")
	s := loadForTest(t, Shared)
	for _, a := range []string{"198.51.100.1", "0.0.0.0"} {
		if err := s.AddAddr(netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddPort(protoUDP, 53); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPort(protoTCP, 80); err != nil {
		t.Fatal(err)
	}
	dir := PinDir(root, "dxtest0")
	if err := s.Pin(dir); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	if got := s.PinnedAt(); got != dir {
		t.Errorf("PinnedAt = %q, want %q", got, dir)
	}
	if err := s.Pin(dir); err == nil {
		t.Error("a second Pin succeeded")
	}
	runFrame(t, s, ipv4Frame(netip.MustParseAddr("198.51.100.1"), protoUDP, 53))
	runFrame(t, s, ipv4Frame(netip.MustParseAddr("198.51.100.1"), protoUDP, 54))

	p, err := OpenPinned(dir)
	if err != nil {
		t.Fatalf("OpenPinned: %v", err)
	}
	defer p.Close()
	c, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c != (Counters{Redirected: 1, Passed: 1}) {
		t.Errorf("pinned counters %+v, want 1 redirected, 1 passed", c)
	}
	qs, err := p.QueueCounters()
	if err != nil || len(qs) != 1 || qs[0].Queue != 0 || qs[0].Counters != c {
		t.Errorf("pinned queue counters %+v (%v), want queue 0 only", qs, err)
	}
	addrs, err := p.Addrs()
	if err != nil || len(addrs) != 2 || addrs[0] != netip.IPv4Unspecified() || addrs[1] != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("pinned addresses %v (%v)", addrs, err)
	}
	ports, err := p.Ports()
	if err != nil || len(ports) != 2 || ports[0].String() != "tcp/80" || ports[1].String() != "udp/53" {
		t.Errorf("pinned ports %v (%v)", ports, err)
	}
	info, _ := s.Program().Info()
	id, _ := info.ID()
	if used, err := p.UsedBy(id); err != nil || !used {
		t.Errorf("UsedBy(own program) = %v, %v", used, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory after Close: %v", err)
	}
	// The reader's map handles stay valid after the pins are gone.
	if _, err := p.Counters(); err != nil {
		t.Errorf("reading an unpinned map: %v", err)
	}
	if _, err := OpenPinned(dir); !errors.Is(err, ErrNoPins) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenPinned after Close = %v, want ErrNoPins", err)
	}
}

// A process that died leaves its pins; the next Pin replaces them, and
// UsedBy tells the stale maps from the live ones.
func TestPinReplacesStalePins(t *testing.T) {
	root := filepath.Join(bpffs.ForTest(t), "demixdp")
	dir := PinDir(root, "dxtest1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.Pin(filepath.Join(dir, pinCounters)); err != nil {
		t.Fatal(err)
	}
	stale.Close() // the pin keeps it alive, as after a crash
	if _, err := OpenPinned(dir); !errors.Is(err, ErrNoPins) {
		t.Errorf("OpenPinned over a lone stale map = %v, want ErrNoPins", err)
	}

	old := loadForTest(t, Dedicated)
	if err := old.Pin(dir); err != nil {
		t.Fatalf("Pin over stale pins: %v", err)
	}
	oldPins, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer oldPins.Close()
	// Simulate the crash: forget the pins without removing them.
	old.mu.Lock()
	old.pinDir = ""
	old.mu.Unlock()
	old.Close()

	s := loadForTest(t, Dedicated)
	if err := s.Pin(dir); err != nil {
		t.Fatalf("Pin over a dead libOS's pins: %v", err)
	}
	p, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info, _ := s.Program().Info()
	id, _ := info.ID()
	if used, err := p.UsedBy(id); err != nil || !used {
		t.Errorf("new pins UsedBy(new program) = %v, %v", used, err)
	}
	if used, err := oldPins.UsedBy(id); err != nil || used {
		t.Errorf("stale pins UsedBy(new program) = %v, %v", used, err)
	}

	// Another interface's pins beside it are independent.
	other := loadForTest(t, Dedicated)
	if err := other.Pin(PinDir(root, "dxtest2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPinned(PinDir(root, "dxtest2")); err != nil {
		t.Errorf("closing one libOS removed another's pins: %v", err)
	}
}

func TestPinRefusesNonBPFFS(t *testing.T) {
	s := loadForTest(t, Dedicated)
	err := s.Pin(filepath.Join(t.TempDir(), "demixdp", "dxtest3"))
	if !errors.Is(err, ErrNotBPFFS) {
		t.Fatalf("Pin on tmpfs = %v, want ErrNotBPFFS", err)
	}
	if s.PinnedAt() != "" {
		t.Error("PinnedAt set after a failed Pin")
	}
}
