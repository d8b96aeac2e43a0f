package main

// Lab tests of the frame budgets seen from outside: clients that never
// read cannot starve the others, and idle connections are closed.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"golang.org/x/sys/unix"
)

// tcpInfo reads the kernel's TCP_INFO of c.
func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return nil, err
	}
	return info, ierr
}

// snapshot asks the running tcp-echo for its counters (SIGUSR1) and parses
// the lines it prints, up to the libos.tcp group.
func snapshot(t *testing.T, p *labtest.Proc) map[string]uint64 {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		line := p.NextLine(t, 10*time.Second)
		b.WriteString(line + "\n")
		if strings.HasPrefix(line, "libos.tcp:") {
			return labtest.Counters(b.String())
		}
	}
}

// TestClientsThatNeverReadCannotStarveTheOthers: 32 kernel clients each
// send up to 4 MB and never read their echoes, and keep their connections
// open; then 20 fresh clients each echo 100 KB, byte for byte, every one.
// tcp-echo runs with the default frames and no idle timeout, so only the
// frame budgets protect the fresh clients; its counters show what the
// stuck clients hold: at most their share each.
func TestClientsThatNeverReadCannotStarveTheOthers(t *testing.T) {
	priv.Require(t, "tcp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "tf"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	p := startEcho(t, lab, "-addr", srv.String(), "-idle-timeout", "0")
	const hogs, hogBytes, fresh, freshBytes = 32, 4 << 20, 20, 100 << 10
	hc := make([]*net.TCPConn, hogs)
	for i := range hc {
		c, err := dial(lab, srv)
		if err != nil {
			t.Fatalf("hog %d: %v", i, err)
		}
		defer c.Close()
		hc[i] = c
		go func() {
			buf := make([]byte, 64<<10)
			for left := hogBytes; left > 0; left -= len(buf) {
				if _, err := c.Write(buf); err != nil {
					return // closed at the end of the test
				}
			}
		}()
	}
	// Wait until every hog is stuck: tcp-echo has closed its window (the
	// kernel sees a send window smaller than one segment: what window
	// scaling leaves of the last edge advertised).
	for i, c := range hc {
		deadline := time.Now().Add(time.Minute) // against a hang only
		for {
			info, err := tcpInfo(c)
			if err != nil {
				t.Fatal(err)
			}
			if info.Snd_wnd < info.Snd_mss {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("hog %d: the server's window never closed (send window %d, %d bytes acked)", i, info.Snd_wnd, info.Bytes_acked)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := snapshot(t, p)
	t.Logf("%d stuck clients hold %d frames (most in one direction of one connection: %d; share now %d, held by %d connections; %d frames spilled in %d reclaims)",
		hogs, before["libos.tcp.frames_held"], before["libos.tcp.max_conn_frames"], before["libos.tcp.share_frames"], before["libos.tcp.holders"],
		before["libos.tcp.spilled_frames"], before["libos.tcp.reclaims"])
	if before["libos.tcp.holders"] < hogs {
		t.Fatalf("%d connections hold frames, want the %d stuck ones at least", before["libos.tcp.holders"], hogs)
	}
	if m, s := before["libos.tcp.max_conn_frames"], before["libos.tcp.share_frames"]; m > s {
		t.Errorf("a stuck connection holds %d frames in one direction, more than its share %d", m, s)
	}
	errs := make(chan error, fresh)
	var wg sync.WaitGroup
	for i := 0; i < fresh; i++ {
		c, err := dial(lab, srv)
		if err != nil {
			t.Fatalf("fresh client %d: %v", i, err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoThrough(c, freshBytes, 16<<10, uint64(1000+i)); err != nil {
				errs <- fmt.Errorf("fresh client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after := snapshot(t, p)
	t.Logf("after the fresh clients: %d frames held by %d connections, most %d in one direction, share %d; pressure drops %d",
		after["libos.tcp.frames_held"], after["libos.tcp.holders"], after["libos.tcp.max_conn_frames"], after["libos.tcp.share_frames"], after["libos.tcp.rcv_pressure_drops"])
	if m, s := after["libos.tcp.max_conn_frames"], after["libos.tcp.share_frames"]; m > s {
		t.Errorf("a stuck connection holds %d frames in one direction, more than its share %d", m, s)
	}
	if after["echo.closed"] != fresh {
		t.Errorf("closed %d connections, want the %d fresh ones", after["echo.closed"], fresh)
	}
	// The stuck connections are still open: tcp-echo aborts them at exit.
	k := stopEcho(t, lab, p, syscall.SIGINT)
	if k["echo.aborted"] != hogs {
		t.Errorf("aborted %d connections at exit, want the %d stuck ones", k["echo.aborted"], hogs)
	}
}

// TestIdleTimeoutClosesStuckConnections: with -idle-timeout 1s a client
// that sends and never reads is reset once its connection has made no
// progress for that long; the server goes on serving new clients.
func TestIdleTimeoutClosesStuckConnections(t *testing.T) {
	priv.Require(t, "tcp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ti"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	p := startEcho(t, lab, "-addr", srv.String(), "-idle-timeout", "1s")
	hog, err := dial(lab, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	wdone := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := hog.Write(buf); err != nil {
				wdone <- err
				return
			}
		}
	}()
	// The hog's writes fail once the server has reset it.
	select {
	case err := <-wdone:
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("the stuck client's write failed with %v, want a reset", err)
		}
	case <-time.After(time.Minute): // against a hang only
		t.Fatal("the stuck client was never reset")
	}
	c, err := dial(lab, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoThrough(c, 256<<10, 16<<10, 5); err != nil {
		t.Fatalf("a new client after the reset: %v", err)
	}
	k := stopEcho(t, lab, p, syscall.SIGINT)
	if k["echo.idle_closed"] != 1 || k["echo.closed"] != 1 {
		t.Errorf("idle_closed %d closed %d, want 1 and 1", k["echo.idle_closed"], k["echo.closed"])
	}
}
