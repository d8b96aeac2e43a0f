package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// sender streams a byte count over one libOS connection.
type sender struct {
	lib      *libos.LibOS
	qd       libos.QD
	block    []byte // the stream's pattern, repeated
	off      int    // position in block of the next byte
	left     int64  // bytes not yet pushed
	inflight int    // most pushes outstanding
	pushes   int    // pushes outstanding
	held     *libos.SGA
	toks     []libos.QToken
	h        hash.Hash
	timeout  time.Duration

	eagain, nobufs, extra uint64
}

// report is the outcome of a transfer.
type report struct {
	bytes      int64
	sum        []byte
	elapsed    time.Duration
	eagain     uint64 // pushes refused with EAGAIN (retried)
	nobufs     uint64 // SGAAlloc refused with ENOBUFS (retried)
	extra      uint64 // bytes the server sent back (a sink sends none)
	loopAllocs uint64
}

// bulkBlock is the stream's pattern: random bytes from the seed, repeated;
// its odd length makes a misplaced segment show in the hash.
func bulkBlock(seed uint64) []byte {
	b := make([]byte, 1<<20+4093)
	r := rand.New(rand.NewPCG(seed, 0x62756c6b))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// dial connects a new queue to remote from local (ephemeral port).
func dial(lib *libos.LibOS, local netip.Addr, remote netip.AddrPort) (libos.QD, error) {
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err != nil {
		return qd, fmt.Errorf("socket: %w", err)
	}
	if err := lib.Bind(qd, netip.AddrPortFrom(local, 0)); err != nil {
		return qd, fmt.Errorf("bind: %w", err)
	}
	qt, err := lib.Connect(qd, remote)
	if err != nil {
		return qd, fmt.Errorf("connect %v: %w", remote, err)
	}
	r, err := lib.Wait(qt, 10*time.Second)
	if err == nil && r.Opcode != libos.OpConnect {
		err = r.Err
	}
	if err != nil {
		return qd, fmt.Errorf("connect %v: %w", remote, err)
	}
	return qd, nil
}

func newSender(lib *libos.LibOS, qd libos.QD, total int64, inflight int, timeout time.Duration, seed uint64) *sender {
	return &sender{
		lib: lib, qd: qd, block: bulkBlock(seed), left: total, inflight: inflight,
		toks: make([]libos.QToken, 0, inflight+1), h: sha256.New(), timeout: timeout,
	}
}

// fill takes the next bytes of the stream into sga and the hash.
func (s *sender) fill(sga *libos.SGA) {
	for _, seg := range sga.Segs {
		for k := 0; k < len(seg); {
			n := copy(seg[k:], s.block[s.off:])
			s.off = (s.off + n) % len(s.block)
			k += n
		}
		s.h.Write(seg)
	}
}

// push fills the pipeline: up to inflight pushes of up to MaxSegments
// segments each. A push refused with EAGAIN keeps its (already hashed)
// SGA for the next attempt; ENOBUFS from SGAAlloc waits for completions.
//
//demixdp:hotpath — allocates nothing.
func (s *sender) push() error {
	for s.pushes < s.inflight && (s.held != nil || s.left > 0) {
		sga := s.held
		s.held = nil
		if sga == nil {
			size := int(min(s.left, int64(libos.MaxSegments*s.lib.SegmentSize())))
			var err error
			if sga, err = s.lib.SGAAlloc(size); err != nil {
				if err == unix.ENOBUFS {
					s.nobufs++
					return nil
				}
				return fmt.Errorf("sgaalloc: %w", err)
			}
			s.fill(sga)
			s.left -= int64(size)
		}
		qt, err := s.lib.Push(s.qd, sga)
		if err == unix.EAGAIN {
			s.eagain++
			s.held = sga
			return nil
		}
		s.lib.SGAFree(sga) // the frames stay referenced until acknowledged
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		s.toks = append(s.toks, qt)
		s.pushes++
	}
	return nil
}

// run sends everything, shuts the sending side down and waits until every
// push is acknowledged and the server has closed its side.
func (s *sender) run() (report, error) {
	total := s.left
	pop, err := s.lib.Pop(s.qd)
	if err != nil {
		return report{}, fmt.Errorf("pop: %w", err)
	}
	s.toks = append(s.toks, pop)
	t0 := time.Now()
	shut, eof := false, false
	idle := t0
	for !eof || s.pushes > 0 {
		if err := s.push(); err != nil {
			return s.report(total, t0), err
		}
		if !shut && s.left == 0 && s.held == nil {
			if err := s.lib.Shutdown(s.qd); err != nil {
				return s.report(total, t0), fmt.Errorf("shutdown: %w", err)
			}
			shut = true
		}
		timeout := s.timeout
		if s.held != nil || (s.left > 0 && s.pushes < s.inflight) {
			timeout = time.Millisecond // frames may come free without a completion of ours
		}
		i, r, err := s.lib.WaitAny(s.toks, timeout)
		if err == unix.ETIMEDOUT {
			if time.Since(idle) >= s.timeout {
				return s.report(total, t0), fmt.Errorf("no progress for %v (%d bytes unsent, %d pushes outstanding)", s.timeout, s.left, s.pushes)
			}
			continue
		}
		if err != nil {
			return s.report(total, t0), fmt.Errorf("wait: %w", err)
		}
		idle = time.Now()
		last := len(s.toks) - 1
		s.toks[i] = s.toks[last]
		s.toks = s.toks[:last]
		switch r.Opcode {
		case libos.OpPush:
			s.pushes--
		case libos.OpPop:
			if len(r.SGA.Segs) == 0 {
				eof = true
			} else {
				s.extra += uint64(r.SGA.Len())
			}
			s.lib.SGAFree(r.SGA)
			if !eof {
				if pop, err = s.lib.Pop(s.qd); err != nil {
					return s.report(total, t0), fmt.Errorf("pop: %w", err)
				}
				s.toks = append(s.toks, pop)
			}
		default:
			return s.report(total, t0), fmt.Errorf("connection failed: %w", errOr(r.Err))
		}
	}
	return s.report(total, t0), nil
}

func (s *sender) report(total int64, t0 time.Time) report {
	return report{
		bytes: total - s.left, sum: s.h.Sum(nil), elapsed: time.Since(t0),
		eagain: s.eagain, nobufs: s.nobufs, extra: s.extra,
	}
}

// summary is the one-line result.
func (r *report) summary() string {
	gbps := 0.0
	if r.elapsed > 0 {
		gbps = float64(r.bytes) * 8 / r.elapsed.Seconds() / 1e9
	}
	return fmt.Sprintf("gbps=%.3f bytes=%d sha256=%x elapsed_s=%.3f push_eagain=%d sga_nobufs=%d extra=%d loop_allocs=%d",
		gbps, r.bytes, r.sum, r.elapsed.Seconds(), r.eagain, r.nobufs, r.extra, r.loopAllocs)
}

func errOr(err error) error {
	if err == nil {
		return errors.New("no reason given")
	}
	return err
}
