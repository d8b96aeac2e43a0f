package main

// Privileged integration tests: tcp-pingpong (a libOS in namespace B, on
// 198.51.100.3, an address the kernel in B does not have) against the
// kernel's TCP echo (ktcp echo) and against tcp-echo (a libOS) in A.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// clientAddr is the libOS client's address in B (the kernel in B has .2).
const clientAddr = "198.51.100.3"

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// pingpong runs tcp-pingpong in namespace B and returns its summary and
// exit code.
func pingpong(t *testing.T, lab *vethlab.Lab, remote string, args ...string) (map[string]float64, int) {
	t.Helper()
	args = append([]string{"-iface", lab.IfB, "-local", clientAddr, "-remote", remote}, args...)
	cmd := lab.CommandB(labtest.Build(t, "."), args...)
	out, stderr, code := labtest.Run(t, cmd)
	t.Logf("tcp-pingpong %v: exit %d: %s", args[6:], code, bytes.TrimSpace(out))
	if code == 2 {
		t.Fatalf("tcp-pingpong error:\n%s", stderr)
	}
	return labtest.ParseFloats(string(out)), code
}

// checkClean fails unless n round trips came back intact over conns
// connections, with (almost) no allocation in the loop.
func checkClean(t *testing.T, s map[string]float64, code, n, conns int) {
	t.Helper()
	if code != 0 || s["sent"] != float64(n) || s["received"] != float64(n) || s["bad"] != 0 || s["conns"] != float64(conns) {
		t.Fatalf("exit %d, sent %v received %v bad %v conns %v; want %d clean round trips over %d",
			code, s["sent"], s["received"], s["bad"], s["conns"], n, conns)
	}
	if s["loop_allocs"] > float64(n)/100 {
		t.Errorf("loop_allocs=%v for %d round trips: the loop allocates", s["loop_allocs"], n)
	}
	if s["rtt_p50_us"] <= 0 || s["rtt_p999_us"] < s["rtt_p50_us"] || s["rps"] <= 0 {
		t.Errorf("implausible measurement: %v", s)
	}
}

func TestAgainstKernelEcho(t *testing.T) {
	priv.Require(t, "tcp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tp", KernelAddrA: true})
	remote := lab.AddrA.Addr().String() + ":7"
	labtest.Start(t, lab.CommandA(labtest.Build(t, "../ktcp"), "echo", "-addr", remote), "listening")
	for _, c := range []struct{ size, conns int }{{1, 1}, {64, 8}, {3000, 4}, {20000, 2}} {
		const n = 2000
		s, code := pingpong(t, lab, remote, "-n", strconv.Itoa(n), "-size", strconv.Itoa(c.size), "-conns", strconv.Itoa(c.conns))
		checkClean(t, s, code, n, c.conns)
	}
}

func TestAgainstTCPEcho(t *testing.T) {
	priv.Require(t, "tcp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tp"})
	remote := lab.AddrA.Addr().String() + ":7"
	echo := labtest.Start(t, lab.CommandA(labtest.Build(t, "../tcp-echo"), "-iface", lab.IfA, "-addr", remote), "listening")
	runs := []struct{ size, conns int }{{64, 1}, {64, 16}, {1448, 4}, {10000, 2}}
	for _, c := range runs {
		const n = 3000
		s, code := pingpong(t, lab, remote, "-n", strconv.Itoa(n), "-size", strconv.Itoa(c.size), "-conns", strconv.Itoa(c.conns), "-warmup", "5")
		checkClean(t, s, code, n, c.conns)
	}
	err := echo.Stop(t, syscall.SIGINT, 30*time.Second)
	conns := 0
	for _, c := range runs {
		conns += c.conns
	}
	// tcp-pingpong shuts every connection down and waits for the server's
	// close: tcp-echo saw each one end cleanly.
	want := fmt.Sprintf("accepted=%d closed=%d failed=0 aborted=0", conns, conns)
	if err != nil || !strings.Contains(echo.Output(), want) {
		t.Errorf("tcp-echo: exit %v, want %q:\n%s", err, want, echo.Output())
	}
}

// TestCorruptReplyIsBad: a kernel echo in A that flips a bit in every 10th
// reply makes tcp-pingpong count bad replies and exit 1.
func TestCorruptReplyIsBad(t *testing.T) {
	priv.Require(t, "tcp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tp", KernelAddrA: true})
	remote := lab.AddrA.Addr().String() + ":7"
	stop := corruptingEcho(t, lab, remote, 100, 10)
	defer stop()
	s, code := pingpong(t, lab, remote, "-n", "100", "-size", "100", "-warmup", "0")
	if code != 1 || s["bad"] != 10 || s["received"] != 100 {
		t.Errorf("exit %d bad %v received %v; want exit 1, 10 bad, 100 received", code, s["bad"], s["received"])
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-local", "198.51.100.3", "-remote", "198.51.100.1:7"},                                     // no -iface
		{"-iface", "dx-none", "-local", "nope", "-remote", "198.51.100.1:7"},                        // bad local
		{"-iface", "dx-none", "-local", "198.51.100.3", "-remote", "198.51.100.1"},                  // no port
		{"-iface", "dx-none", "-local", "198.51.100.3", "-remote", "198.51.100.1:7", "-conns", "0"}, // no conns
		{"-iface", "dx-none", "-local", "198.51.100.3", "-remote", "198.51.100.1:7", "-size", "0"},  // no size
		{"-iface", "dx-no-such-if", "-local", "198.51.100.3", "-remote", "198.51.100.1:7"},          // no interface
	} {
		out, err := exec.Command(labtest.Build(t, "."), args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "tcp-pingpong:") {
			t.Errorf("%v: err %v, output %q; want exit 2 with a message", args, err, out)
		}
	}
}
