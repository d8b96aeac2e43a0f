package libos_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// labLibOS builds a lab and a LibOS on its A side. The kernel in A has no
// address in Dedicated mode; in Shared mode it has the libOS's address.
func labLibOS(t testing.TB, mode libos.Mode, tweak func(*libos.Config)) (*vethlab.Lab, *libos.LibOS) {
	t.Helper()
	lab := vethlab.ForTest(t, vethlab.Config{Name: "lo", KernelAddrA: mode == libos.Shared})
	cfg := libos.Config{Interface: lab.IfA, Addr: lab.AddrA, Mode: mode}
	if tweak != nil {
		tweak(&cfg)
	}
	var lib *libos.LibOS
	err := lab.RunInA(func() (err error) {
		lib, err = libos.New(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("libos.New: %v", err)
	}
	t.Cleanup(func() { lib.Close() })
	return lab, lib
}

// echoServer runs a zero-copy UDP echo on lib until stop is closed: each
// popped SGA is pushed back to its sender and freed at once.
func echoServer(lib *libos.LibOS, addr netip.AddrPort, ready chan<- error, stop <-chan struct{}) error {
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err == nil {
		err = lib.Bind(qd, addr)
	}
	ready <- err
	if err != nil {
		return err
	}
	pop, err := lib.Pop(qd)
	if err != nil {
		return err
	}
	toks := []libos.QToken{pop}
	for {
		select {
		case <-stop:
			return lib.CloseQueue(qd)
		default:
		}
		i, r, err := lib.WaitAny(toks, 20*time.Millisecond)
		if errors.Is(err, unix.ETIMEDOUT) {
			continue
		}
		if err != nil {
			return err
		}
		switch r.Opcode {
		case libos.OpPop:
			sga := r.SGA
			qt, err := lib.PushTo(qd, sga, sga.Addr)
			lib.SGAFree(sga) // free-protection keeps the frame until sent
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			if toks[0], err = lib.Pop(qd); err != nil {
				return err
			}
			toks = append(toks, qt)
		case libos.OpPush:
			toks = append(toks[:i], toks[i+1:]...)
		default:
			return fmt.Errorf("operation failed: %v", r.Err)
		}
	}
}

// startEcho runs echoServer in a goroutine. The returned function stops it
// and waits for it (it also runs on cleanup); only after it returns may the
// test touch lib, which is not safe for concurrent use.
func startEcho(t *testing.T, lib *libos.LibOS, addr netip.AddrPort) (stop func()) {
	t.Helper()
	ready, quit, done := make(chan error, 1), make(chan struct{}), make(chan error, 1)
	go func() { done <- echoServer(lib, addr, ready, quit) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(quit)
			if err := <-done; err != nil {
				t.Errorf("echo server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// dialB opens a kernel UDP socket in namespace B connected to to.
func dialB(t *testing.T, lab *vethlab.Lab, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := lab.RunInB(func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPEchoWithKernelClient100k(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	stop := startEcho(t, lib, srv)
	c := dialB(t, lab, srv)

	const total, window = 100000, 32
	rng := rand.New(rand.NewPCG(1, 2))
	sent := make(map[uint32][]byte, window)
	buf := make([]byte, 2048)
	next, got := 0, 0
	for got < total {
		for next < total && len(sent) < window {
			size := 1 + next%1472
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if size >= 4 {
				binary.BigEndian.PutUint32(p, uint32(next))
			}
			key := uint32(next)
			if size < 4 {
				key = uint32(next) | 1<<31 // tiny ones are matched by size+content below
			}
			sent[key] = p
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
			next++
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d replies (%d outstanding): %v", got, len(sent), err)
		}
		r := buf[:n]
		var key uint32
		if n >= 4 {
			key = binary.BigEndian.Uint32(r)
		} else {
			found := false
			for k, p := range sent {
				if k&(1<<31) != 0 && bytes.Equal(p, r) {
					key, found = k, true
					break
				}
			}
			if !found {
				t.Fatalf("unexpected %d-byte reply %x", n, r)
			}
		}
		want, ok := sent[key]
		if !ok || !bytes.Equal(want, r) {
			t.Fatalf("reply %d (%d bytes) does not match what was sent", key, n)
		}
		delete(sent, key)
		got++
	}
	stop()
	cs, err := lib.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if cs.OwnershipErrors != 0 || cs.BadDescs != 0 {
		t.Fatalf("datapath errors: %+v", cs)
	}
	if cs.RxDescs < total || cs.Completions < total {
		t.Fatalf("counters: rx %d completions %d", cs.RxDescs, cs.Completions)
	}
	t.Logf("rx %d tx %d kicks %d sleeps %d", cs.RxDescs, cs.TxDescs, cs.Kicks, cs.Sleeps)
}
