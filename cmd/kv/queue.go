package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// The -api queue server: the libOS's queue API, one loop per NIC queue
// (-queues), each driving its own LibOS and the connections of its queue;
// the loops share the DB, whose store locks one shard per command, and
// nothing else on the datapath. Every connection keeps one pop posted
// while it reads; WaitNext returns the completions in order. A popped SGA is parsed in place (Parser), each
// request executed as soon as it is whole, and the replies encoded
// straight into SGAs (sgaWriter) that are pushed as they fill and at the
// end of each batch. Received frames go back as soon as their requests
// have run; a request split across segments has its pieces copied by the
// parser first.
//
// Flow control: a connection whose push is refused (EAGAIN: its send
// buffer or frame budget is full; ENOBUFS: no frame to build a reply in)
// stops executing requests and stops reading until a push of its completes
// (or, when none is in flight, a retry on the loop's short timer), so a
// client that does not read its replies holds at most one batch of them.
// Its unsent replies are bounded (-max-unsent: the connection is reset
// past it) and so is the time they may stay stuck (-stall-timeout).

// Loop timing.
const (
	stopCheck  = 50 * time.Millisecond // the longest WaitNext blocks: a stop is seen within this
	heldRetry  = time.Millisecond      // WaitNext's timeout while some connection is blocked
	heldBatch  = 16                    // blocked connections retried per loop turn
	stallSweep = time.Second           // how often stalled connections are looked for
	linger     = 200 * time.Millisecond
)

// parkAt is how many unsent reply bytes a connection may have before it
// stops executing requests until some are pushed: it bounds the frames one
// connection's replies hold (about parkAt/SegmentSize, plus one array
// being filled) while keeping a pipeline of small replies flowing.
const parkAt = 32 << 10

// queueCounters are the queue server's own counters.
type queueCounters struct {
	Accepted       uint64 // connections accepted
	Closed         uint64 // connections closed after the client's FIN or QUIT, everything sent
	Failed         uint64 // connections that failed (reset, timeout)
	Truncated      uint64 // connections the client closed in the middle of a request
	ProtocolErrors uint64 // connections closed after a protocol error
	SlowClosed     uint64 // connections reset: unsent replies over -max-unsent
	StallClosed    uint64 // connections reset: replies stuck for -stall-timeout
	Aborted        uint64 // connections open at exit
	MaxActive      uint64 // most connections open at once
	Pops           uint64 // data pops completed
	PopBytes       uint64 // bytes received
	Pushes         uint64 // reply pushes accepted
	PushBytes      uint64 // reply bytes pushed
	PushEAGAIN     uint64 // pushes refused with EAGAIN and held
	ReplyNoBufs    uint64 // reply arrays SGAAlloc could not give (ENOBUFS): held or spilled
	SpilledBytes   uint64 // reply bytes kept in Go memory because no frame was free
	Parked         uint64 // times a connection stopped executing requests to let its replies drain
	DetachedBytes  uint64 // request bytes copied because a request spanned segments
	Stale          uint64 // completions of closed connections' operations
}

// qconn is one connection of the queue server. A qconn is never reused.
type qconn struct {
	qd     libos.QD
	client Client
	parser *Parser
	w      sgaWriter

	in      []*libos.SGA // popped data not yet consumed, oldest first
	seg     int          // the segment of in[0] being parsed
	off     int          // and the offset in it
	popping bool         // a pop is posted
	pushes  int          // pushes in flight (not yet acknowledged)
	eof     bool         // the client closed its side
	closing bool         // no more requests: close once the replies are out
	closed  bool
	retry   bool      // in the server's retry list
	moved   time.Time // the last time its replies moved (a push accepted or acknowledged), or nothing was pending
}

// queueServer is the loop of one NIC queue. With -queues N there are N,
// one per queue, each on its own goroutine and LibOS; they share the DB
// (its store is safe for concurrent use) and nothing else but the source
// of client ids.
type queueServer struct {
	lib     *libos.LibOS
	lqd     libos.QD
	x       *Session // the loop's own session on the shared DB
	sweeper *Sweeper // the loop's part of the store's expiry sweep
	ids     *atomic.Int64
	multi   bool // one of several queues: SIGUSR1 prints this queue's line
	byQD    []*qconn
	retry   []*qconn // blocked connections to try again
	active  int
	accept  bool // an accept is posted
	ctr     queueCounters
	ops     *cli.Ops

	maxValue, maxRequest, maxUnsent int
	stall                           time.Duration

	res       [64]libos.Result
	args      Args
	now       time.Time
	nextSweep time.Time
	nextStall time.Time
	out       io.Writer
	info      atomic.Bool
}

func (s *queueServer) conn(qd libos.QD) *qconn {
	if int(qd) < len(s.byQD) {
		return s.byQD[qd]
	}
	return nil
}

// serve runs until stop is set, then closes every connection and the
// listener. It returns an error only if the listener breaks.
func (s *queueServer) serve(stop *atomic.Bool) error {
	s.now = time.Now()
	s.nextSweep = s.now.Add(SweepEvery)
	s.nextStall = s.now.Add(stallSweep)
	for !stop.Load() {
		s.ops.Poll(s.lib)
		if !s.accept {
			if _, err := s.lib.Accept(s.lqd); err != nil {
				return fmt.Errorf("accept: %w", err)
			}
			s.accept = true
		}
		timeout := min(stopCheck, max(time.Until(s.nextSweep), 0))
		if len(s.retry) > 0 {
			timeout = heldRetry
		}
		n, err := s.lib.WaitNext(s.res[:], timeout)
		s.now = time.Now()
		if s.info.Swap(false) {
			s.printCounters()
		}
		if err != nil && err != unix.ETIMEDOUT {
			return fmt.Errorf("wait: %w", err)
		}
		for i := 0; i < n; i++ {
			if err := s.completed(&s.res[i]); err != nil {
				return err
			}
			s.res[i] = libos.Result{}
		}
		s.retryBlocked()
		if !s.now.Before(s.nextSweep) {
			s.sweeper.Sweep(SweepBudget)
			s.nextSweep = s.now.Add(SweepEvery)
		}
		if !s.now.Before(s.nextStall) {
			s.sweepStalled()
			s.nextStall = s.now.Add(stallSweep)
		}
	}
	s.shutdown()
	return nil
}

// completed handles one completion.
func (s *queueServer) completed(r *libos.Result) error {
	if r.QD == s.lqd {
		s.accept = false
		if r.Opcode != libos.OpAccept {
			return fmt.Errorf("accept failed: %w", errOr(r.Err))
		}
		s.accepted(r.NewQD)
		return nil
	}
	c := s.conn(r.QD)
	if c == nil || c.closed {
		// A closed connection's operation, cancelled by CloseQueue. Its
		// queue descriptor is reused only by an accept that completes
		// after these, so this cannot be a newer connection's.
		s.ctr.Stale++
		if r.Opcode == libos.OpPop && r.SGA != nil {
			s.lib.SGAFree(r.SGA)
		}
		return nil
	}
	switch r.Opcode {
	case libos.OpPop:
		c.popping = false
		if len(r.SGA.Segs) == 0 {
			s.lib.SGAFree(r.SGA)
			c.eof = true
		} else {
			s.ctr.Pops++
			s.ctr.PopBytes += uint64(r.SGA.Len())
			c.in = append(c.in, r.SGA)
		}
	case libos.OpPush:
		c.pushes--
		c.w.blocked = false
		c.moved = s.now
	default: // OpFailed: reset, timeout
		s.ctr.Failed++
		s.closeConn(c, false)
		return nil
	}
	s.progress(c)
	return nil
}

func (s *queueServer) accepted(qd libos.QD) {
	c := &qconn{qd: qd, parser: NewParser(s.maxValue, s.maxRequest), moved: s.now}
	c.client.ID = s.ids.Add(1) // once per connection: unique across the loops
	c.client.Queue = s.lib.QueueID()
	c.client.Remote, _ = s.lib.RemoteAddr(qd)
	c.client.Local, _ = s.lib.LocalAddr(qd)
	c.w.init(s, c)
	for int(qd) >= len(s.byQD) {
		s.byQD = append(s.byQD, nil)
	}
	s.byQD[qd] = c
	s.ctr.Accepted++
	s.active++
	s.ctr.MaxActive = max(s.ctr.MaxActive, uint64(s.active))
	s.progress(c)
}

// progress runs c as far as it can go: executes the requests it has
// read, pushes their replies, reads more or closes.
func (s *queueServer) progress(c *qconn) {
	for {
		s.execute(c)
		c.w.flush()
		if c.closed {
			return
		}
		// Go on while there is input and the flush let the replies drain
		// (a connection that parked itself is unparked by then).
		if c.w.blocked || len(c.in) == 0 || c.closing || c.w.parked(s) {
			break
		}
	}
	if c.w.unsent == 0 && c.pushes == 0 {
		c.moved = s.now
	}
	if c.w.blocked && !c.retry {
		c.retry = true
		s.retry = append(s.retry, c)
	}
	switch {
	case c.closing || c.eof:
		// Nothing more is read. Close once every reply is pushed and
		// acknowledged (a close with replies unacknowledged would still
		// deliver them, but a reset would not).
		if len(c.in) == 0 || c.closing {
			s.freeInput(c)
			if c.w.unsent == 0 && c.pushes == 0 {
				if c.eof && !c.closing && c.parser.InRequest() {
					// The client closed in the middle of a request.
					s.ctr.Truncated++
				} else {
					s.ctr.Closed++
				}
				s.closeConn(c, false)
			}
		}
	case len(c.in) == 0 && !c.popping && !c.w.parked(s):
		qt, err := s.lib.Pop(c.qd)
		_ = qt
		if err != nil {
			s.ctr.Failed++
			s.closeConn(c, false)
			return
		}
		c.popping = true
	}
}

// execute runs the whole requests c has read, in order, until its input
// is used up or its replies must drain first. It reports whether it ran
// any request.
//
//demixdp:hotpath — allocates nothing but what the store keeps.
func (s *queueServer) execute(c *qconn) bool {
	ran := false
	for len(c.in) > 0 && !c.closing && !c.closed {
		if c.w.parked(s) {
			s.ctr.Parked++
			return ran
		}
		sga := c.in[0]
		if c.seg >= len(sga.Segs) {
			s.lib.SGAFree(sga)
			c.in[0] = nil
			c.in = c.in[1:]
			c.seg, c.off = 0, 0
			if len(c.in) == 0 {
				c.in = c.in[:0:0]
			}
			continue
		}
		b := sga.Segs[c.seg]
		n, done, err := c.parser.Parse(b[c.off:])
		if err != nil {
			// The replies of the requests before it, then the error, then
			// the close.
			s.ctr.ProtocolErrors++
			c.w.Error("ERR " + err.Error())
			c.closing = true
			return true
		}
		c.off += n
		if done {
			s.args.V = c.parser.Args()
			s.args.Own = c.parser.Owned
			s.x.Exec(&c.client, &s.args, &c.w)
			s.args.V, s.args.Own = nil, nil
			c.parser.Release()
			ran = true
			if c.w.unsent > s.maxUnsent {
				// A reply stream larger than the bound: the client is
				// not keeping up (or asked for too much at once).
				s.ctr.SlowClosed++
				s.closeConn(c, true)
				return true
			}
			if c.client.Quit {
				c.closing = true
			}
			continue
		}
		// The segment is used up in the middle of a request: copy what the
		// parser still points at, so the frame can go back.
		before := c.parser.Pinned()
		c.parser.Detach()
		s.ctr.DetachedBytes += uint64(max(c.parser.Pinned()-before, 0))
		c.seg++
		c.off = 0
	}
	return ran
}

// freeInput gives back whatever c has read but will not run.
func (s *queueServer) freeInput(c *qconn) {
	for _, sga := range c.in {
		s.lib.SGAFree(sga)
	}
	clear(c.in)
	c.in = c.in[:0]
	c.seg, c.off = 0, 0
}

// closeConn closes c: a FIN after the replies already pushed, or with
// reset a RST (a client that does not read, or one that keeps sending
// after an error). Its pending operations complete with ECANCELED and are
// counted as stale when they surface.
func (s *queueServer) closeConn(c *qconn, reset bool) {
	if c.closed {
		return
	}
	s.freeInput(c)
	c.w.release()
	if reset {
		s.lib.SetLinger(c.qd, 0)
	}
	s.lib.CloseQueue(c.qd)
	c.closed = true
	s.byQD[c.qd] = nil
	s.active--
}

// retryBlocked tries again, oldest first, up to heldBatch connections
// whose pushes or reply arrays were refused.
func (s *queueServer) retryBlocked() {
	for k := 0; k < heldBatch && len(s.retry) > 0; k++ {
		c := s.retry[0]
		s.retry[0] = nil
		s.retry = s.retry[1:]
		c.retry = false
		if c.closed || !c.w.blocked {
			continue
		}
		c.w.blocked = false
		s.progress(c)
	}
	if len(s.retry) == 0 {
		s.retry = s.retry[:0:0]
	}
}

// sweepStalled resets the connections whose replies (unsent, or pushed
// and not acknowledged) have not moved for the stall timeout: their
// clients stopped reading.
func (s *queueServer) sweepStalled() {
	if s.stall <= 0 {
		return
	}
	for _, c := range s.byQD {
		if c != nil && !c.closed && (c.w.unsent > 0 || c.pushes > 0) && s.now.Sub(c.moved) >= s.stall {
			s.ctr.StallClosed++
			s.closeConn(c, true)
		}
	}
}

// shutdown closes every connection, lets the loop run for linger so their
// FINs and last replies leave, then closes the listener.
func (s *queueServer) shutdown() {
	for _, c := range s.byQD {
		if c != nil && !c.closed {
			s.ctr.Aborted++
			s.closeConn(c, false)
		}
	}
	deadline := time.Now().Add(linger)
	for time.Now().Before(deadline) {
		n, err := s.lib.WaitNext(s.res[:], time.Until(deadline))
		if err != nil {
			break
		}
		for i := 0; i < n; i++ {
			r := &s.res[i]
			switch {
			case r.Opcode == libos.OpAccept:
				s.accept = false
				s.ctr.Accepted++
				s.ctr.Aborted++
				s.lib.CloseQueue(r.NewQD)
			case r.Opcode == libos.OpPop && r.SGA != nil:
				s.lib.SGAFree(r.SGA)
			}
			s.res[i] = libos.Result{}
		}
	}
	s.lib.CloseQueue(s.lqd)
}

// printCounters answers SIGUSR1 from the loop itself: with one queue
// every counter, with several this queue's line, written at once so that
// the loops' lines do not interleave.
func (s *queueServer) printCounters() {
	if !s.multi {
		printQueueCounters(s.out, []*libos.LibOS{s.lib}, []*queueServer{s})
		return
	}
	var b bytes.Buffer
	cli.PrintQueueLines(&b, []*libos.LibOS{s.lib}, []any{s.line()})
	s.out.Write(b.Bytes())
}

// queueLine is what a queue's line adds to the libOS's counters.
type queueLine struct {
	Accepted  uint64 // connections accepted
	MaxActive uint64 // most open at once
	Failed    uint64
	Aborted   uint64
	Commands  uint64 // commands executed
	PopBytes  uint64 // request bytes received
	PushBytes uint64 // reply bytes pushed
}

func (s *queueServer) line() queueLine {
	return queueLine{Accepted: s.ctr.Accepted, MaxActive: s.ctr.MaxActive, Failed: s.ctr.Failed, Aborted: s.ctr.Aborted,
		Commands: s.x.commands.Load(), PopBytes: s.ctr.PopBytes, PushBytes: s.ctr.PushBytes}
}

func errOr(err error) error {
	if err == nil {
		return errors.New("no reason given")
	}
	return err
}
