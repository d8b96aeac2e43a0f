package labtest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestParseKV(t *testing.T) {
	m := ParseKV("sent=10 received=9 mode=copy junk rtt_p50_us=12.5 sent=11")
	if len(m) != 4 || m["sent"] != "11" || m["mode"] != "copy" || m["rtt_p50_us"] != "12.5" {
		t.Errorf("ParseKV = %v", m)
	}
	f := ParseFloats("sent=10 mode=copy rtt_p50_us=12.5")
	if len(f) != 2 || f["sent"] != 10 || f["rtt_p50_us"] != 12.5 {
		t.Errorf("ParseFloats = %v", f)
	}
	u := ParseUints("rx=3 tx=x rx=4 rtt=1.5 tx=x")
	if len(u) != 1 || u["rx"] != 4 {
		t.Errorf("ParseUints = %v", u)
	}
	// A later value that does not parse leaves the earlier one.
	if u := ParseUints("rx=3 rx=x"); u["rx"] != 3 {
		t.Errorf("ParseUints kept %v", u)
	}
}

func TestCounters(t *testing.T) {
	out := "udp-echo: listening on 1.2.3.4:7 mode=dedicated\n" +
		"libos: bad_descs=0 ownership_errors=2\n" +
		"libos.pool: double_frees=5 name=x\n" +
		"echo: echoed=100\n"
	k := Counters(out)
	want := map[string]uint64{"libos.bad_descs": 0, "libos.ownership_errors": 2, "libos.pool.double_frees": 5, "echo.echoed": 100}
	if len(k) != len(want) {
		t.Fatalf("Counters = %v, want %v", k, want)
	}
	for key, v := range want {
		if got, ok := k[key]; !ok || got != v {
			t.Errorf("%s = %d (present %v), want %d", key, got, ok, v)
		}
	}
}

func TestName(t *testing.T) {
	if n := name(exec.Command("ip", "netns", "exec", "dx-a", "/tmp/x/udp-echo", "-iface", "v")); n != "udp-echo" {
		t.Errorf("name in netns = %q", n)
	}
	if n := name(exec.Command("/tmp/x/kudp", "echo")); n != "kudp" {
		t.Errorf("name = %q", n)
	}
}

func TestBuildStartStop(t *testing.T) {
	bin := Build(t, "testdata/waiter")
	if again := Build(t, "./testdata/waiter/"); again != bin {
		t.Errorf("second Build = %q, want the cached %q", again, bin)
	}
	if !strings.HasSuffix(bin, "/waiter") {
		t.Errorf("binary %q not named after its directory", bin)
	}
	p := Start(t, exec.Command(bin), "listening")
	if out := p.Output(); !strings.Contains(out, "noise\nlistening n=7\n") {
		t.Errorf("output before stop: %q", out)
	}
	err := p.Stop(t, syscall.SIGTERM, 5*time.Second)
	if l := p.NextLine(t, time.Second); l != "bye" {
		t.Errorf("NextLine = %q, want the line after the ready line", l)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Stop = %v, want exit status 3", err)
	}
	if !strings.HasSuffix(p.Output(), "bye\n") {
		t.Errorf("stderr not captured: %q", p.Output())
	}
}

func TestRun(t *testing.T) {
	bin := Build(t, "testdata/waiter")
	out, stderr, code := Run(t, exec.Command(bin, "fail"))
	if len(out) != 0 || stderr != "waiter: failing\n" || code != 4 {
		t.Errorf("Run = %q, %q, %d", out, stderr, code)
	}
}

func TestBuildFailureIsAnError(t *testing.T) {
	if _, err := build("testdata/no-such-package"); err == nil {
		t.Error("build of a missing package succeeded")
	}
}

func TestXDPAttachedOnFreshLab(t *testing.T) {
	priv.Require(t, "veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "lt"})
	if XDPAttached(t, lab, A) || XDPAttached(t, lab, B) {
		t.Error("a fresh lab reports an XDP program")
	}
}
