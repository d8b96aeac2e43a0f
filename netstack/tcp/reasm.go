package tcp

import "errors"

// ReasmCapacity is how many pieces a Reassembler holds unless SetLimit
// says otherwise. One place is kept for data at RCV.NXT, so out-of-order
// data can never fill the queue so that the segment closing the gap is
// refused. The endpoint raises the limit to what its receive window holds
// in full segments: 256 pieces cover about 370 KB, and a Linux sender at 5%
// loss into the default 1 MiB window had about a thousand of its segments
// per 100 MB dropped out of order. The memory is taken only while pieces
// are queued, and grows with them.
const ReasmCapacity = 256

// Errors returned by the Reassembler.
var (
	// ErrReasmFull reports that the out-of-order queue has no room for
	// any of the segment's new octets; the caller drops the segment and
	// releases its frame, and the peer will retransmit.
	ErrReasmFull = errors.New("tcp: out-of-order queue full")
	// ErrReasmOverlap reports an Advance past queued data.
	ErrReasmOverlap = errors.New("tcp: advance past queued out-of-order data")
)

// ReasmPiece is a run of received octets stored in one caller frame.
type ReasmPiece[H any] struct {
	Seq    Seq    // first octet
	Len    uint32 // number of octets
	Handle H      // the caller's handle of the frame holding them
	// Off is the offset of Seq from the sequence number the segment was
	// inserted with: the bytes are at payload[Off:Off+Len] in the frame.
	Off uint32
}

type reasmEntry[H any] struct {
	ReasmPiece[H]
	stamp uint64 // arrival order, for choosing SACK blocks
}

func (e *reasmEntry[H]) end() Seq { return e.Seq.Add(e.Len) }

// Reassembler is the receiver's bounded out-of-order queue. Segments go in
// with Insert as they arrive; Pop hands back, in order, the pieces that
// start at RCV.NXT, advancing it. Where segments overlap, the first
// arrival's bytes are kept and only the new octets of a later segment are
// stored, so one segment may be stored as several pieces that share its
// handle (Insert returns how many). A frame may be released once every
// piece that names its handle has been popped, or at once when Insert
// stored none of it.
//
// The pieces are kept sorted in a ring (a double-ended queue): finding a
// place is a binary search, new data beyond the last piece and delivery
// at the front cost O(1), and filling a hole in the middle moves the
// pieces on the shorter side (at most half the limit). The ring's memory
// comes from a pool when the first piece arrives and goes back to it when
// the last one leaves; nothing is allocated in steady state.
type Reassembler[H any] struct {
	rcvNxt  Seq
	q       []reasmEntry[H] // ring; nil while empty
	head, n int
	clock   uint64
	bytes   uint32
	limit   int // pieces; 0 means ReasmCapacity
	pool    *ringPool[reasmEntry[H]]
}

// NewReassembler returns an empty queue expecting rcvNxt next, whose
// storage is allocated when it is first needed and kept.
func NewReassembler[H any](rcvNxt Seq) *Reassembler[H] {
	return &Reassembler[H]{rcvNxt: rcvNxt}
}

// Reset empties the queue (the caller releases frames it still holds) and
// sets RCV.NXT.
func (r *Reassembler[H]) Reset(rcvNxt Seq) {
	r.rcvNxt, r.n, r.head, r.bytes = rcvNxt, 0, 0, 0
	r.release()
}

// release gives the storage back to the pool; a Reassembler without a
// pool keeps it.
func (r *Reassembler[H]) release() {
	if r.q != nil && r.pool != nil {
		r.pool.put(r.q)
		r.q = nil
	}
}

// SetLimit sets how many pieces the queue holds (at least 2: one for data
// at RCV.NXT); n <= 0 restores ReasmCapacity. Pieces already queued stay.
func (r *Reassembler[H]) SetLimit(n int) {
	if n <= 0 {
		n = ReasmCapacity
	}
	r.limit = max(n, 2)
}

// Limit returns how many pieces the queue holds.
func (r *Reassembler[H]) Limit() int {
	if r.limit == 0 {
		return ReasmCapacity
	}
	return r.limit
}

// RcvNxt returns RCV.NXT: the next octet expected in order.
func (r *Reassembler[H]) RcvNxt() Seq { return r.rcvNxt }

// Len returns the number of queued pieces.
func (r *Reassembler[H]) Len() int { return r.n }

// Bytes returns the number of queued octets.
func (r *Reassembler[H]) Bytes() uint32 { return r.bytes }

// At returns queued piece i (0 is the lowest), for 0 <= i < Len().
func (r *Reassembler[H]) At(i int) ReasmPiece[H] { return r.at(i).ReasmPiece }

func (r *Reassembler[H]) at(i int) *reasmEntry[H] {
	return &r.q[(r.head+i)&(len(r.q)-1)]
}

// Advance moves RCV.NXT forward by n octets the caller delivered without
// queueing them (the fast path: an in-order segment while nothing queued
// starts at RCV.NXT). It fails with ErrReasmOverlap, changing nothing, if
// that would pass the first queued octet.
func (r *Reassembler[H]) Advance(n uint32) error {
	next := r.rcvNxt.Add(n)
	if r.n > 0 && r.at(0).Seq.LessThan(next) {
		return ErrReasmOverlap
	}
	r.rcvNxt = next
	return nil
}

// search returns the index of the first piece that ends after cur (cur at
// or above RCV.NXT), or Len().
func (r *Reassembler[H]) search(cur Seq) int {
	c := r.rcvNxt.Size(cur)
	lo, hi := 0, r.n
	for lo < hi {
		m := (lo + hi) / 2
		if r.rcvNxt.Size(r.at(m).end()) <= c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// insertAt puts e at index i, moving the pieces on the shorter side.
func (r *Reassembler[H]) insertAt(i int, e reasmEntry[H]) {
	if r.n == len(r.q) {
		c := max(2*len(r.q), ringMin)
		q := r.pool.get(c)
		for j := 0; j < r.n; j++ {
			q[j] = *r.at(j)
		}
		if r.q != nil {
			r.pool.put(r.q)
		}
		r.q, r.head = q, 0
	}
	mask := len(r.q) - 1
	if i < r.n/2 {
		r.head = (r.head - 1) & mask
		for j := 0; j < i; j++ {
			*r.at(j) = *r.at(j + 1)
		}
	} else {
		for j := r.n; j > i; j-- {
			*r.at(j) = *r.at(j - 1)
		}
	}
	*r.at(i) = e
	r.n++
	r.bytes += e.Len
}

// Insert queues the octets [seq, seq+n) held in the frame handle. Octets
// before RCV.NXT or already queued are duplicates and are not stored; the
// rest is stored as pieces (several if the segment spans queued data). It
// returns the number of pieces stored. When that is 0 the caller releases
// the frame: err is nil for a pure duplicate (or n == 0) and ErrReasmFull
// when there was no room. When room runs out midway, the octets that fit
// are kept, the rest dropped, and err is nil. The caller trims the segment
// to the receive window first.
func (r *Reassembler[H]) Insert(seq Seq, n uint32, handle H) (int, error) {
	if n == 0 {
		return 0, nil
	}
	end := seq.Add(n)
	var off uint32
	if seq.LessThan(r.rcvNxt) {
		if end.LessEq(r.rcvNxt) {
			return 0, nil
		}
		off = seq.Size(r.rcvNxt)
		seq = r.rcvNxt
	}
	orig := seq.Add(-off)
	r.clock++
	stored := 0
	cur := seq
	i := r.search(cur)
	for cur.LessThan(end) {
		if i < r.n && r.at(i).Seq.LessEq(cur) {
			cur = MaxSeq(cur, r.at(i).end())
			i++
			continue
		}
		gapEnd := end
		if i < r.n {
			gapEnd = MinSeq(end, r.at(i).Seq)
		}
		limit := r.Limit() - 1
		if cur == r.rcvNxt {
			limit++
		}
		if r.n >= limit {
			if stored == 0 {
				return 0, ErrReasmFull
			}
			break
		}
		r.insertAt(i, reasmEntry[H]{
			ReasmPiece: ReasmPiece[H]{Seq: cur, Len: cur.Size(gapEnd), Handle: handle, Off: orig.Size(cur)},
			stamp:      r.clock,
		})
		i++
		stored++
		cur = gapEnd
	}
	return stored, nil
}

// Pop removes and returns the piece that starts at RCV.NXT, advancing
// RCV.NXT past it, or reports false when the next octet has not arrived.
func (r *Reassembler[H]) Pop() (ReasmPiece[H], bool) {
	if r.n == 0 || r.at(0).Seq != r.rcvNxt {
		return ReasmPiece[H]{}, false
	}
	e := r.at(0)
	p := e.ReasmPiece
	*e = reasmEntry[H]{}
	r.head = (r.head + 1) & (len(r.q) - 1)
	r.n--
	r.bytes -= p.Len
	r.rcvNxt = p.Seq.Add(p.Len)
	if r.n == 0 {
		r.head = 0
		r.release()
	}
	return p, true
}

// SACKBlocks writes into dst the SACK blocks to advertise (RFC 2018 §4):
// the contiguous runs of queued octets above RCV.NXT, the one holding the
// most recently inserted segment first, then the others from most to least
// recently received. It returns how many it wrote (at most len(dst)). Call
// Pop first: a run starting at RCV.NXT is not reported.
func (r *Reassembler[H]) SACKBlocks(dst []SACKBlock) int {
	k := 0
	var prevStamp uint64
	var prevOff uint32
	for k < len(dst) {
		found := false
		var best SACKBlock
		var bestStamp uint64
		var bestOff uint32
		for i := 0; i < r.n; {
			start := r.at(i).Seq
			end := r.at(i).end()
			stamp := r.at(i).stamp
			i++
			for i < r.n && r.at(i).Seq == end {
				end = r.at(i).end()
				stamp = max(stamp, r.at(i).stamp)
				i++
			}
			if start == r.rcvNxt {
				continue
			}
			off := r.rcvNxt.Size(start)
			// Order: newer stamp first, then lower sequence.
			if k > 0 && !(stamp < prevStamp || stamp == prevStamp && off > prevOff) {
				continue
			}
			if !found || stamp > bestStamp || stamp == bestStamp && off < bestOff {
				found, best, bestStamp, bestOff = true, SACKBlock{start, end}, stamp, off
			}
		}
		if !found {
			break
		}
		dst[k] = best
		k++
		prevStamp, prevOff = bestStamp, bestOff
	}
	return k
}
