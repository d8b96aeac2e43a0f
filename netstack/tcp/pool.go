package tcp

// ringPool recycles the arrays behind a connection's queues (send queue,
// receive queue, out-of-order queue) by capacity, a power of two from
// ringMin to ringMax entries, so that a connection holds queue memory only
// while it holds queued data, and the steady state allocates nothing (a
// bulk sender's queue that drains and fills again takes its arrays back
// from the pool). It keeps at most ringPoolMax arrays of the smallest
// capacity, half as many of each larger one, and at least two.
type ringPool[T any] struct {
	free [ringClasses][][]T
}

const (
	ringMin     = 8
	ringClasses = 14 // 8 .. 65536 entries (maxSQ)
	ringPoolMax = 64
)

// ringClass is the class of capacity c (a power of two >= ringMin), or -1
// for one too large to pool.
func ringClass(c int) int {
	for k := 0; k < ringClasses; k++ {
		if ringMin<<k == c {
			return k
		}
	}
	return -1
}

func ringKeep(k int) int { return max(ringPoolMax>>k, 2) }

// get returns an array of capacity c (a power of two >= ringMin), zeroed.
func (p *ringPool[T]) get(c int) []T {
	if k := ringClass(c); p != nil && k >= 0 {
		if n := len(p.free[k]); n > 0 {
			q := p.free[k][n-1]
			p.free[k][n-1] = nil
			p.free[k] = p.free[k][:n-1]
			return q
		}
	}
	return make([]T, c)
}

// put takes back an array got from get; it is cleared first, so that no
// frame view outlives its use.
func (p *ringPool[T]) put(q []T) {
	if p == nil || q == nil {
		return
	}
	if k := ringClass(len(q)); k >= 0 && len(p.free[k]) < ringKeep(k) {
		clear(q)
		p.free[k] = append(p.free[k], q)
	}
}
