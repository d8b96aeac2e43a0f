package main

// Privileged integration tests: tcp-bulk (a libOS in namespace B, on
// 198.51.100.3, an address the kernel in B does not have) streaming to the
// kernel's TCP sink (ktcp sink) in namespace A; both SHA-256 must agree.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

const clientAddr = "198.51.100.3"

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

func goTool() string {
	//lint:ignore SA1019 the test binary runs where it was built, so GOROOT is meaningful
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err == nil {
		return g
	}
	return "go"
}

func bin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "tcp-bulk-test-"); buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../ktcp"} {
			if out, err := exec.Command(goTool(), "build", "-o", binDir+"/", pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// sink runs `ktcp sink` in namespace A and returns a channel with its
// lines after "listening" (one per connection).
func sink(t *testing.T, lab *vethlab.Lab, addr string) <-chan string {
	t.Helper()
	cmd := lab.CommandA(bin(t, "ktcp"), "sink", "-addr", addr)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	lines := make(chan string, 16)
	listening := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "listening") {
				seen = true
				close(listening)
				continue
			}
			lines <- sc.Text()
		}
		cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("ktcp sink not listening")
	}
	return lines
}

// bulk runs tcp-bulk in namespace B and returns its summary fields and
// exit code.
func bulk(t *testing.T, lab *vethlab.Lab, remote string, args ...string) (map[string]string, int) {
	t.Helper()
	args = append([]string{"-iface", lab.IfB, "-local", clientAddr, "-remote", remote}, args...)
	cmd := lab.CommandB(bin(t, "tcp-bulk"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("tcp-bulk %v: exit %d: %s", args[6:], code, bytes.TrimSpace(out))
	if code != 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	return fields(string(out)), code
}

func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestBulkToKernelSink(t *testing.T) {
	priv.Require(t, "tcp-bulk on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tb", KernelAddrA: true})
	remote := lab.AddrA.Addr().String() + ":9"
	lines := sink(t, lab, remote)
	for _, c := range []struct {
		bytes, want string
		args        []string
	}{
		{"1", "1", nil},                                 // one byte, one segment
		{"1449", "1449", nil},                           // two segments
		{"100M", "104857600", nil},                      // many 16-segment pushes
		{"20M", "20971520", []string{"-inflight", "1"}}, // one push at a time
	} {
		s, code := bulk(t, lab, remote, append([]string{"-bytes", c.bytes}, c.args...)...)
		if code != 0 || s["bytes"] != c.want || len(s["sha256"]) != 64 || s["extra"] != "0" {
			t.Fatalf("-bytes %s: exit %d, %v", c.bytes, code, s)
		}
		var k map[string]string
		select {
		case l := <-lines:
			k = fields(l)
		case <-time.After(10 * time.Second):
			t.Fatal("no line from the sink")
		}
		if k["sha256"] != s["sha256"] || k["bytes"] != c.want {
			t.Fatalf("-bytes %s: the sink got %s bytes with SHA-256 %s; tcp-bulk sent %s with %s", c.bytes, k["bytes"], k["sha256"], s["bytes"], s["sha256"])
		}
		if allocs := s["loop_allocs"]; len(allocs) > 2 {
			t.Errorf("-bytes %s: loop_allocs=%s: the transfer allocates per push", c.bytes, allocs)
		}
	}
}

// TestRefusedIsASetupError: nothing listens on the port, the connect is
// refused and tcp-bulk exits 2.
func TestRefusedIsASetupError(t *testing.T) {
	priv.Require(t, "tcp-bulk on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tb", KernelAddrA: true})
	s, code := bulk(t, lab, lab.AddrA.Addr().String()+":10", "-bytes", "1M")
	if code != 2 || len(s) != 0 {
		t.Errorf("exit %d, summary %v; want exit 2 and no summary", code, s)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "1K": 1024, "100M": 100 << 20, "2G": 2 << 30} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1T", "M", "1.5M"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
