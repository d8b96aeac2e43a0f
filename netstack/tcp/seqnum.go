package tcp

// Seq is a TCP sequence number. Sequence space is circular (RFC 9293 §3.4):
// every comparison is made modulo 2^32, so a number is "less than" another
// when it lies less than 2^31 behind it.
type Seq uint32

// LessThan reports whether s comes before o in sequence space (s < o).
func (s Seq) LessThan(o Seq) bool { return int32(s-o) < 0 }

// LessEq reports whether s comes before or equals o (s <= o).
func (s Seq) LessEq(o Seq) bool { return int32(s-o) <= 0 }

// GreaterThan reports whether s comes after o (s > o).
func (s Seq) GreaterThan(o Seq) bool { return int32(s-o) > 0 }

// GreaterEq reports whether s comes after or equals o (s >= o).
func (s Seq) GreaterEq(o Seq) bool { return int32(s-o) >= 0 }

// Add returns s advanced by n octets, wrapping at 2^32.
func (s Seq) Add(n uint32) Seq { return s + Seq(n) }

// Sub returns the signed distance s - o. It is meaningful while the two
// numbers are less than 2^31 apart, which TCP's window rules guarantee.
func (s Seq) Sub(o Seq) int32 { return int32(s - o) }

// Size returns the number of octets in [s, end), assuming end is not before
// s; it is the unsigned distance end - s.
func (s Seq) Size(end Seq) uint32 { return uint32(end - s) }

// InRange reports whether a <= s < b. An empty range (a == b) contains
// nothing.
func (s Seq) InRange(a, b Seq) bool { return uint32(s-a) < uint32(b-a) }

// InWindow reports whether s lies in the window of size octets that starts
// at start, that is start <= s < start+size. A zero-sized window contains
// nothing (RFC 9293 §3.10.7.4 treats a zero window specially; the caller
// applies that rule).
func (s Seq) InWindow(start Seq, size uint32) bool { return uint32(s-start) < size }

// MaxSeq returns the later of a and b in sequence space.
func MaxSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return b
	}
	return a
}

// MinSeq returns the earlier of a and b in sequence space.
func MinSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return a
	}
	return b
}
