package main

// Privileged integration tests: the real tcp-echo binary in namespace A of
// a veth lab, kernel TCP sockets in namespace B as its clients.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// startEcho runs tcp-echo in namespace A with args and waits for
// "listening".
func startEcho(t *testing.T, lab *vethlab.Lab, args ...string) *labtest.Proc {
	t.Helper()
	return labtest.Start(t, lab.CommandA(labtest.Build(t, "."), append([]string{"-iface", lab.IfA}, args...)...), "listening")
}

// stopEcho signals p, checks a clean exit (status 0, "detached", no XDP
// program left on IfA) and returns the printed counters.
func stopEcho(t *testing.T, lab *vethlab.Lab, p *labtest.Proc, sig syscall.Signal) map[string]uint64 {
	t.Helper()
	if !labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("no XDP program attached while tcp-echo runs")
	}
	if err := p.Stop(t, sig, 5*time.Second); err != nil {
		t.Fatalf("exit after %v: %v", sig, err)
	}
	if !strings.Contains(p.Output(), "tcp-echo: detached") {
		t.Errorf("output lacks \"detached\"")
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("XDP program still attached after a clean exit")
	}
	k := labtest.Counters(p.Output())
	for _, key := range []string{"libos.ownership_errors", "libos.bad_descs", "libos.pool.double_frees", "echo.push_refused", "echo.failed"} {
		if v, ok := k[key]; !ok || v != 0 {
			t.Errorf("%s = %d (present %v), want 0", key, v, ok)
		}
	}
	return k
}

// dial opens a kernel TCP connection from namespace B.
func dial(lab *vethlab.Lab, to netip.AddrPort) (*net.TCPConn, error) {
	var c *net.TCPConn
	err := lab.RunInB(func() (err error) {
		c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(to))
		return err
	})
	return c, err
}

// echoThrough sends n pseudo-random bytes on c in writes of up to chunk,
// half-closes, reads the echo to the server's close and checks it: same
// length, same SHA-256.
func echoThrough(c *net.TCPConn, n, chunk int, seed uint64) error {
	hs, hr := sha256.New(), sha256.New()
	werr := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(seed, 5))
		buf := make([]byte, chunk)
		for left := n; left > 0; {
			m := min(left, chunk)
			for i := range buf[:m] {
				buf[i] = byte(rng.Uint32())
			}
			hs.Write(buf[:m])
			if _, err := c.Write(buf[:m]); err != nil {
				werr <- err
				return
			}
			left -= m
		}
		werr <- c.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(40 * time.Second))
	got, err := io.Copy(hr, c)
	if err != nil {
		return fmt.Errorf("reading the echo after %d of %d bytes: %w", got, n, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if got != int64(n) || !bytes.Equal(hs.Sum(nil), hr.Sum(nil)) {
		return fmt.Errorf("echoed %d of %d bytes, SHA-256 equal %v", got, n, bytes.Equal(hs.Sum(nil), hr.Sum(nil)))
	}
	return nil
}

// TestManyKernelClientsAndA50MBStream: 200 kernel connections at once, each
// echoing 4 KB, beside one 50 MB stream; every byte checked (SHA-256), every
// connection closed by the server after the client's FIN; then SIGINT.
func TestManyKernelClientsAndA50MBStream(t *testing.T) {
	priv.Require(t, "tcp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "te"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	// Few frames, so that pushes meet EAGAIN (frames running low) and the
	// held-SGA path carries part of the load.
	p := startEcho(t, lab, "-addr", srv.String(), "-frames", "2048")
	if out := p.Output(); !strings.Contains(out, srv.String()) || !strings.Contains(out, "mode=dedicated") {
		t.Errorf("listening line lacks the address or the mode:\n%s", out)
	}
	const conns, each, big = 200, 4096, 50 << 20
	cs := make([]*net.TCPConn, conns)
	for i := range cs {
		c, err := dial(lab, srv)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		cs[i] = c
	}
	bc, err := dial(lab, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	errs := make(chan error, conns+1)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoThrough(c, each, 1000, uint64(i)); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := echoThrough(bc, big, 64<<10, 999); err != nil {
			errs <- fmt.Errorf("50 MB stream: %w", err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	k := stopEcho(t, lab, p, syscall.SIGINT)
	if k["echo.accepted"] != conns+1 || k["echo.closed"] != conns+1 || k["echo.aborted"] != 0 {
		t.Errorf("accepted %d closed %d aborted %d, want %d, %d, 0", k["echo.accepted"], k["echo.closed"], k["echo.aborted"], conns+1, conns+1)
	}
	if want := uint64(conns*each + big); k["echo.bytes"] != want || k["echo.completed"] != k["echo.pushes"] {
		t.Errorf("echoed %d bytes (want %d), pushes %d completed %d", k["echo.bytes"], want, k["echo.pushes"], k["echo.completed"])
	}
	t.Logf("push_eagain=%d rcv_pressure_drops=%d max_active=%d", k["echo.push_eagain"], k["libos.tcp.rcv_pressure_drops"], k["echo.max_active"])
	if k["echo.max_active"] < conns/2 {
		t.Errorf("max_active=%d: the connections were not served concurrently", k["echo.max_active"])
	}
}

// TestSharedModeLeavesKernelTCPAlone: tcp-echo on the kernel's own address
// (shared mode) while a kernel TCP echo on another port of that address,
// and the libOS's echo, both keep working; SIGTERM exits cleanly.
func TestSharedModeLeavesKernelTCPAlone(t *testing.T) {
	priv.Require(t, "tcp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "te", KernelAddrA: true})
	a := lab.AddrA.Addr()
	var ln *net.TCPListener
	if err := lab.RunInA(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 8080)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.CloseWrite()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	p := startEcho(t, lab, "-addr", a.String()+":7", "-mode", "shared")
	if !strings.Contains(p.Output(), "mode=shared") {
		t.Errorf("listening line lacks mode=shared:\n%s", p.Output())
	}
	for round := 0; round < 2; round++ {
		for _, port := range []uint16{7, 8080} {
			for i := 0; i < 5; i++ {
				c, err := dial(lab, netip.AddrPortFrom(a, port))
				if err != nil {
					t.Fatalf("port %d: %v", port, err)
				}
				err = echoThrough(c, 256<<10, 16<<10, uint64(round*100+i))
				c.Close()
				if err != nil {
					t.Fatalf("port %d round %d: %v", port, round, err)
				}
			}
		}
	}
	k := stopEcho(t, lab, p, syscall.SIGTERM)
	if k["echo.accepted"] != 10 || k["echo.closed"] != 10 {
		t.Errorf("accepted %d closed %d, want 10 each (port 8080 stays with the kernel)", k["echo.accepted"], k["echo.closed"])
	}
	if k["libos.steering.passed"] == 0 {
		t.Error("steering passed nothing to the kernel")
	}
	// The kernel's port still works after the libOS has gone.
	c, err := dial(lab, netip.AddrPortFrom(a, 8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoThrough(c, 64<<10, 4096, 7); err != nil {
		t.Fatalf("kernel echo after tcp-echo exited: %v", err)
	}
}

// TestAbortedAtExit: connections still open at SIGINT are closed and
// counted as aborted; the exit is still clean.
func TestAbortedAtExit(t *testing.T) {
	priv.Require(t, "tcp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "te"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	p := startEcho(t, lab, "-addr", srv.String())
	c, err := dial(lab, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	k := stopEcho(t, lab, p, syscall.SIGINT)
	if k["echo.aborted"] != 1 || k["echo.accepted"] != 1 || k["echo.closed"] != 0 {
		t.Errorf("aborted %d accepted %d closed %d, want 1, 1, 0", k["echo.aborted"], k["echo.accepted"], k["echo.closed"])
	}
	// The client sees the close (the FIN went out before the libOS closed).
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(got); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the server closed: %d bytes, %v; want EOF or ECONNRESET", n, err)
	}
}

func TestFlagErrorsExitOne(t *testing.T) {
	// Only interfaces that do not exist: nothing is ever opened.
	for _, args := range [][]string{
		{"-addr", "198.51.100.1:7"},                                             // no -iface
		{"-iface", "dx-none", "-addr", "198.51.100.1"},                          // no port
		{"-iface", "dx-none", "-addr", "198.51.100.1:0"},                        // port 0
		{"-iface", "dx-none", "-addr", "198.51.100.1:7", "-mode", "bogus"},      // bad mode
		{"-iface", "dx-none", "-addr", "198.51.100.1:7", "-backlog", "0"},       // bad backlog
		{"-iface", "dx-no-such-if", "-addr", "198.51.100.1:7", "-prefix", "24"}, // no interface
	} {
		out, err := exec.Command(labtest.Build(t, "."), args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "tcp-echo:") {
			t.Errorf("%v: err %v, output %q; want exit 1 with a message", args, err, out)
		}
	}
}
