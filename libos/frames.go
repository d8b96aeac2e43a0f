package libos

import (
	"fmt"

	"github.com/demixdp/demixdp/umem"
)

// framePool is a queue's frame accounting. Its own frames, the queue's
// share of the UMEM, live in a umem.Pool over that share's frame range. A
// queue of a group (OpenQueues) also receives frames from the other
// queues' loops (hand-offs: a descriptor passed between loops, the frame
// itself never copied); those stay the lender's, and this queue only
// tracks their state and holders beside the pool, with the pool's rules,
// until the last holder lets go and the frame goes back to its owner.
//
// Outside a group foreign is nil and every call goes straight to the
// pool. Like the pool, a framePool belongs to the queue's loop goroutine.
type framePool struct {
	*umem.Pool
	l       *LibOS
	foreign []foreignFrame // by frame index over the whole UMEM; nil outside a group
	held    int            // lent frames this queue holds now
}

// foreignFrame is the state of a frame another queue lent this one. Its
// zero value (StateFree) means "not lent to us".
type foreignFrame struct {
	state umem.State
	refs  uint32
}

func (p *framePool) init(l *LibOS, pool *umem.Pool) {
	p.Pool, p.l = pool, l
	if l.grp != nil {
		p.foreign = make([]foreignFrame, l.um.NumFrames())
	}
}

// home reports whether f is one of this queue's own frames (or there is
// nothing else it could be).
func (p *framePool) home(f uint32) bool { return p.foreign == nil || p.Contains(f) }

// borrow takes frame f, which another queue received and handed to this
// one, into its accounting: RX with one reference, the receiver's.
func (p *framePool) borrow(f uint32) error {
	if int(f) >= len(p.foreign) || p.Contains(f) {
		return fmt.Errorf("%w: frame %d lent to the queue that owns it", umem.ErrNotFrame, f)
	}
	ff := &p.foreign[f]
	if ff.state != umem.StateFree {
		return fmt.Errorf("%w: frame %d lent twice (state %v)", umem.ErrBadTransition, f, ff.state)
	}
	ff.state, ff.refs = umem.StateRX, 1
	p.held++
	return nil
}

// letGo ends this queue's hold on a lent frame: it goes back to its owner.
func (p *framePool) letGo(f uint32) {
	p.foreign[f] = foreignFrame{}
	p.held--
	p.l.giveBack(f)
}

func (p *framePool) lent(f uint32) (*foreignFrame, error) {
	if int(f) >= len(p.foreign) {
		return nil, fmt.Errorf("%w: frame %d", umem.ErrNotFrame, f)
	}
	return &p.foreign[f], nil
}

// State is umem.Pool.State, for lent frames too.
func (p *framePool) State(f uint32) umem.State {
	if p.home(f) {
		return p.Pool.State(f)
	}
	if int(f) >= len(p.foreign) {
		return umem.StateInvalid
	}
	return p.foreign[f].state
}

// Ref is umem.Pool.Ref, for lent frames too.
func (p *framePool) Ref(f uint32) error {
	if p.home(f) {
		return p.Pool.Ref(f)
	}
	ff, err := p.lent(f)
	if err != nil {
		return err
	}
	switch ff.state {
	case umem.StateRX, umem.StateApp, umem.StateTX:
		ff.refs++
		return nil
	}
	return fmt.Errorf("%w: Ref of lent frame %d in state %v", umem.ErrBadTransition, f, ff.state)
}

// Unref is umem.Pool.Unref, for lent frames too: a lent frame whose last
// holder goes returns to its owner, after its transmission if it is on
// the TX ring (free-protection, as for the queue's own frames).
func (p *framePool) Unref(f uint32) error {
	if p.home(f) {
		return p.Pool.Unref(f)
	}
	ff, err := p.lent(f)
	if err != nil {
		return err
	}
	switch ff.state {
	case umem.StateRX, umem.StateApp, umem.StateTX:
		if ff.refs--; ff.refs > 0 {
			return nil
		}
		if ff.state == umem.StateTX {
			ff.state = umem.StateAwaitCompletion
			return nil
		}
		p.letGo(f)
		return nil
	}
	return fmt.Errorf("%w: lent frame %d in state %v", umem.ErrDoubleFree, f, ff.state)
}

// SubmitTX is umem.Pool.SubmitTX, for lent frames too (a queue may send
// back a frame another queue received for it, as an echo does).
func (p *framePool) SubmitTX(f uint32) error {
	if p.home(f) {
		return p.Pool.SubmitTX(f)
	}
	ff, err := p.lent(f)
	if err != nil {
		return err
	}
	switch ff.state {
	case umem.StateRX, umem.StateApp:
		ff.state = umem.StateTX
		return nil
	}
	return fmt.Errorf("%w: SubmitTX of lent frame %d in state %v", umem.ErrBadTransition, f, ff.state)
}

// Completed is umem.Pool.Completed, for lent frames too.
func (p *framePool) Completed(f uint32) error {
	if p.home(f) {
		return p.Pool.Completed(f)
	}
	ff, err := p.lent(f)
	if err != nil {
		return err
	}
	switch ff.state {
	case umem.StateTX:
		ff.state = umem.StateApp
		return nil
	case umem.StateAwaitCompletion:
		p.letGo(f)
		return nil
	}
	return fmt.Errorf("%w: Completed of lent frame %d in state %v", umem.ErrBadTransition, f, ff.state)
}
