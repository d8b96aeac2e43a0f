package libos_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// TestSocketOptions: the getters reflect the setters, UDP queues refuse
// TCP options with EINVAL and a closed queue gives EBADF.
func TestSocketOptions(t *testing.T) {
	_, lib := labLibOS(t, libos.Dedicated, nil)
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if on, err := lib.NoDelay(qd); err != nil || on {
		t.Fatalf("NoDelay default: %v %v", on, err)
	}
	lib.SetNoDelay(qd, true)
	if on, _ := lib.NoDelay(qd); !on {
		t.Fatal("NoDelay after SetNoDelay(true) is false")
	}
	if on, _ := lib.KeepAlive(qd); on {
		t.Fatal("KeepAlive on by default")
	}
	lib.SetKeepAlive(qd, true)
	if on, _ := lib.KeepAlive(qd); !on {
		t.Fatal("KeepAlive after SetKeepAlive(true) is false")
	}
	if err := lib.SetKeepAlivePeriod(qd, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if s, _ := lib.Linger(qd); s != -1 {
		t.Fatalf("Linger default %d, want -1", s)
	}
	lib.SetLinger(qd, 5)
	if s, _ := lib.Linger(qd); s != 5 {
		t.Fatalf("Linger %d after SetLinger(5)", s)
	}
	uqd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	for name, err := range map[string]error{
		"SetNoDelay":         lib.SetNoDelay(uqd, true),
		"SetKeepAlive":       lib.SetKeepAlive(uqd, true),
		"SetKeepAlivePeriod": lib.SetKeepAlivePeriod(uqd, time.Second),
		"SetLinger":          lib.SetLinger(uqd, 0),
		"Shutdown":           lib.Shutdown(uqd),
	} {
		wantErrno(t, name+" on UDP", err, unix.EINVAL)
	}
	lib.CloseQueue(qd)
	_, err := lib.Linger(qd)
	wantErrno(t, "Linger on a closed queue", err, unix.EBADF)
}

// TestLingerZeroResets: with SetLinger(0), CloseQueue resets the
// connection, and the kernel peer's read fails with ECONNRESET instead of
// seeing an end of stream.
func TestLingerZeroResets(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	// A pop that never completes: waiting on it runs the loop.
	idle, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	lib.Bind(idle, netip.AddrPortFrom(lab.AddrA.Addr(), 9))
	spin, _ := lib.Pop(idle)
	for _, linger := range []int{-1, 0} {
		srv := netip.AddrPortFrom(lab.AddrB.Addr(), uint16(9100+linger+1))
		var ln *net.TCPListener
		if err := lab.RunInB(func() (err error) { ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(srv)); return }); err != nil {
			t.Fatal(err)
		}
		readErr := make(chan error, 1)
		go func() {
			c, err := ln.AcceptTCP()
			if err != nil {
				readErr <- err
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var b [16]byte
			_, err = c.Read(b[:])
			readErr <- err
		}()
		qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		ct, _ := lib.Connect(qd, srv)
		if r, err := lib.Wait(ct, 5*time.Second); err != nil || r.Opcode != libos.OpConnect {
			t.Fatalf("connect: %v %+v", err, r)
		}
		if err := lib.SetLinger(qd, linger); err != nil {
			t.Fatal(err)
		}
		lib.CloseQueue(qd)
		var err error
		for done := false; !done; {
			select {
			case err = <-readErr:
				done = true
			default:
				lib.Wait(spin, time.Millisecond) // run the loop: the FIN or RST goes out
			}
		}
		ln.Close()
		switch {
		case linger == 0 && !errors.Is(err, unix.ECONNRESET):
			t.Fatalf("linger 0: the peer's read gave %v, want ECONNRESET", err)
		case linger < 0 && err == nil:
			t.Fatalf("linger off: the peer's read returned data")
		case linger < 0 && errors.Is(err, unix.ECONNRESET):
			t.Fatalf("linger off: the connection was reset")
		}
	}
}
