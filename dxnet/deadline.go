package dxnet

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errTimeout is what an expired deadline gives: os.ErrDeadlineExceeded,
// whose Timeout method reports true, as the net package's own.
var errTimeout = os.ErrDeadlineExceeded

// deadline is one direction's deadline (read, write, accept). When it
// passes (its timer fires, or it is set in the past) it cancels the call
// its request is running, if any, and wakes the caller: a waiting call
// needs no channel of its own for deadlines, so it waits on nothing but
// its request's done channel. A call already waiting obeys a new time
// (later, earlier or none). Setting a deadline allocates only the first
// time (its timer).
//
// The timer is moved lazily. net/http moves the read deadline several
// times a request (later by ReadHeaderTimeout, then none, then in the
// past to stop its background read): re-arming a runtime timer each time
// was 4% of http-hello's CPU at 64 connections. A deadline moved later,
// or cleared, leaves the timer armed for the earlier time; when it goes
// off early, fire arms it again for what is left. Only a deadline earlier
// than the armed time resets it.
type deadline struct {
	r     *request // the direction's request
	fired atomic.Bool

	mu    sync.Mutex
	when  time.Time // zero: none
	armed time.Time // when the timer goes off, on the monotonic clock; zero: not armed
	timer *time.Timer
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool { return d.fired.Load() }

// set moves the deadline to t (zero: none).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	if t.IsZero() {
		d.fired.Store(false)
		return // an armed timer finds no deadline and does nothing
	}
	now := time.Now()
	left := t.Sub(now)
	if left <= 0 {
		d.fired.Store(true)
		d.r.interrupt(errTimeout)
		return
	}
	d.fired.Store(false)
	d.arm(now, left)
}

// arm makes sure the timer goes off within left of now. The armed time
// is kept on the monotonic clock (now's), so that a step of the wall
// clock cannot make a firing look early. d.mu is held.
func (d *deadline) arm(now time.Time, left time.Duration) {
	switch {
	case d.timer == nil:
		d.timer = time.AfterFunc(left, d.fire)
	case d.armed.IsZero() || left < d.armed.Sub(now):
		d.timer.Reset(left)
	default:
		return // armed for earlier: fire re-arms
	}
	d.armed = now.Add(left)
}

// fire runs when the timer goes off: the deadline expires if it has
// come, the timer is armed again if the deadline moved later, and
// nothing happens if it was cleared (or the deadline stopped). A firing
// before the armed time (one left over from before a Reset) keeps the
// timer pending for that time.
func (d *deadline) fire() {
	d.mu.Lock()
	now := time.Now()
	if !d.armed.IsZero() {
		if wait := d.armed.Sub(now); wait > 0 {
			d.timer.Reset(wait)
			d.mu.Unlock()
			return
		}
	}
	d.armed = time.Time{}
	if d.fired.Load() || d.when.IsZero() {
		d.mu.Unlock()
		return
	}
	if left := d.when.Sub(now); left > 0 {
		d.arm(now, left)
		d.mu.Unlock()
		return
	}
	d.fired.Store(true)
	d.mu.Unlock()
	d.r.interrupt(errTimeout)
}

// stop releases the timer (Close).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	// A firing already under way finds no deadline and re-arms nothing.
	d.when, d.armed = time.Time{}, time.Time{}
}

// interrupt cancels the call r is running, if it is still pending, and
// wakes its caller, who returns why. Deadlines and Close call it from any
// goroutine; a call that is busy in the loop or done is left alone.
func (r *request) interrupt(why error) {
	gen := r.active.Load()
	if gen == 0 {
		return
	}
	if r.cancel(gen) {
		r.why = why
		select {
		case r.done <- struct{}{}: // capacity 1, and the call's only signal
		default:
		}
	}
}

// do queues call it of r (started by the caller: r.start, r's inputs
// filled) and waits for it. The call gives up when d passes or closed is
// set (Close), returning os.ErrDeadlineExceeded or net.ErrClosed; it
// returns nil when the loop finished it (its results are in r). A stack
// that is closed refuses it with net.ErrClosed.
//
//demixdp:hotpath — allocates nothing.
func (s *Stack) do(it item, d *deadline, closed *atomic.Bool) error {
	r := it.r
	r.active.Store(it.gen)
	defer r.active.Store(0)
	if !s.submit(it) {
		if !r.cancel(it.gen) {
			<-r.done // an interrupt got there first and signalled
		}
		return net.ErrClosed
	}
	// A deadline or Close that came between the caller's check and the
	// publication of active did not see this call: look again.
	if d.fired.Load() {
		r.interrupt(errTimeout)
	}
	if closed.Load() {
		r.interrupt(net.ErrClosed)
	}
	<-r.done
	if r.state.Load() == it.gen<<phaseBits|phaseCancelled {
		return r.why
	}
	return nil
}
