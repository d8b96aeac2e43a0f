package umem

import "fmt"

// Stats counts what a Pool has done, including misuse it refused.
type Stats struct {
	Allocs         uint64 // frames handed out by Alloc and AllocFill
	Frees          uint64 // frames returned to the free list
	Exhausted      uint64 // Alloc/AllocFill calls that found the pool empty
	DoubleFrees    uint64 // Unref of a frame without holder (ErrDoubleFree)
	Foreign        uint64 // indices outside the pool (ErrNotFrame)
	BadTransitions uint64 // impossible transitions (ErrBadTransition)
}

// Pool tracks the state and reference count of frames [first, first+count)
// of a UMEM and keeps the free ones on a stack, so allocation and release
// are O(1) and allocate nothing.
//
// A Pool is not safe for concurrent use: one goroutine (the LibOS queue's)
// owns it. Queues that share a UMEM each use their own Pool over a disjoint
// frame range; NewPool does not check that ranges of different pools are
// disjoint.
type Pool struct {
	u      *UMEM
	first  uint32
	count  uint32
	free   []uint32 // stack of free frame indices (absolute); free[:top] valid
	top    int
	frames []frame // by idx-first
	stats  Stats
}

// NewPool returns a pool owning frames [first, first+count) of u, all free.
// It fails with an error wrapping ErrInvalidConfig if the range is empty or
// outside u, or with ErrClosed if u is closed.
func NewPool(u *UMEM, first, count uint32) (*Pool, error) {
	if u == nil {
		return nil, fmt.Errorf("%w: nil UMEM", ErrInvalidConfig)
	}
	if u.isClosed() {
		return nil, ErrClosed
	}
	if count == 0 || uint64(first)+uint64(count) > uint64(u.numFrames) {
		return nil, fmt.Errorf("%w: frames [%d, %d) outside the UMEM's %d frames", ErrInvalidConfig, first, uint64(first)+uint64(count), u.numFrames)
	}
	p := &Pool{
		u:      u,
		first:  first,
		count:  count,
		free:   make([]uint32, count),
		top:    int(count),
		frames: make([]frame, count),
	}
	// Lowest index on top, so the first Alloc returns first.
	for i := range p.free {
		p.free[i] = first + count - 1 - uint32(i)
	}
	return p, nil
}

// UMEM returns the UMEM whose frames the pool manages.
func (p *Pool) UMEM() *UMEM { return p.u }

// First returns the first frame index of the pool.
func (p *Pool) First() uint32 { return p.first }

// Len returns the number of frames the pool manages.
func (p *Pool) Len() int { return int(p.count) }

// Available returns the number of free frames.
func (p *Pool) Available() int { return p.top }

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats { return p.stats }

// Contains reports whether idx is a frame of this pool.
func (p *Pool) Contains(idx uint32) bool { return idx-p.first < p.count }

// State returns the state of frame idx, or StateInvalid if idx is not a
// frame of this pool.
func (p *Pool) State(idx uint32) State {
	if !p.Contains(idx) {
		return StateInvalid
	}
	return p.frames[idx-p.first].state
}

// Refs returns the reference count of frame idx, or -1 if idx is not a frame
// of this pool.
func (p *Pool) Refs(idx uint32) int {
	if !p.Contains(idx) {
		return -1
	}
	return int(p.frames[idx-p.first].refs)
}

// pop takes a free frame off the stack and gives it state s and refs r.
// It allocates nothing, including on exhaustion.
func (p *Pool) pop(s State, r uint32) (uint32, error) {
	if p.u.isClosed() {
		return 0, ErrClosed
	}
	if p.top == 0 {
		p.stats.Exhausted++
		return 0, ErrExhausted
	}
	p.top--
	idx := p.free[p.top]
	i := idx - p.first
	p.frames[i] = frame{s, r}
	p.stats.Allocs++
	return idx, nil
}

// push returns frame i (relative) to the free list.
func (p *Pool) push(i uint32) {
	p.frames[i] = frame{}
	p.free[p.top] = p.first + i
	p.top++
	p.stats.Frees++
}

// Alloc takes a free frame for the application or the stack: Free -> App
// with one reference. It fails with the bare ErrExhausted, without
// allocating, when no frame is free, and with ErrClosed after the UMEM is
// closed.
func (p *Pool) Alloc() (uint32, error) { return p.pop(StateApp, 1) }

// AllocFill takes a free frame to post on the fill ring: Free -> Fill with
// no reference. It fails like Alloc.
func (p *Pool) AllocFill() (uint32, error) { return p.pop(StateFill, 0) }

// index checks idx and returns its position in the pool's arrays.
func (p *Pool) index(idx uint32) (uint32, error) {
	i := idx - p.first
	if i >= p.count {
		p.stats.Foreign++
		return 0, fmt.Errorf("%w: frame %d (pool holds [%d, %d))", ErrNotFrame, idx, p.first, uint64(p.first)+uint64(p.count))
	}
	return i, nil
}

// refuse counts a refused transition of frame idx from state s and returns
// its error: ErrDoubleFree for an Unref without holder, ErrBadTransition
// otherwise.
func (st *Stats) refuse(o outcome, op string, idx uint32, s State) error {
	switch o {
	case noHolder:
		st.DoubleFrees++
		return fmt.Errorf("%w: frame %d in state %v", ErrDoubleFree, idx, s)
	case refOverflow:
		op += " (count overflow)"
	}
	st.BadTransitions++
	return fmt.Errorf("%w: %s of frame %d in state %v", ErrBadTransition, op, idx, s)
}

// Received records that frame idx came back on the RX ring: Fill -> RX with
// one reference (the receiver's).
func (p *Pool) Received(idx uint32) error {
	i, err := p.index(idx)
	if err != nil {
		return err
	}
	if s := p.frames[i].state; s != StateFill {
		return p.stats.refuse(refused, "Received", idx, s)
	}
	p.frames[i] = frame{StateRX, 1}
	return nil
}

// Ref adds a holder to frame idx, which must be in RX, App or TX.
func (p *Pool) Ref(idx uint32) error {
	i, err := p.index(idx)
	if err != nil {
		return err
	}
	f, o := p.frames[i].ref()
	return p.settle("Ref", idx, i, f, o)
}

// Unref drops a holder of frame idx. When the last holder goes, an RX or
// App frame returns to the free list and a TX frame moves to
// AwaitCompletion, to be freed by Completed (free-protection). Unref of a
// frame that has no holder (Free, Fill, AwaitCompletion) fails with
// ErrDoubleFree.
func (p *Pool) Unref(idx uint32) error {
	i, err := p.index(idx)
	if err != nil {
		return err
	}
	f, o := p.frames[i].unref()
	return p.settle("Unref", idx, i, f, o)
}

// SubmitTX records that frame idx was posted to the TX ring: RX/App -> TX.
// The frame keeps its references. A frame already in TX cannot be submitted
// again before its completion.
func (p *Pool) SubmitTX(idx uint32) error {
	i, err := p.index(idx)
	if err != nil {
		return err
	}
	f, o := p.frames[i].submitTX()
	return p.settle("SubmitTX", idx, i, f, o)
}

// Completed records that the completion ring returned frame idx: TX -> App
// (its holders keep it; a frame that was received and echoed becomes App),
// or AwaitCompletion -> Free.
func (p *Pool) Completed(idx uint32) error {
	i, err := p.index(idx)
	if err != nil {
		return err
	}
	f, o := p.frames[i].complete()
	return p.settle("Completed", idx, i, f, o)
}

// settle stores frame i (index idx) after a transition with outcome o:
// kept, put back on the free list when released, or, when refused (f
// unchanged), counted and returned as an error.
func (p *Pool) settle(op string, idx, i uint32, f frame, o outcome) error {
	switch o {
	case held:
		p.frames[i] = f
		return nil
	case released:
		p.push(i)
		return nil
	}
	return p.stats.refuse(o, op, idx, f.state)
}

// Reclaim takes frame idx back from the kernel on teardown, when no
// completion will ever come for it: Fill -> Free for a frame still on the
// fill ring, and, for a socket closed with transmits outstanding, TX -> App
// (the holders keep it) or AwaitCompletion -> Free, exactly as Completed
// would. Calling it for a frame the kernel may still touch is the caller's
// error, which the pool cannot detect. Any other state fails with
// ErrBadTransition.
func (p *Pool) Reclaim(idx uint32) error {
	i, err := p.index(idx)
	if err != nil {
		return err
	}
	if p.frames[i].state == StateFill {
		p.push(i)
		return nil
	}
	f, o := p.frames[i].complete()
	return p.settle("Reclaim", idx, i, f, o)
}
