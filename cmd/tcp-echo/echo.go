package main

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// stopCheck is the longest WaitAny blocks, so a stop request is noticed
// within about this long even when nothing arrives.
const stopCheck = 50 * time.Millisecond

// heldRetry is how long WaitAny blocks while some connection holds an SGA
// that Push refused (EAGAIN): frames may come free without any token of
// ours completing (a retransmitted segment acknowledged, say).
const heldRetry = time.Millisecond

// heldBatch is how many held SGAs one completion may retry, so that a long
// list of blocked connections costs O(1) per completion.
const heldBatch = 8

// echoCounters are what the echo loop itself counts, beside the libOS's
// counters.
type echoCounters struct {
	Accepted    uint64 // connections accepted
	Closed      uint64 // connections closed after the client's FIN, everything echoed
	Failed      uint64 // connections that failed (reset, timeout) and were closed
	Aborted     uint64 // connections still open at exit, closed then
	IdleClosed  uint64 // connections closed after -idle-timeout without progress
	MaxActive   uint64 // most connections open at once
	Pops        uint64 // data pops completed
	Bytes       uint64 // bytes echoed (pushed)
	Pushes      uint64 // pushes accepted
	Completed   uint64 // pushes completed (every byte acknowledged)
	PushEAGAIN  uint64 // pushes refused with EAGAIN and held for a retry
	PushRefused uint64 // pushes refused with another error (the connection is closed)
	Stale       uint64 // results of closed connections' cancelled operations
}

// conn is one accepted connection. A conn is never reused: a token of a
// closed connection that completes later still points at its own conn.
type conn struct {
	qd      libos.QD
	pushes  int        // pushes outstanding
	popping bool       // a pop is outstanding
	eof     bool       // the client has closed its side
	closed  bool       // CloseQueue done
	held    *libos.SGA // popped data that Push refused with EAGAIN
	listed  bool       // in server.held (possibly stale)
	last    time.Time  // last progress: accepted, data popped, a push acknowledged
}

// server is the echo loop: every token it waits on is in toks, with the
// connection it belongs to at the same index in owners (nil for the accept).
// A completed token is swap-removed, so bookkeeping is O(1) per completion.
type server struct {
	lib    *libos.LibOS
	lqd    libos.QD
	toks   []libos.QToken
	owners []*conn
	byQD   []*conn // open connections by queue descriptor
	held   []*conn // connections whose SGA waits for Push to accept it
	active int
	ctr    echoCounters
	ops    *cli.Ops // metrics snapshots (nil-safe)

	idle      time.Duration // -idle-timeout; 0: never
	nextSweep time.Time
	now       time.Time // when the last WaitAny returned
	out       io.Writer // where counters go on request
	info      atomic.Bool
	multi     bool // one of several queues: SIGUSR1 prints this queue's line
}

func newServer(lib *libos.LibOS, lqd libos.QD) *server {
	return &server{
		lib:    lib,
		lqd:    lqd,
		toks:   make([]libos.QToken, 0, 1024),
		owners: make([]*conn, 0, 1024),
	}
}

func (s *server) add(qt libos.QToken, c *conn) {
	s.toks = append(s.toks, qt)
	s.owners = append(s.owners, c)
}

func (s *server) remove(i int) {
	last := len(s.toks) - 1
	s.toks[i], s.owners[i] = s.toks[last], s.owners[last]
	s.owners[last] = nil
	s.toks, s.owners = s.toks[:last], s.owners[:last]
}

// idleSweep is how often the loop looks for connections past the idle
// timeout: a timeout is honoured to within this.
const idleSweep = time.Second

// serve runs until stop is set, then closes every connection and the
// listener. It returns an error only if the listener breaks.
func (s *server) serve(stop *atomic.Bool) error {
	acc, err := s.lib.Accept(s.lqd)
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	s.add(acc, nil)
	for !stop.Load() {
		s.ops.Poll(s.lib)
		timeout := stopCheck
		if len(s.held) > 0 {
			timeout = heldRetry
		}
		i, r, err := s.lib.WaitAny(s.toks, timeout)
		s.now = time.Now()
		if s.info.Swap(false) {
			s.printInfo()
		}
		if s.idle > 0 && !s.now.Before(s.nextSweep) {
			s.sweepIdle()
		}
		if err == unix.ETIMEDOUT {
			s.retryHeld(len(s.held))
			continue
		}
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		c := s.owners[i]
		s.remove(i)
		if c == nil {
			if err := s.accepted(r); err != nil {
				return err
			}
			continue
		}
		s.completed(c, r)
		if len(s.held) > 0 {
			s.retryHeld(heldBatch)
		}
	}
	s.shutdown()
	return nil
}

// accepted takes a new connection and posts the next accept.
func (s *server) accepted(r libos.Result) error {
	if r.Opcode != libos.OpAccept {
		return fmt.Errorf("accept failed: %w", errOr(r.Err))
	}
	c := &conn{qd: r.NewQD, last: s.now}
	for int(c.qd) >= len(s.byQD) {
		s.byQD = append(s.byQD, nil)
	}
	s.byQD[c.qd] = c
	s.ctr.Accepted++
	s.active++
	s.ctr.MaxActive = max(s.ctr.MaxActive, uint64(s.active))
	s.pop(c)
	acc, err := s.lib.Accept(s.lqd)
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	s.add(acc, nil)
	return nil
}

// completed handles the result of one of c's operations.
func (s *server) completed(c *conn, r libos.Result) {
	if c.closed {
		// Its pending operations were cancelled by CloseQueue.
		s.ctr.Stale++
		if r.Opcode == libos.OpPop && r.SGA != nil {
			s.lib.SGAFree(r.SGA)
		}
		return
	}
	switch r.Opcode {
	case libos.OpPop:
		c.popping = false
		c.last = s.now
		if len(r.SGA.Segs) == 0 { // the client has closed its side
			s.lib.SGAFree(r.SGA)
			c.eof = true
			s.maybeClose(c)
			return
		}
		s.ctr.Pops++
		s.echo(c, r.SGA)
	case libos.OpPush:
		c.pushes--
		c.last = s.now
		s.ctr.Completed++
		if c.held != nil {
			sga := c.held
			c.held = nil
			s.echo(c, sga)
		}
		s.maybeClose(c)
	default: // OpFailed: reset, timeout
		s.ctr.Failed++
		s.closeConn(c)
	}
}

// echo pushes the popped SGA back on c (the same frames: no copy) and frees
// it at once; the frames stay referenced until the client acknowledges
// them. On EAGAIN the SGA is held and c is not popped again until it goes,
// so c's receive window closes instead of data piling up.
func (s *server) echo(c *conn, sga *libos.SGA) {
	n := sga.Len()
	qt, err := s.lib.Push(c.qd, sga)
	if err == unix.EAGAIN {
		s.ctr.PushEAGAIN++
		c.held = sga
		if !c.listed {
			c.listed = true
			s.held = append(s.held, c)
		}
		return
	}
	s.lib.SGAFree(sga)
	if err != nil {
		s.ctr.PushRefused++
		s.closeConn(c)
		return
	}
	s.ctr.Pushes++
	s.ctr.Bytes += uint64(n)
	c.pushes++
	s.add(qt, c)
	s.pop(c)
}

// pop posts c's next pop.
func (s *server) pop(c *conn) {
	qt, err := s.lib.Pop(c.qd)
	if err != nil {
		s.ctr.Failed++
		s.closeConn(c)
		return
	}
	c.popping = true
	s.add(qt, c)
}

// retryHeld pushes again up to max held SGAs, oldest first; one still
// refused goes to the back of the list.
func (s *server) retryHeld(max int) {
	for k := 0; k < max && len(s.held) > 0; k++ {
		c := s.held[0]
		s.held[0] = nil
		s.held = s.held[1:]
		c.listed = false
		if c.closed || c.held == nil {
			continue // stale: already pushed or closed
		}
		sga := c.held
		c.held = nil
		s.echo(c, sga)
		s.maybeClose(c)
	}
}

// maybeClose closes c once the client has closed its side and everything
// is echoed and acknowledged.
func (s *server) maybeClose(c *conn) {
	if c.closed || !c.eof || c.pushes > 0 || c.held != nil || c.popping {
		return
	}
	s.ctr.Closed++
	s.closeConn(c)
}

// closeConn closes c's queue: a FIN after the echoed data, or a RST if the
// connection failed or data was left unread. Its pending operations
// complete with ECANCELED and are counted as stale when they surface.
func (s *server) closeConn(c *conn) {
	if c.closed {
		return
	}
	if c.held != nil {
		s.lib.SGAFree(c.held)
		c.held = nil
	}
	s.lib.CloseQueue(c.qd)
	c.closed = true
	s.byQD[c.qd] = nil
	s.active--
}

// sweepIdle closes every connection that has made no progress (nothing
// popped, no push acknowledged) for the idle timeout: a client that stops
// reading its echoes, or never sends, holds frames and a slot for no one's
// benefit. The close resets a connection with unread data, as Linux does.
func (s *server) sweepIdle() {
	s.nextSweep = s.now.Add(idleSweep)
	for _, c := range s.byQD {
		if c != nil && !c.closed && s.now.Sub(c.last) >= s.idle {
			s.ctr.IdleClosed++
			s.closeConn(c)
		}
	}
}

// linger is how long shutdown keeps the event loop running after closing
// the connections, so their FINs (and data still unacknowledged) go out
// before the libOS is closed.
const linger = 200 * time.Millisecond

// shutdown closes every open connection, runs the event loop for linger
// (closing any connection accepted meanwhile at once), then closes the
// listener.
func (s *server) shutdown() {
	for _, c := range s.byQD {
		if c != nil && !c.closed {
			s.ctr.Aborted++
			s.closeConn(c)
		}
	}
	deadline := time.Now().Add(linger)
	for len(s.toks) > 0 && time.Now().Before(deadline) {
		i, r, err := s.lib.WaitAny(s.toks, time.Until(deadline))
		if err != nil {
			break
		}
		c := s.owners[i]
		s.remove(i)
		if c != nil {
			s.completed(c, r)
			continue
		}
		if r.Opcode == libos.OpAccept {
			s.ctr.Accepted++
			s.ctr.Aborted++
			s.lib.CloseQueue(r.NewQD)
		}
		if acc, err := s.lib.Accept(s.lqd); err == nil {
			s.add(acc, nil)
		}
	}
	s.lib.CloseQueue(s.lqd)
}

func errOr(err error) error {
	if err == nil {
		return errors.New("no reason given")
	}
	return err
}
