package main

// Privileged integration tests: the real http-hello binary in namespace A
// of a veth lab, curl and wrk (Debian's, installed by `make deps`) in
// namespace B as its clients.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

const port = 8080

// needTool fails (or skips without privileges) when a client that `make
// deps` installs is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if priv.Strict() {
			t.Fatalf("%s is not installed (make deps installs it)", name)
		}
		t.Skipf("%s is not installed (make deps installs it)", name)
	}
}

// startHello runs http-hello in namespace A and waits for "listening".
func startHello(t *testing.T, lab *vethlab.Lab, args ...string) (*labtest.Proc, string) {
	t.Helper()
	addr := netip.AddrPortFrom(lab.AddrA.Addr(), port).String()
	argv := append([]string{"-addr", addr}, args...)
	p := labtest.Start(t, lab.CommandA(labtest.Build(t, "."), argv...), "listening")
	return p, "http://" + addr
}

// stopHello signals p and checks a clean exit: status 0, "stopped", no
// XDP program left on IfA, no datapath errors in the counters.
func stopHello(t *testing.T, lab *vethlab.Lab, p *labtest.Proc, sig syscall.Signal, dxnet bool) {
	t.Helper()
	if dxnet && !labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("no XDP program attached while http-hello runs on dxnet")
	}
	if err := p.Stop(t, sig, 15*time.Second); err != nil {
		t.Fatalf("exit after %v: %v\n%s", sig, err, p.Output())
	}
	if !strings.Contains(p.Output(), "http-hello: stopped") {
		t.Errorf("output lacks \"stopped\":\n%s", p.Output())
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("XDP program still attached after a clean exit")
	}
	if dxnet {
		k := labtest.Counters(p.Output())
		for _, key := range []string{"libos.ownership_errors", "libos.bad_descs"} {
			if v, ok := k[key]; !ok || v != 0 {
				t.Errorf("%s = %d (present %v), want 0", key, v, ok)
			}
		}
	}
}

// curl runs curl in namespace B and returns its stdout.
func curl(t *testing.T, lab *vethlab.Lab, args ...string) []byte {
	t.Helper()
	out, stderr, code := labtest.Run(t, lab.CommandB("curl", append([]string{"-sS", "--max-time", "120"}, args...)...))
	if code != 0 {
		t.Fatalf("curl %v: exit %d: %s", args, code, stderr)
	}
	return out
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// TestCurl: curl against http-hello on dxnet: GET / is "hello\n"; a
// 10 MiB POST /echo comes back with the same SHA-256; GET /bytes/100 MiB
// is the pattern, byte for byte; 1,000 requests in one curl reuse one
// connection (keep-alive); a bad N is 400 and an unknown path 404; then
// SIGINT stops it cleanly.
func TestCurl(t *testing.T) {
	needTool(t, "curl")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "hh"})
	p, base := startHello(t, lab, "-iface", lab.IfA)
	dir := t.TempDir()

	if got := string(curl(t, lab, base+"/")); got != "hello\n" {
		t.Fatalf("GET /: %q", got)
	}

	body := make([]byte, 10<<20)
	rand.Read(body)
	in, out := filepath.Join(dir, "body"), filepath.Join(dir, "echo")
	os.WriteFile(in, body, 0o644)
	curl(t, lab, "-H", "Expect:", "--data-binary", "@"+in, "-o", out, base+"/echo")
	if got, want := fileSHA(t, out), sha(body); got != want {
		t.Fatalf("POST /echo of 10 MiB: sha256 %s, want %s", got, want)
	}
	// A body under net/http's 256 KiB discard threshold streams back whole
	// too (the handler runs full duplex).
	os.WriteFile(in, body[:100000], 0o644)
	curl(t, lab, "--data-binary", "@"+in, "-o", out, base+"/echo")
	if got, want := fileSHA(t, out), sha(body[:100000]); got != want {
		t.Fatalf("POST /echo of 100,000 bytes: sha256 %s, want %s", got, want)
	}

	const n = 100 << 20
	want := make([]byte, n)
	for i := range want {
		want[i] = Pattern(int64(i))
	}
	curl(t, lab, "-o", out, base+"/bytes/"+strconv.Itoa(n))
	if got := fileSHA(t, out); got != sha(want) {
		t.Fatalf("GET /bytes/%d: sha256 %s, want %s", n, got, sha(want))
	}
	if got := curl(t, lab, base+"/bytes/1000"); !bytes.Equal(got, want[:1000]) {
		t.Fatalf("GET /bytes/1000: %d bytes, not the pattern", len(got))
	}
	if got := curl(t, lab, base+"/bytes/0"); len(got) != 0 {
		t.Fatalf("GET /bytes/0: %d bytes", len(got))
	}
	for path, code := range map[string]string{"/bytes/-1": "400", "/bytes/1073741825": "400", "/bytes/x": "400", "/nothing": "404"} {
		if got := string(curl(t, lab, "-o", "/dev/null", "-w", "%{http_code}", base+path)); got != code {
			t.Errorf("GET %s: status %s, want %s", path, got, code)
		}
	}

	// Keep-alive: 1,000 URLs in one curl; num_connects is 1 for the first
	// transfer and 0 for every later one.
	cfg := filepath.Join(dir, "urls")
	var urls strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&urls, "url = \"%s/\"\n", base)
	}
	os.WriteFile(cfg, []byte(urls.String()), 0o644)
	got := string(curl(t, lab, "-K", cfg, "-w", "%{num_connects} %{http_code}\n"))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2000 {
		t.Fatalf("keep-alive run: %d lines, want 2000 (body and status of each)", len(lines))
	}
	connects := 0
	for i := 0; i < 2000; i += 2 {
		if lines[i] != "hello" {
			t.Fatalf("request %d: body %q", i/2, lines[i])
		}
		var nc int
		var code string
		fmt.Sscan(lines[i+1], &nc, &code)
		if code != "200" {
			t.Fatalf("request %d: status %s", i/2, code)
		}
		connects += nc
	}
	if connects != 1 {
		t.Fatalf("1,000 keep-alive requests made %d connections, want 1", connects)
	}
	stopHello(t, lab, p, syscall.SIGINT, true)
}

// TestWrk: wrk -t1 -c64 -d5s against http-hello on dxnet: requests get
// through with no socket error and no non-2xx response; SIGTERM stops it
// cleanly afterwards.
func TestWrk(t *testing.T) {
	needTool(t, "wrk")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "hw"})
	p, base := startHello(t, lab, "-iface", lab.IfA)
	out, stderr, code := labtest.Run(t, lab.CommandB("wrk", "-t1", "-c64", "-d5s", "--timeout", "10s", base+"/"))
	if code != 0 {
		t.Fatalf("wrk: exit %d: %s %s", code, out, stderr)
	}
	s := string(out)
	t.Logf("wrk:\n%s", s)
	if strings.Contains(s, "Socket errors") {
		t.Errorf("wrk saw socket errors")
	}
	if strings.Contains(s, "Non-2xx") {
		t.Errorf("wrk saw non-2xx responses")
	}
	m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no request count in wrk's output")
	}
	if n, _ := strconv.Atoi(m[1]); n < 64 {
		t.Fatalf("wrk completed %d requests", n)
	}
	stopHello(t, lab, p, syscall.SIGTERM, true)
}

// TestKernelListener: -kernel serves the same handler on the kernel's
// sockets (no XDP program) and stops the same way.
func TestKernelListener(t *testing.T) {
	needTool(t, "curl")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "hk", KernelAddrA: true})
	p, base := startHello(t, lab, "-kernel")
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Fatal("-kernel attached an XDP program")
	}
	if got := string(curl(t, lab, base+"/")); got != "hello\n" {
		t.Fatalf("GET /: %q", got)
	}
	if got := curl(t, lab, base+"/bytes/3000"); len(got) != 3000 || got[2999] != Pattern(2999) {
		t.Fatalf("GET /bytes/3000: %d bytes", len(got))
	}
	stopHello(t, lab, p, syscall.SIGINT, false)
}
