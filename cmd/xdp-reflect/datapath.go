package main

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
)

// maxBatch bounds the descriptors handled per ring per loop iteration.
const maxBatch = 256

// counters are the reflector's own statistics.
type counters struct {
	rx        uint64              // descriptors taken from the RX ring
	tx        uint64              // frames posted to the TX ring
	completed uint64              // frames returned by the completion ring
	filled    uint64              // frames posted to the fill ring (initial fill included)
	verdicts  [numVerdicts]uint64 // per verdict (reflected + reasons to drop)
	txFull    uint64              // reflected frames dropped because the TX ring was full
	badDesc   uint64              // descriptors outside the UMEM or frame bounds
	poolErrs  uint64              // frame pool state errors (a bug if non-zero)
	kicks     uint64              // sendto wake-ups for TX
	kickErrs  uint64              // non-transient Kick/WakeFill errors
	polls     uint64              // times the loop slept in poll(2)
}

// dropped is the number of received frames that were released, not sent back.
func (c *counters) dropped() uint64 {
	var n uint64
	for v := verdictReflected + 1; v < numVerdicts; v++ {
		n += c.verdicts[v]
	}
	return n + c.txFull + c.badDesc
}

func (c *counters) write(w io.Writer) {
	fmt.Fprintf(w, "rx=%d tx=%d dropped=%d completed=%d filled=%d tx_full=%d bad_desc=%d pool_errors=%d kicks=%d kick_errors=%d polls=%d\n",
		c.rx, c.tx, c.dropped(), c.completed, c.filled, c.txFull, c.badDesc, c.poolErrs, c.kicks, c.kickErrs, c.polls)
	fmt.Fprint(w, "verdicts:")
	for v := verdict(0); v < numVerdicts; v++ {
		fmt.Fprintf(w, " verdict_%s=%d", v, c.verdicts[v])
	}
	fmt.Fprintln(w)
}

// datapath moves frames RX -> reflect in place -> TX -> completion -> fill.
// It owns the pool and the rings: one goroutine only.
type datapath struct {
	u     *umem.UMEM
	pool  *umem.Pool
	sock  *xdp.Socket
	fill  *xdp.FillRing
	comp  *xdp.CompRing
	rxr   *xdp.RXRing
	txr   *xdp.TXRing
	r     reflector
	batch uint32
	st    counters
	sink  *sink  // -sink: count and drop instead of reflecting (nil: reflect)
	idle  func() // called when a turn of the loop found no work (nil: nothing)

	txOutstanding uint64 // posted to TX, not yet completed
	pending       [maxBatch]unix.XDPDesc
	pendingFrame  [maxBatch]uint32
	fillBuf       [maxBatch]uint32
}

func newDatapath(u *umem.UMEM, pool *umem.Pool, sock *xdp.Socket, r reflector, batch int) *datapath {
	return &datapath{
		u: u, pool: pool, sock: sock,
		fill: sock.Fill(), comp: sock.Completion(), rxr: sock.RX(), txr: sock.TX(),
		r: r, batch: uint32(min(max(batch, 1), maxBatch)),
	}
}

// refill posts free frames to the fill ring, in chunks of at most maxBatch
// frames taken from the pool first, so no ring slot is ever reserved without
// a frame to put in it. It returns how many frames it posted.
func (d *datapath) refill() uint32 {
	var total uint32
	for {
		k := uint32(0)
		for k < maxBatch {
			f, err := d.pool.AllocFill()
			if err != nil { // ErrExhausted: every frame is in use
				break
			}
			d.fillBuf[k] = f
			k++
		}
		if k == 0 {
			return total
		}
		idx, got := d.fill.Reserve(k)
		for i := uint32(0); i < got; i++ {
			d.fill.Set(idx+i, d.u.Addr(d.fillBuf[i]))
		}
		d.fill.Submit(got)
		total += got
		d.st.filled += uint64(got)
		for i := got; i < k; i++ { // the ring is full: give the rest back
			if d.pool.Reclaim(d.fillBuf[i]) != nil {
				d.st.poolErrs++
			}
		}
		if got < k {
			return total
		}
	}
}

// reap returns completed TX frames to the pool.
func (d *datapath) reap() uint32 {
	idx, n := d.comp.Peek(d.comp.Size())
	for i := uint32(0); i < n; i++ {
		f, ok := d.u.FrameOf(d.comp.Get(idx + i))
		if !ok || d.pool.Completed(f) != nil {
			d.st.poolErrs++
		}
	}
	d.comp.Release(n)
	d.st.completed += uint64(n)
	d.txOutstanding -= uint64(min(uint64(n), d.txOutstanding))
	return n
}

// receive reflects one batch from the RX ring onto the TX ring. It returns
// how many descriptors it took from the RX ring.
func (d *datapath) receive() uint32 {
	idx, n := d.rxr.Peek(d.batch)
	if n == 0 {
		return 0
	}
	k := uint32(0)
	for i := uint32(0); i < n; i++ {
		desc := d.rxr.Get(idx + i)
		f, ok := d.u.FrameOf(desc.Addr)
		if !ok {
			d.st.badDesc++
			continue
		}
		if d.pool.Received(f) != nil {
			d.st.poolErrs++
			continue
		}
		frame := d.u.Frame(f)
		off := desc.Addr - d.u.Addr(f)
		if off+uint64(desc.Len) > uint64(len(frame)) {
			d.st.badDesc++
			d.release(f)
			continue
		}
		if d.sink != nil {
			v, udp := d.r.match(frame[off : off+uint64(desc.Len)])
			d.st.verdicts[v]++
			if v == verdictReflected {
				d.sink.count(udp)
			}
			d.release(f)
			continue
		}
		v := d.r.reflect(frame[off : off+uint64(desc.Len)])
		d.st.verdicts[v]++
		if v != verdictReflected {
			d.release(f)
			continue
		}
		d.pending[k] = unix.XDPDesc{Addr: desc.Addr, Len: desc.Len}
		d.pendingFrame[k] = f
		k++
	}
	d.rxr.Release(n)
	d.st.rx += uint64(n)
	if k == 0 {
		return n
	}
	tidx, got := d.txr.Reserve(k)
	for j := uint32(0); j < got; j++ {
		d.txr.Set(tidx+j, d.pending[j])
		f := d.pendingFrame[j]
		// RX -> TX keeps the reference; dropping it makes the frame
		// AwaitCompletion, so it returns to the pool at completion.
		if d.pool.SubmitTX(f) != nil || d.pool.Unref(f) != nil {
			d.st.poolErrs++
		}
	}
	d.txr.Submit(got)
	d.st.tx += uint64(got)
	d.txOutstanding += uint64(got)
	for j := got; j < k; j++ {
		d.st.txFull++
		d.release(d.pendingFrame[j])
	}
	if got > 0 {
		d.kick()
	}
	return n
}

func (d *datapath) release(f uint32) {
	if d.pool.Unref(f) != nil {
		d.st.poolErrs++
	}
}

// kick starts transmission when the kernel asks for a wake-up (always in copy mode).
func (d *datapath) kick() {
	if !d.txr.NeedWakeup() {
		return
	}
	d.st.kicks++
	if d.sock.Kick() != nil {
		d.st.kickErrs++
	}
}

// step runs one iteration: receive+reflect, reap completions, refill. It
// reports whether it did any work. It allocates nothing.
func (d *datapath) step() bool {
	n := d.receive()
	c := d.reap()
	f := d.refill()
	if f > 0 && d.fill.NeedWakeup() {
		if d.sock.WakeFill() != nil {
			d.st.kickErrs++
		}
	}
	return n+c+f > 0
}

// run loops until stop reports true: busy-polling while there is work,
// spinning for spin after the last work, then blocking in poll(2) (unless
// spin < 0, which means never block).
func (d *datapath) run(stop func() bool, spin time.Duration) error {
	var idleSince time.Time
	for !stop() {
		if d.step() {
			idleSince = time.Time{}
			continue
		}
		if d.txOutstanding > 0 { // a transient Kick failure must not strand frames
			d.kick()
		}
		if d.idle != nil {
			d.idle()
		}
		if spin < 0 {
			continue
		}
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
			continue
		}
		if now.Sub(idleSince) < spin {
			continue
		}
		d.st.polls++
		if _, err := d.sock.Poll(100 * time.Millisecond); err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		idleSince = time.Time{}
	}
	return nil
}
