package main

// Privileged integration tests: the real binary in namespace A of a veth
// lab, `kudp client` (kernel sockets) in namespace B as the peer.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
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

// kudpClient runs `kudp client` in namespace B and checks that every
// request came back intact.
func kudpClient(t *testing.T, lab *vethlab.Lab, remote string, n int, args ...string) map[string]float64 {
	t.Helper()
	args = append([]string{"client", "-remote", remote, "-n", strconv.Itoa(n), "-verify"}, args...)
	out, err := lab.CommandB(labtest.Build(t, "../kudp"), args...).Output()
	s := labtest.ParseFloats(string(out))
	t.Logf("kudp client %v: %s", args[3:], bytes.TrimSpace(out))
	if err != nil {
		t.Fatalf("kudp client: %v\n%s", err, out)
	}
	if s["received"] != float64(n) || s["lost"] != 0 || s["bad"] != 0 {
		t.Fatalf("kudp client: received %v lost %v bad %v of %d", s["received"], s["lost"], s["bad"], n)
	}
	return s
}

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// startEcho runs udp-echo in namespace A with args and waits for
// "listening".
func startEcho(t *testing.T, lab *vethlab.Lab, args ...string) *labtest.Proc {
	t.Helper()
	return labtest.Start(t, lab.CommandA(labtest.Build(t, "."), append([]string{"-iface", lab.IfA}, args...)...), "listening")
}

// checkCleanExit stops p with sig and checks the exit status, the printed
// counters and that no XDP program is left on IfA.
func checkCleanExit(t *testing.T, lab *vethlab.Lab, p *labtest.Proc, sig syscall.Signal, echoed uint64) map[string]uint64 {
	t.Helper()
	if !labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("no XDP program attached while udp-echo runs")
	}
	if err := p.Stop(t, sig, 5*time.Second); err != nil {
		t.Fatalf("exit after %v: %v\n%s", sig, err, p.Output())
	}
	out := p.Output()
	if !strings.Contains(out, "detached") {
		t.Errorf("output lacks \"detached\":\n%s", out)
	}
	k := labtest.Counters(out)
	if k["echo.echoed"] != echoed || k["queue.pops"] != echoed || k["echo.completed"] != echoed {
		t.Errorf("echoed %d, pops %d, completed %d, want %d", k["echo.echoed"], k["queue.pops"], k["echo.completed"], echoed)
	}
	for _, key := range []string{"libos.ownership_errors", "libos.bad_descs", "echo.push_refused", "echo.push_failed", "queue.udp.rx_queue_full", "libos.pool.double_frees"} {
		if v, ok := k[key]; !ok || v != 0 {
			t.Errorf("%s = %d (present %v), want 0", key, v, ok)
		}
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("XDP program still attached after a clean exit")
	}
	return k
}

func TestDedicatedEchoesEveryByteToKernelClient(t *testing.T) {
	priv.Require(t, "udp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ue"})
	a := lab.AddrA.Addr().String()
	p := startEcho(t, lab, "-addr", a+":7")
	out := p.Output()
	for _, want := range []string{a + ":7", "mode=dedicated", "xdp=copy"} {
		if !strings.Contains(out, want) {
			t.Errorf("listening line lacks %q:\n%s", want, out)
		}
	}
	const n = 100_000
	s := kudpClient(t, lab, a+":7", n, "-sizes", "1-1472", "-outstanding", "8")
	// A reply slower than the client's timeout (a busy machine) makes it
	// send that datagram again: the echo answers every datagram sent.
	sent := uint64(n + s["retransmits"])
	k := checkCleanExit(t, lab, p, syscall.SIGINT, sent)
	if k["libos.steering.redirected"] < sent || k["libos.stack.udp_delivered"] != sent {
		t.Errorf("steering redirected %d, stack delivered %d, want %d", k["libos.steering.redirected"], k["libos.stack.udp_delivered"], sent)
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
	labtest.KernelUDPEcho(t, lab, labtest.A, netip.AddrPortFrom(a, 7778))

	p := startEcho(t, lab, "-addr", a.String()+":7777", "-mode", "shared")
	if !strings.Contains(p.Output(), "mode=shared") {
		t.Errorf("listening line lacks mode=shared:\n%s", p.Output())
	}
	const n = 20_000
	sent := uint64(0) // datagrams the clients sent, retransmissions included
	for round := 0; round < 2; round++ {
		s := kudpClient(t, lab, a.String()+":7777", n/2, "-sizes", "1-1472", "-outstanding", "8")
		sent += uint64(n/2 + s["retransmits"])
		// The kernel's own UDP socket and ICMP on the shared address.
		kudpClient(t, lab, a.String()+":7778", 500, "-sizes", "1-1472", "-outstanding", "4")
		if err := icmpEcho(lab, a.AsSlice(), 0x5151, uint16(round)); err != nil {
			t.Fatalf("ping of the shared address while udp-echo runs: %v", err)
		}
	}
	k := checkCleanExit(t, lab, p, syscall.SIGTERM, sent)
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
		out, err := exec.Command(labtest.Build(t, "."), args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "udp-echo:") {
			t.Errorf("%v: err %v, output %q; want exit 1 with a message", args, err, out)
		}
	}
}

// TestCPUsPinsASingleQueue: -cpus pins the loop even when only one queue
// is served (it used to run on the main goroutine, unpinned): some thread
// of the process is allowed on that CPU alone, and the echo still works.
func TestCPUsPinsASingleQueue(t *testing.T) {
	priv.Require(t, "udp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "uc"})
	a := lab.AddrA.Addr().String()
	const cpu = "1"
	p := startEcho(t, lab, "-addr", a+":7", "-queues", "1", "-cpus", cpu)
	kudpClient(t, lab, a+":7", 1000)
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pinned := 0
	for _, task := range tasks {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", p.Cmd.Process.Pid, task.Name()))
		if err == nil && bytes.Contains(st, []byte("Cpus_allowed_list:\t"+cpu+"\n")) {
			pinned++
		}
	}
	if pinned != 1 {
		t.Errorf("%d of %d threads pinned to CPU %s, want the loop's alone", pinned, len(tasks), cpu)
	}
	checkCleanExit(t, lab, p, syscall.SIGINT, 1000)
}
