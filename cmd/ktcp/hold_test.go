package main

// Lab test of `ktcp hold`: many connections from several source addresses
// of namespace B to a kernel echo server in A, every echoed byte checked.

import (
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// echoServerA runs a kernel echo server in namespace A in this process. The
// connection numbered corrupt (in accept order, from 1; 0: none) gets its
// first echoed byte flipped. It returns the server's address and the source
// addresses it accepted connections from.
func echoServerA(t *testing.T, lab *vethlab.Lab, corrupt int64) (netip.AddrPort, func() map[netip.Addr]int) {
	t.Helper()
	var ln *net.TCPListener
	if err := lab.RunInA(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(lab.AddrA.Addr(), 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	from := map[netip.Addr]int{}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			k := accepted.Add(1)
			mu.Lock()
			from[c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()]++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				first := true
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if first && k == corrupt {
							buf[0] ^= 0x40
						}
						first = false
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), func() map[netip.Addr]int {
		mu.Lock()
		defer mu.Unlock()
		m := map[netip.Addr]int{}
		for k, v := range from {
			m[k] = v
		}
		return m
	}
}

// startHold runs ktcp hold in namespace B with a pipe on its stdin.
func startHold(t *testing.T, lab *vethlab.Lab, args ...string) (*labtest.Proc, io.WriteCloser) {
	t.Helper()
	cmd := lab.CommandB(labtest.Build(t, "."), append([]string{"hold"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	return labtest.Start(t, cmd, "established"), stdin
}

func TestHoldEchoesFromSeveralAddresses(t *testing.T) {
	priv.Require(t, "veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	srcs := []netip.Prefix{netip.MustParsePrefix("198.51.100.3/24"), netip.MustParsePrefix("198.51.100.4/24")}
	if err := lab.AddAddrB(srcs...); err != nil {
		t.Fatal(err)
	}
	srv, from := echoServerA(t, lab, 0)
	const n = 300
	p, stdin := startHold(t, lab, "-remote", srv.String(), "-conns", "300", "-src", "198.51.100.3,198.51.100.4", "-size", "100")
	k := labtest.ParseUints(p.Output())
	if k["conns"] != n || k["addrs"] != 2 {
		t.Fatalf("established line: %s", p.Output())
	}
	for round := 0; round < 2; round++ {
		io.WriteString(stdin, "echo\n")
		line := p.NextLine(t, 2*holdTimeout)
		k := labtest.ParseUints(line)
		if !strings.HasPrefix(line, "echoed") || k["bad"] != 0 || k["bytes"] != n*100 {
			t.Fatalf("round %d: %s", round, line)
		}
	}
	io.WriteString(stdin, "close\n")
	if line := p.NextLine(t, holdTimeout); !strings.HasPrefix(line, "closed") {
		t.Fatalf("after close: %s", line)
	}
	if err := p.Wait(t, holdTimeout); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Output())
	}
	got := from()
	if got[srcs[0].Addr()] != n/2 || got[srcs[1].Addr()] != n/2 || len(got) != 2 {
		t.Errorf("the server saw connections from %v, want %d from each of %v", got, n/2, srcs)
	}
}

// TestHoldCatchesACorruptEcho: one flipped byte in 50 connections' echoes
// is reported and makes hold exit 1.
func TestHoldCatchesACorruptEcho(t *testing.T) {
	priv.Require(t, "veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	srv, _ := echoServerA(t, lab, 17)
	p, stdin := startHold(t, lab, "-remote", srv.String(), "-conns", "50")
	io.WriteString(stdin, "echo\n")
	line := p.NextLine(t, 2*holdTimeout)
	if k := labtest.ParseUints(line); k["bad"] != 1 {
		t.Fatalf("echo with one corrupt reply: %s", line)
	}
	stdin.Close() // end of input closes too
	err := p.Wait(t, holdTimeout)
	if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1\n%s", err, p.Output())
	}
}
