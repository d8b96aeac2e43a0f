package libos_test

// Scale (issue 10, "Memory"): tens of thousands of concurrent connections
// from the kernel peer on one libOS with the default configuration (4096
// frames). The kernel side runs in child processes (`ktcp hold`, one per
// source address of namespace B), so that neither its sockets count against
// this process's file descriptor limit nor its memory against the Go heap
// the benchmark measures.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// scaleGuard bounds each phase of a scale run: a safety net against a hang,
// never a performance assertion (a healthy run takes a small fraction).
const scaleGuard = 60 * time.Second

// scaleConn is the echo state of one connection of a scaleServer.
type scaleConn struct {
	pushes int32      // pushes not yet completed
	eof    bool       // the peer has closed its side
	held   *libos.SGA // refused with EAGAIN, pushed again later
}

// scaleServer is a libOS TCP echo server for many connections: it waits
// with WaitNext (WaitAny would look at every one of tens of thousands of
// tokens per call), echoes what each connection sends and closes a
// connection once its client has closed and everything is echoed. Its
// bookkeeping is allocated up front for the expected number of
// connections, so that what the heap grows by while connections arrive is
// the libOS's own memory. Its fields belong to its goroutine; the test
// reads them through do.
type scaleServer struct {
	calls  chan func(*libos.LibOS)
	quit   chan struct{}
	exited chan struct{}
	err    error // the loop's error, valid once exited is closed

	conns    map[libos.QD]scaleConn
	held     []libos.QD
	accepted int
	closed   int
	fails    []error

	lab *vethlab.Lab // if set, a failed await shows B's sockets of the open connections
}

func startScaleServer(t testing.TB, lib *libos.LibOS, addr netip.AddrPort, expect int) *scaleServer {
	t.Helper()
	s := &scaleServer{
		calls: make(chan func(*libos.LibOS)), quit: make(chan struct{}), exited: make(chan struct{}),
		conns: make(map[libos.QD]scaleConn, expect), held: make([]libos.QD, 0, 1024),
	}
	ready := make(chan error, 1)
	go func() {
		s.err = s.run(lib, addr, ready)
		close(s.exited)
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *scaleServer) stop(t testing.TB) {
	t.Helper()
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.exited
	if s.err != nil {
		t.Errorf("scale server: %v", s.err)
	}
}

// do runs f on the server's goroutine, between turns of its loop.
func (s *scaleServer) do(t testing.TB, f func(*libos.LibOS)) {
	t.Helper()
	done := make(chan struct{})
	select {
	case s.calls <- func(l *libos.LibOS) { f(l); close(done) }:
		<-done
	case <-s.exited:
		t.Fatalf("scale server gone: %v", s.err)
	}
}

// scaleState is a snapshot of the server and the libOS's counters.
type scaleState struct {
	accepted, open, closed int
	fails                  []error
	c                      libos.Counters
}

func (s *scaleServer) state(t testing.TB) scaleState {
	t.Helper()
	var st scaleState
	var err error
	s.do(t, func(l *libos.LibOS) {
		st = scaleState{accepted: s.accepted, open: len(s.conns), closed: s.closed, fails: append([]error(nil), s.fails...)}
		st.c, err = l.Counters()
	})
	if err != nil {
		t.Fatalf("counters: %v", err)
	}
	return st
}

// await polls the server's state until cond holds, failing t after
// scaleGuard.
func (s *scaleServer) await(t testing.TB, what string, cond func(scaleState) bool) scaleState {
	t.Helper()
	deadline := time.Now().Add(scaleGuard)
	for {
		st := s.state(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			c := st.c
			t.Fatalf("%s: not after %v: accepted %d open %d closed %d fails %d\ntcp %+v\nlibos rx %d tx %d completions %d kicks %d fill_starved %d sga_nobufs %d tx_ring_full %d sleeps %d\nxdp %+v\npool %+v\n%s",
				what, scaleGuard, st.accepted, st.open, st.closed, len(st.fails), c.TCP,
				c.RxDescs, c.TxDescs, c.Completions, c.Kicks, c.FillStarved, c.SGANoBufs, c.TxRingFull, c.Sleeps, c.XDP, c.Pool,
				s.describeOpen(t, 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describeOpen says what the libOS knows of up to n connections the
// server still holds open (for the message of a failed wait).
func (s *scaleServer) describeOpen(t testing.TB, n int) string {
	t.Helper()
	var b strings.Builder
	var peers []netip.AddrPort
	s.do(t, func(l *libos.LibOS) {
		for qd, c := range s.conns {
			if n == 0 {
				break
			}
			n--
			la, _ := l.LocalAddr(qd)
			ra, _ := l.RemoteAddr(qd)
			qc, err := l.QueueCounters(qd)
			fmt.Fprintf(&b, "open queue %d %v <- %v: pushes %d eof %v held %v; %+v %v\n", qd, la, ra, c.pushes, c.eof, c.held != nil, qc, err)
			peers = append(peers, ra)
		}
	})
	if s.lab != nil { // what the kernel in B knows of them
		b.WriteString("kernel B:")
		for _, name := range []string{"TCPAbortOnData", "TCPAbortOnClose", "TCPAbortOnMemory", "TCPAbortOnTimeout", "TCPAbortFailed"} {
			fmt.Fprintf(&b, " %s=%d", name, netstatB(t, s.lab, name))
		}
		b.WriteString("\n")
		out, _ := s.lab.CommandB("ss", "-tanoi").CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			for _, p := range peers {
				if strings.Contains(line, " "+p.String()+" ") {
					fmt.Fprintf(&b, "kernel B: %s\n", strings.Join(strings.Fields(line), " "))
				}
			}
		}
	}
	return b.String()
}

func (s *scaleServer) run(lib *libos.LibOS, addr netip.AddrPort, ready chan<- error) error {
	lqd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err == nil {
		err = lib.Bind(lqd, addr)
	}
	if err == nil {
		err = lib.Listen(lqd, 4096)
	}
	ready <- err
	if err != nil {
		return err
	}
	if _, err := lib.Accept(lqd); err != nil {
		return err
	}
	push := func(qd libos.QD, c *scaleConn, sga *libos.SGA) error {
		_, err := lib.Push(qd, sga)
		if errors.Is(err, unix.EAGAIN) {
			c.held = sga
			s.held = append(s.held, qd)
			return nil
		}
		lib.SGAFree(sga)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		c.pushes++
		_, err = lib.Pop(qd)
		return err
	}
	closeConn := func(qd libos.QD, c scaleConn) {
		if c.held != nil {
			lib.SGAFree(c.held)
		}
		lib.CloseQueue(qd)
		delete(s.conns, qd)
		s.closed++
	}
	out := make([]libos.Result, 256)
	for {
		select {
		case <-s.quit:
			for qd, c := range s.conns {
				closeConn(qd, c)
			}
			return lib.CloseQueue(lqd)
		case f := <-s.calls:
			f(lib)
			continue
		default:
		}
		n, err := lib.WaitNext(out, 2*time.Millisecond)
		if errors.Is(err, unix.ETIMEDOUT) {
			retry := s.held
			s.held = s.held[len(s.held):]
			for _, qd := range retry {
				c, ok := s.conns[qd]
				if !ok || c.held == nil {
					continue
				}
				sga := c.held
				c.held = nil
				if err := push(qd, &c, sga); err != nil {
					return err
				}
				s.conns[qd] = c
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, r := range out[:n] {
			switch r.Opcode {
			case libos.OpAccept:
				s.accepted++
				s.conns[r.NewQD] = scaleConn{}
				if _, err := lib.Pop(r.NewQD); err != nil {
					return err
				}
				if _, err := lib.Accept(lqd); err != nil {
					return err
				}
			case libos.OpPop:
				c, ok := s.conns[r.QD]
				if !ok {
					lib.SGAFree(r.SGA)
					continue
				}
				if len(r.SGA.Segs) == 0 {
					lib.SGAFree(r.SGA)
					c.eof = true
					if c.pushes == 0 && c.held == nil {
						closeConn(r.QD, c)
						continue
					}
				} else if err := push(r.QD, &c, r.SGA); err != nil {
					return err
				}
				s.conns[r.QD] = c
			case libos.OpPush:
				c, ok := s.conns[r.QD]
				if !ok {
					continue
				}
				c.pushes--
				if sga := c.held; sga != nil {
					c.held = nil
					if err := push(r.QD, &c, sga); err != nil {
						return err
					}
				}
				if c.eof && c.pushes == 0 && c.held == nil {
					closeConn(r.QD, c)
					continue
				}
				s.conns[r.QD] = c
			case libos.OpFailed:
				if r.QD == lqd {
					return fmt.Errorf("accept: %w", r.Err)
				}
				if c, ok := s.conns[r.QD]; ok && !errors.Is(r.Err, unix.ECANCELED) {
					s.fails = append(s.fails, fmt.Errorf("queue %d: %w", r.QD, r.Err))
					closeConn(r.QD, c)
				}
			}
		}
	}
}

// buildKTCP builds cmd/ktcp, the kernel peer, into a directory of t's.
func buildKTCP(t testing.TB) string {
	t.Helper()
	//lint:ignore SA1019 the test binary runs where it was built, so GOROOT is meaningful
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	bin := filepath.Join(t.TempDir(), "ktcp")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../cmd/ktcp").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/ktcp: %v\n%s", err, out)
	}
	return bin
}

// kernelHolder is one `ktcp hold` child in namespace B.
type kernelHolder struct {
	p     *labtest.Proc
	stdin io.WriteCloser
}

// holdFrom starts one `ktcp hold` per source address, each opening conns
// connections to srv, and waits until every one has established them all.
func holdFrom(t testing.TB, lab *vethlab.Lab, bin string, srv netip.AddrPort, srcs []netip.Addr, conns int) []kernelHolder {
	t.Helper()
	hs := make([]kernelHolder, len(srcs))
	for i, a := range srcs {
		cmd := lab.CommandB(bin, "hold", "-remote", srv.String(), "-src", a.String(),
			"-conns", strconv.Itoa(conns), "-parallel", "32", "-size", "16")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close() })
		hs[i] = kernelHolder{labtest.Start(t, cmd, "dialling"), stdin}
	}
	for _, h := range hs {
		line := h.p.NextLine(t, scaleGuard)
		if k := labtest.ParseUints(line); !strings.HasPrefix(line, "established") || k["conns"] != uint64(conns) {
			t.Fatalf("ktcp hold: %s", line)
		}
	}
	return hs
}

// command sends cmd to every holder and returns the line each answers.
func command(t testing.TB, hs []kernelHolder, cmd string) []string {
	t.Helper()
	for _, h := range hs {
		if _, err := io.WriteString(h.stdin, cmd+"\n"); err != nil {
			t.Fatalf("ktcp hold %s: %v", cmd, err)
		}
	}
	lines := make([]string, len(hs))
	for i, h := range hs {
		lines[i] = h.p.NextLine(t, scaleGuard)
	}
	return lines
}

// extraAddrs adds n addresses 198.51.100.3.. to namespace B and returns
// them.
func extraAddrs(t testing.TB, lab *vethlab.Lab, n int) []netip.Addr {
	t.Helper()
	var ps []netip.Prefix
	var as []netip.Addr
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(3 + i)})
		ps = append(ps, netip.PrefixFrom(a, lab.AddrB.Bits()))
		as = append(as, a)
	}
	if err := lab.AddAddrB(ps...); err != nil {
		t.Fatal(err)
	}
	return as
}

// netstatB reads one TcpExt counter of namespace B's kernel
// (/proc/net/netstat).
func netstatB(t testing.TB, lab *vethlab.Lab, name string) uint64 {
	t.Helper()
	var v uint64
	err := lab.RunInB(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/netstat")
		if err != nil {
			return err
		}
		var hdr []string
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 || f[0] != "TcpExt:" {
				continue
			}
			if hdr == nil {
				hdr = f
				continue
			}
			for i, h := range hdr {
				if h == name && i < len(f) {
					v, err = strconv.ParseUint(f[i], 10, 64)
					return err
				}
			}
		}
		return fmt.Errorf("no TcpExt: %s", name)
	})
	if err != nil {
		t.Fatalf("netstat in B: %v", err)
	}
	return v
}

// heapAfterGC is the live Go heap after two full collections.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestTCP20kConcurrentConnections: 20,000 kernel connections from four
// source addresses of namespace B at once on one libOS with the default
// 4096 frames; 16 bytes echoed and checked on every one (twice), then all
// closed by the clients. Afterwards every connection the server accepted
// has been closed, none failed, and the TCP engine holds no frame.
func TestTCP20kConcurrentConnections(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	const perAddr, addrs = 5000, 4
	const total = perAddr * addrs
	srcs := extraAddrs(t, lab, addrs)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	s := startScaleServer(t, lib, srv, total)
	s.lab = lab
	bin := buildKTCP(t)
	synRetrans0 := netstatB(t, lab, "TCPSynRetrans")
	heap0 := heapAfterGC()

	t0 := time.Now()
	hs := holdFrom(t, lab, bin, srv, srcs, perAddr)
	up := s.await(t, "all accepted", func(st scaleState) bool { return st.accepted >= total })
	tOpen := time.Since(t0)
	if up.accepted != total || up.open != total || len(up.fails) != 0 {
		t.Fatalf("after opening: accepted %d open %d fails %v", up.accepted, up.open, up.fails)
	}
	heapUp := heapAfterGC()

	t1 := time.Now()
	for round := 1; round <= 2; round++ {
		for _, line := range command(t, hs, "echo") {
			k := labtest.ParseUints(line)
			if !strings.HasPrefix(line, "echoed") || k["bad"] != 0 || k["bytes"] != perAddr*16 {
				t.Fatalf("echo round %d: %s", round, line)
			}
		}
	}
	tEcho := time.Since(t1)
	mid := s.state(t)

	t2 := time.Now()
	for _, line := range command(t, hs, "close") {
		if !strings.HasPrefix(line, "closed") {
			t.Fatalf("close: %s", line)
		}
	}
	for _, h := range hs {
		if err := h.p.Wait(t, scaleGuard); err != nil {
			t.Fatalf("ktcp hold: %v\n%s", err, h.p.Output())
		}
	}
	end := s.await(t, "all closed, no frame held", func(st scaleState) bool {
		return st.open == 0 && st.c.TCP.FramesHeld == 0 && st.c.TCP.Holders == 0
	})
	tClose := time.Since(t2)
	heapEnd := heapAfterGC()

	c := end.c
	t.Logf("%d connections from %d addresses: opened in %v, 2 echo rounds in %v, closed in %v (total %v)",
		total, addrs, tOpen.Round(time.Millisecond), tEcho.Round(time.Millisecond), tClose.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	t.Logf("heap: %d MB before, %d MB with %d connections up (%d B/conn), %d MB after closing",
		heap0>>20, heapUp>>20, total, (int64(heapUp)-int64(heap0))/total, heapEnd>>20)
	t.Logf("kernel B: TCPSynRetrans +%d; tcp: established %d syn_cookies %d/%d/%d accept_queue_full %d rcv_pressure_drops %d retransmits %d rtos %d out_of_window %d rsts_out %d paws %d reclaims %d max_conn_frames(mid) %d holders(mid) %d",
		netstatB(t, lab, "TCPSynRetrans")-synRetrans0, c.TCP.ConnsEstablished, c.TCP.SynCookiesSent, c.TCP.SynCookiesOK, c.TCP.SynCookiesBad,
		c.TCP.AcceptQueueFull, c.TCP.RcvPressureDrops, c.TCP.Retransmits, c.TCP.RTOs, c.TCP.OutOfWindow, c.TCP.RSTsOut, c.TCP.PAWSDropped,
		c.TCP.Reclaims, mid.c.TCP.MaxConnFrames, mid.c.TCP.Holders)
	t.Logf("kernel B: TCPAbortOnData %d TCPAbortOnClose %d TCPAbortOnMemory %d TCPAbortOnTimeout %d",
		netstatB(t, lab, "TCPAbortOnData"), netstatB(t, lab, "TCPAbortOnClose"), netstatB(t, lab, "TCPAbortOnMemory"), netstatB(t, lab, "TCPAbortOnTimeout"))
	t.Logf("libos: fill_starved %d sga_nobufs %d tx_ring_full %d; xdp: rx_dropped %d rx_ring_full %d fill_ring_empty %d",
		c.FillStarved, c.SGANoBufs, c.TxRingFull, c.XDP.RxDropped, c.XDP.RxRingFull, c.XDP.RxFillRingEmptyDescs)

	if end.accepted != total || end.closed != total || len(end.fails) != 0 {
		t.Errorf("accepted %d, closed %d (want %d each), failures %v", end.accepted, end.closed, total, end.fails)
	}
	if c.TCP.ConnsReset != 0 || c.TCP.ConnsTimedOut != 0 {
		t.Errorf("connections reset %d, timed out %d; want none", c.TCP.ConnsReset, c.TCP.ConnsTimedOut)
	}
	if c.OwnershipErrors != 0 || c.BadDescs != 0 || c.Pool.DoubleFrees != 0 || c.Pool.BadTransitions != 0 || c.Pool.Foreign != 0 {
		t.Errorf("frame errors: ownership %d bad_descs %d pool %+v", c.OwnershipErrors, c.BadDescs, c.Pool)
	}
}

// BenchmarkIdleConnHeap measures the Go heap an idle established TCP
// connection costs the libOS, at 10,000 connections opened by the kernel
// in namespace B (two `ktcp hold` child processes, so none of the kernel
// side's memory is in this heap). Each connection is accepted and has a
// Pop pending, as in a server waiting for requests; the server's own
// bookkeeping is allocated before the first measurement. Reports B/conn
// (live heap after GC with the connections up, minus before, per
// connection; frames are UMEM, outside the Go heap) and the rate at which
// the connections were established and accepted.
func BenchmarkIdleConnHeap(b *testing.B) {
	lab, lib := labLibOS(b, libos.Dedicated, nil)
	const perAddr, addrs = 5000, 2
	const total = perAddr * addrs
	srcs := extraAddrs(b, lab, addrs)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	s := startScaleServer(b, lib, srv, total)
	bin := buildKTCP(b)
	var perConn, rate float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		base := s.state(b).accepted
		before := heapAfterGC()
		t0 := time.Now()
		hs := holdFrom(b, lab, bin, srv, srcs, perAddr)
		s.await(b, "all accepted", func(st scaleState) bool { return st.accepted >= base+total })
		el := time.Since(t0)
		after := heapAfterGC()
		perConn += (float64(after) - float64(before)) / total
		rate += total / el.Seconds()
		for _, line := range command(b, hs, "close") {
			if !strings.HasPrefix(line, "closed") {
				b.Fatalf("close: %s", line)
			}
		}
		for _, h := range hs {
			if err := h.p.Wait(b, scaleGuard); err != nil {
				b.Fatalf("ktcp hold: %v", err)
			}
		}
		s.await(b, "all closed", func(st scaleState) bool { return st.open == 0 && st.c.TCP.FramesHeld == 0 })
	}
	b.ReportMetric(perConn/float64(b.N), "B/conn")
	b.ReportMetric(rate/float64(b.N), "conns/s")
}
