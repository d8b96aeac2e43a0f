package main

import (
	"time"

	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
	"golang.org/x/sys/unix"
)

// maxLost ends a run whose server does not answer.
const maxLost = 200

// maxOutstanding bounds the requests in flight (one TX frame each).
const maxOutstanding = 1024

// slot is one request in flight.
type slot struct {
	seq    uint64
	sent   int64 // ns since the run started; 0 when the slot is idle
	tries  int
	active bool
}

// stats are the client's counters.
type stats struct {
	sent, received, lost, bad, stale, retransmits uint64
	kicks, txFull                                 uint64
	completed                                     uint64 // transmit frames the kernel returned
}

// client is a closed-loop request/reply generator on one AF_XDP socket. The
// UMEM's first half is posted to the fill ring for receive; the second half
// holds transmit frames. One goroutine only; the loop allocates nothing.
type client struct {
	u    *umem.UMEM
	sock *xdp.Socket
	fill *xdp.FillRing
	comp *xdp.CompRing
	rxr  *xdp.RXRing
	txr  *xdp.TXRing
	t    template

	slots   []slot
	txFree  []uint32 // free transmit frames
	fillBuf []uint64
	ready   []uint32 // slots whose next request is due
	batch   uint32

	start   time.Time
	timeout int64
	retries int
	nextSeq uint64
	want    uint64 // requests to complete (warm-up included)
	warmup  uint64
	done    uint64 // replies matched or given up (warm-up included)
	active  uint64 // slots with a request in flight
	samples []int64
	st      stats
}

func (c *client) now() int64 { return int64(time.Since(c.start)) }

// setup posts the receive half of the UMEM to the fill ring.
func (c *client) setup() {
	n := uint32(c.u.NumFrames())
	half := n / 2
	for f := half; f < n; f++ {
		c.txFree = append(c.txFree, f)
	}
	idx, got := c.fill.Reserve(half)
	for i := uint32(0); i < got; i++ {
		c.fill.Set(idx+i, c.u.Addr(i))
	}
	c.fill.Submit(got)
	for i := range c.slots {
		c.ready = append(c.ready, uint32(i))
	}
}

// receive matches replies to slots and reposts their frames for receive.
func (c *client) receive() uint32 {
	idx, n := c.rxr.Peek(c.batch)
	if n == 0 {
		return 0
	}
	now := c.now()
	c.fillBuf = c.fillBuf[:0]
	for i := uint32(0); i < n; i++ {
		d := c.rxr.Get(idx + i)
		f, ok := c.u.FrameOf(d.Addr)
		if !ok {
			c.st.bad++
			continue
		}
		c.fillBuf = append(c.fillBuf, c.u.Addr(f))
		frame := c.u.Frame(f)
		off := d.Addr - c.u.Addr(f)
		if off+uint64(d.Len) > uint64(len(frame)) {
			c.st.bad++
			continue
		}
		seq, si, ok := c.t.parseReply(frame[off : off+uint64(d.Len)])
		if !ok || int(si) >= len(c.slots) {
			c.st.bad++
			continue
		}
		s := &c.slots[si]
		if !s.active || s.seq != seq {
			c.st.stale++ // a late reply to a request already retried
			continue
		}
		s.active, s.tries = false, 0
		c.active--
		c.st.received++
		if c.done >= c.warmup && len(c.samples) < cap(c.samples) {
			c.samples = append(c.samples, now-s.sent)
		}
		c.done++
		c.ready = append(c.ready, si)
	}
	c.rxr.Release(n)
	fidx, got := c.fill.Reserve(uint32(len(c.fillBuf)))
	for i := uint32(0); i < got; i++ {
		c.fill.Set(fidx+i, c.fillBuf[i])
	}
	c.fill.Submit(got)
	return n
}

// reap returns completed transmit frames to the free list.
func (c *client) reap() {
	idx, n := c.comp.Peek(c.comp.Size())
	for i := uint32(0); i < n; i++ {
		if f, ok := c.u.FrameOf(c.comp.Get(idx + i)); ok {
			c.txFree = append(c.txFree, f)
		}
	}
	c.comp.Release(n)
	c.st.completed += uint64(n)
}

// send posts the next request of every ready slot, as long as requests
// remain and transmit frames and ring slots are free.
func (c *client) send() {
	k := uint32(0)
	for len(c.ready) > 0 && len(c.txFree) > 0 {
		if c.done+c.active >= c.want {
			break
		}
		tidx, got := c.txr.Reserve(1)
		if got == 0 {
			c.st.txFull++
			break
		}
		si := c.ready[len(c.ready)-1]
		c.ready = c.ready[:len(c.ready)-1]
		f := c.txFree[len(c.txFree)-1]
		c.txFree = c.txFree[:len(c.txFree)-1]
		s := &c.slots[si]
		s.seq = c.nextSeq
		c.nextSeq++
		n := c.t.stamp(c.u.Frame(f), s.seq, si)
		s.sent, s.active = c.now(), true
		c.active++
		c.txr.Set(tidx, unix.XDPDesc{Addr: c.u.Addr(f), Len: uint32(n)})
		c.txr.Submit(1)
		c.st.sent++
		k++
	}
	if k > 0 || c.inflightTX() {
		c.kick()
	}
}

func (c *client) kick() {
	if c.txr.NeedWakeup() {
		c.st.kicks++
		_ = c.sock.Kick() // transient errors leave the descriptors queued; kicked again next turn
	}
}

// inflightTX reports whether frames posted to TX have not all completed.
func (c *client) inflightTX() bool {
	return len(c.txFree) < c.u.NumFrames()-c.u.NumFrames()/2
}

// expire retries requests unanswered after the timeout, and gives up on
// them after the retries.
func (c *client) expire() {
	now := c.now()
	for i := range c.slots {
		s := &c.slots[i]
		if !s.active || now-s.sent < c.timeout {
			continue
		}
		s.active = false
		c.active--
		if s.tries < c.retries {
			s.tries++
			c.st.retransmits++
		} else {
			s.tries = 0
			c.st.lost++
			c.done++ // given up: counts towards the total
		}
		c.ready = append(c.ready, uint32(i))
	}
}

// run busy-polls until want requests completed, stop reports true or the
// deadline passes. It returns the elapsed time.
func (c *client) run(stop func() bool, deadline time.Duration) time.Duration {
	c.start = time.Now()
	c.send()
	for turn := uint64(0); c.done < c.want; turn++ {
		c.receive()
		c.reap()
		c.send()
		if turn&1023 == 0 {
			c.expire()
			if stop() || (deadline > 0 && time.Duration(c.now()) > deadline) || c.st.lost > maxLost {
				break
			}
		}
	}
	return time.Since(c.start)
}
