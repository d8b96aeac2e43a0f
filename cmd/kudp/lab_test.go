package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestEchoAndClientAcrossTheLab runs the real binaries: kudp echo in
// namespace A, kudp client in namespace B, over the kernel's UDP.
func TestEchoAndClientAcrossTheLab(t *testing.T) {
	priv.Require(t, "veth lab")
	bin := labtest.Build(t, ".")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	addr := lab.AddrA.Addr().String() + ":9000"

	echo := labtest.Start(t, lab.CommandA(bin, "echo", "-addr", addr), "listening")
	if first, _, _ := strings.Cut(echo.Output(), "\n"); !strings.Contains(first, "listening") {
		t.Fatalf("first line %q", first)
	}

	out, err := lab.CommandB(bin, "client", "-remote", addr, "-n", "20000", "-sizes", "1-1472", "-outstanding", "16").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	s := string(out)
	t.Log(strings.TrimSpace(s))
	for _, want := range []string{"sent=20000 ", "received=20000 ", "lost=0 ", "bad=0 ", "rtt_p50_us=", "rtt_p99_us=", "rtt_p999_us=", "pps="} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q: %s", want, s)
		}
	}

	// Nobody listens on port 9001: every request is lost, exit status 1.
	out, err = lab.CommandB(bin, "client", "-remote", lab.AddrA.Addr().String()+":9001", "-n", "3", "-timeout", "20ms", "-retries", "1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "lost=3 ") {
		t.Errorf("client against a closed port: %v\n%s", err, out)
	}
	// ... unless -allow-loss permits it.
	if out, err = lab.CommandB(bin, "client", "-remote", lab.AddrA.Addr().String()+":9001", "-n", "3", "-timeout", "20ms", "-retries", "0", "-allow-loss", "3").CombinedOutput(); err != nil {
		t.Errorf("-allow-loss 3: %v\n%s", err, out)
	}

	if err := echo.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("echo exit after SIGINT: %v", err)
	}
	tail := strings.Split(strings.TrimSuffix(echo.Output(), "\n"), "\n")
	if len(tail) < 2 || !strings.Contains(tail[len(tail)-1], "received=20000 echoed=20000") {
		t.Errorf("echo counters: %q", tail[1:])
	}
}
