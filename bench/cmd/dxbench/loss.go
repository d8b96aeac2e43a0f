package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/demixdp/demixdp/internal/lossy"
)

// tcpLoss is the tcp_loss workload (issue 10): on one connection to the
// echo service, stream total pseudo-random bytes and read them back at the
// same time, with the fraction rate of the frames in each direction dropped
// at iface (this namespace's end of the lab veth, internal/lossy), and
// check every byte (SHA-256). The loss is attached once the connection is
// up, so a lost SYN does not put a 1 s timeout into the figure. The result
// is the time until the last byte came back, and the loss injector's
// counters (IPv4 frames dropped and passed, both directions).
func tcpLoss(dial dialer, iface string, rate float64, total int64) (runResult, lossy.Counters, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return runResult{}, lossy.Counters{}, fmt.Errorf("tcp_loss: -loss-iface: %w", err)
	}
	// The kernel copies the interface's GSO limits into a socket when it
	// connects, so they must be low before the dial for every segment of
	// this end to be one frame at the loss program (see package lossy).
	g, err := lossy.LimitGSO(ifi.Index)
	if err != nil {
		return runResult{}, lossy.Counters{}, err
	}
	defer g.Restore()
	c, err := dial()
	if err != nil {
		return runResult{}, lossy.Counters{}, err
	}
	defer c.Close()
	cw, ok := c.(closeWriter)
	if !ok {
		return runResult{}, lossy.Counters{}, errors.New("tcp_loss: connection cannot half-close")
	}
	l, err := lossy.Attach(ifi.Index, rate)
	if err != nil {
		return runResult{}, lossy.Counters{}, err
	}
	defer l.Close()
	sent := sha256.New()
	werr := make(chan error, 1)
	start := time.Now()
	go func() {
		rng := rand.New(rand.NewPCG(uint64(total), 10))
		buf := make([]byte, 256<<10)
		for left := total; left > 0; {
			n := min(left, int64(len(buf)))
			for i := int64(0); i < n; i += 8 {
				v := rng.Uint64()
				for j := int64(0); j < 8 && i+j < n; j++ {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			sent.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				werr <- err
				return
			}
			left -= n
		}
		werr <- cw.CloseWrite()
	}()
	got := sha256.New()
	c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	n, err := io.Copy(got, c)
	el := time.Since(start)
	if err != nil {
		return runResult{}, lossy.Counters{}, fmt.Errorf("tcp_loss: reading the echo after %d bytes: %w", n, err)
	}
	if err := <-werr; err != nil {
		return runResult{}, lossy.Counters{}, fmt.Errorf("tcp_loss: writing: %w", err)
	}
	if n != total || !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		return runResult{}, lossy.Counters{}, fmt.Errorf("tcp_loss: %d of %d bytes came back, SHA-256 equal: %v", n, total, bytes.Equal(sent.Sum(nil), got.Sum(nil)))
	}
	lc, err := l.Counters()
	if err != nil {
		return runResult{}, lc, fmt.Errorf("tcp_loss: loss counters: %w", err)
	}
	return runResult{received: int(n), elapsed: el, rate: float64(n) * 8 / el.Seconds() / 1e9}, lc, nil
}
