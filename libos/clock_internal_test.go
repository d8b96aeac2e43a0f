package libos

import (
	"testing"
	"time"
)

// TestNowOncePerCall: inside a loop turn or an application call (inTurn)
// the first clock read serves every later Now, however much time passes;
// once the call ends, Now reads the clock again. Only sleeps of at least
// a millisecond are relied on, never an upper bound.
func TestNowOncePerCall(t *testing.T) {
	l := &LibOS{boot: 1, epoch: time.Now()}
	k := &xskLink{l: l}

	l.inTurn = true
	first := k.Now()
	time.Sleep(2 * time.Millisecond)
	if got := k.Now(); got != first {
		t.Fatalf("Now inside a call moved from %d to %d", first, got)
	}
	l.endCall()
	if l.inTurn || l.turn != 0 {
		t.Fatalf("endCall left inTurn=%v turn=%d", l.inTurn, l.turn)
	}
	if got := k.Now(); got < first+int64(2*time.Millisecond) {
		t.Fatalf("Now after the call = %d, want at least %d (2 ms after the cached read)", got, first+int64(2*time.Millisecond))
	}

	// Outside a call nothing is kept.
	a := k.Now()
	time.Sleep(time.Millisecond)
	if b := k.Now(); b < a+int64(time.Millisecond) || l.turn != 0 {
		t.Fatalf("Now outside a call: %d then %d (turn %d)", a, b, l.turn)
	}
}
