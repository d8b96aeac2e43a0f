package tcp

// ScoreboardCapacity is how many disjoint SACKed ranges a Scoreboard keeps.
// When more arrive, the highest range is forgotten: SACK information is
// advisory, so the only cost is a possibly needless retransmission.
const ScoreboardCapacity = 32

// DefaultDupThresh is RFC 6675's DupThresh.
const DefaultDupThresh = 3

// ScoreboardOptions configures a Scoreboard.
type ScoreboardOptions struct {
	// SMSS is the sender's maximum segment size; 0 means 536.
	SMSS uint32
	// DupThresh is the loss threshold in segments; 0 means 3.
	DupThresh int
}

// SegKind says why NextSeg chose a segment.
type SegKind uint8

// Kinds of segment NextSeg returns, named after the RFC 6675 §4 rules.
const (
	SegNone   SegKind = iota // nothing to send
	SegLost                  // rule 1: retransmit a hole deemed lost
	SegNew                   // rule 2: send new data at SND.NXT
	SegHole                  // rule 3: retransmit a hole not yet deemed lost
	SegRescue                // rule 4: rescue retransmission of the tail
)

// NextSegment is what NextSeg proposes to send: Len octets from Seq.
type NextSegment struct {
	Seq  Seq
	Len  uint32
	Kind SegKind
}

// Scoreboard is the sender's SACK scoreboard of RFC 6675: which octets of
// [SND.UNA, SND.NXT) the receiver has SACKed, which holes are deemed lost,
// the pipe estimate, and the NextSeg choice during loss recovery. It has a
// fixed capacity and allocates nothing after construction.
//
// Use: Sent for every segment transmitted (new data or retransmission),
// Update for every ACK, EnterRecovery/ExitRecovery around loss recovery,
// Pipe and NextSeg to decide what to send.
type Scoreboard struct {
	smss      uint32
	dupThresh int
	una, nxt  Seq
	blocks    [ScoreboardCapacity]SACKBlock // sorted, disjoint, non-adjacent, within [una, nxt)
	n         int
	highRxt   Seq // end of the highest octet retransmitted by rule 1 or 3 (RFC's HighRxt+1)
	rescueRxt Seq
	hasRescue bool
	recovery  bool
	recPoint  Seq
}

// NewScoreboard returns an empty scoreboard whose SND.UNA and SND.NXT are
// both una.
func NewScoreboard(opts ScoreboardOptions, una Seq) *Scoreboard {
	s := new(Scoreboard)
	s.init(opts, una)
	return s
}

// init makes s an empty scoreboard in place (an endpoint's own, without an
// allocation).
func (s *Scoreboard) init(opts ScoreboardOptions, una Seq) {
	*s = Scoreboard{smss: opts.SMSS, dupThresh: opts.DupThresh}
	if s.smss == 0 {
		s.smss = 536
	}
	if s.dupThresh <= 0 {
		s.dupThresh = DefaultDupThresh
	}
	s.Reset(una)
}

// Reset forgets everything and sets SND.UNA = SND.NXT = una.
func (s *Scoreboard) Reset(una Seq) {
	s.una, s.nxt, s.highRxt = una, una, una
	s.n = 0
	s.hasRescue, s.recovery = false, false
}

// ClearSACK forgets the SACKed ranges but keeps the window, e.g. after a
// retransmission timeout (RFC 2018 §8 says the sender should then stop
// trusting earlier SACK information).
func (s *Scoreboard) ClearSACK() { s.n = 0 }

// UNA returns SND.UNA (RFC 6675's HighACK).
func (s *Scoreboard) UNA() Seq { return s.una }

// NXT returns SND.NXT (RFC 6675's HighData, exclusive).
func (s *Scoreboard) NXT() Seq { return s.nxt }

// Blocks returns the SACKed ranges, lowest first. The slice aliases the
// scoreboard and is valid until the next update.
func (s *Scoreboard) Blocks() []SACKBlock { return s.blocks[:s.n] }

// SackedBytes returns how many octets in [SND.UNA, SND.NXT) are SACKed.
func (s *Scoreboard) SackedBytes() uint32 {
	var t uint32
	for _, b := range s.blocks[:s.n] {
		t += b.Start.Size(b.End)
	}
	return t
}

// Sent records that seg was transmitted. A segment reaching past SND.NXT
// advances it; a retransmission by rule 1 or 3 (SegLost, SegHole) advances
// HighRxt, a rescue (SegRescue) sets RescueRxt = RecoveryPoint (RFC 6675
// §4). For ordinary new data, pass Kind SegNew.
func (s *Scoreboard) Sent(seg NextSegment) {
	end := seg.Seq.Add(seg.Len)
	if end.GreaterThan(s.nxt) && seg.Seq.GreaterEq(s.una) {
		s.nxt = end
	}
	switch seg.Kind {
	case SegLost, SegHole:
		if end.GreaterThan(s.highRxt) {
			s.highRxt = MinSeq(end, s.nxt)
		}
	case SegRescue:
		s.rescueRxt, s.hasRescue = s.recPoint, true
	}
}

// EnterRecovery starts loss recovery with RecoveryPoint = SND.NXT and
// HighRxt = SND.UNA (RFC 6675 §5).
func (s *Scoreboard) EnterRecovery() {
	s.recovery = true
	s.recPoint = s.nxt
	s.highRxt = s.una
}

// ExitRecovery ends loss recovery.
func (s *Scoreboard) ExitRecovery() { s.recovery = false }

// InRecovery reports whether EnterRecovery was called without ExitRecovery.
func (s *Scoreboard) InRecovery() bool { return s.recovery }

// RecoveryPoint returns SND.NXT at the last EnterRecovery; recovery ends
// when it is cumulatively acknowledged (SND.UNA >= RecoveryPoint).
func (s *Scoreboard) RecoveryPoint() Seq { return s.recPoint }

// Update applies an ACK: ack is its cumulative acknowledgment and blocks
// its SACK blocks (for example Options.SACK[:NumSACK]). An ack inside
// (SND.UNA, SND.NXT] advances SND.UNA and drops what it covers; others are
// ignored. Blocks are clipped to [SND.UNA, SND.NXT); empty or reversed ones
// and D-SACKs below SND.UNA are ignored. It returns the number of octets
// SACKed for the first time, so the caller can tell RFC 6675's "DupAck"
// (an ACK that SACKs new data) apart.
func (s *Scoreboard) Update(ack Seq, blocks []SACKBlock) uint32 {
	if ack.GreaterThan(s.una) && ack.LessEq(s.nxt) {
		s.una = ack
		k := 0
		for _, b := range s.blocks[:s.n] {
			if b.End.LessEq(ack) {
				continue
			}
			b.Start = MaxSeq(b.Start, ack)
			s.blocks[k] = b
			k++
		}
		s.n = k
		s.highRxt = MaxSeq(s.highRxt, ack)
	}
	var added uint32
	for _, b := range blocks {
		if !b.Start.LessThan(b.End) {
			continue
		}
		start, end := MaxSeq(b.Start, s.una), MinSeq(b.End, s.nxt)
		if !start.LessThan(end) || !start.InRange(s.una, s.nxt) {
			continue
		}
		added += s.insert(SACKBlock{start, end})
	}
	return added
}

// insert merges b into the sorted ranges and returns the octets newly
// covered.
func (s *Scoreboard) insert(b SACKBlock) uint32 {
	i := 0
	for i < s.n && s.blocks[i].End.LessThan(b.Start) {
		i++
	}
	j := i
	added := b.Start.Size(b.End)
	merged := b
	for j < s.n && s.blocks[j].Start.LessEq(b.End) {
		o := s.blocks[j]
		lo, hi := MaxSeq(o.Start, b.Start), MinSeq(o.End, b.End)
		if lo.LessThan(hi) {
			added -= lo.Size(hi)
		}
		merged.Start = MinSeq(merged.Start, o.Start)
		merged.End = MaxSeq(merged.End, o.End)
		j++
	}
	if j > i {
		// Replace blocks[i:j] by merged.
		s.blocks[i] = merged
		copy(s.blocks[i+1:], s.blocks[j:s.n])
		s.n -= j - i - 1
		return added
	}
	if s.n == len(s.blocks) {
		if i == s.n {
			return added // the highest range is the one forgotten
		}
		s.n-- // forget the highest range to make room
	}
	copy(s.blocks[i+1:s.n+1], s.blocks[i:s.n])
	s.blocks[i] = merged
	s.n++
	return added
}

// lostAbove reports RFC 6675's IsLost for an octet below blocks[i:] and
// above every earlier block: DupThresh discontiguous SACKed ranges, or more
// than (DupThresh-1)*SMSS SACKed octets, lie above it.
func (s *Scoreboard) lostAbove(i int) bool {
	if s.n-i >= s.dupThresh {
		return true
	}
	var bytes uint32
	for _, b := range s.blocks[i:s.n] {
		bytes += b.Start.Size(b.End)
	}
	return bytes > uint32(s.dupThresh-1)*s.smss
}

// IsLost is RFC 6675's IsLost(SeqNum): true when DupThresh discontiguous
// SACKed ranges, or more than (DupThresh-1)*SMSS SACKed octets, lie above
// seq. ("Discontiguous SACKed sequences" is read as separate SACKed ranges;
// a single contiguous range counts as one.) Octets outside [SND.UNA,
// SND.NXT) and SACKed octets are never lost.
func (s *Scoreboard) IsLost(seq Seq) bool {
	if !seq.InRange(s.una, s.nxt) {
		return false
	}
	count := 0
	var bytes uint32
	for _, b := range s.blocks[:s.n] {
		if seq.InRange(b.Start, b.End) {
			return false
		}
		if b.End.LessEq(seq) {
			continue
		}
		count++
		bytes += MaxSeq(b.Start, seq.Add(1)).Size(b.End)
	}
	return count >= s.dupThresh || bytes > uint32(s.dupThresh-1)*s.smss
}

// hole returns the i-th un-SACKed range of [SND.UNA, SND.NXT): the octets
// below blocks[i] (or, for i == n, above the last block). It may be empty.
func (s *Scoreboard) hole(i int) (start, end Seq) {
	start = s.una
	if i > 0 {
		start = s.blocks[i-1].End
	}
	end = s.nxt
	if i < s.n {
		end = s.blocks[i].Start
	}
	return start, end
}

// Pipe returns RFC 6675's SetPipe estimate of octets in flight: for each
// un-SACKed octet in [SND.UNA, SND.NXT), one if it is not deemed lost, plus
// one if it was retransmitted (below HighRxt).
func (s *Scoreboard) Pipe() uint32 {
	var pipe uint32
	for i := 0; i <= s.n; i++ {
		start, end := s.hole(i)
		if !start.LessThan(end) {
			continue
		}
		if !s.lostAbove(i) {
			pipe += start.Size(end)
		}
		if rxtEnd := MinSeq(end, s.highRxt); start.LessThan(rxtEnd) {
			pipe += start.Size(rxtEnd)
		}
	}
	return pipe
}

// NextSeg is RFC 6675 §4's NextSeg(). avail is how many new octets the
// sender may send beyond SND.NXT (data queued and allowed by the receive
// window; 0 for none). It returns, in order of preference: (1) up to SMSS
// octets of the lowest hole below the highest SACKed octet that is deemed
// lost and not yet retransmitted; (2) up to SMSS new octets at SND.NXT;
// (3) the lowest such hole not yet deemed lost; (4) in recovery, once per
// recovery point, up to SMSS octets ending at the highest un-SACKed octet.
// A retransmission never extends into SACKed octets. Kind is SegNone when
// nothing qualifies. It does not change the scoreboard: call Sent once the
// segment is transmitted.
func (s *Scoreboard) NextSeg(avail uint32) NextSegment {
	for i := 0; i < s.n; i++ { // holes below the highest SACKed octet
		start, end := s.hole(i)
		start = MaxSeq(start, s.highRxt)
		if start.LessThan(end) && s.lostAbove(i) {
			return NextSegment{start, min(start.Size(end), s.smss), SegLost}
		}
	}
	if avail > 0 {
		return NextSegment{s.nxt, min(avail, s.smss), SegNew}
	}
	for i := 0; i < s.n; i++ {
		start, end := s.hole(i)
		start = MaxSeq(start, s.highRxt)
		if start.LessThan(end) {
			return NextSegment{start, min(start.Size(end), s.smss), SegHole}
		}
	}
	if s.recovery && (!s.hasRescue || s.una.GreaterThan(s.rescueRxt)) {
		for i := s.n; i >= 0; i-- { // the highest non-empty hole
			start, end := s.hole(i)
			if start.LessThan(end) {
				n := min(start.Size(end), s.smss)
				return NextSegment{end.Add(-n), n, SegRescue}
			}
		}
	}
	return NextSegment{}
}

// find returns the index of the first block whose end is above seq.
func (s *Scoreboard) find(seq Seq) int {
	lo, hi := 0, s.n
	for lo < hi {
		m := (lo + hi) / 2
		if s.blocks[m].End.LessEq(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// covers reports whether [start, end) lies inside one SACKed range.
func (s *Scoreboard) covers(start, end Seq) bool {
	i := s.find(start)
	return i < s.n && s.blocks[i].Start.LessEq(start) && end.LessEq(s.blocks[i].End)
}

// blockEnd returns the end of the SACKed range holding seq, or seq+1 if
// none does.
func (s *Scoreboard) blockEnd(seq Seq) Seq {
	i := s.find(seq)
	if i < s.n && s.blocks[i].Start.LessEq(seq) {
		return s.blocks[i].End
	}
	return seq.Add(1)
}
