package labtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
)

// QueueLines parses the "queue N: key=value ..." lines the libOS commands
// print at exit, one per NIC queue, into their unsigned values by queue.
func QueueLines(out string) map[int]map[string]uint64 {
	m := map[int]map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		head, rest, ok := strings.Cut(line, ": ")
		q, isQueue := strings.CutPrefix(head, "queue ")
		if !ok || !isQueue {
			continue
		}
		n, err := strconv.Atoi(q)
		if err != nil {
			continue
		}
		m[n] = ParseUints(rest)
	}
	return m
}

// UDPEchoFlows sends per datagrams of random sizes (8 to 1471 bytes) from
// each of sockets kernel UDP sockets in namespace B, one at a time per
// socket and all sockets at once, to an echo at to, and checks every echo
// byte for byte. Each socket is its own source port, which B's kernel
// hashes onto one of its transmit queues, that is one of A's receive
// queues. One exchange goes first, alone, so that B has resolved A's
// address before the burst (until then B's kernel queues only about 100
// datagrams). A datagram with no echo within 2 s is sent again, at most
// 4 times (a safety net; the retries are returned, and the count of
// datagrams the echo should have seen is sockets*per+retries+1).
func UDPEchoFlows(t testing.TB, lab *vethlab.Lab, to netip.AddrPort, sockets, per int, seed uint64) (retries int) {
	t.Helper()
	cs := make([]*net.UDPConn, sockets)
	err := lab.RunInB(func() error {
		for i := range cs {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
			if err != nil {
				return err
			}
			cs[i] = c
		}
		return nil
	})
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	cs[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := cs[0].Write([]byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	if n, err := cs[0].Read(buf); err != nil || string(buf[:n]) != "warm-up" {
		t.Fatalf("warm-up echo: %q %v", buf[:n], err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, sockets)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			rbuf := make([]byte, 2048)
			for k := range per {
				p := make([]byte, 8+rng.IntN(1464))
				for j := range p {
					p[j] = byte(rng.Uint32())
				}
				p[0], p[1], p[2], p[3] = byte(i), byte(i>>8), byte(k), byte(k>>8)
				for try := 0; ; try++ {
					if try == 5 {
						errs <- fmt.Errorf("socket %d datagram %d: no echo after %d tries", i, k, try)
						return
					}
					if try > 0 {
						mu.Lock()
						retries++
						mu.Unlock()
					}
					if _, err := c.Write(p); err != nil {
						errs <- err
						return
					}
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := c.Read(rbuf)
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							continue
						}
						errs <- err
						return
					}
					if !bytes.Equal(rbuf[:n], p) {
						if n < 4 || bytes.Equal(rbuf[:4], p[:4]) {
							errs <- fmt.Errorf("socket %d datagram %d: echo differs (%d bytes, sent %d)", i, k, n, len(p))
							return
						}
						continue // a late echo of an earlier try
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return retries
}
