package dxnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/libos"
)

// checkOpError checks that err is a *net.OpError with op and that
// errors.Is(err, target) holds.
func checkOpError(t *testing.T, what string, err error, op string, target error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("%s: %T %v, want a *net.OpError", what, err, err)
	}
	if oe.Op != op {
		t.Errorf("%s: Op %q, want %q (%v)", what, oe.Op, op, err)
	}
	if !errors.Is(err, target) {
		t.Errorf("%s: %v does not satisfy errors.Is(err, %v)", what, err, target)
	}
}

// dialPair connects a dxnet client (stack st, in A) to a kernel listener
// in B and returns both ends.
func dialPair(t *testing.T, lab interface {
	RunInB(func() error) error
}, st *dxnet.Stack, ln *net.TCPListener) (*dxnet.TCPConn, *net.TCPConn) {
	t.Helper()
	acc := make(chan *net.TCPConn, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	c, err := st.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	k := within(t, "kernel accept", acc)
	if k == nil {
		t.Fatal("kernel accept failed")
	}
	t.Cleanup(func() { c.Close(); k.Close() })
	return c.(*dxnet.TCPConn), k
}

// TestReset: a peer that resets (kernel SO_LINGER 0 and close) makes Read
// fail with an error satisfying errors.Is(err, syscall.ECONNRESET), after
// the data that came before it; a Write then fails too.
func TestReset(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	c, k := dialPair(t, lab, st, kernelListen(t, lab, 7200))
	if _, err := k.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, 10)
	if err != nil || string(buf[:n]) != "last words" {
		t.Fatalf("read before the reset: %q %v", buf[:n], err)
	}
	k.SetLinger(0)
	k.Close()
	_, err = c.Read(buf)
	checkOpError(t, "Read after RST", err, "read", syscall.ECONNRESET)
	_, err = c.Write([]byte("anyone?"))
	if err == nil {
		t.Fatal("Write on a reset connection succeeded")
	}
	checkOpError(t, "Write after RST", err, "write", syscall.ECONNRESET)
}

// TestDeadlines: a read deadline set while Read waits (past, or cleared)
// takes effect on the waiting Read; an expired deadline gives
// os.ErrDeadlineExceeded with Timeout() true and loses no data; a write
// deadline stops a Write the peer does not drain, which then reports
// exactly the bytes it queued: the peer receives those and nothing more.
func TestDeadlines(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	c, k := dialPair(t, lab, st, kernelListen(t, lab, 7201))
	buf := make([]byte, 64)

	// A waiting Read obeys a deadline moved into the past.
	c.SetReadDeadline(time.Now().Add(time.Hour))
	res := run(func() error { _, err := c.Read(buf); return err })
	waitUntil(t, "the Read to wait", c.ReadWaiting)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	err := within(t, "read with a deadline moved to the past", res)
	checkOpError(t, "Read past its deadline", err, "read", os.ErrDeadlineExceeded)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("deadline error %v: Timeout() is not true", err)
	}

	// A cleared deadline lets a waiting Read go on until data comes.
	c.SetReadDeadline(time.Now().Add(time.Hour))
	got := make(chan string, 1)
	res = run(func() error {
		n, err := c.Read(buf)
		got <- string(buf[:n])
		return err
	})
	waitUntil(t, "the Read to wait", c.ReadWaiting)
	c.SetReadDeadline(time.Time{})
	k.Write([]byte("after clearing"))
	if err := within(t, "read after clearing the deadline", res); err != nil {
		t.Fatalf("Read after the deadline was cleared: %v", err)
	}
	if s := <-got; s != "after clearing" {
		t.Fatalf("Read got %q", s)
	}

	// A deadline that expires while Read waits; the data sent after it
	// is still there for the next Read.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(buf)
	checkOpError(t, "Read with a short deadline", err, "read", os.ErrDeadlineExceeded)
	k.Write([]byte("not lost"))
	c.SetReadDeadline(time.Time{})
	if n, err := io.ReadFull(c, buf[:8]); err != nil || string(buf[:n]) != "not lost" {
		t.Fatalf("Read after a timeout: %q %v", buf[:n], err)
	}

	// Write deadline: the kernel peer does not read, so buffers fill and
	// Write waits until its deadline.
	want := pattern(64<<20, 7)
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := c.Write(want)
	checkOpError(t, "Write past its deadline", err, "write", os.ErrDeadlineExceeded)
	if n <= 0 || n >= len(want) {
		t.Fatalf("Write returned %d of %d bytes", n, len(want))
	}
	c.SetWriteDeadline(time.Time{})
	// The peer gets exactly the n bytes Write reported, then our FIN.
	c.CloseWrite()
	all, err := io.ReadAll(k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, want[:n]) {
		t.Fatalf("the peer received %d bytes, Write reported %d (prefix equal: %v)", len(all), n, bytes.HasPrefix(want, all))
	}
}

// TestCloseUnblocks: Close of a connection makes its waiting Read and
// Write (stuck on a peer that does not read) return net.ErrClosed; Close
// of a listener does the same to Accept; closing twice only reports it.
func TestCloseUnblocks(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	c, _ := dialPair(t, lab, st, kernelListen(t, lab, 7202))
	reading := run(func() error { _, err := c.Read(make([]byte, 10)); return err })
	writing := run(func() error {
		big := make([]byte, 1<<20)
		for {
			if _, err := c.Write(big); err != nil {
				return err
			}
		}
	})
	ln, err := st.Listen("tcp", ":7203")
	if err != nil {
		t.Fatal(err)
	}
	accepting := run(func() error { _, err := ln.Accept(); return err })
	waitUntil(t, "the Read to wait", c.ReadWaiting)
	waitUntil(t, "a Write to wait", c.WriteWaiting)
	waitUntil(t, "the Accept to wait", ln.(*dxnet.TCPListener).AcceptWaiting)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	checkOpError(t, "blocked Read", within(t, "read", reading), "read", net.ErrClosed)
	checkOpError(t, "blocked Write", within(t, "write", writing), "write", net.ErrClosed)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	checkOpError(t, "blocked Accept", within(t, "accept", accepting), "accept", net.ErrClosed)
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second listener Close: %v, want net.ErrClosed", err)
	}
	_, err = c.Read(make([]byte, 1))
	checkOpError(t, "Read after Close", err, "read", net.ErrClosed)
	_, err = c.Write([]byte{1})
	checkOpError(t, "Write after Close", err, "write", net.ErrClosed)
}

// TestStackClose: Stack.Close ends every waiting call of every connection,
// listener and UDP socket with net.ErrClosed, leaves no goroutine and no
// XDP program (openStack's and noLeaks's cleanups check), and may be
// called again.
func TestStackClose(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	c, _ := dialPair(t, lab, st, kernelListen(t, lab, 7204))
	ln, err := st.Listen("tcp", ":7205")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := st.ListenPacket("udp", ":7206")
	if err != nil {
		t.Fatal(err)
	}
	calls := []<-chan error{
		run(func() error { _, err := c.Read(make([]byte, 10)); return err }),
		run(func() error {
			for {
				if _, err := c.Write(make([]byte, 1<<20)); err != nil {
					return err
				}
			}
		}),
		run(func() error { _, err := ln.Accept(); return err }),
		run(func() error { _, _, err := pc.ReadFrom(make([]byte, 10)); return err }),
	}
	waitUntil(t, "the Read to wait", c.ReadWaiting)
	waitUntil(t, "a Write to wait", c.WriteWaiting)
	waitUntil(t, "the Accept to wait", ln.(*dxnet.TCPListener).AcceptWaiting)
	waitUntil(t, "the ReadFrom to wait", pc.(*dxnet.UDPConn).ReadWaiting)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for i, ch := range calls {
		if err := within(t, "blocked call", ch); !errors.Is(err, net.ErrClosed) {
			t.Errorf("call %d after Stack.Close: %v, want net.ErrClosed", i, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Stack.Close: %v", err)
	}
	if _, err := st.Dial("tcp", "198.51.100.2:7204"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Stack.Close: %v", err)
	}
	if _, err := st.Listen("tcp", ":7207"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen after Stack.Close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Stack.Close: %v", err)
	}
	c.Close()
	ln.Close()
	pc.Close()
}

// TestDialErrors: a refused connect, bad networks and addresses, and a
// context cancelled or expired while the connect is in progress (to an
// address nobody answers ARP for, with ARP retrying for minutes) all come
// back as *net.OpError with Op "dial"; the abandoned socket is closed.
func TestDialErrors(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, func(c *libos.Config) {
		c.ARP.Retries = 1000
		c.ARP.RetryInterval = 100 * time.Millisecond
	})
	_, err := st.Dial("tcp", netip.AddrPortFrom(lab.AddrB.Addr(), 7299).String())
	checkOpError(t, "dial to a closed port", err, "dial", syscall.ECONNREFUSED)

	for _, bad := range []struct{ nw, addr string }{
		{"tcp6", "198.51.100.2:80"}, {"unix", "/tmp/x"}, {"tcp", "example.com:80"},
		{"tcp", "[2001:db8::1]:80"}, {"tcp", "198.51.100.2"}, {"udp", ":80"},
	} {
		if _, err := st.Dial(bad.nw, bad.addr); err == nil {
			t.Errorf("Dial(%q, %q) succeeded", bad.nw, bad.addr)
		} else if oe, ok := err.(*net.OpError); !ok || oe.Op != "dial" {
			t.Errorf("Dial(%q, %q): %v, want a *net.OpError", bad.nw, bad.addr, err)
		}
	}

	nobody := "198.51.100.77:80"
	ctx, cancel := context.WithCancel(context.Background())
	res := run(func() error { _, err := st.DialContext(ctx, "tcp", nobody); return err })
	time.Sleep(50 * time.Millisecond)
	cancel()
	checkOpError(t, "cancelled dial", within(t, "cancelled dial", res), "dial", context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = st.DialContext(ctx, "tcp", nobody)
	checkOpError(t, "dial past its context's deadline", err, "dial", context.DeadlineExceeded)

	// The stack is still fine.
	kernelEcho(t, kernelListen(t, lab, 7298))
	c, err := st.Dial("tcp4", netip.AddrPortFrom(lab.AddrB.Addr(), 7298).String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo after the failed dials: %q %v", buf, err)
	}
	c.Close()
}

// TestListenErrors: a port in use, an address that is not the stack's and
// a bad network.
func TestListenErrors(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln, err := st.Listen("tcp", "0.0.0.0:7300")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = st.Listen("tcp", ":7300")
	checkOpError(t, "port in use", err, "listen", syscall.EADDRINUSE)
	_, err = st.Listen("tcp", "198.51.100.99:7301")
	checkOpError(t, "foreign address", err, "listen", syscall.EADDRNOTAVAIL)
	if _, err := st.Listen("udp", ":7302"); err == nil {
		t.Fatal(`Listen("udp") succeeded`)
	}
	// Port 0 picks one, with or without the unspecified address.
	for _, a := range []string{":0", "0.0.0.0:0", lab.AddrA.Addr().String() + ":0"} {
		l2, err := st.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		if ta, ok := l2.Addr().(*net.TCPAddr); !ok || ta.Port == 0 {
			t.Fatalf("Listen(%q) is on %v", a, l2.Addr())
		}
		l2.Close()
		pc, err := st.ListenPacket("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		if ua, ok := pc.LocalAddr().(*net.UDPAddr); !ok || ua.Port == 0 {
			t.Fatalf("ListenPacket(%q) is on %v", a, pc.LocalAddr())
		}
		pc.Close()
	}
}

// TestManyConnections: 200 kernel clients at once, each echoing 20 KB
// through a dxnet server, then 300 connections opened and closed one after
// the other (descriptors reused): every byte checked, and no libOS result
// ever reaches the wrong socket.
func TestManyConnections(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln, err := st.Listen("tcp", ":7400")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7400).String()
	client := func(i int, size int) error {
		var c net.Conn
		if err := lab.RunInB(func() (err error) {
			c, err = net.DialTimeout("tcp4", srv, 10*time.Second)
			return err
		}); err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(hang))
		want := pattern(size, uint64(i))
		errc := make(chan error, 1)
		go func() { _, err := c.Write(want); c.(*net.TCPConn).CloseWrite(); errc <- err }()
		got, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if err := <-errc; err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return errors.New("echo differs")
		}
		return nil
	}
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		go func() { errs <- client(i, 20000) }()
	}
	for i := 0; i < 200; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent client: %v", err)
		}
	}
	for i := 0; i < 300; i++ {
		if err := client(1000+i, 100+i); err != nil {
			t.Fatalf("sequential client %d: %v", i, err)
		}
	}
	if n := st.Stray(); n != 0 {
		t.Fatalf("%d libOS results reached no socket", n)
	}
}

// TestSocketOptions: the options reach the libOS (SetLinger(0) makes Close
// reset the connection, which the kernel peer reads as ECONNRESET); the
// others leave a working connection; all fail with net.ErrClosed after
// Close.
func TestSocketOptions(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	c, k := dialPair(t, lab, st, kernelListen(t, lab, 7500))
	for name, err := range map[string]error{
		"SetNoDelay(false)":      c.SetNoDelay(false),
		"SetNoDelay(true)":       c.SetNoDelay(true),
		"SetKeepAlive(true)":     c.SetKeepAlive(true),
		"SetKeepAlivePeriod(1s)": c.SetKeepAlivePeriod(time.Second),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c.Write([]byte("still works"))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(k, buf); err != nil || string(buf) != "still works" {
		t.Fatalf("after the options: %q %v", buf, err)
	}
	if err := c.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	k.SetReadDeadline(time.Now().Add(hang))
	if _, err := k.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read after Close with linger 0: %v, want ECONNRESET", err)
	}
	for name, err := range map[string]error{
		"SetNoDelay": c.SetNoDelay(true), "SetKeepAlive": c.SetKeepAlive(true),
		"SetLinger": c.SetLinger(1), "CloseWrite": c.CloseWrite(),
	} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
		}
	}
}
