package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

func needNC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nc"); err != nil {
		priv.Unavailable(t, "nc (netcat-openbsd) is not installed; make test installs it")
	}
}

// server runs a command in namespace A until the test ends, waiting for its
// "listening" line; it must exit 0 on the SIGINT that ends it.
func server(t *testing.T, lab *vethlab.Lab, bin string, args ...string) {
	t.Helper()
	p := labtest.Start(t, lab.CommandA(bin, args...), "listening")
	t.Cleanup(func() {
		if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
			t.Errorf("%s: %v\n%s", bin, err, p.Output())
		}
	})
}

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestNetcatThroughTCPEcho: OpenBSD netcat in namespace B sends 1 MB to
// the libOS tcp-echo and gets the same bytes back, then both sides close.
func TestNetcatThroughTCPEcho(t *testing.T) {
	needNC(t)
	lab := vethlab.ForTest(t, vethlab.Config{Name: "nc"})
	server(t, lab, labtest.Build(t, "../../cmd/tcp-echo"), "-iface", lab.IfA, "-addr", lab.AddrA.Addr().String()+":7")
	data := make([]byte, 1<<20)
	rand.Read(data)
	nc := lab.CommandB("nc", "-N", "-w", "10", lab.AddrA.Addr().String(), "7")
	nc.Stdin = bytes.NewReader(data)
	got, err := nc.Output()
	if err != nil {
		t.Fatalf("nc: %v (got %d bytes)", err, len(got))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("nc got %d bytes back, want the 1 MB it sent", len(got))
	}
}

// TestNetcatThroughUDPEcho: a netcat UDP datagram comes back from udp-echo.
func TestNetcatThroughUDPEcho(t *testing.T) {
	needNC(t)
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ncu"})
	server(t, lab, labtest.Build(t, "../../cmd/udp-echo"), "-iface", lab.IfA, "-addr", lab.AddrA.Addr().String()+":9")
	nc := lab.CommandB("nc", "-u", "-w", "2", lab.AddrA.Addr().String(), "9")
	nc.Stdin = strings.NewReader("hello from netcat\n")
	got, _ := nc.Output() // nc -u exits by its -w timeout
	if string(got) != "hello from netcat\n" {
		t.Fatalf("nc got %q", got)
	}
}

// TestTCPBulkIntoNetcat: the libOS tcp-bulk client streams 8 MB into a
// netcat listener; the SHA-256 netcat's bytes match the one tcp-bulk
// reports.
func TestTCPBulkIntoNetcat(t *testing.T) {
	needNC(t)
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ncb", KernelAddrA: true})
	bulk := labtest.Build(t, "../../cmd/tcp-bulk")
	sink := lab.CommandA("nc", "-l", "-N", lab.AddrA.Addr().String(), "5001")
	var recv bytes.Buffer
	sink.Stdout = &recv
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Process.Kill(); sink.Wait() })
	time.Sleep(200 * time.Millisecond) // nc has no readiness signal
	cli := lab.CommandB(bulk, "-iface", lab.IfB, "-local", "198.51.100.3",
		"-remote", lab.AddrA.Addr().String()+":5001", "-bytes", "8M")
	out, err := cli.Output()
	if err != nil {
		t.Fatalf("tcp-bulk: %v\n%s", err, out)
	}
	done := make(chan error, 1)
	go func() { done <- sink.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("nc did not see the end of the stream")
	}
	sum := sha256.Sum256(recv.Bytes())
	want := ""
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "sha256="); ok {
			want = v
		}
	}
	if recv.Len() != 8<<20 || hex.EncodeToString(sum[:]) != want {
		t.Fatalf("nc received %d bytes with SHA-256 %x; tcp-bulk reports %q", recv.Len(), sum, out)
	}
}
