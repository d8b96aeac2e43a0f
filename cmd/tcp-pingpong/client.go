package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// errStalled: no reply made progress for the configured timeout.
var errStalled = errors.New("no progress")

// clientConfig is what a run does.
type clientConfig struct {
	n, size, conns, warmup int
	nodelay                bool
	timeout                time.Duration // longest wait without any completion
	seed                   uint64
}

// conn is one connection with at most one request outstanding.
type conn struct {
	qd      libos.QD
	idx     int
	req     []byte    // the outstanding request, for checking its reply
	got     int       // reply bytes received so far
	corrupt bool      // a reply byte differed
	seq     int       // requests sent on this connection
	sentAt  time.Time // when the outstanding request was pushed
	busy    bool      // a request is outstanding (sent or waiting to be)
	unsent  bool      // the request waits for Push to accept it (EAGAIN/ENOBUFS)
	eof     bool
}

// client runs closed-loop round trips over several libOS connections.
type client struct {
	lib    *libos.LibOS
	cfg    clientConfig
	conns  []conn
	toks   []libos.QToken
	owners []int // index into conns of toks[i]
	unsent int   // connections whose request waits for Push

	measuring        bool
	issued, finished int // requests of the current phase
	limit            int // requests the current phase issues
	rtts             []time.Duration
	sent, received   int
	bad              int
}

// result is the outcome of a run.
type result struct {
	rtts                []time.Duration
	sent, received, bad int
	conns               int
	elapsed             time.Duration
	loopAllocs          uint64
}

func newClient(lib *libos.LibOS, local netip.Addr, remote netip.AddrPort, cfg clientConfig) (*client, error) {
	c := &client{
		lib:    lib,
		cfg:    cfg,
		conns:  make([]conn, cfg.conns),
		toks:   make([]libos.QToken, 0, 3*cfg.conns+8),
		owners: make([]int, 0, 3*cfg.conns+8),
		rtts:   make([]time.Duration, 0, cfg.n),
	}
	for i := range c.conns {
		qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		if err != nil {
			return nil, fmt.Errorf("socket: %w", err)
		}
		if err := lib.Bind(qd, netip.AddrPortFrom(local, 0)); err != nil {
			return nil, fmt.Errorf("bind: %w", err)
		}
		if err := lib.SetNoDelay(qd, cfg.nodelay); err != nil {
			return nil, fmt.Errorf("nodelay: %w", err)
		}
		qt, err := lib.Connect(qd, remote)
		if err != nil {
			return nil, fmt.Errorf("connect %v: %w", remote, err)
		}
		c.conns[i] = conn{qd: qd, idx: i, req: make([]byte, cfg.size)}
		c.add(qt, i)
	}
	for len(c.toks) > 0 {
		i, r, err := lib.WaitAny(c.toks, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("connect %v: %w", remote, err)
		}
		c.remove(i)
		if r.Opcode != libos.OpConnect {
			return nil, fmt.Errorf("connect %v: %w", remote, r.Err)
		}
	}
	for i := range c.conns {
		if err := c.pop(&c.conns[i]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *client) add(qt libos.QToken, owner int) {
	c.toks = append(c.toks, qt)
	c.owners = append(c.owners, owner)
}

func (c *client) remove(i int) {
	last := len(c.toks) - 1
	c.toks[i], c.owners[i] = c.toks[last], c.owners[last]
	c.toks, c.owners = c.toks[:last], c.owners[:last]
}

func (c *client) pop(k *conn) error {
	qt, err := c.lib.Pop(k.qd)
	if err != nil {
		return fmt.Errorf("pop: %w", err)
	}
	c.add(qt, k.idx)
	return nil
}

// run does the warm-up (cfg.warmup round trips per connection, unmeasured)
// and then cfg.n measured round trips, each connection sending its next
// request as soon as the reply to its previous one is complete.
func (c *client) run() (result, error) {
	if err := c.phase(c.cfg.warmup*len(c.conns), false); err != nil {
		return c.result(0, 0), fmt.Errorf("warm-up: %w", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	t0 := time.Now()
	err := c.phase(c.cfg.n, true)
	elapsed := time.Since(t0)
	runtime.ReadMemStats(&ms)
	return c.result(elapsed, ms.Mallocs-before), err
}

func (c *client) result(elapsed time.Duration, allocs uint64) result {
	return result{rtts: c.rtts, sent: c.sent, received: c.received, bad: c.bad,
		conns: len(c.conns), elapsed: elapsed, loopAllocs: allocs}
}

// phase issues limit requests, round-robin over the idle connections, and
// waits for all their replies.
//
//demixdp:hotpath — allocates nothing.
func (c *client) phase(limit int, measuring bool) error {
	c.measuring, c.issued, c.finished, c.limit = measuring, 0, 0, limit
	for i := range c.conns {
		c.next(&c.conns[i])
	}
	idle := time.Now()
	for c.finished < c.limit {
		timeout := c.cfg.timeout
		if c.unsent > 0 {
			timeout = time.Millisecond
		}
		i, r, err := c.lib.WaitAny(c.toks, timeout)
		if err == unix.ETIMEDOUT {
			if c.unsent > 0 {
				c.retryUnsent()
			}
			if time.Since(idle) >= c.cfg.timeout {
				return fmt.Errorf("%w for %v (%d of %d replies)", errStalled, c.cfg.timeout, c.finished, c.limit)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		idle = time.Now()
		k := &c.conns[c.owners[i]]
		c.remove(i)
		switch r.Opcode {
		case libos.OpPush:
		case libos.OpPop:
			if err := c.popped(k, r.SGA); err != nil {
				return err
			}
		default:
			return fmt.Errorf("connection %d: %w", k.idx, r.Err)
		}
		if c.unsent > 0 {
			c.retryUnsent()
		}
	}
	return nil
}

// next sends k's next request if the phase has requests left.
func (c *client) next(k *conn) {
	if k.busy || c.issued >= c.limit {
		return
	}
	c.issued++
	k.busy, k.got, k.corrupt = true, 0, false
	fillRequest(k.req, c.cfg.seed, k.idx, k.seq)
	k.seq++
	k.unsent = true
	c.unsent++
	c.send(k)
}

// send pushes k's request; if Push or SGAAlloc refuses (EAGAIN, ENOBUFS)
// it stays unsent and is retried after the next completion.
func (c *client) send(k *conn) {
	sga, err := c.lib.SGAAlloc(len(k.req))
	if err != nil {
		return
	}
	off := 0
	for _, seg := range sga.Segs {
		off += copy(seg, k.req[off:])
	}
	k.sentAt = time.Now()
	qt, err := c.lib.Push(k.qd, sga)
	c.lib.SGAFree(sga) // the frames stay referenced until acknowledged
	if err != nil {
		return
	}
	k.unsent = false
	c.unsent--
	if c.measuring {
		c.sent++
	}
	c.add(qt, k.idx)
}

func (c *client) retryUnsent() {
	for i := range c.conns {
		if k := &c.conns[i]; k.unsent {
			c.send(k)
			if c.unsent == 0 {
				return
			}
		}
	}
}

// popped checks the received bytes against k's request and completes the
// round trip when the whole reply is in.
func (c *client) popped(k *conn, sga *libos.SGA) error {
	defer c.lib.SGAFree(sga)
	if len(sga.Segs) == 0 {
		k.eof = true
		return fmt.Errorf("connection %d: the server closed it", k.idx)
	}
	for _, seg := range sga.Segs {
		if !k.busy || k.got+len(seg) > len(k.req) {
			// Bytes beyond any request: the stream is out of step.
			c.bad++
			return fmt.Errorf("connection %d: %d unexpected bytes", k.idx, len(seg))
		}
		if !bytes.Equal(seg, k.req[k.got:k.got+len(seg)]) {
			k.corrupt = true
		}
		k.got += len(seg)
	}
	if k.got == len(k.req) {
		d := time.Since(k.sentAt)
		k.busy = false
		c.finished++
		if k.corrupt {
			c.bad++
		}
		if c.measuring {
			c.received++
			c.rtts = append(c.rtts, d)
		}
		c.next(k)
	}
	return c.pop(k)
}

// close shuts down every connection's sending side and waits (up to d)
// for the server to close, so both ends finish cleanly.
func (c *client) close(d time.Duration) {
	open := 0
	for i := range c.conns {
		if k := &c.conns[i]; !k.eof && c.lib.Shutdown(k.qd) == nil {
			open++
		}
	}
	deadline := time.Now().Add(d)
	for open > 0 && len(c.toks) > 0 && time.Now().Before(deadline) {
		i, r, err := c.lib.WaitAny(c.toks, time.Until(deadline))
		if err != nil {
			break
		}
		k := &c.conns[c.owners[i]]
		c.remove(i)
		switch r.Opcode {
		case libos.OpPop:
			if len(r.SGA.Segs) == 0 {
				k.eof = true
				open--
			} else {
				c.pop(k)
			}
			c.lib.SGAFree(r.SGA)
		case libos.OpFailed:
			if !k.eof {
				k.eof = true
				open--
			}
		}
	}
	for i := range c.conns {
		c.lib.CloseQueue(c.conns[i].qd)
	}
}

// fillRequest writes request seq of connection conn: bytes derived from
// all three and the run's seed, so a reply to another request or from
// another connection is caught too.
func fillRequest(b []byte, seed uint64, conn, seq int) {
	x := seed ^ uint64(conn)<<40 ^ uint64(seq+1)*0x9e3779b97f4a7c15
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
}

// summary is the one-line result.
func (r *result) summary() string {
	rtts := slices.Clone(r.rtts)
	slices.Sort(rtts)
	pct := func(q float64) string {
		if len(rtts) == 0 {
			return "0"
		}
		d := rtts[min(len(rtts)-1, int(q*float64(len(rtts))))]
		return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64)
	}
	rps := 0.0
	if r.elapsed > 0 {
		rps = float64(len(rtts)) / r.elapsed.Seconds()
	}
	return fmt.Sprintf("rtt_p50_us=%s rtt_p99_us=%s rtt_p999_us=%s rps=%.0f sent=%d received=%d bad=%d conns=%d elapsed_s=%.3f loop_allocs=%d",
		pct(0.50), pct(0.99), pct(0.999), rps, r.sent, r.received, r.bad, r.conns, r.elapsed.Seconds(), r.loopAllocs)
}
