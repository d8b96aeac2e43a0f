package main

// Privileged integration tests: udp-pingpong (a libOS in namespace B, on
// 198.51.100.3, an address the kernel in B does not have) against the
// kernel's UDP echo and against udp-echo (a libOS) in namespace A.

import (
	"bufio"
	"bytes"
	"fmt"
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

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// clientAddr is the libOS client's address in B (the kernel in B has .2).
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

// bin builds udp-pingpong, udp-echo and kudp once per test binary run and
// returns the path of the named one.
func bin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "udp-pingpong-test-"); buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../udp-echo", "../kudp"} {
			out, err := exec.Command(goTool(), "build", "-o", binDir+"/", pkg).CombinedOutput()
			if err != nil {
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

// server is a process in namespace A that prints "listening" when ready.
type server struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// startServer runs cmd and waits for "listening"; cleanup kills it.
func startServer(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	s := &server{cmd: cmd, done: make(chan struct{})}
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
		seen := false
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if !seen && strings.Contains(sc.Text(), "listening") {
				seen = true
				close(listening)
			}
		}
		pr.Close()
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-s.done
			}
		}
		if t.Failed() {
			t.Logf("server output:\n%s", s.output())
		}
	})
	select {
	case <-listening:
	case <-s.done:
		t.Fatalf("server exited before listening (%v):\n%s", s.err, s.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("server not listening after 20s:\n%s", s.output())
	}
	return s
}

// pingpong runs udp-pingpong in namespace B and returns its summary and
// exit code.
func pingpong(t *testing.T, lab *vethlab.Lab, remote string, args ...string) (map[string]float64, int) {
	t.Helper()
	args = append([]string{"-iface", lab.IfB, "-local", clientAddr + ":9000", "-remote", remote}, args...)
	cmd := lab.CommandB(bin(t, "udp-pingpong"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("udp-pingpong %v: exit %d: %s", args[6:], code, bytes.TrimSpace(out))
	if code == 2 {
		t.Fatalf("udp-pingpong setup error:\n%s", stderr.String())
	}
	m := map[string]float64{}
	for _, f := range strings.Fields(string(out)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				m[k] = x
			}
		}
	}
	return m, code
}

// checkClean fails unless a run of n round trips got every reply intact
// and allocated (almost) nothing in its loop.
func checkClean(t *testing.T, s map[string]float64, code, n int) {
	t.Helper()
	if code != 0 || s["sent"] != float64(n) || s["received"] != float64(n) || s["lost"] != 0 || s["bad"] != 0 || s["warmup_lost"] != 0 {
		t.Fatalf("exit %d, sent %v received %v lost %v bad %v warmup_lost %v; want %d clean round trips",
			code, s["sent"], s["received"], s["lost"], s["bad"], s["warmup_lost"], n)
	}
	if s["loop_allocs"] > float64(n)/100 {
		t.Errorf("loop_allocs=%v for %d round trips: the loop allocates", s["loop_allocs"], n)
	}
	if s["rtt_p50_us"] <= 0 || s["pps"] <= 0 {
		t.Errorf("no latency or rate measured: %v", s)
	}
}

func TestAgainstKernelEcho(t *testing.T) {
	priv.Require(t, "udp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "up", KernelAddrA: true})
	remote := lab.AddrA.Addr().String() + ":7"
	startServer(t, lab.CommandA(bin(t, "kudp"), "echo", "-addr", remote))
	for _, size := range []int{1, 64, 1472} {
		const n = 5000
		s, code := pingpong(t, lab, remote, "-n", strconv.Itoa(n), "-size", strconv.Itoa(size))
		checkClean(t, s, code, n)
	}
}

func TestAgainstUDPEcho(t *testing.T) {
	priv.Require(t, "udp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "up"})
	remote := lab.AddrA.Addr().String() + ":7"
	echo := startServer(t, lab.CommandA(bin(t, "udp-echo"), "-iface", lab.IfA, "-addr", remote, "-spin", "1ms"))
	total := 0
	for _, size := range []int{1, 7, 8, 64, 1472} {
		const n = 5000
		s, code := pingpong(t, lab, remote, "-n", strconv.Itoa(n), "-size", strconv.Itoa(size), "-warmup", "10")
		checkClean(t, s, code, n)
		total += n + 10
	}
	echo.cmd.Process.Signal(syscall.SIGINT)
	<-echo.done
	if echo.err != nil || !strings.Contains(echo.output(), fmt.Sprintf("echoed=%d ", total)) {
		t.Errorf("udp-echo: exit %v, want echoed=%d:\n%s", echo.err, total, echo.output())
	}
}

func TestLossIsReportedAndFailsTheRun(t *testing.T) {
	priv.Require(t, "udp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "up"})
	a := lab.AddrA.Addr().String()
	startServer(t, lab.CommandA(bin(t, "udp-echo"), "-iface", lab.IfA, "-addr", a+":7"))
	// Nobody is bound to port 8: every request is lost.
	s, code := pingpong(t, lab, a+":8", "-n", "3", "-warmup", "0", "-timeout", "100ms")
	if code != 1 || s["lost"] != 3 || s["received"] != 0 {
		t.Errorf("exit %d lost %v received %v; want exit 1 and 3 lost", code, s["lost"], s["received"])
	}
	s, code = pingpong(t, lab, a+":8", "-n", "3", "-warmup", "0", "-timeout", "100ms", "-allow-loss", "3")
	if code != 0 || s["lost"] != 3 {
		t.Errorf("with -allow-loss 3: exit %d lost %v; want exit 0 and 3 lost", code, s["lost"])
	}
}

func TestCorruptReplyIsBad(t *testing.T) {
	priv.Require(t, "udp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "up", KernelAddrA: true})
	a := lab.AddrA.Addr()
	// A kernel echo in A that flips one bit of every 10th datagram.
	var srv *net.UDPConn
	if err := lab.RunInA(func() (err error) {
		srv, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 7)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for i := 0; ; i++ {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if i%10 == 9 {
				buf[n-1] ^= 0x10
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()
	s, code := pingpong(t, lab, a.String()+":7", "-n", "100", "-warmup", "0", "-size", "100", "-timeout", "50ms", "-allow-loss", "100")
	if code != 1 || s["bad"] != 10 || s["received"] != 90 {
		t.Errorf("exit %d bad %v received %v; want exit 1, 10 bad, 90 received", code, s["bad"], s["received"])
	}
}
