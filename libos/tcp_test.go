package libos_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// tcpEchoServer accepts connections on addr and echoes every byte back,
// pushing each popped SGA (a view of the received frame) as it is. When a
// client closes its side, the server closes the connection once everything
// is echoed.
func tcpEchoServer(lib *libos.LibOS, addr netip.AddrPort, ready chan<- error, stop <-chan struct{}) error {
	lqd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err == nil {
		err = lib.Bind(lqd, addr)
	}
	if err == nil {
		err = lib.Listen(lqd, 1024)
	}
	ready <- err
	if err != nil {
		return err
	}
	acc, err := lib.Accept(lqd)
	if err != nil {
		return err
	}
	type conn struct {
		pushes int
		eof    bool
	}
	conns := map[libos.QD]*conn{}
	toks := []libos.QToken{acc}
	for {
		select {
		case <-stop:
			for qd := range conns {
				lib.CloseQueue(qd)
			}
			return lib.CloseQueue(lqd)
		default:
		}
		i, r, err := lib.WaitAny(toks, 20*time.Millisecond)
		if errors.Is(err, unix.ETIMEDOUT) {
			continue
		}
		if err != nil {
			return err
		}
		toks = append(toks[:i], toks[i+1:]...)
		switch r.Opcode {
		case libos.OpAccept:
			conns[r.NewQD] = &conn{}
			pop, err := lib.Pop(r.NewQD)
			if err != nil {
				return err
			}
			next, err := lib.Accept(lqd)
			if err != nil {
				return err
			}
			toks = append(toks, pop, next)
		case libos.OpPop:
			c := conns[r.QD]
			if len(r.SGA.Segs) == 0 { // end of stream
				lib.SGAFree(r.SGA)
				c.eof = true
				if c.pushes == 0 {
					lib.CloseQueue(r.QD)
					delete(conns, r.QD)
				}
				continue
			}
			qt, err := lib.Push(r.QD, r.SGA)
			lib.SGAFree(r.SGA)
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			c.pushes++
			pop, err := lib.Pop(r.QD)
			if err != nil {
				return err
			}
			toks = append(toks, qt, pop)
		case libos.OpPush:
			c := conns[r.QD]
			c.pushes--
			if c.eof && c.pushes == 0 {
				lib.CloseQueue(r.QD)
				delete(conns, r.QD)
			}
		case libos.OpFailed:
			if c, ok := conns[r.QD]; ok && !errors.Is(r.Err, unix.ECANCELED) {
				_ = c
				lib.CloseQueue(r.QD)
				delete(conns, r.QD)
				// Drop the connection's other tokens: they completed
				// with ECANCELED and are consumed below as they come.
			}
		}
	}
}

func startTCPEcho(t testing.TB, lib *libos.LibOS, addr netip.AddrPort) (stop func()) {
	t.Helper()
	ready, quit, done := make(chan error, 1), make(chan struct{}), make(chan error, 1)
	go func() { done <- tcpEchoServer(lib, addr, ready, quit) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(quit)
			if err := <-done; err != nil {
				t.Errorf("tcp echo server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func dialTCPB(t testing.TB, lab *vethlab.Lab, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c *net.TCPConn
	if err := lab.RunInB(func() (err error) {
		c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(to))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// streamEcho writes n pseudo-random bytes and reads them back through the
// echo, comparing SHA-256 of both directions.
func streamEcho(t testing.TB, c *net.TCPConn, n int, seed uint64) {
	t.Helper()
	h1, h2 := sha256.New(), sha256.New()
	errc := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(seed, seed))
		buf := make([]byte, 64<<10)
		left := n
		for left > 0 {
			m := min(left, len(buf))
			for i := 0; i < m; i += 8 {
				v := rng.Uint64()
				for j := 0; j < 8 && i+j < m; j++ {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			h1.Write(buf[:m])
			if _, err := c.Write(buf[:m]); err != nil {
				errc <- err
				return
			}
			left -= m
		}
		errc <- c.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.Copy(h2, c)
	if err != nil {
		t.Fatalf("reading the echo after %d bytes: %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got != int64(n) || !bytes.Equal(h1.Sum(nil), h2.Sum(nil)) {
		t.Fatalf("echoed %d of %d bytes; SHA-256 equal: %v", got, n, bytes.Equal(h1.Sum(nil), h2.Sum(nil)))
	}
}

func TestTCPEchoKernelClient(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	startTCPEcho(t, lib, srv)
	c := dialTCPB(t, lab, srv)
	streamEcho(t, c, 8<<20, 1)
}

// TestTCPBulkBothWaysWithKernel: 100 MB from a kernel client to the libOS
// and back (the echo), SHA-256 equal.
func TestTCPBulkBothWaysWithKernel(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	startTCPEcho(t, lib, srv)
	c := dialTCPB(t, lab, srv)
	streamEcho(t, c, 100<<20, 2)
}

// libosStream drives a libOS TCP client: connect to srv, send n bytes
// (SHA-256 of them returned in sent), read until the peer closes (hash of
// what came back in got).
func libosStream(t testing.TB, lib *libos.LibOS, srv netip.AddrPort, n int, seed uint64) (sent, got []byte, received int) {
	t.Helper()
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.CloseQueue(qd)
	ct, err := lib.Connect(qd, srv)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(ct, 10*time.Second); err != nil || r.Opcode != libos.OpConnect {
		t.Fatalf("connect: %v %+v", err, r)
	}
	hs, hr := sha256.New(), sha256.New()
	rng := rand.New(rand.NewPCG(seed, 7))
	pop, _ := lib.Pop(qd)
	toks := []libos.QToken{pop}
	left, pushes, eof, shut := n, 0, false, false
	// The libOS makes progress only inside its calls: keep waiting until
	// the peer has closed and every push has been acknowledged.
	for !eof || pushes > 0 || left > 0 {
		// Keep up to 64 pushes of up to 16 segments in flight.
		for left > 0 && pushes < 64 {
			size := min(left, 16*lib.SegmentSize())
			sga, err := lib.SGAAlloc(size)
			if err != nil {
				break // ENOBUFS: wait for completions
			}
			for _, seg := range sga.Segs {
				for i := range seg {
					seg[i] = byte(rng.Uint32())
				}
				hs.Write(seg)
			}
			qt, err := lib.Push(qd, sga)
			lib.SGAFree(sga)
			if errors.Is(err, unix.EAGAIN) {
				t.Fatal("EAGAIN with a bounded number of pushes in flight")
			}
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			toks = append(toks, qt)
			pushes++
			left -= size
		}
		if left == 0 && !shut {
			if err := lib.Shutdown(qd); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			shut = true
		}
		i, r, err := lib.WaitAny(toks, 30*time.Second)
		if err != nil {
			t.Fatalf("wait: %v (%d left, %d pushes)", err, left, pushes)
		}
		toks = append(toks[:i], toks[i+1:]...)
		switch r.Opcode {
		case libos.OpPush:
			pushes--
		case libos.OpPop:
			if len(r.SGA.Segs) == 0 {
				eof = true
			}
			for _, seg := range r.SGA.Segs {
				hr.Write(seg)
				received += len(seg)
			}
			lib.SGAFree(r.SGA)
			if !eof {
				p, _ := lib.Pop(qd)
				toks = append(toks, p)
			}
		default:
			t.Fatalf("operation failed: %v", r.Err)
		}
	}
	return hs.Sum(nil), hr.Sum(nil), received
}

// kernelTCPServer accepts one connection in namespace B, hashes what it
// receives and answers with m bytes of its own, then closes.
func kernelTCPServer(t testing.TB, lab *vethlab.Lab, addr netip.AddrPort, m int, seed uint64) (done <-chan [2][]byte) {
	t.Helper()
	var ln *net.TCPListener
	if err := lab.RunInB(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan [2][]byte, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			out <- [2][]byte{}
			return
		}
		defer c.Close()
		hr, hs := sha256.New(), sha256.New()
		wdone := make(chan struct{})
		go func() {
			rng := rand.New(rand.NewPCG(seed, 9))
			buf := make([]byte, 64<<10)
			for left := m; left > 0; {
				k := min(left, len(buf))
				for i := range buf[:k] {
					buf[i] = byte(rng.Uint32())
				}
				hs.Write(buf[:k])
				if _, err := c.Write(buf[:k]); err != nil {
					break
				}
				left -= k
			}
			c.CloseWrite()
			close(wdone)
		}()
		io.Copy(hr, c)
		<-wdone
		out <- [2][]byte{hr.Sum(nil), hs.Sum(nil)}
	}()
	return out
}

// TestTCPLibOSClientKernelServer: the libOS connects to a kernel server and
// both send 100 MB; each side's SHA-256 matches the other's.
func TestTCPLibOSClientKernelServer(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrB.Addr(), 8080)
	done := kernelTCPServer(t, lab, srv, 100<<20, 3)
	sent, got, n := libosStream(t, lib, srv, 100<<20, 4)
	k := <-done
	if !bytes.Equal(k[0], sent) {
		t.Fatal("the kernel received different bytes than the libOS sent")
	}
	if n != 100<<20 || !bytes.Equal(k[1], got) {
		t.Fatalf("the libOS received %d bytes, hash equal %v", n, bytes.Equal(k[1], got))
	}
}
