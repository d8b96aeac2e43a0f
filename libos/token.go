package libos

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// QToken names one asynchronous operation until Wait or WaitAny returns its
// result. The zero QToken is never valid.
type QToken uint64

// Opcode says which operation a Result completes.
type Opcode int

const (
	OpInvalid Opcode = iota
	OpPush           // a Push or PushTo completed
	OpPop            // a Pop completed: Result.SGA holds the data
	OpConnect        // a Connect completed
	OpAccept         // an Accept completed: Result.NewQD is the connection
	OpFailed         // the operation failed: Result.Err says why
)

// String returns the opcode's name.
func (o Opcode) String() string {
	switch o {
	case OpPush:
		return "push"
	case OpPop:
		return "pop"
	case OpConnect:
		return "connect"
	case OpAccept:
		return "accept"
	case OpFailed:
		return "failed"
	}
	return "invalid"
}

// Result is what Wait and WaitAny return for a completed operation.
type Result struct {
	Opcode Opcode
	QD     QD
	QT     QToken
	// SGA is the data of a completed Pop; its Addr field holds the sender.
	// The application owns it and returns it with SGAFree. A TCP Pop that
	// returns an SGA with no segments reports the peer's end of stream.
	SGA *SGA
	// NewQD is the queue of the connection a completed Accept returns.
	NewQD QD
	// Addr is the peer: the sender of a popped datagram, the remote end of
	// an accepted connection or of a TCP Pop.
	Addr netip.AddrPort
	// Err is set when Opcode is OpFailed: an errno such as ECANCELED
	// (the queue was closed) or EHOSTUNREACH (ARP resolution failed).
	Err error
}

type opState uint8

const (
	opFree opState = iota
	opPending
	opDone
)

type op struct {
	gen   uint32
	state opState
	kind  Opcode // what the operation is (the result's Opcode unless it fails)
	next  int32  // next pending pop of the same queue, -1 at the end
	// dprev, dnext link a completed, unconsumed operation into the done
	// list, in completion order (WaitNext).
	dprev, dnext int32
	// qprev, qnext link a pending operation into its queue's list of
	// pending operations (closing a queue cancels just those).
	qprev, qnext int32
	res          Result
}

// opTable holds operations by slot. A token is its slot's generation and
// index, so a stale or consumed token is recognised in O(1). Slots are
// recycled; the table grows only while the number of simultaneously pending
// operations reaches a new high.
type opTable struct {
	ops  []op
	free []int32
	// The done list: completed operations not yet consumed, oldest first.
	doneHead, doneTail int32
	doneN              int
}

func (t *opTable) init() {
	t.ops = make([]op, 0, 256)
	t.free = make([]int32, 0, 256)
	t.doneHead, t.doneTail = -1, -1
}

// markDone appends slot i to the done list.
func (t *opTable) markDone(i int32) {
	o := &t.ops[i]
	o.dprev, o.dnext = t.doneTail, -1
	if t.doneTail == -1 {
		t.doneHead = i
	} else {
		t.ops[t.doneTail].dnext = i
	}
	t.doneTail = i
	t.doneN++
}

// unlinkDone takes slot i out of the done list.
func (t *opTable) unlinkDone(i int32) {
	o := &t.ops[i]
	if o.dprev == -1 {
		t.doneHead = o.dnext
	} else {
		t.ops[o.dprev].dnext = o.dnext
	}
	if o.dnext == -1 {
		t.doneTail = o.dprev
	} else {
		t.ops[o.dnext].dprev = o.dprev
	}
	o.dprev, o.dnext = -1, -1
	t.doneN--
}

func (t *opTable) alloc(kind Opcode, qd QD) (QToken, int32) {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.ops = append(t.ops, op{})
		i = int32(len(t.ops) - 1)
	}
	o := &t.ops[i]
	o.gen++
	if o.gen == 0 {
		o.gen = 1
	}
	qt := QToken(uint64(o.gen)<<32 | uint64(i))
	o.state, o.kind, o.next = opPending, kind, -1
	o.res = Result{QD: qd, QT: qt}
	return qt, i
}

// get returns the slot of a live (pending or done, not consumed) token.
func (t *opTable) get(qt QToken) (int32, bool) {
	i := int64(qt & 0xffffffff)
	gen := uint32(qt >> 32)
	if gen == 0 || i >= int64(len(t.ops)) {
		return -1, false
	}
	o := &t.ops[i]
	if o.gen != gen || o.state == opFree {
		return -1, false
	}
	return int32(i), true
}

func (t *opTable) release(i int32) {
	if t.ops[i].state == opDone {
		t.unlinkDone(i)
	}
	t.ops[i].state = opFree
	t.ops[i].res = Result{}
	t.free = append(t.free, i)
}

// completeOp finishes a pending operation; err != nil makes it OpFailed.
// A token that is unknown, consumed or already done is ignored: its
// operation was cancelled (Close) before the datapath finished it.
func (l *LibOS) completeOp(qt QToken, err error) {
	i, ok := l.ops.get(qt)
	if !ok {
		return
	}
	o := &l.ops.ops[i]
	if o.state != opPending {
		return
	}
	l.finish(o, err)
}

// newOp starts an operation of queue qd: a slot in the op table, linked
// into the queue's pending list.
func (l *LibOS) newOp(kind Opcode, qd QD) (QToken, int32) {
	qt, i := l.ops.alloc(kind, qd)
	q := &l.queues[qd]
	o := &l.ops.ops[i]
	o.qprev, o.qnext = -1, q.pend
	if q.pend != -1 {
		l.ops.ops[q.pend].qprev = i
	}
	q.pend = i
	return qt, i
}

// unpend takes pending operation i off its queue's list.
func (l *LibOS) unpend(i int32) {
	o := &l.ops.ops[i]
	q := &l.queues[o.res.QD]
	if o.qprev == -1 {
		q.pend = o.qnext
	} else {
		l.ops.ops[o.qprev].qnext = o.qnext
	}
	if o.qnext != -1 {
		l.ops.ops[o.qnext].qprev = o.qprev
	}
	o.qprev, o.qnext = -1, -1
}

// dropOp frees a pending operation that never started (the call that
// made it failed).
func (l *LibOS) dropOp(i int32) {
	l.unpend(i)
	l.ops.release(i)
}

func (l *LibOS) finish(o *op, err error) {
	i := int32(o.res.QT & 0xffffffff)
	l.unpend(i)
	o.state = opDone
	l.doneSeq++
	l.ops.markDone(i)
	if err != nil {
		o.res.Opcode, o.res.Err = OpFailed, err
		if o.res.SGA != nil {
			l.SGAFree(o.res.SGA)
			o.res.SGA = nil
		}
		return
	}
	o.res.Opcode = o.kind
}

// Wait runs the event loop until the operation qt completes, then returns
// its Result and consumes the token. A failed operation is not an error of
// Wait: it returns a Result with Opcode OpFailed and the reason in Err.
//
// timeout < 0 waits forever; 0 polls once; otherwise Wait gives up after
// timeout with ETIMEDOUT, leaving the operation pending and qt valid.
// An unknown or already consumed token is EINVAL; a closed LibOS is EBADF;
// EINTR means another goroutine called Wake (the operation stays pending
// and qt valid, as after ETIMEDOUT).
func (l *LibOS) Wait(qt QToken, timeout time.Duration) (Result, error) {
	qts := [1]QToken{qt}
	_, r, err := l.WaitAny(qts[:], timeout)
	return r, err
}

// WaitAny is Wait for several tokens: it returns the index in qts and the
// Result of the first that completes (the lowest index if several have),
// consuming only that token. Errors are as for Wait; any unknown or consumed
// token in qts makes it EINVAL, and an empty qts is EINVAL. Like
// demi_wait_any it looks at every token of qts once per call (and again
// only after a completion), so keep qts to the operations that matter.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) WaitAny(qts []QToken, timeout time.Duration) (int, Result, error) {
	if l.closed {
		return -1, Result{}, unix.EBADF
	}
	if len(qts) == 0 {
		return -1, Result{}, unix.EINVAL
	}
	// One pass validates every token and finds one already complete.
	first := -1
	for i, qt := range qts {
		s, ok := l.ops.get(qt)
		if !ok {
			return -1, Result{}, unix.EINVAL
		}
		if first < 0 && l.ops.ops[s].state == opDone {
			first = i
		}
	}
	i, err := first, error(nil)
	if i < 0 {
		i, err = l.run(qts, timeout)
	}
	if err != nil {
		return -1, Result{}, err
	}
	slot, _ := l.ops.get(qts[i])
	var r Result
	copyResult(&r, &l.ops.ops[slot].res)
	l.ops.release(slot)
	return i, r, nil
}

// copyResult copies src to dst one field at a time: a result was filled
// in a field at a time moments before (finish, completePop), and a
// whole-struct copy would read it in wider pieces than it was written in,
// which waits for those stores to drain (the copy in WaitNext took a
// third of that function's time in the udp_rtt profile).
func copyResult(dst, src *Result) {
	dst.Opcode = src.Opcode
	dst.QD = src.QD
	dst.QT = src.QT
	dst.SGA = src.SGA
	dst.NewQD = src.NewQD
	dst.Addr = src.Addr
	dst.Err = src.Err
}

// WaitNext returns the operations that have completed, whichever they
// are, oldest completion first: it fills out with up to len(out) Results,
// consuming their tokens, and returns how many it filled. It runs the
// event loop until at least one operation has completed or the timeout
// passes, as Wait does (timeout < 0 waits forever, 0 polls once; ETIMEDOUT
// when nothing completed). An application with many operations in flight
// uses it instead of WaitAny, which looks at every token it is given; it is
// the call behind Demikernel's demi_wait_next_n. Errors: EINVAL (out is
// empty), EBADF (the LibOS is closed), ETIMEDOUT, EINTR (Wake).
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) WaitNext(out []Result, timeout time.Duration) (int, error) {
	if l.closed {
		return 0, unix.EBADF
	}
	if len(out) == 0 {
		return 0, unix.EINVAL
	}
	if l.ops.doneN == 0 {
		if _, err := l.run(nil, timeout); err != nil {
			return 0, err
		}
	}
	n := 0
	for n < len(out) && l.ops.doneHead != -1 {
		slot := l.ops.doneHead
		copyResult(&out[n], &l.ops.ops[slot].res)
		l.ops.release(slot)
		n++
	}
	return n, nil
}

// firstDone returns the index of the first completed token in qts, or -1.
func (l *LibOS) firstDone(qts []QToken) int {
	if qts == nil {
		if l.ops.doneN > 0 {
			return 0
		}
		return -1
	}
	for i, qt := range qts {
		if s, ok := l.ops.get(qt); ok && l.ops.ops[s].state == opDone {
			return i
		}
	}
	return -1
}
