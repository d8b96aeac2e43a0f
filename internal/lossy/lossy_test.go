package lossy_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/lossy"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/vishvananda/netlink"
)

// TestLossRate sends UDP both ways across a lab veth with 20% loss on the
// peer's end and checks that roughly that share of IPv4 frames vanishes in
// each direction, while ARP still resolves.
func TestLossRate(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ls", KernelAddrA: true})
	var loss *lossy.Loss
	if err := lab.RunInB(func() (err error) {
		loss, err = lossy.Attach(lab.IndexB, 0.2)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer loss.Close()

	a := netip.AddrPortFrom(lab.AddrA.Addr(), 5000)
	b := netip.AddrPortFrom(lab.AddrB.Addr(), 5001)
	var ca, cb *net.UDPConn
	lab.RunInA(func() (err error) { ca, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a)); return })
	lab.RunInB(func() (err error) { cb, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(b)); return })
	if ca == nil || cb == nil {
		t.Fatal("sockets")
	}
	defer ca.Close()
	defer cb.Close()
	const n = 2000
	count := func(from, to *net.UDPConn, dst netip.AddrPort) int {
		got := make(chan int)
		go func() { // read while sending, so the socket buffer never overflows
			c := 0
			buf := make([]byte, 16)
			for {
				to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, _, err := to.ReadFromUDPAddrPort(buf); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Error(err)
					}
					got <- c
					return
				}
				c++
			}
		}()
		for i := 0; i < n; i++ {
			from.WriteToUDPAddrPort([]byte("x"), dst)
			if i%20 == 0 {
				time.Sleep(200 * time.Microsecond)
			}
		}
		return <-got
	}
	for _, dir := range []struct {
		name     string
		from, to *net.UDPConn
		dst      netip.AddrPort
	}{{"A to B (XDP ingress)", ca, cb, b}, {"B to A (TCX egress)", cb, ca, a}} {
		got := count(dir.from, dir.to, dir.dst)
		if rate := 1 - float64(got)/n; rate < 0.12 || rate > 0.28 {
			t.Errorf("%s: %d of %d arrived, loss %.2f, want about 0.20", dir.name, got, n, rate)
		}
	}
	c, err := loss.Counters()
	if err != nil || c.Dropped == 0 || c.Passed == 0 {
		t.Fatalf("counters %+v %v", c, err)
	}

	// TCP from B: the kernel builds GSO super-packets, which Attach
	// prevents by lowering gso_max_size and gso_max_segs, so the loss
	// programs see (and could drop) every packet the veth counts. A rate
	// of 0 counts without dropping: at 20% the kernel's RTO backoff makes
	// the transfer take anything from 5 to 100 s.
	if err := loss.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lab.RunInB(func() (err error) {
		loss, err = lossy.Attach(lab.IndexB, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	packets := func() (n uint64) {
		lab.RunInB(func() error {
			l, err := netlink.LinkByIndex(lab.IndexB)
			if err == nil && l.Attrs().Statistics != nil {
				n = l.Attrs().Statistics.RxPackets + l.Attrs().Statistics.TxPackets
			}
			return err
		})
		return n
	}
	var ln *net.TCPListener
	lab.RunInA(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(lab.AddrA.Addr(), 5002)))
		return err
	})
	if ln == nil {
		t.Fatal("listen")
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	var tc net.Conn
	lab.RunInB(func() (err error) { tc, err = net.Dial("tcp4", "198.51.100.1:5002"); return })
	if tc == nil {
		t.Fatal("dial")
	}
	before, _ := loss.Counters()
	pBefore := packets()
	if _, err := tc.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	if n := <-got; n != 1<<20 {
		t.Fatalf("TCP carried %d bytes", n)
	}
	after, _ := loss.Counters()
	seen := (after.Dropped + after.Passed) - (before.Dropped + before.Passed)
	// The veth's counters may also hold the FIN's last ACK, which can
	// come after the read above returns; a super-packet of two segments
	// would leave a third of the packets unseen.
	if sent := packets() - pBefore; seen < 725 || seen+4 < sent {
		t.Fatalf("the loss programs saw %d frames of a 1 MB TCP transfer, the veth %d packets: GSO super-packets?", seen, sent)
	}
	gsoOf := func(run func(func() error) error, index int) (size, segs uint32) {
		run(func() error {
			l, err := netlink.LinkByIndex(index)
			if err == nil {
				size, segs = l.Attrs().GSOMaxSize, l.Attrs().GSOMaxSegs
			}
			return err
		})
		return
	}
	if size, segs := gsoOf(lab.RunInB, lab.IndexB); size > 1500 || segs != 1 {
		t.Fatalf("gso_max_size %d, gso_max_segs %d while the loss is attached", size, segs)
	}
	if err := loss.Close(); err != nil { // from the test's own (root) namespace
		t.Fatal(err)
	}
	if size, segs := gsoOf(lab.RunInB, lab.IndexB); size <= 1500 || segs <= 1 {
		t.Fatalf("gso_max_size %d, gso_max_segs %d after Close, want them restored", size, segs)
	}

	// LimitGSO on the kernel's end opposite the loss, and Restore.
	var g *lossy.GSOLimit
	if err := lab.RunInA(func() (err error) { g, err = lossy.LimitGSO(lab.IndexA); return }); err != nil {
		t.Fatal(err)
	}
	if size, segs := gsoOf(lab.RunInA, lab.IndexA); size > 1500 || segs != 1 {
		t.Fatalf("A: gso_max_size %d, gso_max_segs %d after LimitGSO", size, segs)
	}
	if err := g.Restore(); err != nil {
		t.Fatal(err)
	}
	if err := g.Restore(); err != nil {
		t.Fatalf("second Restore: %v", err)
	}
	if size, segs := gsoOf(lab.RunInA, lab.IndexA); size <= 1500 || segs <= 1 {
		t.Fatalf("A: gso_max_size %d, gso_max_segs %d after Restore, want them restored", size, segs)
	}
	if _, err := lossy.Attach(lab.IndexB, 1.5); err == nil {
		t.Fatal("rate 1.5 accepted")
	}
}
