package dxnet_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/demixdp/demixdp/internal/labtest"
)

// pipe makes a MakePipe that dials ln's address with dial and accepts the
// other end from ln.
func pipe(t *testing.T, ln net.Listener, dial func() (net.Conn, error)) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		type acc struct {
			c   net.Conn
			err error
		}
		ch := make(chan acc, 1)
		go func() {
			c, err := ln.Accept()
			ch <- acc{c, err}
		}()
		c1, err = dial()
		if err != nil {
			// Unblock the Accept with a connection of our own? No: the
			// listener is closed by the test's cleanup, which ends it.
			return nil, nil, nil, err
		}
		var a acc
		select {
		case a = <-ch:
		case <-time.After(hang):
			c1.Close()
			t.Fatal("accept: no connection")
		}
		if a.err != nil {
			c1.Close()
			return nil, nil, nil, a.err
		}
		return c1, a.c, func() { c1.Close(); a.c.Close() }, nil
	}
}

// TestConnKernelPeer runs golang.org/x/net/nettest's conformance suite on a
// dxnet *TCPConn (c1, dialed from A) whose peer is the kernel's net
// package (c2, accepted in B).
func TestConnKernelPeer(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln := kernelListen(t, lab, 7100)
	addr := netip.AddrPortFrom(lab.AddrB.Addr(), 7100).String()
	nettest.TestConn(t, pipe(t, ln, func() (net.Conn, error) { return st.Dial("tcp", addr) }))
}

// TestConnKernelClient is the same suite on a dxnet *TCPConn accepted by a
// dxnet listener in A (c1), with a kernel client in B as its peer.
func TestConnKernelClient(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln, err := st.Listen("tcp4", lab.AddrA.Addr().String()+":7101")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := netip.AddrPortFrom(lab.AddrA.Addr(), 7101).String()
	mp := pipe(t, ln, func() (net.Conn, error) {
		var c net.Conn
		err := lab.RunInB(func() (err error) {
			c, err = net.Dial("tcp4", addr)
			return err
		})
		return c, err
	})
	// The suite times out c1: make it the dxnet end.
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		k, d, stop, err := mp()
		return d, k, stop, err
	})
}

// TestConnPair runs the suite with dxnet on both ends: a stack in A
// listening, a stack in B (198.51.100.22) dialing.
func TestConnPair(t *testing.T) {
	lab := newLab(t)
	a := openStack(t, lab, labtest.A, nil)
	b := openStack(t, lab, labtest.B, nil)
	ln, err := a.Listen("tcp", ":7102")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := netip.AddrPortFrom(lab.AddrA.Addr(), 7102).String()
	nettest.TestConn(t, pipe(t, ln, func() (net.Conn, error) { return b.Dial("tcp", addr) }))
}
