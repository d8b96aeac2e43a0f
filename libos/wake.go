package libos

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// waker interrupts the loop on behalf of other goroutines: a flag the
// loop looks at once per turn, and an eventfd in the poll(2) set for when
// it sleeps. Wake writes the eventfd only when the loop has said it is
// about to sleep, so a busy loop costs a waker two atomic operations and
// no system call.
type waker struct {
	pending  atomic.Uint32 // a Wake not yet reported by a wait (EINTR)
	sleeping atomic.Uint32 // the loop is in, or about to enter, poll(2)

	mu sync.RWMutex // Wake (read) against close (write): the fd is never reused under a writer
	fd int
	ok bool // fd is open
}

// wakeValue is what Wake adds to the eventfd's counter (8 bytes, host order).
var wakeValue = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}()

func (w *waker) open() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("libos: eventfd: %w", err)
	}
	w.mu.Lock()
	w.fd, w.ok = fd, true
	w.mu.Unlock()
	return nil
}

func (w *waker) close() {
	w.mu.Lock()
	if w.ok {
		unix.Close(w.fd)
		w.ok = false
	}
	w.mu.Unlock()
}

// take reports, and clears, a pending Wake. Only the loop calls it.
func (w *waker) take() bool {
	return w.pending.Load() != 0 && w.pending.Swap(0) != 0
}

// Wake interrupts the LibOS's event loop from any goroutine: a Wait,
// WaitAny or WaitNext that is running (spinning or asleep in poll(2))
// returns promptly with the error EINTR, and if none is running, the next
// one to run a turn of the loop does. It is the one LibOS method that is
// safe to call concurrently with the others, and it is how a goroutine
// that has queued work for the goroutine driving the loop (as dxnet does)
// gets that goroutine to look at it.
//
// A woken wait returns EINTR only when none of the operations it waits for
// has completed; it runs one turn of the loop first (as a poll with
// timeout 0 does), and an operation that completed in that turn is
// returned instead, leaving the wake-up for the next wait. EINTR, like
// ETIMEDOUT, leaves every operation pending and its token valid. Wake-ups
// do not accumulate: several Wakes before a wait reports one give one
// EINTR. After Close, Wake does nothing.
//
// Wake allocates nothing; it makes a system call (a write to an eventfd
// the loop polls) only when the loop is asleep or about to sleep.
func (l *LibOS) Wake() {
	w := &l.wake
	if w.pending.Swap(1) != 0 {
		// An earlier Wake is still pending: it has written the eventfd
		// if the loop was asleep, and a loop that was not checks the
		// flag before it sleeps.
		return
	}
	if w.sleeping.Load() == 0 {
		return // the loop is running and looks at the flag every turn
	}
	w.mu.RLock()
	if w.ok {
		unix.Write(w.fd, wakeValue[:])
	}
	w.mu.RUnlock()
}

// sleep blocks in poll(2) on the AF_XDP socket and the wake-up eventfd
// for up to d (d < 0: without limit), unless a Wake is already pending or,
// in a group, another queue's loop has handed this one work. The flag
// goes up before that last look, and a producer (Wake, or a loop handing
// off) puts its work, then reads the flag (waker.ring); both sides use
// sequentially consistent atomics, so either the producer sees the flag
// and writes the eventfd, or the look sees the work: none is slept
// through.
func (l *LibOS) sleep(d time.Duration) error {
	w := &l.wake
	w.sleeping.Store(1)
	defer w.sleeping.Store(0)
	if w.pending.Load() != 0 {
		return nil // run reports it on its next turn
	}
	if l.grp != nil && l.inboxPending() {
		return nil // the next turn takes the hand-offs (handoff.go)
	}
	l.ctr.Sleeps++
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	fds := [2]unix.PollFd{{Fd: int32(l.sock.FD()), Events: unix.POLLIN}, {Fd: -1}}
	if w.ok { // only the loop opens and closes it: no lock needed here
		fds[1] = unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN}
	}
	for {
		// Whole milliseconds, rounded up, as xdp.Socket.Poll sleeps.
		var ts unix.Timespec
		tp := &ts
		switch {
		case d < 0:
			tp = nil
		case d > 0:
			left := max(time.Until(deadline), 0)
			ts = unix.NsecToTimespec(int64((left + time.Millisecond - 1) / time.Millisecond * time.Millisecond))
		}
		_, err := unix.Ppoll(fds[:], tp, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("libos: poll: %w", err)
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return fmt.Errorf("libos: poll: %w", unix.EBADF)
		}
		if fds[1].Revents&unix.POLLIN != 0 {
			var b [8]byte
			unix.Read(w.fd, b[:]) // reset the counter; EAGAIN if another read got it
		}
		return nil
	}
}
