// Package labtest holds the helpers the commands' lab tests share: build a
// command once per test binary, run it (usually inside a vethlab namespace)
// and wait for its ready line, stop it with a signal, parse the key=value
// lines the commands print, and ask netlink whether an XDP program is still
// attached to a lab interface.
package labtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/demixdp/demixdp/internal/vethlab"
)

// Timeouts of Start.
const (
	// ReadyTimeout is how long Start waits for the ready line.
	ReadyTimeout = 20 * time.Second
	// CleanupGrace is how long the cleanup Start registers waits after
	// SIGINT before it kills a process the test left running.
	CleanupGrace = 5 * time.Second
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{} // absolute package dir -> binary path
)

// Main runs the tests of m and then removes the binaries Build made. Use it
// as `func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
		buildDir = ""
		built = map[string]string{}
	}
	return code
}

// goTool is the go command of the toolchain that built the test binary, or
// the one on PATH.
func goTool() string {
	//lint:ignore SA1019 the test binary runs where it was built, so GOROOT is meaningful
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err == nil {
		return g
	}
	return "go"
}

// Build compiles the main package in directory pkg (relative to the test's
// working directory, e.g. "." or "../kudp") once per test binary run and
// returns the path of the binary, named after the directory. It fails t if
// the build fails. Binaries live in one temporary directory that Main
// removes.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin, err := build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func build(pkg string) (string, error) {
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return "", err
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[abs]; ok {
		return bin, nil
	}
	if buildDir == "" {
		if buildDir, err = os.MkdirTemp("", "demixdp-labtest-"); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(buildDir, filepath.Base(abs))
	cmd := exec.Command(goTool(), "build", "-o", bin, ".")
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	built[abs] = bin
	return bin, nil
}

// Proc is a started command whose combined stdout and stderr the test can
// read while it runs.
type Proc struct {
	// Cmd is the running command.
	Cmd  *exec.Cmd
	name string
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error // exit status, valid after done

	lines  []string      // the lines after the ready line, under mu
	next   int           // how many of lines NextLine returned, under mu
	notify chan struct{} // a new entry in lines
}

// name is the base name of the program cmd runs, looking through
// `ip netns exec NS prog`.
func name(cmd *exec.Cmd) string {
	a := cmd.Args
	if len(a) >= 5 && filepath.Base(a[0]) == "ip" && a[1] == "netns" && a[2] == "exec" {
		return filepath.Base(a[4])
	}
	if len(a) > 0 {
		return filepath.Base(a[0])
	}
	return filepath.Base(cmd.Path)
}

// Start starts cmd with stdout and stderr both captured and waits up to
// ReadyTimeout for an output line containing ready. It fails t if cmd
// cannot start, exits first or stays silent. A cleanup stops the process if
// it still runs (SIGINT, then SIGKILL after CleanupGrace) and logs its
// output when the test failed.
func Start(t testing.TB, cmd *exec.Cmd, ready string) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, name: name(cmd), done: make(chan struct{}), notify: make(chan struct{}, 1)}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatal(err)
	}
	pw.Close()
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			if found {
				p.lines = append(p.lines, sc.Text())
			}
			p.mu.Unlock()
			if !found && strings.Contains(sc.Text(), ready) {
				found = true
				close(seen)
			}
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
		pr.Close()
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			// Gently first, so a libOS detaches its XDP program.
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.done:
			case <-time.After(CleanupGrace):
				cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.Output())
		}
	})
	select {
	case <-seen:
	case <-p.done:
		t.Fatalf("%s exited before %q (%v):\n%s", p.name, ready, p.err, p.Output())
	case <-time.After(ReadyTimeout):
		t.Fatalf("%s printed no %q in %v:\n%s", p.name, ready, ReadyTimeout, p.Output())
	}
	return p
}

// Output returns what the process printed so far, stdout and stderr
// interleaved, one "\n" after each line.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// NextLine returns the next line the process printed after its ready line,
// waiting up to within for it; successive calls return successive lines.
// It fails t if no line comes in time or the process exits without one.
func (p *Proc) NextLine(t testing.TB, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		p.mu.Lock()
		if p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			p.mu.Unlock()
			return l
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-p.done:
			p.mu.Lock()
			more := p.next < len(p.lines)
			p.mu.Unlock()
			if !more {
				t.Fatalf("%s exited (%v) without another line:\n%s", p.name, p.err, p.Output())
			}
		case <-deadline:
			t.Fatalf("no line from %s in %v:\n%s", p.name, within, p.Output())
		}
	}
}

// Stop sends sig and waits up to within for the process to exit; it
// returns the exit status (nil for status 0, an *exec.ExitError otherwise)
// and fails t if the signal cannot be sent or the process outlives within.
func (p *Proc) Stop(t testing.TB, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s still running %v after %v:\n%s", p.name, within, sig, p.Output())
		return nil
	}
}

// Wait waits up to within for the process to exit on its own and returns
// its exit status (nil for status 0, an *exec.ExitError otherwise). It
// fails t if the process is still running after within.
func (p *Proc) Wait(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s still running after %v:\n%s", p.name, within, p.Output())
		return nil
	}
}

// Run runs cmd to its end and returns its stdout, its stderr and its exit
// code. It fails t only if cmd cannot run at all.
func Run(t testing.TB, cmd *exec.Cmd) (stdout []byte, stderr string, code int) {
	t.Helper()
	var eb bytes.Buffer
	cmd.Stderr = &eb
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out, eb.String(), code
}

// ParseKV returns every key=value field of s (split on white space) as
// strings; a later key wins.
func ParseKV(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// ParseFloats returns the key=value fields of s whose value parses as a
// float64; others are left out, and a later key wins.
func ParseFloats(s string) map[string]float64 {
	m := map[string]float64{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				m[k] = x
			}
		}
	}
	return m
}

// ParseUints returns the key=value fields of s whose value parses as a
// uint64; others are left out, and a later key wins.
func ParseUints(s string) map[string]uint64 {
	m := map[string]uint64{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

// Counters parses the "group: key=value ..." lines of out (the counters the
// libOS commands print at exit) into "group.key" entries. Lines whose part
// before ": " contains a space, and values that are not unsigned integers,
// are left out.
func Counters(out string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		group, rest, ok := strings.Cut(line, ": ")
		if !ok || strings.Contains(group, " ") {
			continue
		}
		for k, n := range ParseUints(rest) {
			m[group+"."+k] = n
		}
	}
	return m
}

// Side names one end of a vethlab.Lab.
type Side int

// The two ends of a lab.
const (
	A Side = iota // IfA in NSA
	B             // IfB in NSB
)

// Run runs fn on a thread in side's namespace of lab.
func (side Side) Run(lab *vethlab.Lab, fn func() error) error {
	if side == B {
		return lab.RunInB(fn)
	}
	return lab.RunInA(fn)
}

// XDPAttached reports whether an XDP program is attached to the lab's
// interface on side, asking netlink inside that side's namespace. It fails
// t if netlink cannot answer.
func XDPAttached(t testing.TB, lab *vethlab.Lab, side Side) bool {
	t.Helper()
	index := lab.IndexA
	if side == B {
		index = lab.IndexB
	}
	var attached bool
	if err := side.Run(lab, func() error {
		l, err := netlink.LinkByIndex(index)
		if err != nil {
			return err
		}
		x := l.Attrs().Xdp
		attached = x != nil && x.Attached
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return attached
}

// KernelUDPEcho runs a kernel UDP echo server on at in side's namespace
// until the test ends, and returns the count of datagrams it echoed.
func KernelUDPEcho(t testing.TB, lab *vethlab.Lab, side Side, at netip.AddrPort) *atomic.Uint64 {
	t.Helper()
	var c *net.UDPConn
	if err := side.Run(lab, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var echoed atomic.Uint64
	go func() {
		b := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			if _, err := c.WriteToUDPAddrPort(b[:n], from); err == nil {
				echoed.Add(1)
			}
		}
	}()
	return &echoed
}
