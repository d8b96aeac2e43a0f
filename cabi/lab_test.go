//go:build cgo

package main

// The C ABI tested from C: `make libdemi` builds the library and the C
// examples exactly as a user would, the C test programs in testdata/ are
// compiled with plain cc against include/ and -ldemikernel, and everything
// runs in the namespaces of a veth lab, against the Linux kernel (Go
// sockets in namespace B) and C to C across two libOS instances.

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := labtest.Main(m)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// goCmd is the go command that built the test, for make's GO.
func goCmd() string {
	//lint:ignore SA1019 the test binary runs where it was built, so GOROOT is meaningful
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err == nil {
		return g
	}
	return "go"
}

// root is the repository's top directory.
func root(t testing.TB) string {
	t.Helper()
	r, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// built runs `make libdemi` into a temporary BUILD directory once per test
// binary and compiles the C test programs of testdata/ against it. It
// returns the directory: libdemikernel.so, demikernel.pc, examples/ and
// the test programs.
func built(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Fatalf("no C compiler (make deps installs gcc): %v", err)
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "demixdp-cabi-"); buildErr != nil {
			return
		}
		cmd := exec.Command("make", "-C", root(t), "libdemi", "BUILD="+buildDir, "GO="+goCmd())
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make libdemi: %v\n%s", err, out)
			return
		}
		for _, p := range []struct{ name, std string }{{"errors", "-std=c99"}, {"layout", "-std=c99"}} {
			cmd := exec.Command("cc", p.std, "-pedantic", "-Wall", "-Wextra", "-Werror", "-I"+filepath.Join(root(t), "include"),
				"-o", filepath.Join(buildDir, p.name), filepath.Join("testdata", p.name+".c"),
				"-L"+buildDir, "-ldemikernel", "-pthread", "-Wl,-rpath,"+buildDir)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("cc %s.c: %v\n%s", p.name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// cEnv is the environment of a C program on the libOS: the process's, less
// any configuration it has, plus the variables given (KEY=VALUE).
func cEnv(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CONFIG_PATH", "LINUX_INTERFACE_NAME", "LOCAL_IPV4_ADDR", "LOCAL_LINK_ADDR", "MTU",
			"DEMIXDP_PREFIX", "DEMIXDP_GATEWAY", "DEMIXDP_MODE", "DEMIXDP_QUEUE", "NODELAY", "LINGER":
			continue
		}
		env = append(env, kv)
	}
	return append(env, vars...)
}

// libosEnv configures a C program's libOS on ifname with address ip.
func libosEnv(ifname string, ip netip.Addr) []string {
	return cEnv("LINUX_INTERFACE_NAME="+ifname, "LOCAL_IPV4_ADDR="+ip.String(), "LIBOS=catpowder")
}

// clientB is the address the C programs' libOS takes in namespace B (the
// kernel there has AddrB on the same interface).
var clientB = netip.MustParseAddr("198.51.100.3")

func TestLayoutFromGo(t *testing.T) {
	want := map[string]int{
		"sizeSGASeg": sizeSGASeg, "sizeSGA": sizeSGA, "offSGABuf": offSGABuf, "offSGANum": offSGANum,
		"offSegBuf": offSegBuf, "offSegLen": offSegLen, "offSGAAddr": offSGAAddr, "sizeAres": sizeAres,
		"offAresQD": offAresQD, "offAresAddr": offAresAddr, "sizeQR": sizeQR, "offQROp": offQROp,
		"offQRQD": offQRQD, "offQRQT": offQRQT, "offQRRet": offQRRet, "offQRValue": offQRValue,
		"sizeArgs": sizeArgs, "sizeSockaddr4": sizeSockaddr4,
	}
	got := layoutC()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: C says %d, Go uses %d", k, got[k], v)
		}
	}
	// Demikernel's numbers, independently of both.
	for k, v := range map[string]int{"sizeSGA": 40, "sizeQR": 64, "sizeAres": 20, "sizeArgs": 20, "sizeSGASeg": 12, "offQRValue": 24, "offSGAAddr": 24} {
		if got[k] != v {
			t.Errorf("%s = %d, Demikernel's is %d", k, got[k], v)
		}
	}
}

// TestHeadersCompile: every header compiles as C99 and as C++ with
// -Wall -Wextra -Werror -pedantic, and the static layout checks of
// testdata/layout.c hold (it builds and runs).
func TestHeadersCompile(t *testing.T) {
	dir := built(t)
	inc := "-I" + filepath.Join(root(t), "include")
	for _, std := range []string{"c++11", "c++17", "gnu++20"} {
		cmd := exec.Command("c++", "-std="+std, "-Wall", "-Wextra", "-Werror", "-pedantic", inc, "-fsyntax-only", "testdata/headers.cc")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("c++ -std=%s headers.cc: %v\n%s", std, err, out)
		}
	}
	src := filepath.Join(t.TempDir(), "all.c")
	os.WriteFile(src, []byte("#include <demi/libos.h>\n#include <demi/sga.h>\n#include <demi/wait.h>\n#include <demi/demixdp.h>\n"+
		"int main(void) { demi_sgarray_t s = demi_sgaalloc(1); return demi_sgafree(&s); }\n"), 0o644)
	for _, std := range []string{"c99", "c11", "gnu17"} {
		cmd := exec.Command("cc", "-std="+std, "-Wall", "-Wextra", "-Werror", "-pedantic", inc, "-fsyntax-only", src)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cc -std=%s: %v\n%s", std, err, out)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "layout")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "layout ok") {
		t.Errorf("layout: %v %s", err, out)
	}
}

// TestMakeInstall: make install PREFIX=... installs the library, the
// headers and a demikernel.pc with which pkg-config builds an example that
// needs libdemikernel.so; the .pc of the build directory works in place.
func TestMakeInstall(t *testing.T) {
	dir := built(t)
	prefix := t.TempDir()
	cmd := exec.Command("make", "-C", root(t), "install", "BUILD="+dir, "PREFIX="+prefix, "GO="+goCmd())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"lib/libdemikernel.so", "lib/pkgconfig/demikernel.pc", "include/demi/libos.h",
		"include/demi/sga.h", "include/demi/wait.h", "include/demi/types.h", "include/demi/cc.h"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	for _, pcdir := range []string{filepath.Join(prefix, "lib", "pkgconfig"), dir} {
		pc := exec.Command("pkg-config", "--cflags", "--libs", "demikernel")
		pc.Env = append(os.Environ(), "PKG_CONFIG_PATH="+pcdir)
		flags, err := pc.Output()
		if err != nil {
			t.Fatalf("pkg-config (%s): %v", pcdir, err)
		}
		bin := filepath.Join(t.TempDir(), "udp-ping-pong")
		args := append([]string{"-o", bin, filepath.Join(root(t), "examples", "c", "udp-ping-pong.c")}, strings.Fields(string(flags))...)
		if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
			t.Fatalf("cc with pkg-config's flags %q: %v\n%s", flags, err, out)
		}
		dyn, err := exec.Command("readelf", "-d", bin).Output()
		if err != nil || !bytes.Contains(dyn, []byte("[libdemikernel.so]")) {
			t.Errorf("%s does not need libdemikernel.so: %v\n%s", bin, err, dyn)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(prefix, "lib", "pkgconfig", "demikernel.pc")); !bytes.Contains(b, []byte("prefix="+prefix)) {
		t.Errorf("installed demikernel.pc does not name the prefix:\n%s", b)
	}
}

// tcpListenB listens on addr in namespace B and hands each accepted
// connection to serve on its own goroutine.
func tcpListenB(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort, serve func(int, *net.TCPConn)) {
	t.Helper()
	var ln *net.TCPListener
	if err := lab.RunInB(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(i, c) }()
		}
	}()
}

// TestCErrors runs testdata/errors.c: every call's documented errors,
// configuration errors before a successful demi_init, waits, timeouts,
// options, a refused connection, a 65,535-byte push the kernel peer checks
// byte for byte, and a SO_LINGER 0 close the peer sees as a reset.
func TestCErrors(t *testing.T) {
	priv.Require(t, "the C ABI on a veth lab")
	dir := built(t)
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ce"})
	listen := netip.AddrPortFrom(lab.AddrB.Addr(), 7300)
	results := make(chan string, 4)
	tcpListenB(t, lab, listen, func(i int, c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		switch i {
		case 0: // 65,535 bytes of a known pattern, then "ok", then close
			b := make([]byte, 65535)
			if _, err := io.ReadFull(c, b); err != nil {
				results <- fmt.Sprintf("conn 0: read: %v", err)
				return
			}
			for k := range b {
				if b[k] != byte(k*7+k>>8) {
					results <- fmt.Sprintf("conn 0: byte %d is %#x, want %#x", k, b[k], byte(k*7+k>>8))
					return
				}
			}
			c.Write([]byte("ok"))
			c.CloseWrite()
			n, err := io.Copy(io.Discard, c)
			results <- fmt.Sprintf("conn 0: ok, then %d bytes and %v", n, err)
		case 1: // closed with SO_LINGER 0: a reset
			_, err := io.Copy(io.Discard, c)
			if errors.Is(err, syscall.ECONNRESET) {
				results <- "conn 1: reset"
			} else {
				results <- fmt.Sprintf("conn 1: %v, want a reset", err)
			}
		default:
			results <- fmt.Sprintf("conn %d: unexpected", i)
		}
	})
	cfgDir := t.TempDir()
	good := filepath.Join(cfgDir, "config.yaml")
	bad := filepath.Join(cfgDir, "bad.yaml")
	os.WriteFile(good, fmt.Appendf(nil, `# a Demikernel configuration, as catpowder reads it
demikernel:
  local_ipv4_addr: %s
  local_link_addr: "%s"
raw_socket:
  linux_interface_name: "%s"
inetstack_config:
  mtu: 1500
  mss: 1450
  arp_table:
    "%s": "%s"
  arp_request_retries: 3
  arp_request_timeout: 1
  arp_cache_ttl: 600
  enable_jumbo_frames: false
tcp_socket_options:
  keepalive:
    enabled: false
  linger:
    enabled: false
  nodelay: false
dpdk:
  eal_init: ["-c", "0xff", "-n", "4"]
`, lab.AddrA.Addr(), lab.MACA, lab.IfA, lab.MACB, lab.AddrB.Addr()), 0o644)
	os.WriteFile(bad, []byte("demikernel: [local_ipv4_addr\n"), 0o644)
	cmd := lab.CommandA(filepath.Join(dir, "errors"), good, bad, lab.AddrB.Addr().String(), "7300", "7301")
	cmd.Env = cEnv()
	stdout, stderr, code := labtest.Run(t, cmd)
	t.Logf("errors.c:\n%s", stdout)
	if code != 0 || !bytes.Contains(stdout, []byte(" 0 failed")) {
		t.Errorf("errors.c exit %d:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"CONFIG_PATH", "bad.yaml", "dx-no-such-if", "mtu 9000"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		select {
		case r := <-results:
			got[r] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("the kernel peer saw %d of 2 connections end: %v", i, got)
		}
	}
	if !got["conn 0: ok, then 0 bytes and <nil>"] || !got["conn 1: reset"] {
		t.Errorf("kernel peer: %v", got)
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("an XDP program is still attached after the C program exited")
	}
}

// startC runs a C example as a server in namespace A and waits for its
// listening line.
func startC(t *testing.T, lab *vethlab.Lab, bin string, addr netip.AddrPort) *labtest.Proc {
	t.Helper()
	cmd := lab.CommandA(bin, "--server", addr.Addr().String(), fmt.Sprint(addr.Port()))
	cmd.Env = libosEnv(lab.IfA, addr.Addr())
	return labtest.Start(t, cmd, "listening")
}

// runC runs a C example as a client and returns its summary line's fields;
// it fails t unless the client exits 0.
func runC(t *testing.T, cmd *exec.Cmd) map[string]string {
	t.Helper()
	out, stderr, code := labtest.Run(t, cmd)
	t.Logf("%s: %s", filepath.Base(cmd.Args[len(cmd.Args)-1]), bytes.TrimSpace(out))
	if code != 0 {
		t.Fatalf("%v exit %d:\n%s\n%s", cmd.Args, code, out, stderr)
	}
	return labtest.ParseKV(string(out))
}

// stopC stops a C server with SIGINT and returns its output; it must exit
// 0 and leave no XDP program behind.
func stopC(t *testing.T, lab *vethlab.Lab, p *labtest.Proc) string {
	t.Helper()
	if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("server exit: %v\n%s", err, p.Output())
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("an XDP program is still attached after the C server exited")
	}
	return p.Output()
}

// TestCUDPExamples: the C UDP echo answers a kernel client byte for byte
// (datagrams of 1 to 1472 bytes) and the C client on a second libOS
// instance for 100,000 round trips; the C client is checked against a
// kernel echo too.
func TestCUDPExamples(t *testing.T) {
	priv.Require(t, "the C ABI on a veth lab")
	dir := built(t)
	bin := filepath.Join(dir, "examples", "udp-ping-pong")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "cu"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7000)
	p := startC(t, lab, bin, srv)

	// A kernel client in B.
	var c *net.UDPConn
	if err := lab.RunInB(func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(srv))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	req, resp := make([]byte, 1472), make([]byte, 2048)
	const kernelN = 2000
	for i := 0; i < kernelN; i++ {
		n := 1 + rng.IntN(1472)
		for k := range req[:n] {
			req[k] = byte(rng.Uint32())
		}
		if _, err := c.Write(req[:n]); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := c.Read(resp)
		if err != nil {
			t.Fatalf("datagram %d (%d bytes): %v", i, n, err)
		}
		if !bytes.Equal(resp[:m], req[:n]) {
			t.Fatalf("datagram %d: %d bytes back, not the %d sent", i, m, n)
		}
	}

	// The C client on its own libOS in B, 100,000 round trips.
	cl := lab.CommandB(bin, "--client", srv.Addr().String(), "7000", "64", "100000")
	cl.Env = libosEnv(lab.IfB, clientB)
	kv := runC(t, cl)
	if kv["n"] != "100000" || kv["bad"] != "0" {
		t.Errorf("C client: %v", kv)
	}
	out := stopC(t, lab, p)
	if !strings.Contains(out, fmt.Sprintf("echoed=%d", kernelN+100000)) {
		t.Errorf("server output:\n%s", out)
	}

	// The C client against a kernel echo in B (A's queue is free again).
	kecho := netip.AddrPortFrom(lab.AddrB.Addr(), 7001)
	labtest.KernelUDPEcho(t, lab, labtest.B, kecho)
	cl = lab.CommandA(bin, "--client", kecho.Addr().String(), "7001", "1472", "5000")
	cl.Env = libosEnv(lab.IfA, lab.AddrA.Addr())
	if kv := runC(t, cl); kv["n"] != "5000" || kv["bad"] != "0" {
		t.Errorf("C client against the kernel: %v", kv)
	}
}

// echoStream writes n pseudo-random bytes on c and reads them back,
// comparing SHA-256 of both directions.
func echoStream(c *net.TCPConn, n int, seed uint64) error {
	h1, h2 := sha256.New(), sha256.New()
	errc := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(seed, seed))
		buf := make([]byte, 32<<10)
		for left := n; left > 0; {
			m := min(left, len(buf))
			for i := range buf[:m] {
				buf[i] = byte(rng.Uint32())
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
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	got, err := io.Copy(h2, bufio.NewReader(c))
	if werr := <-errc; werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", got, err)
	}
	if got != int64(n) || !bytes.Equal(h1.Sum(nil), h2.Sum(nil)) {
		return fmt.Errorf("echoed %d bytes of %d, sha256 equal %v", got, n, bytes.Equal(h1.Sum(nil), h2.Sum(nil)))
	}
	return nil
}

// TestCTCPExamples: the C TCP echo serves four kernel connections at once
// (2 MB each, SHA-256 checked) and the C client on a second libOS instance
// for a 50 MB transfer each way in 65,535-byte messages, every byte
// checked; the C client is checked against a kernel echo too.
func TestCTCPExamples(t *testing.T) {
	priv.Require(t, "the C ABI on a veth lab")
	dir := built(t)
	bin := filepath.Join(dir, "examples", "tcp-ping-pong")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ct"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7100)
	p := startC(t, lab, bin, srv)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		var c *net.TCPConn
		if err := lab.RunInB(func() (err error) {
			c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(srv))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			errs <- echoStream(c, 2<<20, uint64(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("kernel client: %v", err)
		}
	}

	// 800 messages of 65,535 bytes: 52 MB each way.
	cl := lab.CommandB(bin, "--client", srv.Addr().String(), "7100", "65535", "800")
	cl.Env = libosEnv(lab.IfB, clientB)
	if kv := runC(t, cl); kv["n"] != "800" || kv["bad"] != "0" || kv["mbytes"] != "104.9" {
		t.Errorf("C client: %v", kv)
	}
	out := stopC(t, lab, p)
	if !strings.Contains(out, "connections=5") || !strings.Contains(out, fmt.Sprintf("echoed_bytes=%d", 4*(2<<20)+800*65535)) {
		t.Errorf("server output:\n%s", out)
	}

	// The C client against a kernel echo in B.
	kecho := netip.AddrPortFrom(lab.AddrB.Addr(), 7101)
	tcpListenB(t, lab, kecho, func(_ int, c *net.TCPConn) { io.Copy(c, c) })
	for _, size := range []string{"1", "1000", "65535"} {
		cl = lab.CommandA(bin, "--client", kecho.Addr().String(), "7101", size, "300")
		cl.Env = libosEnv(lab.IfA, lab.AddrA.Addr())
		if kv := runC(t, cl); kv["n"] != "300" || kv["bad"] != "0" {
			t.Errorf("C client (size %s) against the kernel: %v", size, kv)
		}
	}
}
