package cli

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
)

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"RxDescs": "rx_descs", "ICMPEchoReplies": "icmp_echo_replies", "UDP": "udp",
		"OwnershipErrors": "ownership_errors", "RxFillRingEmptyDescs": "rx_fill_ring_empty_descs",
		"RTOs": "rtos", "RSTsOut": "rsts_out", "ChallengeACKs": "challenge_acks", "NoACK": "no_ack",
		"SynCookiesOK": "syn_cookies_ok", "OOOPruned": "ooo_pruned", "TCP": "tcp",
	} {
		if got := Snake(in); got != want {
			t.Errorf("Snake(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteGroup(t *testing.T) {
	type inner struct{ DoubleFrees uint64 }
	type outer struct {
		RxDescs  uint32
		Delta    int
		name     string
		Pool     inner
		Label    string
		UDPDrops uint64
	}
	var b bytes.Buffer
	WriteGroup(&b, "libos", outer{RxDescs: 3, Delta: -2, name: "x", Pool: inner{5}, Label: "y", UDPDrops: 7})
	want := "libos: rx_descs=3 delta=-2 udp_drops=7\nlibos.pool: double_frees=5\n"
	if b.String() != want {
		t.Errorf("WriteGroup wrote %q, want %q", b.String(), want)
	}
	b.Reset()
	WriteGroup(&b, "none", struct{ S string }{"a"})
	WriteGroup(&b, "notastruct", 7)
	if b.Len() != 0 {
		t.Errorf("groups without integers wrote %q", b.String())
	}
}

func TestRegisterDefaultsAndHelp(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var f LibOSFlags
	f.Register(fs, FlagHelp{Gateway: "next hop for an off-link remote (optional)", Spin: time.Millisecond})
	if fs.Lookup("frames") != nil || fs.Lookup("cpuprofile") != nil {
		t.Error("-frames or -cpuprofile registered without being asked for")
	}
	if g := fs.Lookup("gateway"); g == nil || g.Usage != "next hop for an off-link remote (optional)" {
		t.Errorf("-gateway: %+v", g)
	}
	if f.Prefix != 24 || f.Mode != "dedicated" || f.Spin != time.Millisecond {
		t.Errorf("defaults: %+v", f)
	}
	fs = flag.NewFlagSet("y", flag.ContinueOnError)
	f.Register(fs, FlagHelp{Frames: true, CPUProfile: true})
	if err := fs.Parse([]string{"-iface", "v0", "-frames", "2048", "-cpuprofile", "p", "-spin", "-1s"}); err != nil {
		t.Fatal(err)
	}
	if f.Iface != "v0" || f.Frames != 2048 || f.CPUProfile != "p" || f.Spin != -time.Second {
		t.Errorf("parsed: %+v", f)
	}
	if g := fs.Lookup("gateway"); g.Usage != "next hop for off-link senders (optional)" {
		t.Errorf("default -gateway help %q", g.Usage)
	}
}

func TestConfig(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	// Queues 1: what Register sets -queues to by default.
	ok := LibOSFlags{Iface: "v0", Prefix: 24, Mode: "shared", Gateway: "198.51.100.254", Frames: 2048, Spin: time.Millisecond, Queues: 1}
	cfg, err := ok.Config(a)
	if err != nil {
		t.Fatal(err)
	}
	want := libos.Config{Interface: "v0", Addr: netip.MustParsePrefix("198.51.100.1/24"), Mode: libos.Shared,
		Gateway: netip.MustParseAddr("198.51.100.254"), Frames: 2048, Spin: time.Millisecond, Queues: 1}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Config = %+v, want %+v", cfg, want)
	}
	for _, c := range []struct {
		edit func(*LibOSFlags)
		msg  string
	}{
		{func(f *LibOSFlags) { f.Iface = "" }, "-iface is required"},
		{func(f *LibOSFlags) { f.Prefix = 0 }, "-prefix 0"},
		{func(f *LibOSFlags) { f.Prefix = 33 }, "-prefix 33"},
		{func(f *LibOSFlags) { f.Mode = "bogus" }, "-mode"},
		{func(f *LibOSFlags) { f.Frames = -1 }, "-frames -1"},
		{func(f *LibOSFlags) { f.Gateway = "2001:db8::1" }, "-gateway"},
		{func(f *LibOSFlags) { f.Gateway = "nope" }, "-gateway"},
	} {
		f := ok
		c.edit(&f)
		if _, err := f.Config(a); err == nil || !strings.HasPrefix(err.Error(), c.msg) {
			t.Errorf("%+v: err %v, want one starting %q", f, err, c.msg)
		}
	}
}

func TestStartProfile(t *testing.T) {
	stop, err := StartProfile("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	path := filepath.Join(t.TempDir(), "cpu.prof")
	if stop, err = StartProfile(path); err != nil {
		t.Fatal(err)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("profile %v: %v", fi, err)
	}
	if _, err := StartProfile(filepath.Join(t.TempDir(), "no", "dir")); err == nil {
		t.Error("StartProfile into a missing directory succeeded")
	}
}

func TestOpenFailsFastWithoutInterface(t *testing.T) {
	start := time.Now()
	_, err := Open(libos.Config{Interface: "dx-no-such-if", Addr: netip.MustParsePrefix("198.51.100.1/24")})
	if err == nil {
		t.Fatal("Open of a missing interface succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open took %v for a non-EBUSY error", d)
	}
}
