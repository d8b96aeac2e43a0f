package libos_test

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// TestPushCopyTCP: 65,535 bytes of ordinary memory go out as one
// operation and reach a kernel peer byte for byte; a second push that the
// send buffer cannot take is EAGAIN with nothing of it sent; the steady
// state allocates nothing.
func TestPushCopyTCP(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.TCP.SndBuf = 32 << 10 })
	srv := netip.AddrPortFrom(lab.AddrB.Addr(), 7200)
	var ln *net.TCPListener
	if err := lab.RunInB(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(srv))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	ct, err := lib.Connect(qd, srv)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(ct, 5*time.Second); err != nil || r.Opcode != libos.OpConnect {
		t.Fatalf("connect: %v %+v", err, r)
	}
	if max := lib.PushCopyMax(); max < 65535 {
		t.Fatalf("PushCopyMax %d < 65535", max)
	}
	msg := make([]byte, 65535)
	for i := range msg {
		msg[i] = byte(i*7 + i>>8)
	}
	var want []byte
	push := func(p []byte) {
		qt, err := lib.PushCopy(qd, p, netip.AddrPort{})
		if err != nil {
			t.Fatalf("PushCopy(%d): %v", len(p), err)
		}
		// The first push of an idle connection goes in whatever its
		// size; the send buffer (32 KB) cannot take 40 KB more now.
		if _, err := lib.PushCopy(qd, msg[:40000], netip.AddrPort{}); err != unix.EAGAIN {
			t.Fatalf("PushCopy(40000) while %d bytes are unacknowledged: %v, want EAGAIN", len(p), err)
		}
		want = append(want, p...)
		if r, err := lib.Wait(qt, 10*time.Second); err != nil || r.Opcode != libos.OpPush {
			t.Fatalf("push: %v %+v", err, r)
		}
	}
	push(msg)
	push(msg[100:33000])
	if _, err := lib.PushCopy(qd, make([]byte, lib.PushCopyMax()+1), netip.AddrPort{}); err != unix.EMSGSIZE {
		t.Errorf("PushCopy over PushCopyMax: %v, want EMSGSIZE", err)
	}
	if _, err := lib.PushCopy(qd, nil, netip.AddrPort{}); err != unix.EINVAL {
		t.Errorf("PushCopy(nil): %v, want EINVAL", err)
	}
	if _, err := lib.PushCopy(qd, msg[:10], srv); err != unix.EISCONN {
		t.Errorf("PushCopy with an address on TCP: %v, want EISCONN", err)
	}
	small, runs := msg[:1000], 0
	if allocs := testing.AllocsPerRun(200, func() {
		qt, err := lib.PushCopy(qd, small, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		runs++
		if _, err := lib.Wait(qt, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("PushCopy+Wait: %v allocations per run, want 0", allocs)
	}
	for ; runs > 0; runs-- {
		want = append(want, small...)
	}
	lib.CloseQueue(qd)
	var b []byte
	out := make([]libos.Result, 1)
	for deadline := time.Now().Add(20 * time.Second); b == nil && time.Now().Before(deadline); {
		lib.WaitNext(out, 10*time.Millisecond) // turns of the loop send the FIN
		select {
		case b = <-got:
		default:
		}
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("peer received %d bytes, want %d (equal prefix %v)", len(b), len(want), bytes.HasPrefix(want, b))
	}
}

// TestPushCopyUDP: a datagram from ordinary memory arrives whole; one
// longer than MaxDatagram is EMSGSIZE.
func TestPushCopyUDP(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 7201)
	c := listenB(t, lab, peer)
	qd := mustSocket(t, lib)
	msg := []byte("copied once into a UMEM frame")
	qt, err := lib.PushCopy(qd, msg, peer)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("push: %v %+v", err, r)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if _, err := lib.PushCopy(qd, make([]byte, lib.MaxDatagram()+1), peer); err != unix.EMSGSIZE {
		t.Errorf("PushCopy over MaxDatagram: %v, want EMSGSIZE", err)
	}
	if _, err := lib.PushCopy(qd, make([]byte, lib.MaxDatagram()), peer); err != nil {
		t.Errorf("PushCopy of MaxDatagram bytes: %v", err)
	}
}
