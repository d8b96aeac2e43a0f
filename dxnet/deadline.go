package dxnet

import (
	"os"
	"sync"
	"time"
)

// errTimeout is what an expired deadline gives: os.ErrDeadlineExceeded,
// whose Timeout method reports true, as the net package's own.
var errTimeout = os.ErrDeadlineExceeded

// deadline is one direction's deadline (read, write, accept): a channel
// that is closed when the deadline passes, which a blocked call selects
// on. Moving the deadline re-arms one timer and keeps the channel, so a
// call already blocked obeys the new time (later, earlier or none); only
// after the channel has been closed does a new deadline need a new one.
// Setting a deadline allocates only then (and on first use); waiting on
// one never does.
type deadline struct {
	mu    sync.Mutex
	ch    chan struct{}
	fired bool      // ch is closed
	when  time.Time // zero: none
	timer *time.Timer
}

// channel returns the channel the current call waits on: closed once the
// deadline has passed. A deadline set later, while the call waits, closes
// this same channel when it passes.
func (d *deadline) channel() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired
}

// set moves the deadline to t (zero: none).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.fired {
		d.ch, d.fired = nil, false
	}
	d.when = t
	if t.IsZero() {
		return
	}
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	left := time.Until(t)
	if left <= 0 {
		close(d.ch)
		d.fired = true
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(left, d.fire)
	} else {
		d.timer.Reset(left)
	}
}

// fire runs when the timer goes off. A firing left over from an earlier
// setting finds the deadline moved and does nothing.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired || d.when.IsZero() || time.Now().Before(d.when) {
		return
	}
	close(d.ch)
	d.fired = true
}

// stop releases the timer (Close).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}
