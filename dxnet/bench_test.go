package dxnet_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
)

func TestMain(m *testing.M) {
	code := labtest.Main(m) // removes the binaries it built
	benchLab.close()
	os.Exit(code)
}

// Ports of the kernel servers the benchmarks talk to, in namespace B.
const (
	portEcho   = 7600 // sends back what it reads, 64 bytes at a time
	portSink   = 7601 // reads and discards
	portSource = 7602 // writes without end
)

// benchLab is one lab shared by every benchmark run of the test binary,
// with kernel servers in B; each benchmark opens its own stack or libOS
// in A.
var benchLab benchFixture

type benchFixture struct {
	once  sync.Once
	err   error
	lab   *vethlab.Lab
	lns   []net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	procs []*exec.Cmd
}

func sharedLab(b *testing.B) *vethlab.Lab {
	priv.Require(b, "veth lab and AF_XDP for the dxnet benchmarks")
	l := &benchLab
	l.once.Do(func() { l.err = l.open(labtest.Build(b, "../cmd/ktcp")) })
	if l.err != nil {
		b.Fatal(l.err)
	}
	return l.lab
}

// open builds the lab: ktcp echo and sink (processes of their own, as
// real peers are) and an in-process kernel source, all in B.
func (l *benchFixture) open(ktcp string) error {
	var err error
	if l.lab, err = vethlab.New(vethlab.Config{Name: "dnb"}); err != nil {
		return err
	}
	for _, srv := range []struct {
		cmd  string
		port uint16
	}{{"echo", portEcho}, {"sink", portSink}} {
		cmd := l.lab.CommandB(ktcp, srv.cmd, "-addr", netip.AddrPortFrom(l.lab.AddrB.Addr(), srv.port).String())
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		l.procs = append(l.procs, cmd)
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.Contains(line, "listening") {
			return fmt.Errorf("ktcp %s: %q %v", srv.cmd, line, err)
		}
		go io.Copy(io.Discard, out)
	}
	var ln net.Listener
	if err := l.lab.RunInB(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(l.lab.AddrB.Addr(), portSource).String())
		return err
	}); err != nil {
		return err
	}
	l.lns = append(l.lns, ln)
	l.wg.Add(1)
	go l.serve(ln, portSource)
	return nil
}

func (l *benchFixture) serve(ln net.Listener, port uint16) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			switch port {
			case portEcho:
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			case portSink:
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			case portSource:
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}
		}()
	}
}

func (l *benchFixture) close() {
	if l.lab == nil {
		return
	}
	for _, ln := range l.lns {
		ln.Close()
	}
	l.mu.Lock()
	for _, c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	for _, p := range l.procs {
		p.Process.Signal(os.Interrupt)
		p.Wait()
	}
	l.lab.Close()
}

// benchConn opens a stack in A and connects it to the kernel server on
// port in B.
func benchConn(b *testing.B, port uint16) (*dxnet.Stack, *dxnet.TCPConn) {
	lab := sharedLab(b)
	var st *dxnet.Stack
	if err := lab.RunInA(func() (err error) {
		st, err = dxnet.Open(libos.Config{Interface: lab.IfA, Addr: lab.AddrA})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	c, err := st.Dial("tcp", netip.AddrPortFrom(lab.AddrB.Addr(), port).String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return st, c.(*dxnet.TCPConn)
}

// BenchmarkTCPConnWrite: Write of 64 B and 64 KiB into a kernel reader,
// with allocs/op (0 in steady state).
func BenchmarkTCPConnWrite(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			_, c := benchConn(b, portSink)
			buf := make([]byte, size)
			for i := 0; i < 100; i++ { // warm up
				c.Write(buf)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTCPConnRead: Read with a 64 B and a 64 KiB buffer from a kernel
// writer that never stops (each Read returns what is there, up to the
// buffer), with allocs/op.
func BenchmarkTCPConnRead(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			_, c := benchConn(b, portSource)
			buf := make([]byte, size)
			for i := 0; i < 100; i++ {
				c.Read(buf)
			}
			b.ReportAllocs()
			b.ResetTimer()
			total := 0
			for i := 0; i < b.N; i++ {
				n, err := c.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				total += n
			}
			b.SetBytes(int64(total / max(b.N, 1)))
		})
	}
}

// BenchmarkEcho64 is one 64-byte request and its echo from a kernel echo
// server: through dxnet (Write, ReadFull) and through the libOS itself
// (Push, Pops, Wait) on the same lab. The difference is what the two
// cross-goroutine hand-offs of a dxnet exchange cost.
func BenchmarkEcho64(b *testing.B) {
	b.Run("dxnet", func(b *testing.B) {
		_, c := benchConn(b, portEcho)
		out, in := make([]byte, 64), make([]byte, 64)
		exchange := func() {
			if _, err := c.Write(out); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, in); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < 100; i++ {
			exchange()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			exchange()
		}
	})
	b.Run("libos", func(b *testing.B) {
		lab := sharedLab(b)
		var lib *libos.LibOS
		if err := lab.RunInA(func() (err error) {
			lib, err = libos.New(libos.Config{Interface: lab.IfA, Addr: lab.AddrA})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { lib.Close() })
		qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		lib.SetNoDelay(qd, true)
		qt, err := lib.Connect(qd, netip.AddrPortFrom(lab.AddrB.Addr(), portEcho))
		if err != nil {
			b.Fatal(err)
		}
		if r, err := lib.Wait(qt, 10*time.Second); err != nil || r.Opcode != libos.OpConnect {
			b.Fatalf("connect: %v %v", err, r.Err)
		}
		exchange := func() {
			sga, err := lib.SGAAlloc(64)
			if err != nil {
				b.Fatal(err)
			}
			push, err := lib.Push(qd, sga)
			lib.SGAFree(sga)
			if err != nil {
				b.Fatal(err)
			}
			for got := 0; got < 64; {
				pop, _ := lib.Pop(qd)
				r, err := lib.Wait(pop, 10*time.Second)
				if err != nil || r.Opcode != libos.OpPop {
					b.Fatalf("pop: %v %v", err, r.Err)
				}
				got += r.SGA.Len()
				lib.SGAFree(r.SGA)
			}
			if r, err := lib.Wait(push, 10*time.Second); err != nil || r.Opcode != libos.OpPush {
				b.Fatalf("push: %v %v", err, r.Err)
			}
		}
		for i := 0; i < 100; i++ {
			exchange()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			exchange()
		}
	})
}

// BenchmarkHandoff is one round trip through the loop goroutine with
// nothing to do there: the cost dxnet adds to every call it hands over.
func BenchmarkHandoff(b *testing.B) {
	lab := sharedLab(b)
	var st *dxnet.Stack
	if err := lab.RunInA(func() (err error) {
		st, err = dxnet.Open(libos.Config{Interface: lab.IfA, Addr: lab.AddrA})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h := dxnet.Handoff(st)
	for i := 0; i < 100; i++ {
		h()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h()
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
