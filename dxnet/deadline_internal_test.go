package dxnet

import (
	"testing"
	"time"
)

// The lazy timer of a deadline, without a stack: every case ends on a
// state the timer reaches (or a flag it sets), waited for with a bound
// far beyond any delay; nothing asserts how long anything took.

// armedAt returns when d's timer goes off (zero: not armed).
func armedAt(d *deadline) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.armed
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("%s: not after 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDeadlineMovedLaterRearms: a deadline moved later leaves the timer
// for the earlier time; when it goes off it arms itself for the new
// deadline instead of expiring.
func TestDeadlineMovedLaterRearms(t *testing.T) {
	d := &deadline{r: &request{}}
	defer d.stop()
	d.set(time.Now().Add(20 * time.Millisecond))
	first := armedAt(d)
	later := time.Now().Add(time.Hour)
	d.set(later)
	// Still armed for the first time (or, after a stall of the test,
	// already re-armed for the later one).
	if a := armedAt(d); !a.Equal(first) && !a.Equal(later) {
		t.Fatalf("moving the deadline later re-armed the timer: armed %v, first %v", a, first)
	}
	eventually(t, "the timer to re-arm for the later deadline", func() bool { return armedAt(d).Equal(later) })
	if d.expired() {
		t.Fatal("the deadline expired at the time it was first set to")
	}
}

// TestDeadlineMovedLaterKeepsTimer: with deadlines an hour away, where no
// timer can go off during the test, moving the deadline later or clearing
// it leaves the timer armed for the first time (no reset), and moving it
// earlier resets it.
func TestDeadlineMovedLaterKeepsTimer(t *testing.T) {
	d := &deadline{r: &request{}}
	defer d.stop()
	d.set(time.Now().Add(time.Hour))
	first := armedAt(d)
	for _, t2 := range []time.Time{time.Now().Add(2 * time.Hour), {}, time.Now().Add(3 * time.Hour)} {
		d.set(t2)
		if a := armedAt(d); !a.Equal(first) {
			t.Fatalf("deadline moved to %v: timer armed for %v, want still %v", t2, a, first)
		}
	}
	earlier := time.Now().Add(30 * time.Minute)
	d.set(earlier)
	if a := armedAt(d); !a.Equal(earlier) {
		t.Fatalf("deadline moved earlier to %v: timer armed for %v", earlier, a)
	}
}

// TestDeadlineClearedLeavesTimer: a cleared deadline leaves the timer,
// which then goes off, finds no deadline and disarms.
func TestDeadlineClearedLeavesTimer(t *testing.T) {
	d := &deadline{r: &request{}}
	defer d.stop()
	d.set(time.Now().Add(20 * time.Millisecond))
	d.set(time.Time{})
	eventually(t, "the timer to go off and disarm", func() bool { return armedAt(d).IsZero() })
	if d.expired() {
		t.Fatal("a cleared deadline expired")
	}
	// Armed again from scratch, it expires.
	d.set(time.Now().Add(20 * time.Millisecond))
	eventually(t, "the new deadline to expire", d.expired)
}

// TestDeadlineMovedEarlierResets: a deadline moved earlier than the armed
// timer resets it, so it expires without waiting for the later time.
func TestDeadlineMovedEarlierResets(t *testing.T) {
	d := &deadline{r: &request{}}
	defer d.stop()
	d.set(time.Now().Add(time.Hour))
	soon := time.Now().Add(20 * time.Millisecond)
	d.set(soon)
	if a := armedAt(d); !a.Equal(soon) && !d.expired() {
		t.Fatalf("armed %v after moving the deadline earlier to %v", a, soon)
	}
	eventually(t, "the earlier deadline to expire", d.expired)
	// In the past: expired at once; cleared: not expired.
	d.set(time.Now().Add(-time.Second))
	if !d.expired() {
		t.Fatal("a deadline in the past has not expired")
	}
	d.set(time.Time{})
	if d.expired() {
		t.Fatal("a cleared deadline still reports expired")
	}
}

// TestDeadlineStoppedStaysDisarmed: a firing that was already under way
// when the deadline stopped (Close) arms nothing again, even for a
// deadline that had moved later.
func TestDeadlineStoppedStaysDisarmed(t *testing.T) {
	d := &deadline{r: &request{}}
	d.set(time.Now().Add(time.Hour))
	d.set(time.Now().Add(2 * time.Hour)) // later: the timer stays armed for the first
	d.stop()
	d.fire() // the firing under way
	if a := armedAt(d); !a.IsZero() {
		t.Fatalf("armed for %v after stop", a)
	}
	if d.expired() {
		t.Fatal("a stopped deadline expired")
	}
}

// TestDeadlineEarlyFiringKeepsTimer: a firing before the armed time
// (left over from before a Reset, or after a step of the wall clock)
// leaves the deadline armed and does not expire it; wall-clock-only
// deadlines (no monotonic reading) work as others do.
func TestDeadlineEarlyFiringKeepsTimer(t *testing.T) {
	d := &deadline{r: &request{}}
	defer d.stop()
	far := time.Now().Add(time.Hour).Round(0) // wall clock only
	d.set(far)
	d.fire() // early
	if a := armedAt(d); a.IsZero() || d.expired() {
		t.Fatalf("after an early firing: armed %v, expired %v", a, d.expired())
	}
	d.set(time.Now().Add(20 * time.Millisecond).Round(0))
	eventually(t, "a wall-clock deadline moved earlier to expire", d.expired)
}
