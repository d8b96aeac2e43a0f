package umem

// Loans tracks frames that other pools own and lent to one holder, with the
// same states and rules as a Pool (see the package documentation). Queues
// that share a UMEM pass received frames between them by index; the
// borrower records here each frame it holds until its last holder lets go
// (Unref) or its transmission completes (Completed), when the frame goes
// back to its lender: Loans forgets it and says so, and the caller returns
// it to the owner.
//
// Loans costs memory in proportion to the frames borrowed at once, not to
// the UMEM: after it has grown to its peak it allocates nothing. A frame
// not on loan is in StateFree. Like a Pool, Loans belongs to one goroutine.
type Loans struct {
	m     map[uint32]frame
	stats Stats
}

// Borrow records frame idx, which another pool received and lent to this
// holder, in RX with one holder (the receiver). A frame already on loan
// here fails with ErrBadTransition.
func (l *Loans) Borrow(idx uint32) error {
	if f, ok := l.m[idx]; ok {
		return l.stats.refuse(refused, "Borrow", idx, f.state)
	}
	if l.m == nil {
		l.m = make(map[uint32]frame)
	}
	l.m[idx] = frame{StateRX, 1}
	l.stats.Allocs++
	return nil
}

// Len returns the number of frames on loan.
func (l *Loans) Len() int { return len(l.m) }

// Stats returns what Loans has done: Allocs counts borrowed frames, Frees
// frames given back, and refused transitions are counted as in a Pool.
func (l *Loans) Stats() Stats { return l.stats }

// State returns the state of frame idx: StateFree if it is not on loan.
func (l *Loans) State(idx uint32) State { return l.m[idx].state }

// Refs returns the number of holders of frame idx (0 if it is not on loan).
func (l *Loans) Refs(idx uint32) int { return int(l.m[idx].refs) }

// Ref adds a holder to frame idx, as Pool.Ref.
func (l *Loans) Ref(idx uint32) error {
	f, o := l.m[idx].ref()
	_, err := l.settle("Ref", idx, f, o)
	return err
}

// Unref drops a holder of frame idx, as Pool.Unref. back reports that the
// last holder went and the frame left the loans: return it to its owner.
// A frame on the TX ring waits for its completion first (free-protection).
func (l *Loans) Unref(idx uint32) (back bool, err error) {
	f, o := l.m[idx].unref()
	return l.settle("Unref", idx, f, o)
}

// SubmitTX records that frame idx was posted to the TX ring, as
// Pool.SubmitTX.
func (l *Loans) SubmitTX(idx uint32) error {
	f, o := l.m[idx].submitTX()
	_, err := l.settle("SubmitTX", idx, f, o)
	return err
}

// Completed records the completion of frame idx, as Pool.Completed. back
// reports that the frame had no holder left and left the loans: return it
// to its owner.
func (l *Loans) Completed(idx uint32) (back bool, err error) {
	f, o := l.m[idx].complete()
	return l.settle("Completed", idx, f, o)
}

// settle records frame idx after a transition with outcome o, as
// Pool.settle; back reports a released frame.
func (l *Loans) settle(op string, idx uint32, f frame, o outcome) (back bool, err error) {
	switch o {
	case held:
		l.m[idx] = f
		return false, nil
	case released:
		delete(l.m, idx)
		l.stats.Frees++
		return true, nil
	}
	// A frame not on loan is Free, whose every transition is refused.
	return false, l.stats.refuse(o, op, idx, f.state)
}
