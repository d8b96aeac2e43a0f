package main

// Privileged integration tests: the real tcp-echo binary in namespace A of
// a veth lab, kernel TCP sockets in namespace B as its clients.

import (
	"bufio"
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
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// goTool is the go command of the toolchain that built this test, or the
// one on PATH.
func goTool() string {
	//lint:ignore SA1019 the test binary runs where it was built, so GOROOT is meaningful
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err == nil {
		return g
	}
	return "go"
}

// bin builds tcp-echo once per test binary run and returns its path.
func bin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "tcp-echo-test-"); buildErr != nil {
			return
		}
		out, err := exec.Command(goTool(), "build", "-o", binDir+"/", ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "tcp-echo")
}

// proc is a running tcp-echo whose output the test can read.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error // exit status, valid after done
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startEcho runs tcp-echo in namespace A with args and waits for
// "listening".
func startEcho(t *testing.T, lab *vethlab.Lab, args ...string) *proc {
	t.Helper()
	cmd := lab.CommandA(bin(t), append([]string{"-iface", lab.IfA}, args...)...)
	p := &proc{cmd: cmd, done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !seen && strings.Contains(sc.Text(), "listening") {
				seen = true
				close(listening)
			}
		}
		pr.Close()
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("tcp-echo output:\n%s", p.output())
		}
	})
	select {
	case <-listening:
	case <-p.done:
		t.Fatalf("tcp-echo exited before listening (%v):\n%s", p.err, p.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("tcp-echo not listening after 20s:\n%s", p.output())
	}
	return p
}

// counters parses the "group: key=value ..." lines into "group.key".
func counters(out string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		group, rest, ok := strings.Cut(line, ": ")
		if !ok || strings.Contains(group, " ") {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(f, "="); ok {
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					m[group+"."+k] = n
				}
			}
		}
	}
	return m
}

// xdpAttached reports whether an XDP program is attached to IfA.
func xdpAttached(t *testing.T, lab *vethlab.Lab) bool {
	t.Helper()
	var attached bool
	if err := lab.RunInA(func() error {
		l, err := netlink.LinkByIndex(lab.IndexA)
		if err != nil {
			return err
		}
		attached = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return attached
}

// stopEcho signals p, checks a clean exit (status 0, "detached", no XDP
// program left on IfA) and returns the printed counters.
func stopEcho(t *testing.T, lab *vethlab.Lab, p *proc, sig syscall.Signal) map[string]uint64 {
	t.Helper()
	if !xdpAttached(t, lab) {
		t.Error("no XDP program attached while tcp-echo runs")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("tcp-echo still running 5s after %v", sig)
	}
	if p.err != nil {
		t.Fatalf("exit after %v: %v", sig, p.err)
	}
	if !strings.Contains(p.output(), "tcp-echo: detached") {
		t.Errorf("output lacks \"detached\"")
	}
	if xdpAttached(t, lab) {
		t.Error("XDP program still attached after a clean exit")
	}
	k := counters(p.output())
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
	if out := p.output(); !strings.Contains(out, srv.String()) || !strings.Contains(out, "mode=dedicated") {
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
	t.Logf("push_eagain=%d push_backpressure=%d max_active=%d", k["echo.push_eagain"], k["libos.push_backpressure"], k["echo.max_active"])
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
	if !strings.Contains(p.output(), "mode=shared") {
		t.Errorf("listening line lacks mode=shared:\n%s", p.output())
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
		out, err := exec.Command(bin(t), args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "tcp-echo:") {
			t.Errorf("%v: err %v, output %q; want exit 1 with a message", args, err, out)
		}
	}
}
