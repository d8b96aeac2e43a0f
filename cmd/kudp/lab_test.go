package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// goTool is the go command of the toolchain that built this test, or the one on PATH.
func goTool() string {
	//lint:ignore SA1019 the test binary runs where it was built, so GOROOT is meaningful
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err == nil {
		return g
	}
	return "go"
}

// TestEchoAndClientAcrossTheLab runs the real binaries: kudp echo in
// namespace A, kudp client in namespace B, over the kernel's UDP.
func TestEchoAndClientAcrossTheLab(t *testing.T) {
	priv.Require(t, "veth lab")
	bin := filepath.Join(t.TempDir(), "kudp")
	if out, err := exec.Command(goTool(), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	addr := lab.AddrA.Addr().String() + ":9000"

	echo := lab.CommandA(bin, "echo", "-addr", addr)
	stdout, err := echo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Process.Kill(); echo.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if !strings.Contains(l, "listening") {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("echo not listening")
	}

	out, err := lab.CommandB(bin, "client", "-remote", addr, "-n", "20000", "-sizes", "1-1472", "-outstanding", "16").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	s := string(out)
	t.Log(strings.TrimSpace(s))
	for _, want := range []string{"sent=20000 ", "received=20000 ", "lost=0 ", "bad=0 ", "rtt_p50_us=", "rtt_p99_us=", "rtt_p999_us=", "pps="} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q: %s", want, s)
		}
	}

	// Nobody listens on port 9001: every request is lost, exit status 1.
	out, err = lab.CommandB(bin, "client", "-remote", lab.AddrA.Addr().String()+":9001", "-n", "3", "-timeout", "20ms", "-retries", "1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "lost=3 ") {
		t.Errorf("client against a closed port: %v\n%s", err, out)
	}
	// ... unless -allow-loss permits it.
	if out, err = lab.CommandB(bin, "client", "-remote", lab.AddrA.Addr().String()+":9001", "-n", "3", "-timeout", "20ms", "-retries", "0", "-allow-loss", "3").CombinedOutput(); err != nil {
		t.Errorf("-allow-loss 3: %v\n%s", err, out)
	}

	if err := echo.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var tail []string
	for l := range lines {
		tail = append(tail, l)
	}
	if err := echo.Wait(); err != nil {
		t.Fatalf("echo exit after SIGINT: %v", err)
	}
	if len(tail) == 0 || !strings.Contains(tail[len(tail)-1], "received=20000 echoed=20000") {
		t.Errorf("echo counters: %q", tail)
	}
}
