package libos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/internal/bpffs"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/xdp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newIn opens a LibOS on the lab's A side with cfg (Interface and Addr
// filled in when empty) and closes it when t ends.
func newIn(t *testing.T, lab *vethlab.Lab, cfg libos.Config) (*libos.LibOS, error) {
	t.Helper()
	if cfg.Interface == "" {
		cfg.Interface = lab.IfA
	}
	if !cfg.Addr.IsValid() {
		cfg.Addr = lab.AddrA
	}
	var lib *libos.LibOS
	err := lab.RunInA(func() (err error) {
		lib, err = libos.New(cfg)
		return err
	})
	if err == nil {
		t.Cleanup(func() { lib.Close() })
	}
	return lib, err
}

// wantErr fails t unless err wraps errno and its message holds every
// fragment.
func wantErr(t *testing.T, err error, errno unix.Errno, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("New succeeded, want an error wrapping %v", errno)
	}
	t.Logf("New: %v", err)
	if !errors.Is(err, errno) {
		t.Errorf("error does not wrap %v", errno)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error lacks %q", f)
		}
	}
}

// passProgram loads an XDP program that passes everything, named name.
func passProgram(t *testing.T, name string) (*ebpf.Program, ebpf.ProgramID) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return prog, id
}

// An XDP program someone else attached (through a bpf_link, which only
// its owner can remove) makes New fail naming it; one attached the old
// way goes away with the `ip link set dev IF xdp off` the message gives,
// and New then works.
func TestNewErrorXDPProgramAttached(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "exdp"})
	prog, id := passProgram(t, "dxforeign")
	var l link.Link
	if err := lab.RunInA(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: lab.IndexA})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err := newIn(t, lab, libos.Config{})
	wantErr(t, err, unix.EBUSY, "interface "+lab.IfA+" already has an XDP program attached",
		fmt.Sprintf("id %d", id), `name "dxforeign"`, "ip link set dev "+lab.IfA+" xdp off", "docs/troubleshooting.md#xdp-attached")
	l.Close()

	// The old netlink attachment, and the fix the message gives.
	if err := lab.RunInA(func() error {
		lk, err := netlink.LinkByIndex(lab.IndexA)
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFd(lk, prog.FD())
	}); err != nil {
		t.Fatal(err)
	}
	_, err = newIn(t, lab, libos.Config{})
	wantErr(t, err, unix.EBUSY, "already has an XDP program attached", `name "dxforeign"`)
	if out, err := lab.CommandA("ip", "link", "set", "dev", lab.IfA, "xdp", "off").CombinedOutput(); err != nil {
		t.Fatalf("ip link set xdp off: %v\n%s", err, out)
	}
	if _, err := newIn(t, lab, libos.Config{}); err != nil {
		t.Fatalf("New after the fix: %v", err)
	}
}

// A second LibOS on a queue the first one holds: EBUSY, saying so.
func TestNewErrorQueueBusy(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ebusy"})
	if _, err := newIn(t, lab, libos.Config{}); err != nil {
		t.Fatal(err)
	}
	_, err := newIn(t, lab, libos.Config{})
	wantErr(t, err, unix.EBUSY, "queue 0 of "+lab.IfA+" is already bound by another AF_XDP socket",
		"use another Config.Queue", "docs/troubleshooting.md#ebusy-queue")
}

// Zero-copy asked of a veth, and a queue the veth does not have.
func TestNewErrorZeroCopyAndMissingQueue(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ezc"})
	_, err := newIn(t, lab, libos.Config{XDPMode: xdp.ModeZeroCopy})
	wantErr(t, err, unix.EOPNOTSUPP, lab.IfA+" (driver veth) cannot bind queue 0 in AF_XDP zero-copy mode",
		"Config.XDPMode", "docs/nics.md", "#eopnotsupp")
	var queues int
	if err := lab.RunInA(func() error {
		lk, err := netlink.LinkByIndex(lab.IndexA)
		if err == nil {
			queues = lk.Attrs().NumRxQueues
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err = newIn(t, lab, libos.Config{Queue: queues + 1})
	wantErr(t, err, unix.EINVAL, fmt.Sprintf("queue %d does not exist on %s, which has %d receive queue(s)", queues+1, lab.IfA, queues), "#no-queue")
	_, err = newIn(t, lab, libos.Config{Interface: "dxnosuch0"})
	if err == nil || !strings.Contains(err.Error(), `interface "dxnosuch0" not found in this network namespace`) {
		t.Errorf("missing interface: %v", err)
	}
	// None of the failures left anything behind.
	if _, err := newIn(t, lab, libos.Config{}); err != nil {
		t.Fatalf("New after the failures: %v", err)
	}
}

// The maps are pinned under PinDir/IFNAME while the LibOS runs, readable
// by another reader, and removed by Close; stale pins of a dead process
// do not stop New.
func TestPinsFollowTheLibOS(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "pin"})
	root := filepath.Join(bpffs.ForTest(t), "demixdp")
	dir := bpf.PinDir(root, lab.IfA)
	// A crashed process's leftover: a pinned map in the directory.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.Pin(filepath.Join(dir, "counters")); err != nil {
		t.Fatal(err)
	}
	stale.Close()

	lib, err := newIn(t, lab, libos.Config{PinDir: root})
	if err != nil {
		t.Fatal(err)
	}
	if lib.PinnedAt() != dir {
		t.Fatalf("PinnedAt = %q, want %q", lib.PinnedAt(), dir)
	}
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	lib.Bind(qd, netip.AddrPortFrom(lab.AddrA.Addr(), 7))
	pop, _ := lib.Pop(qd)
	c := dialB(t, lab, netip.AddrPortFrom(lab.AddrA.Addr(), 7))
	c.Write([]byte("x"))
	if r, err := lib.Wait(pop, 5*time.Second); err != nil || r.Opcode != libos.OpPop {
		t.Fatalf("pop: %v %+v", err, r)
	}
	p, err := bpf.OpenPinned(dir)
	if err != nil {
		t.Fatalf("OpenPinned: %v", err)
	}
	defer p.Close()
	pc, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lib.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if pc != lc.Steering || pc.Redirected < 2 { // the ARP request and the datagram at least
		t.Errorf("pinned counters %+v, the libOS's %+v", pc, lc.Steering)
	}
	if err := lib.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory after Close: %v", err)
	}

	// A PinDir that is no bpf file system is an error, and leaves the
	// interface free.
	_, err = newIn(t, lab, libos.Config{PinDir: t.TempDir()})
	if !errors.Is(err, bpf.ErrNotBPFFS) || !strings.Contains(err.Error(), "mount -t bpf") {
		t.Errorf("PinDir on tmpfs: %v, want ErrNotBPFFS with the fix", err)
	}
	if _, err := newIn(t, lab, libos.Config{PinDir: root}); err != nil {
		t.Errorf("New after a failed pin: %v", err)
	}
}

// The default PinDir is best effort: on this machine's /sys/fs/bpf (a
// bpf file system or not) New works, and Close leaves nothing pinned.
func TestDefaultPinDir(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "pind"})
	var logs syncBuffer
	lib, err := newIn(t, lab, libos.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	dir := bpf.PinDir(bpf.DefaultPinRoot, lab.IfA)
	if ok, _ := bpf.IsBPFFS("/sys/fs/bpf"); ok {
		if lib.PinnedAt() != dir {
			t.Errorf("PinnedAt = %q on a bpffs /sys/fs/bpf, want %q", lib.PinnedAt(), dir)
		}
	} else {
		if lib.PinnedAt() != "" {
			t.Errorf("PinnedAt = %q without a bpffs", lib.PinnedAt())
		}
		if !strings.Contains(logs.String(), "steering maps not pinned") {
			t.Errorf("no warning about the pins:\n%s", logs.String())
		}
	}
	lib.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Close: %v", dir, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a handler and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records parses JSON log lines.
func records(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func byMsg(recs []map[string]any, prefix string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if m, _ := r["msg"].(string); strings.HasPrefix(m, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// The logger hears the attach (with the modes obtained and why), ARP
// failures and UMEM exhaustion at most once per second each however often
// they happen, and the detach.
func TestLoggerReportsLifecycleAndTrouble(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "log"})
	var logs syncBuffer
	lib, err := newIn(t, lab, libos.Config{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Frames: 512,
		ARP:    stack.ARPConfig{Retries: 1, RetryInterval: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	att := byMsg(records(t, logs.String()), "attached")
	if len(att) != 1 {
		t.Fatalf("attach records %v", att)
	}
	a := att[0]
	if a["iface"] != lab.IfA || a["xdp"] != "copy" || a["xdp_attach"] != "native" || a["level"] != "INFO" ||
		!strings.Contains(a["xdp_reason"].(string), "refused zero-copy") {
		t.Errorf("attach record %v: want iface, xdp=copy with the zero-copy refusal, xdp_attach=native", a)
	}

	// Many ARP failures (datagrams to addresses nobody has) and many
	// failed SGAAllocs, over about two seconds of loop.
	start := time.Now()
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	sga, _ := lib.SGAAlloc(8)
	var held []*libos.SGA
	for range 1000 {
		s, err := lib.SGAAlloc(100)
		if err != nil {
			if !errors.Is(err, unix.ENOBUFS) {
				t.Fatal(err)
			}
			break
		}
		held = append(held, s)
	}
	for _, s := range held {
		lib.SGAFree(s)
	}
	for i := range 20 {
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)}), 9)
		qt, err := lib.PushTo(qd, sga, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := lib.Wait(qt, 5*time.Second)
		if err != nil || !errors.Is(r.Err, unix.EHOSTUNREACH) {
			t.Fatalf("push to %v: %v %+v, want EHOSTUNREACH", to, err, r)
		}
	}
	pop, _ := lib.Pop(qd)
	lib.Wait(pop, 2500*time.Millisecond) // run the loop past the next checks
	elapsed := time.Since(start)
	lib.Close()

	recs := records(t, logs.String())
	arp := byMsg(recs, "ARP resolution failed")
	umem := byMsg(recs, "UMEM frames exhausted")
	maxLines := int(elapsed/time.Second) + 1
	if len(arp) == 0 || len(arp) > maxLines {
		t.Errorf("%d ARP failure records in %v, want 1..%d", len(arp), elapsed, maxLines)
	}
	var failures float64
	for _, r := range arp {
		failures += r["failures"].(float64)
		if r["level"] != "WARN" || r["fix"] == nil {
			t.Errorf("ARP record %v", r)
		}
	}
	if failures != 20 {
		t.Errorf("ARP records count %v failures, want 20", failures)
	}
	if len(umem) != 1 || umem[0]["sga_nobufs"].(float64) < 1 {
		t.Errorf("UMEM records %v, want one with sga_nobufs", umem)
	}
	if d := byMsg(recs, "detached"); len(d) != 1 || d[0]["iface"] != lab.IfA {
		t.Errorf("detach records %v", d)
	}
}
