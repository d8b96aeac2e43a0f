package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
)

// maxDatagram is the largest payload the client sends (IPv4, no options,
// 1500-byte MTU: 1500-20-8).
const maxDatagram = 1472

// clientConfig describes one client run.
type clientConfig struct {
	n           int // round trips
	minSize     int // payload sizes cycle minSize..maxSize
	maxSize     int
	outstanding int           // datagrams in flight at most
	verify      bool          // compare every byte of every reply
	timeout     time.Duration // per-request timeout before a retransmission
	retries     int           // retransmissions before a request counts as lost
	seed        uint64        // payload seed
}

// result is what a run measured.
type result struct {
	sent, received, lost, bad, dup, retransmits uint64
	rtts                                        []time.Duration
	elapsed                                     time.Duration
}

// size is the payload size of request seq.
func (c *clientConfig) size(seq uint64) int {
	return c.minSize + int(seq%uint64(c.maxSize-c.minSize+1))
}

// seqPrefix is the (possibly truncated) sequence number at the start of p.
func seqPrefix(p []byte) uint64 {
	var s [8]byte
	copy(s[:], p)
	return binary.LittleEndian.Uint64(s[:])
}

// truncMask keeps the bytes of a sequence number that fit in n bytes.
func truncMask(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(n)) - 1
}

type slot struct {
	seq    uint64
	sentAt time.Time
	tries  int
	active bool
}

// udpConn is what the client needs from a connected UDP socket.
type udpConn interface {
	Write([]byte) (int, error)
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}

// runClient runs cfg.n round trips over c, a socket connected to the echo.
func runClient(c udpConn, cfg clientConfig) (result, error) {
	if cfg.outstanding < 1 {
		cfg.outstanding = 1
	}
	if cfg.minSize < 8 && cfg.outstanding > 256 {
		// Replies shorter than 8 bytes are matched by their truncated
		// sequence number, which must be unique among those in flight.
		cfg.outstanding = 256
	}
	r := result{rtts: make([]time.Duration, 0, cfg.n)}
	slots := make([]slot, cfg.outstanding)
	out := make([]byte, maxDatagram)
	want := make([]byte, maxDatagram)
	buf := make([]byte, 65536)
	var next uint64
	inFlight := 0

	send := func(s *slot) error {
		p := out[:cfg.size(s.seq)]
		cli.Payload(p, cfg.seed, s.seq)
		s.sentAt = time.Now()
		_, err := c.Write(p)
		if err != nil && isTransient(err) {
			err = nil // counts as a loss the timeout will retry
		}
		return err
	}
	start := time.Now()
	for {
		for i := range slots {
			if !slots[i].active && next < uint64(cfg.n) {
				slots[i] = slot{seq: next, active: true}
				next++
				inFlight++
				r.sent++
				if err := send(&slots[i]); err != nil {
					return r, err
				}
			}
		}
		if inFlight == 0 {
			break
		}
		earliest := time.Time{}
		for i := range slots {
			if slots[i].active && (earliest.IsZero() || slots[i].sentAt.Before(earliest)) {
				earliest = slots[i].sentAt
			}
		}
		if err := c.SetReadDeadline(earliest.Add(cfg.timeout)); err != nil {
			return r, err
		}
		n, err := c.Read(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				for i := range slots {
					s := &slots[i]
					if !s.active || now.Sub(s.sentAt) < cfg.timeout {
						continue
					}
					if s.tries >= cfg.retries {
						s.active = false
						inFlight--
						r.lost++
						continue
					}
					s.tries++
					r.retransmits++
					if err := send(s); err != nil {
						return r, err
					}
				}
				continue
			}
			if isTransient(err) { // e.g. ECONNREFUSED from an ICMP error
				continue
			}
			return r, err
		}
		reply := buf[:n]
		i := match(slots, &cfg, reply)
		if i < 0 {
			if r.retransmits > 0 && isDuplicate(&cfg, reply, next, want) {
				r.dup++ // a second answer to a request that was sent again
			} else {
				r.bad++
			}
			continue
		}
		s := &slots[i]
		s.active = false
		inFlight--
		if cfg.verify {
			w := want[:n]
			cli.Payload(w, cfg.seed, s.seq)
			if string(w) != string(reply) {
				r.bad++
				continue
			}
		}
		r.received++
		r.rtts = append(r.rtts, now.Sub(s.sentAt))
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// match finds the in-flight request reply answers: same size, same
// (possibly truncated) sequence number. It returns -1 if none.
func match(slots []slot, cfg *clientConfig, reply []byte) int {
	m := truncMask(len(reply))
	v := seqPrefix(reply) & m
	for i := range slots {
		s := &slots[i]
		if s.active && s.seq&m == v && cfg.size(s.seq) == len(reply) {
			return i
		}
	}
	return -1
}

// isTransient reports errors a connected UDP socket returns for a lost or
// refused datagram (an ICMP port unreachable, a full queue): the request
// timeout deals with those.
// dupWindow is how far back isDuplicate looks for the request a reply answers.
const dupWindow = 4096

// isDuplicate reports whether reply is, byte for byte, the datagram of one
// of the last dupWindow requests sent (before next), i.e. an extra answer
// rather than a corrupt one. scratch must hold maxDatagram bytes.
func isDuplicate(cfg *clientConfig, reply []byte, next uint64, scratch []byte) bool {
	if len(reply) < cfg.minSize || len(reply) > cfg.maxSize {
		return false
	}
	m := truncMask(len(reply))
	v := seqPrefix(reply) & m
	w := scratch[:len(reply)]
	for s := next; s > 0 && next-s < dupWindow; {
		s--
		if s&m != v || cfg.size(s) != len(reply) {
			continue
		}
		cli.Payload(w, cfg.seed, s)
		if string(w) == string(reply) {
			return true
		}
	}
	return false
}

func isTransient(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOBUFS)
}

// summary is the one-line, machine-readable report.
func (r *result) summary() string {
	slices.Sort(r.rtts)
	pps := 0.0
	if r.elapsed > 0 {
		pps = float64(r.received) / r.elapsed.Seconds()
	}
	var max time.Duration
	if len(r.rtts) > 0 {
		max = r.rtts[len(r.rtts)-1]
	}
	return fmt.Sprintf("rtt_p50_us=%s rtt_p99_us=%s rtt_p999_us=%s rtt_max_us=%s pps=%.0f sent=%d received=%d lost=%d bad=%d dup=%d retransmits=%d elapsed_s=%.3f",
		cli.US(cli.Percentile(r.rtts, 0.50)), cli.US(cli.Percentile(r.rtts, 0.99)), cli.US(cli.Percentile(r.rtts, 0.999)), cli.US(max),
		pps, r.sent, r.received, r.lost, r.bad, r.dup, r.retransmits, r.elapsed.Seconds())
}

// parseSizes parses "MIN-MAX" or "B".
func parseSizes(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	if lo, err = strconv.Atoi(a); err == nil {
		hi, err = strconv.Atoi(b)
	}
	if err != nil || lo < 1 || hi < lo || hi > maxDatagram {
		return 0, 0, fmt.Errorf("sizes %q: want MIN-MAX within 1-%d", s, maxDatagram)
	}
	return lo, hi, nil
}

func clientMain(args []string) int {
	fs := flag.NewFlagSet("kudp client", flag.ExitOnError)
	remote := fs.String("remote", "", "IP:PORT of the echo (required)")
	n := fs.Int("n", 10000, "round trips")
	size := fs.Int("size", 64, "payload bytes (1-1472)")
	sizes := fs.String("sizes", "", "cycle payload sizes through MIN-MAX (overrides -size)")
	outstanding := fs.Int("outstanding", 1, "datagrams in flight at most")
	verify := fs.Bool("verify", true, "check every byte of every reply (-verify=false checks size and sequence only)")
	timeout := fs.Duration("timeout", 200*time.Millisecond, "per-request timeout before sending it again")
	retries := fs.Int("retries", 3, "retransmissions before a request counts as lost")
	allowLoss := fs.Uint64("allow-loss", 0, "lost requests tolerated before exiting 1")
	fs.Parse(args)

	cfg := clientConfig{n: *n, outstanding: *outstanding, verify: *verify, timeout: *timeout, retries: *retries, seed: rand.Uint64()}
	var err error
	if *sizes != "" {
		cfg.minSize, cfg.maxSize, err = parseSizes(*sizes)
	} else {
		cfg.minSize, cfg.maxSize, err = parseSizes(strconv.Itoa(*size))
	}
	if err == nil && (*remote == "" || *n < 1 || *outstanding < 1 || *timeout <= 0 || *retries < 0) {
		err = errors.New("need -remote, -n >= 1, -outstanding >= 1, -timeout > 0, -retries >= 0")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp client:", err)
		return 2
	}
	ra, err := net.ResolveUDPAddr("udp", *remote)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp client:", err)
		return 2
	}
	c, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp client:", err)
		return 2
	}
	defer c.Close()
	r, err := runClient(c, cfg)
	fmt.Println(r.summary())
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp client:", err)
		return 2
	}
	if r.bad > 0 || r.lost > *allowLoss {
		return 1
	}
	return 0
}
