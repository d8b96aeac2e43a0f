package rss

import (
	"errors"
	"net/netip"
	"testing"
)

// spread returns an indirection table of n entries over queues queues, as
// `ethtool -X IF equal queues` sets it.
func spread(n, queues int) []uint32 {
	t := make([]uint32, n)
	for i := range t {
		t[i] = uint32(i % queues)
	}
	return t
}

// TestChooserQueueMatchesHash: the precomputed per-port tables give the
// queue the full hash gives, for every port.
func TestChooserQueueMatchesHash(t *testing.T) {
	cfg := Config{Key: msKey, Indir: spread(128, 16), TCPPorts: true}
	local := netip.MustParseAddr("198.51.100.1")
	c, err := NewChooser(cfg, local, true)
	if err != nil {
		t.Fatal(err)
	}
	remote := netip.MustParseAddrPort("203.0.113.9:443")
	base := c.Base(remote)
	for p := 1; p < 65536; p++ {
		port := uint16(p)
		want := cfg.QueueOf(true, remote, netip.AddrPortFrom(local, port))
		if got := c.Queue(base, port); got != want {
			t.Fatalf("port %d: chooser says queue %d, the hash says %d", port, got, want)
		}
	}
}

// TestChooserFindsAPortForEveryQueue: with a 128-entry indirection table
// over 1, 2, 4, 8, 16 and 64 queues, Find returns for every queue a port in
// the ephemeral range whose replies hash to that queue, for several peers.
func TestChooserFindsAPortForEveryQueue(t *testing.T) {
	local := netip.MustParseAddr("198.51.100.1")
	peers := []string{"198.51.100.2:7000", "203.0.113.200:80", "161.142.100.80:1766", "198.51.100.254:65535"}
	for _, queues := range []int{1, 2, 4, 8, 16, 64} {
		cfg := Config{Key: msKey, Indir: spread(128, queues), TCPPorts: true}
		c, err := NewChooser(cfg, local, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			remote := netip.MustParseAddrPort(p)
			for q := 0; q < queues; q++ {
				port := c.Find(remote, uint32(q), 61000, 65535, 61000, nil)
				if port == 0 {
					t.Fatalf("%d queues, peer %s: no port for queue %d", queues, p, q)
				}
				if port < 61000 {
					t.Fatalf("port %d outside the range", port)
				}
				if got := cfg.QueueOf(true, remote, netip.AddrPortFrom(local, port)); got != uint32(q) {
					t.Fatalf("%d queues, peer %s: port %d lands on queue %d, not %d", queues, p, port, got, q)
				}
			}
		}
	}
}

// TestChooserFindHonoursOkAndWraps: Find skips ports ok refuses, starts at
// start, wraps around the range, and gives 0 when nothing fits.
func TestChooserFindHonoursOkAndWraps(t *testing.T) {
	local := netip.MustParseAddr("198.51.100.1")
	cfg := Config{Key: msKey, Indir: spread(128, 2), TCPPorts: true}
	c, _ := NewChooser(cfg, local, true)
	remote := netip.MustParseAddrPort("198.51.100.2:9000")
	base := c.Base(remote)
	var ours []uint16 // ports of [61000, 61100] that land on queue 1
	for p := uint16(61000); p <= 61100; p++ {
		if c.Queue(base, p) == 1 {
			ours = append(ours, p)
		}
	}
	if len(ours) < 3 {
		t.Fatalf("only %d of 101 ports land on queue 1", len(ours))
	}
	if got := c.Find(remote, 1, 61000, 61100, ours[1], nil); got != ours[1] {
		t.Fatalf("start at %d: got %d", ours[1], got)
	}
	last := ours[len(ours)-1]
	if got := c.Find(remote, 1, 61000, 61100, last+1, nil); got != ours[0] {
		t.Fatalf("start past the last match: got %d, want the wrap to %d", got, ours[0])
	}
	taken := map[uint16]bool{ours[0]: true}
	if got := c.Find(remote, 1, 61000, 61100, 61000, func(p uint16) bool { return !taken[p] }); got != ours[1] {
		t.Fatalf("with %d taken: got %d, want %d", ours[0], got, ours[1])
	}
	if got := c.Find(remote, 1, 61000, 61100, 61000, func(uint16) bool { return false }); got != 0 {
		t.Fatalf("nothing acceptable: got %d", got)
	}
	if got := c.Find(remote, 5, 61000, 61100, 61000, nil); got != 0 {
		t.Fatalf("a queue the table never names: got %d", got)
	}
}

func TestNewChooserRefuses(t *testing.T) {
	local := netip.MustParseAddr("198.51.100.1")
	if _, err := NewChooser(Config{Key: msKey[:8], Indir: spread(4, 2), TCPPorts: true}, local, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := NewChooser(Config{Key: msKey, TCPPorts: true}, local, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no table: %v", err)
	}
	if _, err := NewChooser(Config{Key: msKey, Indir: spread(4, 2)}, local, true); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("TCP hashed on addresses only: %v", err)
	}
	if _, err := NewChooser(Config{Key: msKey, Indir: spread(4, 2), TCPPorts: true}, local, false); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("UDP hashed on addresses only: %v", err)
	}
}

func TestConfigQueueOfAddressesOnly(t *testing.T) {
	cfg := Config{Key: msKey, Indir: spread(128, 4)}
	src, dst := netip.MustParseAddrPort("66.9.149.187:2794"), netip.MustParseAddrPort("161.142.100.80:1766")
	want := cfg.Indir[0x323e8fc2%128]
	if got := cfg.QueueOf(true, src, dst); got != want {
		t.Fatalf("2-tuple queue %d, want %d", got, want)
	}
	if cfg.Queues() != 4 {
		t.Fatalf("Queues() = %d", cfg.Queues())
	}
}

func TestFindAllocatesNothing(t *testing.T) {
	local := netip.MustParseAddr("198.51.100.1")
	c, _ := NewChooser(Config{Key: msKey, Indir: spread(128, 4), TCPPorts: true}, local, true)
	remote := netip.MustParseAddrPort("198.51.100.2:9000")
	taken := uint16(0)
	ok := func(p uint16) bool { return p != taken }
	if n := testing.AllocsPerRun(100, func() { c.Find(remote, 3, 61000, 65535, 62000, ok) }); n != 0 {
		t.Fatalf("Find allocates %v times", n)
	}
}

func BenchmarkChooserFind(b *testing.B) {
	local := netip.MustParseAddr("198.51.100.1")
	c, _ := NewChooser(Config{Key: msKey, Indir: spread(128, 16), TCPPorts: true}, local, true)
	remote := netip.MustParseAddrPort("198.51.100.2:9000")
	q := uint32(0)
	for b.Loop() {
		c.Find(remote, q, 61000, 65535, 61000, nil)
		q = (q + 1) % 16
	}
}
