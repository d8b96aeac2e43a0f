package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func parseVars(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"down"}, {"down", "-all", "-name", "x"}, {"exec", "-name", "x"}, {"up", "extra"}} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestUpExecDown(t *testing.T) {
	priv.Require(t, "veth lab")
	var b [3]byte
	rand.Read(b[:])
	name := "cmdtest" + hex.EncodeToString(b[:])
	t.Cleanup(func() { vethlab.Remove(name) })

	out, errs, code := runCmd(t, "up", "-name", name, "-shared")
	if code != 0 {
		t.Fatalf("up: exit %d: %s", code, errs)
	}
	v := parseVars(out)
	for _, k := range []string{"NAME", "NSA", "NSB", "IFA", "IFB", "ADDRA", "ADDRB", "MACA", "MACB"} {
		if v[k] == "" {
			t.Errorf("up output lacks %s:\n%s", k, out)
		}
	}
	if v["NAME"] != vethlab.LabName(name) || v["NSA"] != v["NAME"]+"-a" {
		t.Errorf("NAME %q NSA %q for -name %s", v["NAME"], v["NSA"], name)
	}
	if _, _, code := runCmd(t, "up", "-name", name); code != 1 {
		t.Errorf("second up with the same name: exit %d, want 1", code)
	}

	show, _, code := runCmd(t, "show", "-name", name)
	if code != 0 || show != out {
		t.Errorf("show (exit %d):\n%s\nwant:\n%s", code, show, out)
	}
	// Shared mode: the kernel in A has ADDRA.
	got, errs, code := runCmd(t, "exec", "-name", name, "a", "--", "ip", "-o", "-4", "addr", "show", "dev", v["IFA"])
	if code != 0 || !strings.Contains(got, v["ADDRA"]) {
		t.Errorf("exec a ip addr: exit %d: %s %s", code, got, errs)
	}
	got, _, code = runCmd(t, "exec", "-name", name, "b", "--", "ip", "-o", "link", "show", "dev", v["IFB"])
	if code != 0 || !strings.Contains(got, v["MACB"]) {
		t.Errorf("exec b ip link: exit %d: %s", code, got)
	}
	if _, _, code := runCmd(t, "exec", "-name", name, "b", "--", "false"); code != 1 {
		t.Errorf("exec false: exit %d, want 1", code)
	}

	if _, errs, code := runCmd(t, "down", "-name", name); code != 0 {
		t.Fatalf("down: exit %d: %s", code, errs)
	}
	if _, err := vethlab.Open(name); err == nil {
		t.Error("lab still there after down")
	}
	if _, _, code := runCmd(t, "down", "-name", name); code != 1 {
		t.Errorf("down of a missing lab: exit %d, want 1", code)
	}
}
