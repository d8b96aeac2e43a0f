package libos

import (
	"fmt"

	"github.com/demixdp/demixdp/umem"
)

// framePool is a queue's frame accounting. Its own frames, the queue's
// share of the UMEM, live in a umem.Pool over that share's frame range. A
// queue of a group (OpenQueues) also receives frames from the other
// queues' loops (hand-offs: a descriptor passed between loops, the frame
// itself never copied); those stay the lender's, and this queue tracks
// them in umem.Loans, with the pool's rules, until the last holder lets go
// and the frame goes back to its owner. Loans grows with the frames
// borrowed at once, not with the UMEM, so a group's memory for them is
// proportional to its hand-offs in flight, not to queues × frames.
//
// Outside a group every call goes straight to the pool. Like the pool, a
// framePool belongs to the queue's loop goroutine.
type framePool struct {
	*umem.Pool
	l     *LibOS
	group bool
	loans umem.Loans
}

func (p *framePool) init(l *LibOS, pool *umem.Pool) {
	p.Pool, p.l, p.group = pool, l, l.grp != nil
}

// home reports whether f is one of this queue's own frames (or there is
// nothing else it could be).
func (p *framePool) home(f uint32) bool { return !p.group || p.Contains(f) }

// held returns the number of lent frames this queue holds now.
func (p *framePool) held() int { return p.loans.Len() }

// borrow takes frame f, which another queue received and handed to this
// one, into its accounting: RX with one reference, the receiver's.
func (p *framePool) borrow(f uint32) error {
	if p.Contains(f) || int(f) >= p.UMEM().NumFrames() {
		return fmt.Errorf("%w: frame %d lent to queue %d, which owns it or has no such frame", umem.ErrNotFrame, f, p.l.qi)
	}
	return p.loans.Borrow(f)
}

// returned gives lent frame f back to its owner when back says its last
// holder let go, and returns err.
func (p *framePool) returned(f uint32, back bool, err error) error {
	if back {
		p.l.giveBack(f)
	}
	return err
}

// Stats is umem.Pool.Stats with the misuse of lent frames counted too.
func (p *framePool) Stats() umem.Stats {
	s, ls := p.Pool.Stats(), p.loans.Stats()
	s.DoubleFrees += ls.DoubleFrees
	s.BadTransitions += ls.BadTransitions
	return s
}

// State is umem.Pool.State, for lent frames too.
func (p *framePool) State(f uint32) umem.State {
	if p.home(f) {
		return p.Pool.State(f)
	}
	if int(f) >= p.UMEM().NumFrames() {
		return umem.StateInvalid
	}
	return p.loans.State(f)
}

// Ref is umem.Pool.Ref, for lent frames too.
func (p *framePool) Ref(f uint32) error {
	if p.home(f) {
		return p.Pool.Ref(f)
	}
	return p.loans.Ref(f)
}

// Unref is umem.Pool.Unref, for lent frames too: a lent frame whose last
// holder goes returns to its owner, after its transmission if it is on
// the TX ring (free-protection, as for the queue's own frames).
func (p *framePool) Unref(f uint32) error {
	if p.home(f) {
		return p.Pool.Unref(f)
	}
	back, err := p.loans.Unref(f)
	return p.returned(f, back, err)
}

// SubmitTX is umem.Pool.SubmitTX, for lent frames too (a queue may send
// back a frame another queue received for it, as an echo does).
func (p *framePool) SubmitTX(f uint32) error {
	if p.home(f) {
		return p.Pool.SubmitTX(f)
	}
	return p.loans.SubmitTX(f)
}

// Completed is umem.Pool.Completed, for lent frames too.
func (p *framePool) Completed(f uint32) error {
	if p.home(f) {
		return p.Pool.Completed(f)
	}
	back, err := p.loans.Completed(f)
	return p.returned(f, back, err)
}
