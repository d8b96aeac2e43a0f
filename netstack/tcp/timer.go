package tcp

import "math/bits"

// timerWheel holds each connection at its earliest timer in a hierarchical
// hashed timing wheel: wheelLevels levels of wheelSize buckets, level 0's
// buckets a tick (2^wheelTick ns, 65.5 µs) wide, each level's buckets 8
// times as wide as those below, the top level spanning 2.4 hours. A timer
// goes into the lowest level whose span covers it, in the bucket that
// starts at or before its time; when that bucket's time comes and the
// timer's has not, it is filed again, at a finer level (cascading), so it
// fires at the first expire at or after its exact time, having been looked
// at no more than once per level on the way. Arming and cancelling are
// O(1) (a doubly linked list per bucket, threaded through the endpoints);
// expire touches only the buckets whose time has come; the next expiry is
// one bitmap search per level.
type timerWheel struct {
	clk    int64 // ticks processed: every bucket up to clk has been looked at
	bucket [wheelLevels][wheelSize]*Endpoint
	occ    [wheelLevels]uint64 // non-empty buckets
	due    *Endpoint           // armed at or before clk: run at the next expire
	fired  *Endpoint           // taken out by expire, waiting for the caller
	n      int
	next   int64 // cached result of nextExpiry (ns), or an earlier bound; 0 = unknown
}

const (
	wheelTick   = 16 // level 0's bucket is 2^16 ns wide
	wheelBits   = 6
	wheelSize   = 1 << wheelBits
	wheelMask   = wheelSize - 1
	wheelLvl    = 3 // each level's buckets are 2^3 times as wide
	wheelLevels = 8 // the top level spans 2.4 hours

	// Endpoint.wLvl: a bucket of level wLvl-1, or one of these.
	inNone  = 0
	inDue   = -1
	inFired = -2
)

func (w *timerWheel) len() int { return w.n }

// armed reports whether e is in the wheel (or due, or fired and not yet
// handed back).
func (e *Endpoint) armed() bool { return e.wLvl != inNone }

// link puts e at the front of the list whose head is *head.
func link(head **Endpoint, e *Endpoint) {
	e.wPrev, e.wNext = nil, *head
	if *head != nil {
		(*head).wPrev = e
	}
	*head = e
}

// unlink takes e out of the list whose head is *head.
func unlink(head **Endpoint, e *Endpoint) {
	if e.wPrev != nil {
		e.wPrev.wNext = e.wNext
	} else {
		*head = e.wNext
	}
	if e.wNext != nil {
		e.wNext.wPrev = e.wPrev
	}
	e.wPrev, e.wNext = nil, nil
}

// set arms e for time d (ns), moving it if it was armed.
func (w *timerWheel) set(e *Endpoint, d int64) {
	w.remove(e)
	e.deadline = d
	w.n++
	t := d >> wheelTick
	if t <= w.clk {
		// Within the tick being processed: the next expire at or after
		// d runs it.
		e.wLvl = inDue
		link(&w.due, e)
		if w.next != 0 && d < w.next {
			w.next = d
		}
		return
	}
	delta := t - w.clk
	lvl := 0
	for lvl < wheelLevels-1 && delta >= wheelSize<<(wheelLvl*lvl) {
		lvl++
	}
	sh := uint(wheelLvl * lvl)
	exp := t >> sh // the bucket that starts at or before d
	if top := w.clk>>sh + wheelSize; exp > top {
		exp = top // beyond the top level's span: filed again then
	}
	idx := int(exp & wheelMask)
	e.wLvl, e.wIdx = int8(lvl+1), uint8(idx)
	link(&w.bucket[lvl][idx], e)
	w.occ[lvl] |= 1 << idx
	if at := exp << sh << wheelTick; w.next != 0 && at < w.next {
		w.next = at
	}
}

// remove disarms e if it is armed.
func (w *timerWheel) remove(e *Endpoint) {
	switch e.wLvl {
	case inNone:
		return
	case inDue:
		unlink(&w.due, e)
	case inFired:
		unlink(&w.fired, e)
	default:
		lvl, idx := int(e.wLvl)-1, int(e.wIdx)
		unlink(&w.bucket[lvl][idx], e)
		if w.bucket[lvl][idx] == nil {
			w.occ[lvl] &^= 1 << idx
		}
		w.next = 0
	}
	e.wLvl = inNone
	w.n--
}

// expire moves every entry whose time is at or before now (ns) to the
// fired list, which the caller empties with pop; the others in the
// buckets whose time has come are filed again, at a finer level.
func (w *timerWheel) expire(now int64) {
	nclk := now >> wheelTick
	var later *Endpoint
	for w.due != nil {
		e := w.due
		unlink(&w.due, e)
		w.take(e, now, &later)
	}
	if nclk > w.clk {
		for lvl := 0; lvl < wheelLevels; lvl++ {
			sh := uint(wheelLvl * lvl)
			from, to := w.clk>>sh, nclk>>sh
			if from == to || w.occ[lvl] == 0 {
				continue
			}
			steps := min(to-from, wheelSize)
			for s := int64(1); s <= steps; s++ {
				idx := int((from + s) & wheelMask)
				for w.bucket[lvl][idx] != nil {
					e := w.bucket[lvl][idx]
					unlink(&w.bucket[lvl][idx], e)
					w.take(e, now, &later)
				}
				w.occ[lvl] &^= 1 << idx
			}
		}
		w.clk = nclk
	}
	w.next = 0
	for later != nil {
		e := later
		unlink(&later, e)
		w.set(e, e.deadline)
	}
}

// take moves e, just taken off its list, to the fired list if its time
// has come, or to later.
func (w *timerWheel) take(e *Endpoint, now int64, later **Endpoint) {
	if e.deadline <= now {
		e.wLvl = inFired
		link(&w.fired, e)
		return
	}
	e.wLvl = inNone
	w.n--
	link(later, e)
}

// pop takes the next fired entry off the fired list, disarmed, or nil.
func (w *timerWheel) pop() *Endpoint {
	e := w.fired
	if e == nil {
		return nil
	}
	unlink(&w.fired, e)
	e.wLvl = inNone
	w.n--
	return e
}

// nextExpiry returns the time (ns) at which expire will next have
// something to do, or 0 if the wheel is empty: the exact time of an entry
// due within the current tick, or the start of the next non-empty bucket
// (where an entry may be filed again rather than fire).
func (w *timerWheel) nextExpiry() int64 {
	if w.n == 0 {
		return 0
	}
	if w.fired != nil {
		return w.clk << wheelTick
	}
	if w.next != 0 {
		return w.next
	}
	var best int64
	for e := w.due; e != nil; e = e.wNext {
		if best == 0 || e.deadline < best {
			best = e.deadline
		}
	}
	for lvl := 0; lvl < wheelLevels; lvl++ {
		if w.occ[lvl] == 0 {
			continue
		}
		sh := uint(wheelLvl * lvl)
		cur := w.clk >> sh
		// The first non-empty bucket after the current one, in the
		// order the level's clock reaches them.
		off := bits.TrailingZeros64(bits.RotateLeft64(w.occ[lvl], -int((cur+1)&wheelMask)))
		if t := (cur + 1 + int64(off)) << sh << wheelTick; best == 0 || t < best {
			best = t
		}
	}
	w.next = best
	return best
}
