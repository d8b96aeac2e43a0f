package libos_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

// TCP in Shared mode: the libOS and the kernel in namespace A share one
// address. Only the libOS's ports are steered to it; the kernel in A must
// never see (and so never reset) the libOS's connections, while its own
// sockets keep working. The kernel in A's TCP counters (/proc/net/snmp,
// read inside A) are the witness: OutRsts must not move.

// kernelTCPStat reads one counter of the Tcp: line of /proc/net/snmp in
// namespace A (the kernel that shares the libOS's address in shared mode).
func kernelTCPStat(t testing.TB, lab *vethlab.Lab, name string) uint64 {
	t.Helper()
	return kernelSNMP(t, lab.RunInA, "Tcp", name)
}

// kernelSNMP reads counter name of protocol proto ("Tcp", "Udp", ...) from
// /proc/net/snmp in the namespace run enters (lab.RunInA or lab.RunInB).
func kernelSNMP(t testing.TB, run func(func() error) error, proto, name string) uint64 {
	t.Helper()
	var v uint64
	err := run(func() error {
		// thread-self: the namespace of this (locked) thread, not of the
		// process's main thread.
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		var hdr []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != proto+":" {
				continue
			}
			if hdr == nil {
				hdr = fields
				continue
			}
			for i, h := range hdr {
				if h == name && i < len(fields) {
					v, err = strconv.ParseUint(fields[i], 10, 64)
					return err
				}
			}
		}
		return fmt.Errorf("no %s: %s in /proc/net/snmp", proto, name)
	})
	if err != nil {
		t.Fatalf("kernel counter %s %s: %v", proto, name, err)
	}
	return v
}

// kernelEchoTCP runs a kernel TCP echo server on addr in namespace ns ("A"
// or "B"): each connection gets back what it sends and is closed after the
// client's FIN.
func kernelEchoTCP(t testing.TB, lab *vethlab.Lab, ns string, addr netip.AddrPort) {
	t.Helper()
	run := lab.RunInB
	if ns == "A" {
		run = lab.RunInA
	}
	var ln *net.TCPListener
	if err := run(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

// TestSharedTCPEchoBesideKernelServer: on the shared address, a libOS TCP
// echo on one port and a kernel TCP echo in A on another both serve kernel
// clients in B, at the same time; the kernel in A sees only its own
// connection and resets nothing.
func TestSharedTCPEchoBesideKernelServer(t *testing.T) {
	t.Parallel()
	lab, lib := labLibOS(t, libos.Shared, nil)
	rsts0, passive0 := kernelTCPStat(t, lab, "OutRsts"), kernelTCPStat(t, lab, "PassiveOpens")
	la := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	ka := netip.AddrPortFrom(lab.AddrA.Addr(), 8000)
	startTCPEcho(t, lib, la)
	kernelEchoTCP(t, lab, "A", ka)
	toLibOS := dialTCPB(t, lab, la)
	toKernel := dialTCPB(t, lab, ka)
	tcpEchoOnce(t, toLibOS, "to the libOS")
	tcpEchoOnce(t, toKernel, "to the kernel in A")
	streamEcho(t, toLibOS, 4<<20, 31)
	streamEcho(t, toKernel, 4<<20, 32)
	if d := kernelTCPStat(t, lab, "OutRsts") - rsts0; d != 0 {
		t.Errorf("the kernel in A sent %d resets", d)
	}
	if d := kernelTCPStat(t, lab, "PassiveOpens") - passive0; d != 1 {
		t.Errorf("the kernel in A accepted %d connections, want 1 (its own port only)", d)
	}
	// The witness works: a port neither serves is the kernel's, which
	// refuses the connection with a reset that OutRsts counts.
	var derr error
	lab.RunInB(func() error {
		_, derr = net.DialTimeout("tcp4", netip.AddrPortFrom(lab.AddrA.Addr(), 9).String(), 3*time.Second)
		return nil
	})
	if !errors.Is(derr, unix.ECONNREFUSED) {
		t.Errorf("dial to a port nobody serves: %v, want ECONNREFUSED from the kernel in A", derr)
	}
	if d := kernelTCPStat(t, lab, "OutRsts") - rsts0; d != 1 {
		t.Errorf("the kernel in A's OutRsts moved by %d after refusing one connection, want 1", d)
	}
}

// libConn is a libOS TCP client connection driven from the test goroutine.
type libConn struct {
	lib     *libos.LibOS
	qd      libos.QD
	pop     libos.QToken
	popping bool
}

// echo pushes msg and pops until as many bytes came back, comparing them.
func (c *libConn) echo(t testing.TB, msg []byte) {
	t.Helper()
	sga, err := c.lib.SGAAlloc(len(msg))
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, seg := range sga.Segs {
		off += copy(seg, msg[off:])
	}
	qt, err := c.lib.Push(c.qd, sga)
	c.lib.SGAFree(sga)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if !c.popping {
		if c.pop, err = c.lib.Pop(c.qd); err != nil {
			t.Fatal(err)
		}
		c.popping = true
	}
	toks := []libos.QToken{qt, c.pop}
	var got []byte
	pushed := false
	for !pushed || len(got) < len(msg) {
		i, r, err := c.lib.WaitAny(toks, 5*time.Second)
		if err != nil {
			t.Fatalf("echo of %d bytes (%d back, pushed %v): %v", len(msg), len(got), pushed, err)
		}
		toks = append(toks[:i], toks[i+1:]...)
		switch r.Opcode {
		case libos.OpPush:
			pushed = true
		case libos.OpPop:
			c.popping = false
			if len(r.SGA.Segs) == 0 {
				t.Fatalf("the server closed after %d of %d bytes", len(got), len(msg))
			}
			got = append(got, r.SGA.Bytes()...)
			c.lib.SGAFree(r.SGA)
			if len(got) < len(msg) {
				if c.pop, err = c.lib.Pop(c.qd); err != nil {
					t.Fatal(err)
				}
				c.popping = true
				toks = append(toks, c.pop)
			}
		default:
			t.Fatalf("operation failed: %v", r.Err)
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes differs", len(msg))
	}
}

// TestSharedTCPClientSteering: a libOS client on the shared address
// connects out to a kernel server in B. Its ephemeral port is steered, so
// the kernel in A never resets it: the connection survives 2 s of idle and
// carries more data. After CloseQueue the port stays steered through and
// beyond TIME_WAIT (the linger): late segments from the peer reach the
// libOS, which answers them, and the kernel in A still resets nothing.
func TestSharedTCPClientSteering(t *testing.T) {
	t.Parallel()
	lab, lib := labLibOS(t, libos.Shared, func(c *libos.Config) { c.TCP.MSL = 100 * time.Millisecond })
	sn, in := sniffB(t, lab), injectB(t, lab)
	rsts0 := kernelTCPStat(t, lab, "OutRsts")
	srv := netip.AddrPortFrom(lab.AddrB.Addr(), 8080)
	kernelEchoTCP(t, lab, "B", srv)

	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := lib.Connect(qd, srv)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(ct, 5*time.Second); err != nil || r.Opcode != libos.OpConnect {
		t.Fatalf("connect: %v %+v", err, r)
	}
	local, err := lib.LocalAddr(qd)
	if err != nil || local.Addr() != lab.AddrA.Addr() || local.Port() < 61000 {
		t.Fatalf("local address %v (%v): want the shared address and an ephemeral port >= 61000", local, err)
	}
	c := &libConn{lib: lib, qd: qd}
	c.echo(t, []byte("first words"))

	// Idle: nothing arrives, nothing resets the connection.
	if c.pop, err = lib.Pop(qd); err != nil {
		t.Fatal(err)
	}
	c.popping = true
	if r, err := lib.Wait(c.pop, 2*time.Second); !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("idle connection: %v %+v, want ETIMEDOUT", err, r)
	}
	c.echo(t, []byte("after two idle seconds"))
	c.echo(t, bytes.Repeat([]byte("0123456789abcdef"), 1024))
	for _, sg := range sn.since(0, func(s sniffedSeg) bool { return s.flags.Has(tcp.FlagRST) }) {
		t.Errorf("a reset on the wire: %v", sg)
	}

	// Active close: FIN, the server's FIN, TIME_WAIT for 2*MSL.
	if c.popping {
		// The pending pop completes with ECANCELED at CloseQueue.
		c.popping = false
	}
	if err := lib.CloseQueue(qd); err != nil {
		t.Fatal(err)
	}
	loop, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	idle, _ := lib.Pop(loop)
	run := func(d time.Duration) { lib.Wait(idle, d) } // drives the libOS only
	var kfin sniffedSeg
	deadline := time.Now().Add(5 * time.Second)
	for {
		run(5 * time.Millisecond)
		var ok bool
		kfin, ok = sn.await(0, 0, func(s sniffedSeg) bool {
			return !s.fromA && !s.injected && s.src == srv && s.dst == local && s.flags.Has(tcp.FlagFIN)
		})
		if ok {
			if _, acked := sn.await(0, 0, func(s sniffedSeg) bool {
				return s.fromA && s.src == local && s.flags.Has(tcp.FlagACK) && s.ack == kfin.end()
			}); acked {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the close handshake did not complete")
		}
	}
	before, _ := lib.Counters()
	// A late retransmission of the server's FIN (in TIME_WAIT, or after
	// it) and late data after TIME_WAIT has surely ended: the libOS must
	// get them, not the kernel in A.
	in.tcp(t, srv, local.Port(), tcp.Fields{Seq: tcp.Seq(kfin.seq), Ack: tcp.Seq(kfin.ack), Flags: kfin.flags, Window: kfin.win}, nil, false)
	run(50 * time.Millisecond)
	var a libos.Counters
	deadline = time.Now().Add(5 * time.Second)
	for late := 0; ; late++ {
		in.tcp(t, srv, local.Port(), tcp.Fields{Seq: tcp.Seq(kfin.end() + uint32(late)), Ack: tcp.Seq(kfin.ack), Flags: tcp.FlagACK | tcp.FlagPSH, Window: kfin.win}, []byte("late"), false)
		run(20 * time.Millisecond)
		a, _ = lib.Counters()
		if a.TCP.NoPort > before.TCP.NoPort {
			break // TIME_WAIT is over and the segment still came to the libOS
		}
		if time.Now().After(deadline) {
			t.Fatalf("late segments never reached the libOS as segments for no connection (counters: %s)", tcpCounterChanges(before.TCP, a.TCP))
		}
	}
	if d := kernelTCPStat(t, lab, "OutRsts") - rsts0; d != 0 {
		t.Errorf("the kernel in A sent %d resets for the libOS's port", d)
	}
	fromA := sn.since(0, func(s sniffedSeg) bool { return s.fromA && s.flags.Has(tcp.FlagRST) })
	if got, libRSTs := len(fromA), a.TCP.RSTsOut-before.TCP.RSTsOut; uint64(got) != libRSTs {
		t.Errorf("%d resets from A on the wire, the libOS sent %d", got, libRSTs)
	}
	if a.TCP.RSTsOut == before.TCP.RSTsOut {
		t.Errorf("the libOS did not reset the late data")
	}
}
