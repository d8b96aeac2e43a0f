package tcp

// ringPool recycles the arrays behind a connection's queues (send queue,
// receive queue, out-of-order queue) by capacity, a power of two from
// ringMin up, so that a connection holds queue memory only while it holds
// queued data, and the steady state allocates nothing. It keeps at most
// ringPoolMax arrays of each capacity up to ringPoolCap entries; larger
// arrays (a bulk transfer's) go to the garbage collector when emptied.
type ringPool[T any] struct {
	free [ringClasses][][]T
}

const (
	ringMin     = 8
	ringClasses = 6 // 8 .. 256 entries
	ringPoolCap = ringMin << (ringClasses - 1)
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
	if k := ringClass(len(q)); k >= 0 && len(p.free[k]) < ringPoolMax {
		clear(q)
		p.free[k] = append(p.free[k], q)
	}
}
