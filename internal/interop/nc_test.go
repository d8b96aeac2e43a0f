package interop

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// build compiles the commands the tests run, once per test binary.
func build(t *testing.T, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go") //lint:ignore SA1019 the test needs the toolchain that built it
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	args := append([]string{"build", "-o", dir + "/"}, pkgs...)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func needNC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nc"); err != nil {
		priv.Unavailable(t, "nc (netcat-openbsd) is not installed; make test installs it")
	}
}

// server runs a command in namespace A until the test ends, waiting for its
// "listening" line.
func server(t *testing.T, lab *vethlab.Lab, bin string, args ...string) {
	t.Helper()
	cmd := lab.CommandA(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "listening") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("%s exited before listening:\n%s", bin, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s not listening after 10 s", bin)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(bin), err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s ignored SIGINT", filepath.Base(bin))
		}
	})
}

// TestNetcatThroughTCPEcho: OpenBSD netcat in namespace B sends 1 MB to
// the libOS tcp-echo and gets the same bytes back, then both sides close.
func TestNetcatThroughTCPEcho(t *testing.T) {
	needNC(t)
	lab := vethlab.ForTest(t, vethlab.Config{Name: "nc"})
	bin := build(t, "./cmd/tcp-echo")
	server(t, lab, filepath.Join(bin, "tcp-echo"), "-iface", lab.IfA, "-addr", lab.AddrA.Addr().String()+":7")
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
	bin := build(t, "./cmd/udp-echo")
	server(t, lab, filepath.Join(bin, "udp-echo"), "-iface", lab.IfA, "-addr", lab.AddrA.Addr().String()+":9")
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
	bin := build(t, "./cmd/tcp-bulk")
	sink := lab.CommandA("nc", "-l", "-N", lab.AddrA.Addr().String(), "5001")
	var recv bytes.Buffer
	sink.Stdout = &recv
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Process.Kill(); sink.Wait() })
	time.Sleep(200 * time.Millisecond) // nc has no readiness signal
	cli := lab.CommandB(filepath.Join(bin, "tcp-bulk"), "-iface", lab.IfB, "-local", "198.51.100.3",
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
