package main

// Privileged integration tests: the real binary on a veth lab, the Linux
// kernel in namespace B as the peer.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// startReflector runs xdp-reflect in namespace A and waits for "listening".
func startReflector(t *testing.T, lab *vethlab.Lab, args ...string) *labtest.Proc {
	t.Helper()
	return labtest.Start(t, lab.CommandA(labtest.Build(t, "."), append([]string{"-iface", lab.IfA}, args...)...), "listening")
}

// dialB opens a UDP socket in namespace B connected to AddrA:port.
func dialB(t *testing.T, lab *vethlab.Lab, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := lab.RunInB(func() (err error) {
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: lab.AddrA.Addr().AsSlice(), Port: port})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fillPayload writes datagram seq: the sequence number (little endian, as
// much of it as fits) followed by random bytes.
func fillPayload(b []byte, seq uint64, rng *rand.Rand) {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	n := copy(b, s[:])
	for i := n; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// roundTrips sends n datagrams of sizes cycling 1..1472 with at most window
// outstanding and checks every reply byte for byte and in order. Any loss
// shows up as a read timeout and fails the test.
func roundTrips(t *testing.T, c *net.UDPConn, n, window int) {
	t.Helper()
	const maxSize = 1472
	rng := rand.New(rand.NewPCG(rand.Uint64(), 7))
	sent := make([][]byte, window)
	for i := range sent {
		sent[i] = make([]byte, maxSize)
	}
	buf := make([]byte, 2048)
	send := func(seq int) {
		p := sent[seq%window][:seq%maxSize+1]
		fillPayload(p, uint64(seq), rng)
		sent[seq%window] = p
		if _, err := c.Write(p); err != nil {
			t.Fatalf("send %d: %v", seq, err)
		}
	}
	next := 0
	for ; next < window && next < n; next++ {
		send(next)
	}
	for got := 0; got < n; got++ {
		if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d replies (%d sent): %v", got, n, next, err)
		}
		if want := sent[got%window]; !bytes.Equal(buf[:m], want) {
			t.Fatalf("reply %d: %d bytes differ from the %d sent", got, m, len(want))
		}
		if next < n {
			send(next)
			next++
		}
	}
}

func TestReflectsEveryDatagramByteForByte(t *testing.T) {
	priv.Require(t, "AF_XDP reflector on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	const frames = 512
	p := startReflector(t, lab, "-frames", strconv.Itoa(frames), "-addr", lab.AddrA.Addr().String())
	if !strings.Contains(p.Output(), "mode=copy") && !strings.Contains(p.Output(), "mode=zerocopy") {
		t.Fatalf("listening line does not name the mode:\n%s", p.Output())
	}
	c := dialB(t, lab, 7777)

	const n = 100_000
	start := time.Now()
	roundTrips(t, c, n, 32)
	t.Logf("%d round trips in %v", n, time.Since(start))

	if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Output())
	}
	k := labtest.ParseUints(p.Output())
	t.Logf("counters: rx=%d tx=%d completed=%d filled=%d dropped=%d loop_allocs=%d polls=%d kicks=%d",
		k["rx"], k["tx"], k["completed"], k["filled"], k["dropped"], k["loop_allocs"], k["polls"], k["kicks"])
	if k["verdict_reflected"] != n || k["tx"] != n {
		t.Errorf("reflected %d, transmitted %d, want %d", k["verdict_reflected"], k["tx"], n)
	}
	if k["completed"] != n {
		t.Errorf("completed %d, want %d", k["completed"], n)
	}
	if k["filled"] < n || k["rx"] <= frames {
		t.Errorf("fill ring not recycled: filled %d, rx %d with %d frames", k["filled"], k["rx"], frames)
	}
	if k["pool_errors"] != 0 || k["bad_desc"] != 0 || k["tx_full"] != 0 {
		t.Errorf("pool_errors=%d bad_desc=%d tx_full=%d, want 0", k["pool_errors"], k["bad_desc"], k["tx_full"])
	}
	if k["redirected"] < n {
		t.Errorf("steering redirected %d, want >= %d", k["redirected"], n)
	}
	// The datapath allocates nothing per packet: the whole process made far
	// fewer heap allocations during the loop than there were packets.
	if a := k["loop_allocs"]; a > n/100 {
		t.Errorf("loop_allocs=%d for %d packets: the datapath allocates", a, n)
	}
}

// icmpEcho sends one ICMP echo request from namespace B to dst over a raw
// socket and waits for the matching reply.
func icmpEcho(lab *vethlab.Lab, dst net.IP, id, seq uint16) error {
	var c net.PacketConn
	if err := lab.RunInB(func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	req := make([]byte, 8+32)
	req[0] = 8 // echo request
	binary.BigEndian.PutUint16(req[4:], id)
	binary.BigEndian.PutUint16(req[6:], seq)
	for i := 8; i < len(req); i++ {
		req[i] = byte(i)
	}
	var sum uint32
	for i := 0; i < len(req); i += 2 {
		sum += uint32(req[i])<<8 | uint32(req[i+1])
	}
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	binary.BigEndian.PutUint16(req[2:], ^uint16(sum))
	if _, err := c.WriteTo(req, &net.IPAddr{IP: dst}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(3 * time.Second)
	for {
		c.SetReadDeadline(deadline)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no echo reply from %v: %w", dst, err)
		}
		r := buf[:n]
		if n >= 8 && r[0] == 0 && binary.BigEndian.Uint16(r[4:]) == id && binary.BigEndian.Uint16(r[6:]) == seq {
			if !from.(*net.IPAddr).IP.Equal(dst) || !bytes.Equal(r[8:], req[8:]) {
				return fmt.Errorf("bad echo reply from %v", from)
			}
			return nil
		}
	}
}

func TestSharedModeKernelKeepsOtherTraffic(t *testing.T) {
	priv.Require(t, "AF_XDP reflector on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	p := startReflector(t, lab) // wildcard address: 0.0.0.0

	// A kernel UDP echo server in namespace A on another port.
	labtest.KernelUDPEcho(t, lab, labtest.A, netip.AddrPortFrom(lab.AddrA.Addr(), 7778))

	kernel := dialB(t, lab, 7778)
	xsk := dialB(t, lab, 7777)
	for i := 0; i < 200; i++ {
		// Interleave: the kernel's socket and the reflector both answer.
		roundTrips(t, kernel, 1, 1)
		roundTrips(t, xsk, 1, 1)
		if i%50 == 0 {
			if err := icmpEcho(lab, lab.AddrA.Addr().AsSlice(), 0x4242, uint16(i)); err != nil {
				t.Fatalf("ping of AddrA while reflecting: %v", err)
			}
		}
	}
	if err := p.Stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Output())
	}
	k := labtest.ParseUints(p.Output())
	if k["verdict_reflected"] != 200 {
		t.Errorf("reflected %d, want 200", k["verdict_reflected"])
	}
	// Port 7778, ARP and ICMP never reached the socket.
	if k["verdict_wrong_port"] != 0 || k["verdict_not_ipv4"] != 0 || k["verdict_not_udp"] != 0 {
		t.Errorf("kernel traffic reached the socket:\n%s", p.Output())
	}
	if k["passed"] == 0 {
		t.Errorf("steering passed nothing to the kernel:\n%s", p.Output())
	}
}

func TestSIGKILLLeavesNoXDPProgram(t *testing.T) {
	priv.Require(t, "AF_XDP reflector on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	p := startReflector(t, lab)
	if !labtest.XDPAttached(t, lab, labtest.A) {
		t.Fatal("no XDP program attached while the reflector runs")
	}
	err := p.Stop(t, syscall.SIGKILL, 10*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit after SIGKILL: %v", err)
	}
	// The bpf_link dies with the last fd; its release may trail the exit.
	deadline := time.Now().Add(5 * time.Second)
	for labtest.XDPAttached(t, lab, labtest.A) {
		if time.Now().After(deadline) {
			t.Fatal("XDP program still attached 5s after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And the interface is usable again by a new reflector.
	p2 := startReflector(t, lab)
	roundTrips(t, dialB(t, lab, 7777), 100, 8)
	if err := p2.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("second reflector: %v", err)
	}
}

func TestSIGINTExitsZeroWithCounters(t *testing.T) {
	priv.Require(t, "AF_XDP reflector on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	p := startReflector(t, lab, "-busy")
	roundTrips(t, dialB(t, lab, 7777), 1000, 16)
	if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, p.Output())
	}
	out := p.Output()
	for _, want := range []string{"rx=", "tx=", "dropped=", "xdp: rx_dropped=", "steering: redirected=", "detached"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	k := labtest.ParseUints(p.Output())
	if k["rx"] != 1000 || k["tx"] != 1000 || k["redirected"] != 1000 {
		t.Errorf("rx=%d tx=%d redirected=%d, want 1000 each", k["rx"], k["tx"], k["redirected"])
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("XDP program still attached after a clean exit")
	}
}
