package main

// Privileged integration tests: the real binary in namespace A of a veth
// lab, `kudp client` (kernel sockets) in namespace B as the peer.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
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

// bin builds udp-echo and kudp once per test binary run and returns the
// path of the named one.
func bin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "udp-echo-test-"); buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../kudp"} {
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

// proc is a running server whose output the test can read.
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

// startEcho runs udp-echo in namespace A with args and waits for
// "listening".
func startEcho(t *testing.T, lab *vethlab.Lab, args ...string) *proc {
	t.Helper()
	cmd := lab.CommandA(bin(t, "udp-echo"), append([]string{"-iface", lab.IfA}, args...)...)
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
			t.Logf("udp-echo output:\n%s", p.output())
		}
	})
	select {
	case <-listening:
	case <-p.done:
		t.Fatalf("udp-echo exited before listening (%v):\n%s", p.err, p.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("udp-echo not listening after 20s:\n%s", p.output())
	}
	return p
}

// stop sends sig and waits for the exit status.
func (p *proc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(5 * time.Second):
		t.Fatalf("udp-echo still running 5s after %v:\n%s", sig, p.output())
		return nil
	}
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
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				m[group+"."+k] = n
			}
		}
	}
	return m
}

// summary parses a kudp client summary line.
func summary(line string) map[string]float64 {
	m := map[string]float64{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = x
		}
	}
	return m
}

// kudpClient runs `kudp client` in namespace B and checks that every
// request came back intact.
func kudpClient(t *testing.T, lab *vethlab.Lab, remote string, n int, args ...string) map[string]float64 {
	t.Helper()
	args = append([]string{"client", "-remote", remote, "-n", strconv.Itoa(n), "-verify"}, args...)
	out, err := lab.CommandB(bin(t, "kudp"), args...).Output()
	s := summary(string(out))
	t.Logf("kudp client %v: %s", args[3:], bytes.TrimSpace(out))
	if err != nil {
		t.Fatalf("kudp client: %v\n%s", err, out)
	}
	if s["received"] != float64(n) || s["lost"] != 0 || s["bad"] != 0 {
		t.Fatalf("kudp client: received %v lost %v bad %v of %d", s["received"], s["lost"], s["bad"], n)
	}
	return s
}

// xdpAttached reports whether an XDP program is attached to IfA.
func xdpAttached(t *testing.T, lab *vethlab.Lab) bool {
	t.Helper()
	var attached bool
	err := lab.RunInA(func() error {
		l, err := netlink.LinkByIndex(lab.IndexA)
		if err != nil {
			return err
		}
		x := l.Attrs().Xdp
		attached = x != nil && x.Attached
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return attached
}

// checkCleanExit stops p with sig and checks the exit status, the printed
// counters and that no XDP program is left on IfA.
func checkCleanExit(t *testing.T, lab *vethlab.Lab, p *proc, sig syscall.Signal, echoed uint64) map[string]uint64 {
	t.Helper()
	if !xdpAttached(t, lab) {
		t.Error("no XDP program attached while udp-echo runs")
	}
	if err := p.stop(t, sig); err != nil {
		t.Fatalf("exit after %v: %v\n%s", sig, err, p.output())
	}
	out := p.output()
	if !strings.Contains(out, "detached") {
		t.Errorf("output lacks \"detached\":\n%s", out)
	}
	k := counters(out)
	if k["echo.echoed"] != echoed || k["queue.pops"] != echoed || k["echo.completed"] != echoed {
		t.Errorf("echoed %d, pops %d, completed %d, want %d", k["echo.echoed"], k["queue.pops"], k["echo.completed"], echoed)
	}
	for _, key := range []string{"libos.ownership_errors", "libos.bad_descs", "echo.push_refused", "echo.push_failed", "queue.udp.rx_queue_full", "libos.pool.double_frees"} {
		if v, ok := k[key]; !ok || v != 0 {
			t.Errorf("%s = %d (present %v), want 0", key, v, ok)
		}
	}
	if xdpAttached(t, lab) {
		t.Error("XDP program still attached after a clean exit")
	}
	return k
}

func TestDedicatedEchoesEveryByteToKernelClient(t *testing.T) {
	priv.Require(t, "udp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ue"})
	a := lab.AddrA.Addr().String()
	p := startEcho(t, lab, "-addr", a+":7")
	out := p.output()
	for _, want := range []string{a + ":7", "mode=dedicated", "xdp=copy"} {
		if !strings.Contains(out, want) {
			t.Errorf("listening line lacks %q:\n%s", want, out)
		}
	}
	const n = 100_000
	kudpClient(t, lab, a+":7", n, "-sizes", "1-1472", "-outstanding", "8")
	k := checkCleanExit(t, lab, p, syscall.SIGINT, n)
	if k["libos.steering.redirected"] < n || k["libos.stack.udp_delivered"] != n {
		t.Errorf("steering redirected %d, stack delivered %d, want %d", k["libos.steering.redirected"], k["libos.stack.udp_delivered"], n)
	}
}

// icmpEcho sends one ICMP echo request from namespace B to dst over a raw
// socket and waits for the matching reply.
func icmpEcho(lab *vethlab.Lab, dst net.IP, id, seq uint16) error {
	var c net.PacketConn
	if err := lab.RunInB(func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	req := make([]byte, 8+24)
	req[0] = 8 // echo request
	binary.BigEndian.PutUint16(req[4:], id)
	binary.BigEndian.PutUint16(req[6:], seq)
	for i := 8; i < len(req); i++ {
		req[i] = byte(i * 3)
	}
	var sum uint32
	for i := 0; i < len(req); i += 2 {
		sum += uint32(req[i])<<8 | uint32(req[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(req[2:], ^uint16(sum))
	if _, err := c.WriteTo(req, &net.IPAddr{IP: dst}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(3 * time.Second)
	for {
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no echo reply from %v: %w", dst, err)
		}
		r := buf[:n]
		if n >= 8 && r[0] == 0 && binary.BigEndian.Uint16(r[4:]) == id && binary.BigEndian.Uint16(r[6:]) == seq {
			if !bytes.Equal(r[8:], req[8:]) {
				return fmt.Errorf("echo reply from %v with other data", dst)
			}
			return nil
		}
	}
}

func TestSharedEchoLeavesKernelTrafficAlone(t *testing.T) {
	priv.Require(t, "udp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ue", KernelAddrA: true})
	a := lab.AddrA.Addr()

	// A kernel UDP echo on another port of the same address in A.
	var srv *net.UDPConn
	if err := lab.RunInA(func() (err error) {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: a.AsSlice(), Port: 7778})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()

	p := startEcho(t, lab, "-addr", a.String()+":7777", "-mode", "shared")
	if !strings.Contains(p.output(), "mode=shared") {
		t.Errorf("listening line lacks mode=shared:\n%s", p.output())
	}
	const n = 20_000
	for round := 0; round < 2; round++ {
		kudpClient(t, lab, a.String()+":7777", n/2, "-sizes", "1-1472", "-outstanding", "8")
		// The kernel's own UDP socket and ICMP on the shared address.
		kudpClient(t, lab, a.String()+":7778", 500, "-sizes", "1-1472", "-outstanding", "4")
		if err := icmpEcho(lab, a.AsSlice(), 0x5151, uint16(round)); err != nil {
			t.Fatalf("ping of the shared address while udp-echo runs: %v", err)
		}
	}
	k := checkCleanExit(t, lab, p, syscall.SIGTERM, n)
	// ARP, ICMP and port 7778 stayed with the kernel.
	if k["libos.stack.icmp_echo_replies"] != 0 || k["libos.stack.udp_no_port"] != 0 || k["libos.steering.passed"] == 0 {
		t.Errorf("kernel traffic reached the libOS: icmp_echo_replies=%d udp_no_port=%d steering passed=%d",
			k["libos.stack.icmp_echo_replies"], k["libos.stack.udp_no_port"], k["libos.steering.passed"])
	}
}

func TestFlagErrorsExitOne(t *testing.T) {
	// Only interfaces that do not exist: nothing is ever opened.
	for _, args := range [][]string{
		{"-addr", "198.51.100.1:7"},                                             // no -iface
		{"-iface", "dx-none", "-addr", "198.51.100.1"},                          // no port
		{"-iface", "dx-none", "-addr", "198.51.100.1:7", "-mode", "bogus"},      // bad mode
		{"-iface", "dx-none", "-addr", "198.51.100.1:7", "-pops", "0"},          // bad pops
		{"-iface", "dx-no-such-if", "-addr", "198.51.100.1:7", "-prefix", "24"}, // no interface
	} {
		out, err := exec.Command(bin(t, "udp-echo"), args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "udp-echo:") {
			t.Errorf("%v: err %v, output %q; want exit 1 with a message", args, err, out)
		}
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"RxDescs": "rx_descs", "ICMPEchoReplies": "icmp_echo_replies", "UDP": "udp",
		"OwnershipErrors": "ownership_errors", "RxFillRingEmptyDescs": "rx_fill_ring_empty_descs",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
