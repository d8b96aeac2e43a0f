package main

// Privileged integration tests: udp-pingpong (a libOS in namespace B, on
// 198.51.100.3, an address the kernel in B does not have) against the
// kernel's UDP echo and against udp-echo (a libOS) in namespace A.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
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

// pingpong runs udp-pingpong in namespace B and returns its summary and
// exit code.
func pingpong(t *testing.T, lab *vethlab.Lab, remote string, args ...string) (map[string]float64, int) {
	t.Helper()
	args = append([]string{"-iface", lab.IfB, "-local", clientAddr + ":9000", "-remote", remote}, args...)
	cmd := lab.CommandB(labtest.Build(t, "."), args...)
	out, stderr, code := labtest.Run(t, cmd)
	t.Logf("udp-pingpong %v: exit %d: %s", args[6:], code, bytes.TrimSpace(out))
	if code == 2 {
		t.Fatalf("udp-pingpong setup error:\n%s", stderr)
	}
	return labtest.ParseFloats(string(out)), code
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
	labtest.Start(t, lab.CommandA(labtest.Build(t, "../kudp"), "echo", "-addr", remote), "listening")
	for _, size := range []int{1, 64, 1472} {
		const n = 5000
		// A reply is lost only if it never comes: a busy machine may
		// delay one by far more than the default second.
		s, code := pingpong(t, lab, remote, "-n", strconv.Itoa(n), "-size", strconv.Itoa(size), "-timeout", "10s")
		checkClean(t, s, code, n)
	}
}

func TestAgainstUDPEcho(t *testing.T) {
	priv.Require(t, "udp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "up"})
	remote := lab.AddrA.Addr().String() + ":7"
	echo := labtest.Start(t, lab.CommandA(labtest.Build(t, "../udp-echo"), "-iface", lab.IfA, "-addr", remote, "-spin", "1ms"), "listening")
	total := 0
	for _, size := range []int{1, 7, 8, 64, 1472} {
		const n = 5000
		s, code := pingpong(t, lab, remote, "-n", strconv.Itoa(n), "-size", strconv.Itoa(size), "-warmup", "10", "-timeout", "10s")
		checkClean(t, s, code, n)
		total += n + 10
	}
	err := echo.Stop(t, syscall.SIGINT, 30*time.Second)
	if err != nil || !strings.Contains(echo.Output(), fmt.Sprintf("echoed=%d ", total)) {
		t.Errorf("udp-echo: exit %v, want echoed=%d:\n%s", err, total, echo.Output())
	}
}

func TestLossIsReportedAndFailsTheRun(t *testing.T) {
	priv.Require(t, "udp-pingpong on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "up"})
	a := lab.AddrA.Addr().String()
	labtest.Start(t, lab.CommandA(labtest.Build(t, "../udp-echo"), "-iface", lab.IfA, "-addr", a+":7"), "listening")
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
	// A kernel echo in A that, for every 10th datagram, first sends a copy
	// with one bit flipped and then the right reply: each request gets its
	// answer at once, so no count depends on how long anything takes.
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
				srv.WriteToUDP(buf[:n], from)
				buf[n-1] ^= 0x10
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()
	s, code := pingpong(t, lab, a.String()+":7", "-n", "100", "-warmup", "0", "-size", "100", "-timeout", "10s")
	if code != 1 || s["bad"] != 10 || s["received"] != 100 || s["lost"] != 0 {
		t.Errorf("exit %d bad %v received %v lost %v; want exit 1, 10 bad, 100 received, none lost", code, s["bad"], s["received"], s["lost"])
	}
}
