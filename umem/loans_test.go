package umem

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// A lent frame's life: borrowed in RX, echoed (TX), its holder gone while
// on the ring, back to the lender at its completion; a second holder keeps
// it past the completion.
func TestLoansLifecycle(t *testing.T) {
	var l Loans
	if l.State(7) != StateFree || l.Refs(7) != 0 || l.Len() != 0 {
		t.Fatal("a frame not on loan is not Free with no holder")
	}
	if err := l.Borrow(7); err != nil {
		t.Fatal(err)
	}
	if err := l.Borrow(7); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("Borrow twice: %v, want ErrBadTransition", err)
	}
	if err := l.SubmitTX(7); err != nil {
		t.Fatal(err)
	}
	if back, err := l.Unref(7); back || err != nil || l.State(7) != StateAwaitCompletion {
		t.Fatalf("Unref on the TX ring: back %v, %v, state %v; want AwaitCompletion", back, err, l.State(7))
	}
	if back, err := l.Completed(7); !back || err != nil || l.Len() != 0 || l.State(7) != StateFree {
		t.Fatalf("Completed: back %v, %v, %d on loan", back, err, l.Len())
	}

	// Two holders: the completion leaves it in App, the last Unref gives
	// it back.
	l.Borrow(9)
	l.Ref(9)
	l.SubmitTX(9)
	if back, err := l.Completed(9); back || err != nil || l.State(9) != StateApp || l.Refs(9) != 2 {
		t.Fatalf("Completed with holders: back %v, %v, %v/%d", back, err, l.State(9), l.Refs(9))
	}
	if back, _ := l.Unref(9); back {
		t.Fatal("first of two Unrefs gave the frame back")
	}
	if back, _ := l.Unref(9); !back {
		t.Fatal("last Unref did not give the frame back")
	}

	// Misuse is refused and counted, and changes nothing.
	if _, err := l.Unref(9); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("Unref of a frame given back: %v, want ErrDoubleFree", err)
	}
	if err := l.Ref(9); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("Ref of a frame given back: %v", err)
	}
	if _, err := l.Completed(9); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("Completed of a frame given back: %v", err)
	}
	if l.Len() != 0 {
		t.Fatalf("refused transitions put %d frames on loan", l.Len())
	}
	if s := l.Stats(); s.Allocs != 2 || s.Frees != 2 || s.DoubleFrees != 1 || s.BadTransitions != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// Loans follows a Pool's rules: random transitions on frames received by a
// pool and the same frames borrowed by Loans give the same errors, and a
// frame the pool frees is the frame Loans gives back.
func TestLoansFollowPoolRules(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 16})
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		p := mustPool(t, u, 0, 16)
		var l Loans
		for i := uint32(0); i < 16; i++ {
			f, _ := p.AllocFill()
			p.Received(f)
			l.Borrow(f)
		}
		for step := 0; step < 200; step++ {
			f := uint32(r.IntN(16))
			var pe, le error
			var back bool
			switch r.IntN(4) {
			case 0:
				pe, le = p.Ref(f), l.Ref(f)
			case 1:
				pe = p.Unref(f)
				back, le = l.Unref(f)
			case 2:
				pe, le = p.SubmitTX(f), l.SubmitTX(f)
			case 3:
				pe = p.Completed(f)
				back, le = l.Completed(f)
			}
			if errors.Is(pe, ErrDoubleFree) != errors.Is(le, ErrDoubleFree) ||
				errors.Is(pe, ErrBadTransition) != errors.Is(le, ErrBadTransition) || (pe == nil) != (le == nil) {
				t.Fatalf("round %d step %d frame %d: pool %v, loans %v", round, step, f, pe, le)
			}
			if p.State(f) != l.State(f) || p.Refs(f) != l.Refs(f) {
				t.Fatalf("frame %d: pool %v/%d, loans %v/%d", f, p.State(f), p.Refs(f), l.State(f), l.Refs(f))
			}
			if back != (le == nil && l.State(f) == StateFree) {
				t.Fatalf("frame %d: back %v in state %v", f, back, l.State(f))
			}
		}
		if ps, ls := p.Stats(), l.Stats(); ps.DoubleFrees != ls.DoubleFrees || ps.BadTransitions != ls.BadTransitions {
			t.Fatalf("pool stats %+v, loans %+v", ps, ls)
		}
	}
}

// Once grown, borrowing and giving back allocates nothing.
func TestLoansAllocateNothingInSteadyState(t *testing.T) {
	var l Loans
	for i := uint32(0); i < 64; i++ {
		l.Borrow(i)
	}
	for i := uint32(0); i < 64; i++ {
		l.Unref(i)
	}
	next := uint32(0)
	if a := testing.AllocsPerRun(1000, func() {
		f := next % 4096 // indices the map has never seen
		next += 7
		l.Borrow(f)
		l.SubmitTX(f)
		l.Unref(f)
		l.Completed(f)
	}); a != 0 {
		t.Fatalf("%v allocations per lent frame", a)
	}
}
