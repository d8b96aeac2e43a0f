package tcp

import "errors"

// ReasmCapacity is how many pieces a Reassembler holds. One slot is kept for
// data at RCV.NXT, so out-of-order data can never fill the queue so that
// the segment closing the gap is refused. 256 pieces cover a window of
// about 370 KB of full segments: with 64, a Linux sender at 5% loss saw
// thousands of its segments dropped out of order and a 100 MB transfer took
// 34 s instead of 3 s. The cost is about 20 KB per connection.
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
type ReasmPiece struct {
	Seq    Seq    // first octet
	Len    uint32 // number of octets
	Handle uint64 // the caller's handle of the frame holding them
	// Off is the offset of Seq from the sequence number the segment was
	// inserted with: the bytes are at payload[Off:Off+Len] in the frame.
	Off uint32
}

type reasmEntry struct {
	ReasmPiece
	stamp uint64 // arrival order, for choosing SACK blocks
}

// Reassembler is the receiver's bounded out-of-order queue. Segments go in
// with Insert as they arrive; Pop hands back, in order, the pieces that
// start at RCV.NXT, advancing it. Where segments overlap, the first
// arrival's bytes are kept and only the new octets of a later segment are
// stored, so one segment may be stored as several pieces that share its
// handle (Insert returns how many). A frame may be released once every
// piece that names its handle has been popped, or at once when Insert
// stored none of it. Nothing is allocated after construction.
type Reassembler struct {
	rcvNxt  Seq
	entries [ReasmCapacity]reasmEntry // sorted by Seq, disjoint, all at or above rcvNxt
	n       int
	clock   uint64
}

// NewReassembler returns an empty queue expecting rcvNxt next.
func NewReassembler(rcvNxt Seq) *Reassembler {
	return &Reassembler{rcvNxt: rcvNxt}
}

// Reset empties the queue (the caller releases frames it still holds) and
// sets RCV.NXT.
func (r *Reassembler) Reset(rcvNxt Seq) {
	r.rcvNxt, r.n = rcvNxt, 0
}

// RcvNxt returns RCV.NXT: the next octet expected in order.
func (r *Reassembler) RcvNxt() Seq { return r.rcvNxt }

// Len returns the number of queued pieces.
func (r *Reassembler) Len() int { return r.n }

// Bytes returns the number of queued octets.
func (r *Reassembler) Bytes() uint32 {
	var t uint32
	for _, e := range r.entries[:r.n] {
		t += e.Len
	}
	return t
}

// Advance moves RCV.NXT forward by n octets the caller delivered without
// queueing them (the fast path: an in-order segment while nothing queued
// starts at RCV.NXT). It fails with ErrReasmOverlap, changing nothing, if
// that would pass the first queued octet.
func (r *Reassembler) Advance(n uint32) error {
	next := r.rcvNxt.Add(n)
	if r.n > 0 && r.entries[0].Seq.LessThan(next) {
		return ErrReasmOverlap
	}
	r.rcvNxt = next
	return nil
}

// Insert queues the octets [seq, seq+n) held in the frame handle. Octets
// before RCV.NXT or already queued are duplicates and are not stored; the
// rest is stored as pieces (several if the segment spans queued data). It
// returns the number of pieces stored. When that is 0 the caller releases
// the frame: err is nil for a pure duplicate (or n == 0) and ErrReasmFull
// when there was no room. When room runs out midway, the octets that fit
// are kept, the rest dropped, and err is nil. The caller trims the segment
// to the receive window first.
func (r *Reassembler) Insert(seq Seq, n uint32, handle uint64) (int, error) {
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
	i := 0
	for i < r.n && r.entries[i].Seq.Add(r.entries[i].Len).LessEq(cur) {
		i++
	}
	for cur.LessThan(end) {
		if i < r.n && r.entries[i].Seq.LessEq(cur) {
			cur = MaxSeq(cur, r.entries[i].Seq.Add(r.entries[i].Len))
			i++
			continue
		}
		gapEnd := end
		if i < r.n {
			gapEnd = MinSeq(end, r.entries[i].Seq)
		}
		limit := ReasmCapacity - 1
		if cur == r.rcvNxt {
			limit = ReasmCapacity
		}
		if r.n >= limit {
			if stored == 0 {
				return 0, ErrReasmFull
			}
			break
		}
		copy(r.entries[i+1:r.n+1], r.entries[i:r.n])
		r.entries[i] = reasmEntry{
			ReasmPiece: ReasmPiece{Seq: cur, Len: cur.Size(gapEnd), Handle: handle, Off: orig.Size(cur)},
			stamp:      r.clock,
		}
		r.n++
		i++
		stored++
		cur = gapEnd
	}
	return stored, nil
}

// Pop removes and returns the piece that starts at RCV.NXT, advancing
// RCV.NXT past it, or reports false when the next octet has not arrived.
func (r *Reassembler) Pop() (ReasmPiece, bool) {
	if r.n == 0 || r.entries[0].Seq != r.rcvNxt {
		return ReasmPiece{}, false
	}
	p := r.entries[0].ReasmPiece
	copy(r.entries[:r.n-1], r.entries[1:r.n])
	r.n--
	r.rcvNxt = p.Seq.Add(p.Len)
	return p, true
}

// SACKBlocks writes into dst the SACK blocks to advertise (RFC 2018 §4):
// the contiguous runs of queued octets above RCV.NXT, the one holding the
// most recently inserted segment first, then the others from most to least
// recently received. It returns how many it wrote (at most len(dst)). Call
// Pop first: a run starting at RCV.NXT is not reported.
func (r *Reassembler) SACKBlocks(dst []SACKBlock) int {
	k := 0
	var prevStamp uint64
	var prevOff uint32
	for k < len(dst) {
		found := false
		var best SACKBlock
		var bestStamp uint64
		var bestOff uint32
		for i := 0; i < r.n; {
			start := r.entries[i].Seq
			end := start.Add(r.entries[i].Len)
			stamp := r.entries[i].stamp
			i++
			for i < r.n && r.entries[i].Seq == end {
				end = end.Add(r.entries[i].Len)
				stamp = max(stamp, r.entries[i].stamp)
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
