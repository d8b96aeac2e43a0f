package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/demixdp/demixdp/internal/bpffs"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// doctorIn runs `demixdp doctor args...` in namespace A.
func doctorIn(t *testing.T, lab *vethlab.Lab, args ...string) (string, int) {
	t.Helper()
	out, stderr, code := labtest.Run(t, lab.CommandA(labtest.Build(t, "."), append([]string{"doctor", "-iface", lab.IfA}, args...)...))
	t.Logf("doctor %v (exit %d):\n%s%s", args, code, out, stderr)
	return string(out), code
}

// linkState is `ip -d link show` of IfA without what traffic changes.
func linkState(t *testing.T, lab *vethlab.Lab) string {
	t.Helper()
	out, err := lab.CommandA("ip", "-d", "link", "show", "dev", lab.IfA).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func lineOf(out, check string) string {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.HasPrefix(strings.TrimSpace(l[min(len(l), 6):]), check) {
			return l
		}
	}
	return ""
}

// On a lab veth: native XDP yes, zero-copy no, so doctor exits 0 and
// explains copy mode; it leaves the interface as it found it, and a libOS
// can take the queue right after.
func TestDoctorOnVeth(t *testing.T) {
	priv.Require(t, "demixdp doctor on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "doc"})
	before := linkState(t, lab)
	offBefore, _, err := lab.GetOffloads()
	if err != nil {
		t.Fatal(err)
	}
	out, code := doctorIn(t, lab)
	if code != 0 {
		t.Fatalf("doctor exit %d on a veth, want 0", code)
	}
	for check, want := range map[string]string{
		"kernel":      "ok",
		"af_xdp":      "ok",
		"interface":   "ok",
		"driver":      "warn",
		"native xdp":  "ok",
		"zero-copy":   "warn",
		"need_wakeup": "ok",
		"shared umem": "ok",
		"xdp program": "ok",
		"mtu":         "ok",
		"rss":         "ok",
	} {
		l := lineOf(out, check)
		if !strings.HasPrefix(l, want+" ") {
			t.Errorf("check %q: line %q, want status %s", check, l, want)
		}
	}
	if l := lineOf(out, "zero-copy"); !strings.Contains(l, "copy mode") || !strings.Contains(l, "refused zero-copy") {
		t.Errorf("zero-copy line does not explain copy mode: %q", l)
	}
	if strings.Contains(out, "\nfail ") || !strings.Contains(out, lab.IfA+" can run the demixdp libOS on queue 0.") {
		t.Errorf("verdict:\n%s", out)
	}
	if after := linkState(t, lab); after != before {
		t.Errorf("doctor changed the interface:\nbefore %s\nafter  %s", before, after)
	}
	if offAfter, _, _ := lab.GetOffloads(); offAfter != offBefore {
		t.Errorf("doctor changed offloads: %+v -> %+v", offBefore, offAfter)
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("doctor left an XDP program attached")
	}

	// -json: the same report for machines.
	js, code := doctorIn(t, lab, "-json")
	var r report
	if err := json.Unmarshal([]byte(js), &r); err != nil || code != 0 || !r.Usable || r.Interface != lab.IfA {
		t.Fatalf("-json: exit %d, %v, %+v", code, err, r)
	}
	statuses := map[string]string{}
	for _, c := range r.Checks {
		statuses[c.Name] = c.Status
	}
	if statuses["native xdp"] != "ok" || statuses["zero-copy"] != "warn" || len(r.Checks) < 15 {
		t.Errorf("-json checks %v", statuses)
	}

	// The queue is free: a libOS opens on it (New retries while the kernel
	// releases the probe's socket).
	if err := lab.RunInA(func() error {
		lib, err := libos.New(libos.Config{Interface: lab.IfA, Addr: lab.AddrA})
		if err == nil {
			lib.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("libos.New after doctor: %v", err)
	}
}

// A foreign XDP program makes doctor exit 1 naming the program and the
// process that holds it (this test, through a bpf_link); no probe runs.
func TestDoctorForeignProgram(t *testing.T) {
	priv.Require(t, "demixdp doctor on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "docf"})
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "dxforeign", Type: ebpf.XDP, License: "MIT", Instructions: passInsns})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	var l link.Link
	if err := lab.RunInA(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: lab.IndexA})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, code := doctorIn(t, lab)
	if code != 1 {
		t.Fatalf("doctor exit %d with a foreign program, want 1", code)
	}
	line := lineOf(out, "xdp program")
	for _, want := range []string{"fail", `name "dxforeign"`, "native mode", fmt.Sprintf("pid %d", os.Getpid()), "bpf_link"} {
		if !strings.Contains(line, want) {
			t.Errorf("xdp program line lacks %q: %q", want, line)
		}
	}
	if !strings.Contains(lineOf(out, "zero-copy")+lineOf(out, "af_xdp bind"), "not probed") {
		t.Errorf("probes ran beside an attached program:\n%s", out)
	}

	// A missing interface is a fail too.
	o, _, code := labtest.Run(t, lab.CommandA(labtest.Build(t, "."), "doctor", "-iface", "dxnosuch0"))
	if code != 1 || !strings.Contains(string(o), "not found in this network namespace") {
		t.Errorf("missing interface: exit %d\n%s", code, o)
	}
}

var statLine = regexp.MustCompile(`(?m)^\s+0\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)

// statTotals returns the redirected totals of queue 0 in stat's output.
func statTotals(t *testing.T, out string) []uint64 {
	t.Helper()
	var tot []uint64
	for _, m := range statLine.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseUint(m[4], 10, 64)
		tot = append(tot, v)
	}
	return tot
}

// demixdp stat reads a running udp-echo's steering counters from its pins
// (in a bpf file system the test mounts: inside ip netns exec,
// /sys/fs/bpf is not one); doctor names the running libOS; the pins go
// with a clean exit, stay stale after SIGKILL (stat says so) and are
// replaced by the next start.
func TestStatReadsARunningLibOS(t *testing.T) {
	priv.Require(t, "demixdp stat on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "stat"})
	root := bpffs.ForTest(t)
	echo := labtest.Build(t, "../udp-echo")
	kudp := labtest.Build(t, "../kudp")
	demixdp := labtest.Build(t, ".")
	addr := lab.AddrA.Addr().String() + ":7"
	start := func() *labtest.Proc {
		return labtest.Start(t, lab.CommandA(echo, "-iface", lab.IfA, "-addr", addr, "-pin-dir", root), "listening")
	}
	stat := func(args ...string) (string, string, int) {
		out, stderr, code := labtest.Run(t, lab.CommandA(demixdp, append([]string{"stat", "-iface", lab.IfA, "-pin-dir", root}, args...)...))
		t.Logf("stat %v (exit %d):\n%s%s", args, code, out, stderr)
		return string(out), stderr, code
	}
	p := start()

	// A few datagrams first, so queue 0 has counted frames when stat
	// takes its first reading; then stat while 20,000 go through.
	if out, err := exec.Command("ip", "netns", "exec", lab.NSB, kudp, "client", "-remote", addr, "-n", "10", "-verify").CombinedOutput(); err != nil {
		t.Fatalf("kudp client: %v\n%s", err, out)
	}
	const n = 20000
	traffic := exec.Command("ip", "netns", "exec", lab.NSB, kudp, "client", "-remote", addr, "-n", strconv.Itoa(n), "-outstanding", "8", "-verify")
	if err := traffic.Start(); err != nil {
		t.Fatal(err)
	}
	out, _, code := stat("-interval", "100ms", "-count", "3")
	if err := traffic.Wait(); err != nil {
		t.Fatalf("kudp client: %v", err)
	}
	if code != 0 || !strings.Contains(out, "addresses "+lab.AddrA.Addr().String()) || !strings.Contains(out, "redirected/s") {
		t.Fatalf("stat exit %d:\n%s", code, out)
	}
	tot := statTotals(t, out)
	if len(tot) != 3 || tot[0] > tot[1] || tot[1] > tot[2] {
		t.Errorf("queue 0 redirected totals %v, want 3 non-decreasing", tot)
	}
	out, _, _ = stat("-interval", "50ms", "-count", "1")
	if tot := statTotals(t, out); len(tot) != 1 || tot[0] < n+10 {
		t.Errorf("after the traffic: queue 0 redirected %v, want >= %d", tot, n)
	}

	// doctor sees the libOS, and who runs it.
	dout, code := doctorIn(t, lab)
	if l := lineOf(dout, "xdp program"); code != 1 || !strings.Contains(l, "a demixdp libOS runs on this interface") ||
		!strings.Contains(l, "(udp-echo, bpf_link)") {
		t.Errorf("doctor beside udp-echo: exit %d, %q", code, l)
	}

	if err := p.Stop(t, syscall.SIGINT, 5*time.Second); err != nil {
		t.Fatalf("udp-echo exit: %v", err)
	}
	k := labtest.Counters(p.Output())
	if got := statTotals(t, out); len(got) == 1 && got[0] > k["libos.steering.redirected"] {
		t.Errorf("stat read %d redirected, more than the libOS's final %d", got[0], k["libos.steering.redirected"])
	}
	if _, stderr, code := stat("-count", "1"); code != 1 || !strings.Contains(stderr, "no libOS pins") {
		t.Errorf("stat after a clean exit: exit %d, %q", code, stderr)
	}

	// A crash leaves stale pins; stat tells, the next start replaces them.
	p = start()
	if err := p.Stop(t, syscall.SIGKILL, 5*time.Second); err == nil {
		t.Fatal("udp-echo exited 0 after SIGKILL")
	}
	if _, stderr, code := stat("-count", "1"); code != 1 || !strings.Contains(stderr, "stale") {
		t.Errorf("stat after SIGKILL: exit %d, %q", code, stderr)
	}
	p = start()
	if out, err := exec.Command("ip", "netns", "exec", lab.NSB, kudp, "client", "-remote", addr, "-n", "100", "-verify").CombinedOutput(); err != nil {
		t.Fatalf("kudp client: %v\n%s", err, out)
	}
	if out, _, code := stat("-interval", "50ms", "-count", "1"); code != 0 || len(statTotals(t, out)) != 1 || statTotals(t, out)[0] < 100 {
		t.Errorf("stat after a restart over stale pins: exit %d, totals %v, want >= 100", code, statTotals(t, out))
	}
	if err := p.Stop(t, syscall.SIGINT, 5*time.Second); err != nil {
		t.Fatalf("udp-echo exit: %v", err)
	}
}
