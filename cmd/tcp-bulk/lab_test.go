package main

// Privileged integration tests: tcp-bulk (a libOS in namespace B, on
// 198.51.100.3, an address the kernel in B does not have) streaming to the
// kernel's TCP sink (ktcp sink) in namespace A; both SHA-256 must agree.

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

const clientAddr = "198.51.100.3"

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// bulk runs tcp-bulk in namespace B and returns its summary fields and
// exit code.
func bulk(t *testing.T, lab *vethlab.Lab, remote string, args ...string) (map[string]string, int) {
	t.Helper()
	args = append([]string{"-iface", lab.IfB, "-local", clientAddr, "-remote", remote}, args...)
	cmd := lab.CommandB(labtest.Build(t, "."), args...)
	out, stderr, code := labtest.Run(t, cmd)
	t.Logf("tcp-bulk %v: exit %d: %s", args[6:], code, bytes.TrimSpace(out))
	if code != 0 {
		t.Logf("stderr:\n%s", stderr)
	}
	return labtest.ParseKV(string(out)), code
}

func TestBulkToKernelSink(t *testing.T) {
	priv.Require(t, "tcp-bulk on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tb", KernelAddrA: true})
	remote := lab.AddrA.Addr().String() + ":9"
	// ktcp sink prints one line per connection after "listening".
	sink := labtest.Start(t, lab.CommandA(labtest.Build(t, "../ktcp"), "sink", "-addr", remote), "listening")
	for _, c := range []struct {
		bytes, want string
		args        []string
	}{
		{"1", "1", nil},                                 // one byte, one segment
		{"1449", "1449", nil},                           // two segments
		{"100M", "104857600", nil},                      // many 16-segment pushes
		{"20M", "20971520", []string{"-inflight", "1"}}, // one push at a time
	} {
		s, code := bulk(t, lab, remote, append([]string{"-bytes", c.bytes}, c.args...)...)
		if code != 0 || s["bytes"] != c.want || len(s["sha256"]) != 64 || s["extra"] != "0" {
			t.Fatalf("-bytes %s: exit %d, %v", c.bytes, code, s)
		}
		k := labtest.ParseKV(sink.NextLine(t, 10*time.Second))
		if k["sha256"] != s["sha256"] || k["bytes"] != c.want {
			t.Fatalf("-bytes %s: the sink got %s bytes with SHA-256 %s; tcp-bulk sent %s with %s", c.bytes, k["bytes"], k["sha256"], s["bytes"], s["sha256"])
		}
		if allocs := s["loop_allocs"]; len(allocs) > 2 {
			t.Errorf("-bytes %s: loop_allocs=%s: the transfer allocates per push", c.bytes, allocs)
		}
	}
}

// TestRefusedIsASetupError: nothing listens on the port, the connect is
// refused and tcp-bulk exits 2.
func TestRefusedIsASetupError(t *testing.T) {
	priv.Require(t, "tcp-bulk on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tb", KernelAddrA: true})
	s, code := bulk(t, lab, lab.AddrA.Addr().String()+":10", "-bytes", "1M")
	if code != 2 || len(s) != 0 {
		t.Errorf("exit %d, summary %v; want exit 2 and no summary", code, s)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "1K": 1024, "100M": 100 << 20, "2G": 2 << 30} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1T", "M", "1.5M"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
