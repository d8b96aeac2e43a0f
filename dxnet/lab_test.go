package dxnet_test

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
)

// addrB2 is the address of a second stack on the lab's B end (the kernel
// in B has AddrB; in dedicated mode the libOS in B owns this one).
var addrB2 = netip.MustParsePrefix("198.51.100.22/24")

// hang is a safety net against calls that never return; no assertion
// depends on timing.
const hang = 30 * time.Second

// noLeaks checks, after every other cleanup of t has run, that no goroutine
// started by the test is left (the stacks' loops, waiting calls, timers).
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if t.Failed() {
			return // a failing test may leave helpers behind; say nothing more
		}
		if err := goleak.Find(opt); err != nil {
			t.Error(err)
		}
	})
}

// openStack opens a dxnet stack on one side of the lab.
func openStack(t *testing.T, lab *vethlab.Lab, side labtest.Side, tweak func(*libos.Config)) *dxnet.Stack {
	t.Helper()
	run, cfg := lab.RunInA, libos.Config{Interface: lab.IfA, Addr: lab.AddrA}
	if side == labtest.B {
		run, cfg = lab.RunInB, libos.Config{Interface: lab.IfB, Addr: addrB2}
	}
	if tweak != nil {
		tweak(&cfg)
	}
	var st *dxnet.Stack
	if err := run(func() (err error) {
		st, err = dxnet.Open(cfg)
		return err
	}); err != nil {
		t.Fatalf("dxnet.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Stack.Close: %v", err)
		}
		if labtest.XDPAttached(t, lab, side) {
			t.Errorf("an XDP program is still attached after Stack.Close")
		}
	})
	return st
}

// newLab makes a dedicated-mode lab (after noLeaks, so that the leak check
// runs last).
func newLab(t *testing.T) *vethlab.Lab {
	t.Helper()
	noLeaks(t)
	return vethlab.ForTest(t, vethlab.Config{Name: "dn"})
}

// kernelListen opens a kernel TCP listener in namespace B.
func kernelListen(t *testing.T, lab *vethlab.Lab, port uint16) *net.TCPListener {
	t.Helper()
	var ln *net.TCPListener
	addr := netip.AddrPortFrom(lab.AddrB.Addr(), port)
	if err := lab.RunInB(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// kernelDial connects a kernel TCP socket in namespace B to addr.
func kernelDial(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c *net.TCPConn
	if err := lab.RunInB(func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		nc, err := d.Dial("tcp4", addr.String())
		if err == nil {
			c = nc.(*net.TCPConn)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernelEcho serves ln: every connection gets back what it sends and is
// closed (after a FIN of its own) once the client has closed its side.
// It stops, and its goroutines end, when the test ends.
func kernelEcho(t *testing.T, ln net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// run starts fn on a goroutine and returns a channel that gets its error.
func run(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// waitUntil waits for cond (a call to be in progress, for instance),
// failing t after hang: a condition, not a guess at how long it takes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hang); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, hang)
		}
	}
}

// within waits for ch, failing t after hang.
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hang):
		t.Fatalf("%s: no result after %v", what, hang)
		panic("unreachable")
	}
}
