package tcp

// timerHeap is a binary min-heap of endpoints keyed by their deadline: each
// connection has at most one entry, at the earliest of its timers, so a
// tick costs O(log n) per due connection and nothing for the others.
type timerHeap struct {
	h []*Endpoint
}

func (t *timerHeap) len() int           { return len(t.h) }
func (t *timerHeap) min() *Endpoint     { return t.h[0] }
func (t *timerHeap) less(i, j int) bool { return t.h[i].deadline < t.h[j].deadline }

func (t *timerHeap) swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.h[i].heapIdx = i
	t.h[j].heapIdx = j
}

func (t *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *timerHeap) down(i int) {
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

// set puts e in the heap with deadline d, or moves it there.
func (t *timerHeap) set(e *Endpoint, d int64) {
	if e.heapIdx < 0 {
		e.deadline = d
		e.heapIdx = len(t.h)
		t.h = append(t.h, e)
		t.up(e.heapIdx)
		return
	}
	old := e.deadline
	e.deadline = d
	if d < old {
		t.up(e.heapIdx)
	} else {
		t.down(e.heapIdx)
	}
}

// remove takes e out of the heap if it is there.
func (t *timerHeap) remove(e *Endpoint) {
	i := e.heapIdx
	if i < 0 {
		return
	}
	last := len(t.h) - 1
	if i != last {
		t.swap(i, last)
	}
	t.h[last] = nil
	t.h = t.h[:last]
	e.heapIdx = -1
	if i != last {
		t.down(i)
		t.up(i)
	}
}
