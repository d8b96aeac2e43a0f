package umem

import (
	"errors"
	"fmt"
	"testing"
)

func mustPool(t testing.TB, u *UMEM, first, count uint32) *Pool {
	t.Helper()
	p, err := NewPool(u, first, count)
	if err != nil {
		t.Fatalf("NewPool(%d, %d): %v", first, count, err)
	}
	return p
}

// checkFreeList verifies that the free stack holds exactly the frames in
// StateFree, each once, and that every other frame's refcount fits its state.
func checkFreeList(t *testing.T, p *Pool) {
	t.Helper()
	seen := make(map[uint32]bool)
	for _, idx := range p.free[:p.top] {
		if !p.Contains(idx) || seen[idx] {
			t.Fatalf("free list corrupt: %d (dup=%v)", idx, seen[idx])
		}
		seen[idx] = true
	}
	for i := uint32(0); i < p.count; i++ {
		idx := p.first + i
		s, r := p.State(idx), p.Refs(idx)
		if (s == StateFree) != seen[idx] {
			t.Fatalf("frame %d in state %v, on free list %v", idx, s, seen[idx])
		}
		switch s {
		case StateFree, StateFill, StateAwaitCompletion:
			if r != 0 {
				t.Fatalf("frame %d in %v with refs %d", idx, s, r)
			}
		case StateRX, StateApp, StateTX:
			if r < 1 {
				t.Fatalf("frame %d in %v with refs %d", idx, s, r)
			}
		default:
			t.Fatalf("frame %d in state %v", idx, s)
		}
	}
}

func TestNewPoolRange(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 16})
	for _, r := range [][2]uint32{{0, 0}, {0, 17}, {16, 1}, {10, 7}, {^uint32(0), 2}, {1, ^uint32(0)}} {
		if _, err := NewPool(u, r[0], r[1]); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewPool(%d, %d) = %v, want ErrInvalidConfig", r[0], r[1], err)
		}
	}
	if _, err := NewPool(nil, 0, 1); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewPool(nil) = %v", err)
	}
	p := mustPool(t, u, 10, 6)
	if p.Len() != 6 || p.Available() != 6 || p.First() != 10 || p.UMEM() != u {
		t.Errorf("Len %d Available %d First %d", p.Len(), p.Available(), p.First())
	}
	idx, err := p.Alloc()
	if err != nil || idx != 10 {
		t.Errorf("first Alloc = %d, %v; want 10", idx, err)
	}
	if p.State(9) != StateInvalid || p.State(16) != StateInvalid || p.Refs(16) != -1 {
		t.Error("State/Refs of a foreign index")
	}
}

func TestStateString(t *testing.T) {
	want := map[State]string{
		StateFree: "Free", StateFill: "Fill", StateRX: "RX", StateApp: "App",
		StateTX: "TX", StateAwaitCompletion: "AwaitCompletion", StateInvalid: "Invalid", 42: "State(42)",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("%d.String() = %q, want %q", uint8(s), s.String(), w)
		}
	}
}

// into brings a frame of p into state s (refs 1 for held states) and
// returns it.
func into(t *testing.T, p *Pool, s State) uint32 {
	t.Helper()
	var idx uint32
	var err error
	step := func(e error) {
		if e != nil {
			t.Fatalf("into %v: %v", s, e)
		}
	}
	switch s {
	case StateFree:
		return p.free[p.top-1]
	case StateFill:
		idx, err = p.AllocFill()
		step(err)
	case StateRX:
		idx, err = p.AllocFill()
		step(err)
		step(p.Received(idx))
	case StateApp:
		idx, err = p.Alloc()
		step(err)
	case StateTX:
		idx, err = p.Alloc()
		step(err)
		step(p.SubmitTX(idx))
	case StateAwaitCompletion:
		idx, err = p.Alloc()
		step(err)
		step(p.SubmitTX(idx))
		step(p.Unref(idx))
	}
	if p.State(idx) != s {
		t.Fatalf("into %v: frame in %v", s, p.State(idx))
	}
	return idx
}

var allStates = []State{StateFree, StateFill, StateRX, StateApp, StateTX, StateAwaitCompletion}

type op struct {
	name string
	do   func(*Pool, uint32) error
}

var ops = []op{
	{"Received", (*Pool).Received},
	{"Ref", (*Pool).Ref},
	{"Unref", (*Pool).Unref},
	{"SubmitTX", (*Pool).SubmitTX},
	{"Completed", (*Pool).Completed},
	{"Reclaim", (*Pool).Reclaim},
}

// TestTransitions applies every operation to a frame in every state and
// checks the resulting state, refcount, error and counters: the legal
// transitions of the package documentation, and refusal without any change
// for all others.
func TestTransitions(t *testing.T) {
	type outcome struct {
		err   error // sentinel, or nil
		state State
		refs  int
	}
	bad := outcome{err: ErrBadTransition}
	df := outcome{err: ErrDoubleFree}
	want := map[State]map[string]outcome{
		StateFree: {"Received": bad, "Ref": bad, "Unref": df, "SubmitTX": bad, "Completed": bad, "Reclaim": bad},
		StateFill: {"Received": {nil, StateRX, 1}, "Ref": bad, "Unref": df, "SubmitTX": bad, "Completed": bad,
			"Reclaim": {nil, StateFree, 0}},
		StateRX: {"Received": bad, "Ref": {nil, StateRX, 2}, "Unref": {nil, StateFree, 0},
			"SubmitTX": {nil, StateTX, 1}, "Completed": bad, "Reclaim": bad},
		StateApp: {"Received": bad, "Ref": {nil, StateApp, 2}, "Unref": {nil, StateFree, 0},
			"SubmitTX": {nil, StateTX, 1}, "Completed": bad, "Reclaim": bad},
		StateTX: {"Received": bad, "Ref": {nil, StateTX, 2}, "Unref": {nil, StateAwaitCompletion, 0},
			"SubmitTX": bad, "Completed": {nil, StateApp, 1}, "Reclaim": {nil, StateApp, 1}},
		StateAwaitCompletion: {"Received": bad, "Ref": bad, "Unref": df, "SubmitTX": bad,
			"Completed": {nil, StateFree, 0}, "Reclaim": {nil, StateFree, 0}},
	}
	u := mustNew(t, Config{NumFrames: 8})
	for _, s := range allStates {
		for _, o := range ops {
			t.Run(fmt.Sprintf("%v/%s", s, o.name), func(t *testing.T) {
				p := mustPool(t, u, 2, 4)
				idx := into(t, p, s)
				w := want[s][o.name]
				before, avail := p.Stats(), p.Available()
				err := o.do(p, idx)
				after := p.Stats()
				if w.err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("err = %v, want %v", err, w.err)
					}
					if p.State(idx) != s || p.Available() != avail {
						t.Fatalf("refused op changed the frame: %v, available %d->%d", p.State(idx), avail, p.Available())
					}
					if w.err == ErrDoubleFree && after.DoubleFrees != before.DoubleFrees+1 {
						t.Errorf("DoubleFrees %d -> %d", before.DoubleFrees, after.DoubleFrees)
					}
					if w.err == ErrBadTransition && after.BadTransitions != before.BadTransitions+1 {
						t.Errorf("BadTransitions %d -> %d", before.BadTransitions, after.BadTransitions)
					}
				} else {
					if err != nil {
						t.Fatalf("err = %v, want success", err)
					}
					if p.State(idx) != w.state || p.Refs(idx) != w.refs {
						t.Fatalf("-> %v refs %d, want %v refs %d", p.State(idx), p.Refs(idx), w.state, w.refs)
					}
					if after.BadTransitions != before.BadTransitions || after.DoubleFrees != before.DoubleFrees {
						t.Errorf("success counted as misuse: %+v", after)
					}
					if w.state == StateFree && (p.Available() != avail+1 || after.Frees != before.Frees+1) {
						t.Errorf("freed but available %d->%d, frees %d->%d", avail, p.Available(), before.Frees, after.Frees)
					}
				}
				checkFreeList(t, p)
			})
		}
	}
}

func TestForeignIndex(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 16})
	p := mustPool(t, u, 4, 8)
	n := uint64(0)
	for _, idx := range []uint32{0, 3, 12, 15, 16, ^uint32(0)} {
		for _, o := range ops {
			err := o.do(p, idx)
			n++
			if !errors.Is(err, ErrNotFrame) {
				t.Errorf("%s(%d) = %v, want ErrNotFrame", o.name, idx, err)
			}
			if got := p.Stats().Foreign; got != n {
				t.Fatalf("Foreign = %d, want %d", got, n)
			}
		}
	}
	if st := p.Stats(); st.BadTransitions != 0 || st.DoubleFrees != 0 || p.Available() != 8 {
		t.Errorf("foreign indices disturbed the pool: %+v, available %d", st, p.Available())
	}
	checkFreeList(t, p)
}

func TestRefCounting(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 4})
	p := mustPool(t, u, 0, 4)
	idx := into(t, p, StateRX)
	for i := 0; i < 5; i++ {
		if err := p.Ref(idx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 6; i > 1; i-- {
		if p.Refs(idx) != i {
			t.Fatalf("refs %d, want %d", p.Refs(idx), i)
		}
		if err := p.Unref(idx); err != nil || p.State(idx) != StateRX {
			t.Fatalf("Unref: %v, state %v", err, p.State(idx))
		}
	}
	if err := p.Unref(idx); err != nil || p.State(idx) != StateFree || p.Available() != 4 {
		t.Fatalf("last Unref: %v, state %v, available %d", err, p.State(idx), p.Available())
	}
	if err := p.Unref(idx); !errors.Is(err, ErrDoubleFree) || p.Stats().DoubleFrees != 1 {
		t.Fatalf("double Unref: %v, %+v", err, p.Stats())
	}
	// The double free did not push the frame twice.
	if p.Available() != 4 {
		t.Fatalf("available %d after double free", p.Available())
	}
	checkFreeList(t, p)
}

// TestFreeProtection: an application frees a buffer it pushed before the
// transmit completes; the frame must not be reused until the completion.
func TestFreeProtection(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 4})
	p := mustPool(t, u, 0, 4)
	idx, err := p.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SubmitTX(idx); err != nil {
		t.Fatal(err)
	}
	if err := p.Unref(idx); err != nil {
		t.Fatal(err)
	}
	if p.State(idx) != StateAwaitCompletion || p.Available() != 3 {
		t.Fatalf("after Unref: %v, available %d", p.State(idx), p.Available())
	}
	// Drain the pool: the protected frame is never handed out.
	for i := 0; i < 3; i++ {
		got, err := p.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if got == idx {
			t.Fatalf("Alloc returned frame %d before its completion", idx)
		}
	}
	if _, err := p.Alloc(); err != ErrExhausted {
		t.Fatalf("Alloc = %v, want ErrExhausted", err)
	}
	if err := p.Completed(idx); err != nil {
		t.Fatal(err)
	}
	if p.State(idx) != StateFree || p.Available() != 1 {
		t.Fatalf("after completion: %v, available %d", p.State(idx), p.Available())
	}
	if got, err := p.Alloc(); err != nil || got != idx {
		t.Fatalf("Alloc after completion = %d, %v; want %d", got, err, idx)
	}

	// An RX frame echoed back: Received, SubmitTX, completion leaves it
	// with its holder as App; the holder's Unref then frees it.
	q := mustPool(t, u, 0, 4)
	rx := into(t, q, StateRX)
	if err := q.SubmitTX(rx); err != nil {
		t.Fatal(err)
	}
	if err := q.Completed(rx); err != nil || q.State(rx) != StateApp || q.Refs(rx) != 1 {
		t.Fatalf("Completed: %v, %v refs %d", err, q.State(rx), q.Refs(rx))
	}
	if err := q.Unref(rx); err != nil || q.State(rx) != StateFree {
		t.Fatalf("Unref: %v, %v", err, q.State(rx))
	}
	checkFreeList(t, q)
}

func TestExhaustionAndRecovery(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 32})
	p := mustPool(t, u, 0, 32)
	got := make(map[uint32]bool)
	for i := 0; i < 32; i++ {
		var idx uint32
		var err error
		if i%2 == 0 {
			idx, err = p.Alloc()
		} else {
			idx, err = p.AllocFill()
		}
		if err != nil || got[idx] {
			t.Fatalf("alloc %d: %d, %v (dup %v)", i, idx, err, got[idx])
		}
		got[idx] = true
	}
	for i := 0; i < 3; i++ {
		if _, err := p.Alloc(); err != ErrExhausted {
			t.Fatalf("Alloc on empty = %v", err)
		}
		if _, err := p.AllocFill(); err != ErrExhausted {
			t.Fatalf("AllocFill on empty = %v", err)
		}
	}
	if st := p.Stats(); st.Exhausted != 6 || st.Allocs != 32 {
		t.Fatalf("stats %+v", st)
	}
	// Give everything back.
	for idx := range got {
		var err error
		if p.State(idx) == StateFill {
			err = p.Reclaim(idx)
		} else {
			err = p.Unref(idx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if p.Available() != 32 || p.Stats().Frees != 32 {
		t.Fatalf("available %d, %+v", p.Available(), p.Stats())
	}
	checkFreeList(t, p)
	for i := 0; i < 32; i++ {
		if _, err := p.Alloc(); err != nil {
			t.Fatalf("Alloc after recovery: %v", err)
		}
	}
}

func TestDisjointPools(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 16})
	a := mustPool(t, u, 0, 8)
	b := mustPool(t, u, 8, 8)
	seen := make(map[uint32]string)
	for i := 0; i < 8; i++ {
		x, err := a.Alloc()
		if err != nil || x >= 8 {
			t.Fatalf("a.Alloc = %d, %v", x, err)
		}
		y, err := b.AllocFill()
		if err != nil || y < 8 || y >= 16 {
			t.Fatalf("b.AllocFill = %d, %v", y, err)
		}
		if seen[x] != "" || seen[y] != "" {
			t.Fatalf("frame handed out twice")
		}
		seen[x], seen[y] = "a", "b"
		// Neither pool accepts the other's frames.
		if err := a.Unref(y); !errors.Is(err, ErrNotFrame) {
			t.Fatalf("a.Unref(b's %d) = %v", y, err)
		}
		if err := b.Received(x); !errors.Is(err, ErrNotFrame) {
			t.Fatalf("b.Received(a's %d) = %v", x, err)
		}
	}
	if a.Stats().Foreign != 8 || b.Stats().Foreign != 8 {
		t.Fatalf("foreign counts %d %d", a.Stats().Foreign, b.Stats().Foreign)
	}
	if _, err := a.Alloc(); err != ErrExhausted {
		t.Fatalf("a not exhausted: %v", err)
	}
	if b.Available() != 0 {
		t.Fatal("b not exhausted")
	}
	// Frames of both pools address disjoint memory of the one region.
	fa, fb := u.Frame(7), u.Frame(8)
	if &fa[len(fa)-1] == &fb[0] || u.Addr(8)-u.Addr(7) != uint64(u.FrameSize()) {
		t.Fatal("frames overlap")
	}
}
