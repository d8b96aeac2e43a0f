package vethlab

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestCheckAddr(t *testing.T) {
	good := []string{"198.51.100.1/24", "203.0.113.254/24", "198.51.100.9/30", "203.0.113.0/31"}
	bad := []string{
		"192.0.2.1/24",      // the machine's own network
		"10.0.0.1/24",       // not a documentation range
		"198.51.100.1/16",   // wider than the allowed /24
		"198.51.100.1/32",   // no connected route
		"198.51.100.0/24",   // network address
		"198.51.100.255/24", // broadcast address
		"2001:db8::1/64",    // not IPv4
	}
	for _, s := range good {
		if err := checkAddr("x", netip.MustParsePrefix(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := checkAddr("x", netip.MustParsePrefix(s)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: got %v, want ErrBadConfig", s, err)
		}
	}
}

func TestPlanNames(t *testing.T) {
	for _, cfg := range []Config{{}, {Name: "udp"}, {Name: "dxfoo"}, {Name: strings.Repeat("n", maxBaseLen), ExactName: true}} {
		l, err := plan(cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if !strings.HasPrefix(l.NSA, Prefix) || l.NSA != l.Name+"-a" || l.NSB != l.Name+"-b" {
			t.Errorf("%+v: namespaces %q %q for name %q", cfg, l.NSA, l.NSB, l.Name)
		}
		if len(l.IfA) >= 16 || len(l.IfB) >= 16 || l.IfA == l.IfB {
			t.Errorf("%+v: interface names %q %q", cfg, l.IfA, l.IfB)
		}
	}
	a, _ := plan(Config{Name: "same"})
	b, _ := plan(Config{Name: "same"})
	if a.Name == b.Name {
		t.Errorf("two random labs share name %q", a.Name)
	}
	for _, cfg := range []Config{
		{Name: "bad/name"}, {Name: strings.Repeat("n", maxBaseLen+1)}, {ExactName: true},
		{MTU: 10}, {AddrA: DefaultAddrB}, {AddrB: netip.MustParsePrefix("192.0.2.2/24")},
	} {
		if _, err := plan(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: got %v, want ErrBadConfig", cfg, err)
		}
	}
	if LabName("demo") != "dx-demo" || LabName("dxdemo") != "dxdemo" {
		t.Errorf("LabName: %q %q", LabName("demo"), LabName("dxdemo"))
	}
}

// linkIn returns the named link and its IPv4 addresses inside namespace ns.
func linkIn(t *testing.T, ns, ifname string) (netlink.Link, []netlink.Addr) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		t.Fatalf("%s in %s: %v", ifname, ns, err)
	}
	addrs, err := nh.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	return link, addrs
}

func TestNewCreatesNamespacesAndPair(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "pair", MTU: 9000})
	for _, ns := range []string{l.NSA, l.NSB} {
		if _, err := os.Stat(filepath.Join(NetnsDir, ns)); err != nil {
			t.Errorf("namespace file: %v", err)
		}
	}
	la, addrsA := linkIn(t, l.NSA, l.IfA)
	lb, addrsB := linkIn(t, l.NSB, l.IfB)
	for _, c := range []struct {
		link  netlink.Link
		index int
		mac   net.HardwareAddr
	}{{la, l.IndexA, l.MACA}, {lb, l.IndexB, l.MACB}} {
		at := c.link.Attrs()
		if c.link.Type() != "veth" || at.Index != c.index || !bytes.Equal(at.HardwareAddr, c.mac) || at.MTU != 9000 {
			t.Errorf("%s: type %s index %d mac %v mtu %d; lab says index %d mac %v",
				at.Name, c.link.Type(), at.Index, at.HardwareAddr, at.MTU, c.index, c.mac)
		}
		if at.Flags&net.FlagUp == 0 || at.OperState != netlink.OperUp {
			t.Errorf("%s not up: flags %v oper %v", at.Name, at.Flags, at.OperState)
		}
	}
	if bytes.Equal(l.MACA, l.MACB) {
		t.Errorf("both ends have MAC %v", l.MACA)
	}
	if len(addrsA) != 0 {
		t.Errorf("dedicated mode: kernel in A has addresses %v", addrsA)
	}
	if len(addrsB) != 1 || addrsB[0].IPNet.String() != l.AddrB.String() {
		t.Errorf("B addresses %v, want %v", addrsB, l.AddrB)
	}
	// The A side has no route to B in dedicated mode; the root namespace
	// never sees the interfaces.
	if _, err := netlink.LinkByName(l.IfA); err == nil {
		t.Errorf("%s visible in the root namespace", l.IfA)
	}
	out, err := l.CommandA("ip", "-o", "link", "show").CombinedOutput()
	if err != nil || !strings.Contains(string(out), l.IfA+"@") {
		t.Errorf("ip netns exec %s ip link: %v\n%s", l.NSA, err, out)
	}
}

func TestUDPFromBReachesA(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "udp", KernelAddrA: true})
	var server *net.UDPConn
	err := l.RunInA(func() (err error) {
		server, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.AddrA.Addr(), 0)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	var client *net.UDPConn
	err = l.RunInB(func() (err error) {
		client, err = net.DialUDP("udp4", nil, server.LocalAddr().(*net.UDPAddr))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	msg := []byte("demixdp vethlab: B to A")
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	server.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard, not a timing check
	n, from, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], msg) || from.Addr() != l.AddrB.Addr() {
		t.Fatalf("A got %q from %v, want %q from %v", buf[:n], from, msg, l.AddrB.Addr())
	}
	reply := []byte("and back")
	if _, err := server.WriteToUDPAddrPort(reply, from); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err = client.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], reply) {
		t.Fatalf("B got %q, %v; want %q", buf[:n], err, reply)
	}
}

func TestOffloads(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "offl"})
	check := func(wantOn bool) {
		t.Helper()
		a, b, err := l.GetOffloads()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []Offloads{a, b} {
			if (wantOn && !o.AllOn()) || (!wantOn && !o.AllOff()) {
				t.Errorf("offloads %+v, want all %v", o, wantOn)
			}
		}
	}
	check(false)
	if err := l.SetOffloads(true); err != nil {
		t.Fatal(err)
	}
	check(true)
	if err := l.SetOffloads(false); err != nil {
		t.Fatal(err)
	}
	check(false)

	on := ForTest(t, Config{Name: "offl", Offloads: true})
	a, b, err := on.GetOffloads()
	if err != nil || !a.AllOn() || !b.AllOn() {
		t.Errorf("Config.Offloads: %+v %+v %v", a, b, err)
	}
}

func TestCloseRemovesEverythingAndIsIdempotent(t *testing.T) {
	t.Parallel()
	priv.Require(t, "veth lab")
	l, err := New(Config{Name: "close"})
	if err != nil {
		t.Fatal(err)
	}
	// A socket in A keeps the namespace itself alive after Close; the
	// veth must still go.
	var fd *net.UDPConn
	if err := l.RunInA(func() (err error) { fd, err = net.ListenUDP("udp4", nil); return err }); err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{l.NSA, l.NSB} {
		if _, err := os.Stat(filepath.Join(NetnsDir, ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still in %s: %v", ns, NetnsDir, err)
		}
		if h, err := netns.GetFromName(ns); err == nil {
			h.Close()
			t.Errorf("netns.GetFromName(%s) still works", ns)
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Open(l.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Close: %v, want ErrNotFound", err)
	}
}

func netnsEntries(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	es, err := os.ReadDir(NetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range es {
		m[e.Name()] = true
	}
	return m
}

func TestFailingNewLeavesNothing(t *testing.T) {
	t.Parallel()
	priv.Require(t, "veth lab")
	before := netnsEntries(t)
	for _, a := range []string{"192.0.2.1/24", "10.1.2.3/24", "198.51.100.1/8"} {
		l, err := New(Config{Name: "fail", AddrA: netip.MustParsePrefix(a)})
		if !errors.Is(err, ErrBadConfig) || l != nil {
			t.Errorf("AddrA %s: lab %v err %v, want ErrBadConfig", a, l, err)
		}
	}
	// A failure after namespace A exists: B's name is taken by a namespace
	// New did not create. New must remove A and leave B alone.
	name := LabName("failmid-" + t.Name()[len(t.Name())-4:])
	if err := createNamedNetns(name + "-b"); err != nil {
		t.Fatal(err)
	}
	defer deleteNamedNetns(name + "-b")
	if _, err := New(Config{Name: name, ExactName: true}); !errors.Is(err, ErrExists) {
		t.Fatalf("New over an existing namespace: %v, want ErrExists", err)
	}
	if netnsExists(name + "-a") {
		t.Errorf("failed New left %s-a behind", name)
	}
	if !netnsExists(name + "-b") {
		t.Errorf("failed New removed %s-b, which it did not create", name)
	}
	deleteNamedNetns(name + "-b")
	after := netnsEntries(t)
	for n := range after {
		if !before[n] && strings.HasPrefix(n, LabName("fail")) {
			t.Errorf("left behind: %s", n)
		}
	}
}

func TestParallelLabsDoNotCollide(t *testing.T) {
	t.Parallel()
	priv.Require(t, "veth lab")
	const n = 6
	labs := make([]*Lab, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { labs[i], errs[i] = New(Config{Name: "par", KernelAddrA: i%2 == 0}) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, l := range labs {
		if errs[i] != nil {
			t.Errorf("lab %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { l.Close() })
		for _, s := range []string{l.Name, l.NSA, l.NSB} {
			if seen[s] {
				t.Errorf("name %s used twice", s)
			}
			seen[s] = true
		}
		linkIn(t, l.NSA, l.IfA)
		linkIn(t, l.NSB, l.IfB)
	}
}

func TestOpenReconstructsLab(t *testing.T) {
	t.Parallel()
	priv.Require(t, "veth lab")
	l, err := New(Config{Name: "open", AddrA: netip.MustParsePrefix("203.0.113.10/24"), AddrB: netip.MustParsePrefix("203.0.113.20/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o, err := Open(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	if o.NSA != l.NSA || o.NSB != l.NSB || o.IfA != l.IfA || o.IfB != l.IfB ||
		o.IndexA != l.IndexA || o.IndexB != l.IndexB || o.AddrA != l.AddrA || o.AddrB != l.AddrB ||
		!bytes.Equal(o.MACA, l.MACA) || !bytes.Equal(o.MACB, l.MACB) {
		t.Errorf("Open gave %+v, want %+v", o, l)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if netnsExists(l.NSA) || netnsExists(l.NSB) {
		t.Error("closing the opened lab left namespaces")
	}
	if _, err := Open("dx-no-such-lab"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open missing: %v", err)
	}
}

func TestExactNameRefusesDuplicate(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "exact-" + t.Name()[4:9], ExactName: true})
	if l.Name != LabName("exact-"+t.Name()[4:9]) {
		t.Errorf("name %q", l.Name)
	}
	if _, err := New(Config{Name: l.Name, ExactName: true}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate: %v, want ErrExists", err)
	}
	if !netnsExists(l.NSA) || !netnsExists(l.NSB) {
		t.Error("failed duplicate New removed the existing lab")
	}
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	priv.Require(t, "veth lab")
	if err := Cleanup("x"); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Cleanup(x): %v, want ErrBadConfig", err)
	}
	keep := ForTest(t, Config{Name: "keep"})
	prefix := LabName("clean") + "-"
	var gone []*Lab
	for range 2 {
		l, err := New(Config{Name: "clean"})
		if err != nil {
			t.Fatal(err)
		}
		gone = append(gone, l)
	}
	if err := Cleanup(prefix); err != nil {
		t.Fatal(err)
	}
	for _, l := range gone {
		if netnsExists(l.NSA) || netnsExists(l.NSB) {
			t.Errorf("Cleanup left %s", l.Name)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close after Cleanup: %v", err)
		}
	}
	if !netnsExists(keep.NSA) || !netnsExists(keep.NSB) {
		t.Error("Cleanup removed a lab with another prefix")
	}
}

func TestRunInSwitchesAndRestores(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "runin"})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	sentinel := errors.New("from fn")
	for _, c := range []struct {
		ns  string
		run func(func() error) error
	}{{l.NSA, l.RunInA}, {l.NSB, l.RunInB}} {
		err := c.run(func() error {
			cur, err := netns.Get()
			if err != nil {
				return err
			}
			defer cur.Close()
			want, err := netns.GetFromName(c.ns)
			if err != nil {
				return err
			}
			defer want.Close()
			if !cur.Equal(want) {
				t.Errorf("fn runs in %v, want %s", cur, c.ns)
			}
			return sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Errorf("RunIn returned %v, want fn's error", err)
		}
		now, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		if !now.Equal(orig) {
			t.Errorf("thread left in %v after RunIn, want %v", now, orig)
		}
		now.Close()
	}
}

func TestRemoveAndVars(t *testing.T) {
	t.Parallel()
	priv.Require(t, "veth lab")
	l, err := New(Config{Name: "rm"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	vars := strings.Join(l.Vars(), "\n") + "\n"
	for _, want := range []string{"NSA=" + l.NSA, "IFB=" + l.IfB, "ADDRA=198.51.100.1/24", "MACB=" + l.MACB.String()} {
		if !strings.Contains(vars, want+"\n") {
			t.Errorf("Vars lacks %q:\n%s", want, vars)
		}
	}
	if err := Remove(l.Name); err != nil {
		t.Fatal(err)
	}
	if netnsExists(l.NSA) || netnsExists(l.NSB) {
		t.Error("Remove left namespaces")
	}
	if err := Remove(l.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
}

// BenchmarkNewClose measures what one lab costs a test: create and remove.
func BenchmarkNewClose(b *testing.B) {
	priv.Require(b, "veth lab")
	b.ReportAllocs()
	for b.Loop() {
		l, err := New(Config{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
