package umem

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// refFrame and refModel are a deliberately naive reference implementation of
// the pool's rules, written straight from the package documentation.
type refFrame struct {
	state State
	refs  int
}

type refModel struct {
	first, count uint32
	frames       map[uint32]*refFrame
	stats        Stats
}

func newRefModel(first, count uint32) *refModel {
	m := &refModel{first: first, count: count, frames: make(map[uint32]*refFrame)}
	for i := first; i < first+count; i++ {
		m.frames[i] = &refFrame{state: StateFree}
	}
	return m
}

func (m *refModel) free() int {
	n := 0
	for _, f := range m.frames {
		if f.state == StateFree {
			n++
		}
	}
	return n
}

// alloc checks that the pool's pick was free and applies it.
func (m *refModel) alloc(idx uint32, err error, s State, refs int) error {
	if m.free() == 0 {
		m.stats.Exhausted++
		if err != ErrExhausted {
			return errors.New("pool allocated from an empty model")
		}
		return nil
	}
	if err != nil {
		return err
	}
	f := m.frames[idx]
	if f == nil || f.state != StateFree {
		return errors.New("pool allocated a frame that is not free")
	}
	f.state, f.refs = s, refs
	m.stats.Allocs++
	return nil
}

// apply returns the sentinel the operation must fail with, or nil.
func (m *refModel) apply(op string, idx uint32) error {
	f := m.frames[idx]
	if f == nil {
		m.stats.Foreign++
		return ErrNotFrame
	}
	bad := func() error { m.stats.BadTransitions++; return ErrBadTransition }
	toFree := func() { f.state, f.refs = StateFree, 0; m.stats.Frees++ }
	switch op {
	case "Received":
		if f.state != StateFill {
			return bad()
		}
		f.state, f.refs = StateRX, 1
	case "Ref":
		if f.state != StateRX && f.state != StateApp && f.state != StateTX {
			return bad()
		}
		f.refs++
	case "Unref":
		if f.state != StateRX && f.state != StateApp && f.state != StateTX {
			m.stats.DoubleFrees++
			return ErrDoubleFree
		}
		f.refs--
		if f.refs == 0 {
			if f.state == StateTX {
				f.state = StateAwaitCompletion
			} else {
				toFree()
			}
		}
	case "SubmitTX":
		if f.state != StateRX && f.state != StateApp {
			return bad()
		}
		f.state = StateTX
	case "Completed", "Reclaim":
		switch {
		case f.state == StateTX:
			f.state = StateApp
		case f.state == StateAwaitCompletion:
			toFree()
		case op == "Reclaim" && f.state == StateFill:
			toFree()
		default:
			return bad()
		}
	}
	return nil
}

// weightedOps indexes ops: Received 2, Ref 1, Unref 3, SubmitTX 2,
// Completed 2, Reclaim 1.
var weightedOps = []int{0, 0, 1, 2, 2, 2, 3, 3, 4, 4, 5}

func TestPoolAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		u := mustNew(t, Config{NumFrames: 64})
		const first, count = 16, 24
		p := mustPool(t, u, first, count)
		m := newRefModel(first, count)
		rng := rand.New(rand.NewPCG(seed, seed*7919))
		var live []uint32 // recently allocated frames, to make legal ops likely
		for step := 0; step < 5000; step++ {
			var idx uint32
			switch {
			case len(live) > 0 && rng.IntN(4) != 0:
				idx = live[rng.IntN(len(live))]
			default:
				idx = first - 3 + uint32(rng.IntN(count+6)) // includes foreign indices
			}
			switch k := rng.IntN(10); k {
			case 0:
				fill := rng.IntN(2) == 0
				var got uint32
				var err error
				want := StateApp
				refs := 1
				if fill {
					got, err = p.AllocFill()
					want, refs = StateFill, 0
				} else {
					got, err = p.Alloc()
				}
				if e := m.alloc(got, err, want, refs); e != nil {
					t.Fatalf("seed %d step %d alloc(fill=%v) = %d, %v: %v", seed, step, fill, got, err, e)
				}
				if err == nil {
					live = append(live, got)
					if len(live) > 32 {
						live = live[1:]
					}
				}
			default:
				// Weighted so frames keep moving through the
				// whole cycle instead of piling up held.
				o := ops[weightedOps[rng.IntN(len(weightedOps))]]
				want := m.apply(o.name, idx)
				err := o.do(p, idx)
				if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
					t.Fatalf("seed %d step %d %s(%d) = %v, model wants %v", seed, step, o.name, idx, err, want)
				}
			}
			if step%97 == 0 || step == 4999 {
				for i, f := range m.frames {
					if p.State(i) != f.state || p.Refs(i) != f.refs {
						t.Fatalf("seed %d step %d frame %d: pool %v/%d, model %v/%d", seed, step, i, p.State(i), p.Refs(i), f.state, f.refs)
					}
				}
				if p.Available() != m.free() || p.Stats() != m.stats {
					t.Fatalf("seed %d step %d: available %d vs %d, stats %+v vs %+v", seed, step, p.Available(), m.free(), p.Stats(), m.stats)
				}
				checkFreeList(t, p)
			}
		}
		st := p.Stats()
		t.Logf("seed %d: %+v", seed, st)
		if st.Allocs == 0 || st.Frees == 0 || st.BadTransitions == 0 || st.DoubleFrees == 0 || st.Foreign == 0 || st.Exhausted == 0 {
			t.Errorf("seed %d: the random walk missed a path: %+v", seed, st)
		}
	}
}
