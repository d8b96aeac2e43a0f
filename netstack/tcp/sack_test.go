package tcp

import (
	"testing"
)

// base puts the test windows across the 2^32 wrap.
const base = Seq(0xFFFFF000)

func sb(t *testing.T, sent uint32) *Scoreboard {
	t.Helper()
	s := NewScoreboard(ScoreboardOptions{SMSS: 1000}, base)
	for off := uint32(0); off < sent; off += 1000 {
		s.Sent(NextSegment{base.Add(off), 1000, SegNew})
	}
	return s
}

func blk(a, b uint32) SACKBlock { return SACKBlock{base.Add(a), base.Add(b)} }

func wantBlocks(t *testing.T, s *Scoreboard, want ...SACKBlock) {
	t.Helper()
	got := s.Blocks()
	if len(got) != len(want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("blocks %v, want %v", got, want)
		}
	}
}

func TestScoreboardUpdate(t *testing.T) {
	s := sb(t, 10000)
	if s.NXT() != base.Add(10000) {
		t.Fatalf("NXT %#x", s.NXT())
	}
	steps := []struct {
		name   string
		ack    uint32
		blocks []SACKBlock
		added  uint32
		want   []SACKBlock
	}{
		{"first block", 0, []SACKBlock{blk(3000, 4000)}, 1000, []SACKBlock{blk(3000, 4000)}},
		{"same again", 0, []SACKBlock{blk(3000, 4000)}, 0, []SACKBlock{blk(3000, 4000)}},
		{"disjoint above", 0, []SACKBlock{blk(6000, 7000)}, 1000, []SACKBlock{blk(3000, 4000), blk(6000, 7000)}},
		{"adjacent merges", 0, []SACKBlock{blk(4000, 5000)}, 1000, []SACKBlock{blk(3000, 5000), blk(6000, 7000)}},
		{"bridging overlap", 0, []SACKBlock{blk(4500, 6500)}, 1000, []SACKBlock{blk(3000, 7000)}},
		{"below, disjoint", 0, []SACKBlock{blk(1000, 2000)}, 1000, []SACKBlock{blk(1000, 2000), blk(3000, 7000)}},
		{"clipped at SND.NXT", 0, []SACKBlock{blk(9000, 12000)}, 1000, []SACKBlock{blk(1000, 2000), blk(3000, 7000), blk(9000, 10000)}},
		{"beyond SND.NXT ignored", 0, []SACKBlock{blk(11000, 12000)}, 0, []SACKBlock{blk(1000, 2000), blk(3000, 7000), blk(9000, 10000)}},
		{"reversed ignored", 0, []SACKBlock{blk(8000, 7500)}, 0, []SACKBlock{blk(1000, 2000), blk(3000, 7000), blk(9000, 10000)}},
		{"ack trims", 1500, nil, 0, []SACKBlock{blk(1500, 2000), blk(3000, 7000), blk(9000, 10000)}},
		{"D-SACK below una ignored", 1500, []SACKBlock{blk(0, 1000)}, 0, []SACKBlock{blk(1500, 2000), blk(3000, 7000), blk(9000, 10000)}},
		{"ack past blocks drops them", 8000, []SACKBlock{blk(7000, 9500)}, 1000, []SACKBlock{blk(8000, 10000)}},
		{"ack beyond SND.NXT ignored", 20000, nil, 0, []SACKBlock{blk(8000, 10000)}},
		{"ack everything", 10000, nil, 0, nil},
	}
	for _, st := range steps {
		if got := s.Update(base.Add(st.ack), st.blocks); got != st.added {
			t.Fatalf("%s: added %d, want %d", st.name, got, st.added)
		}
		wantBlocks(t, s, st.want...)
	}
	if s.UNA() != base.Add(10000) {
		t.Fatalf("UNA %#x", s.UNA())
	}
}

func TestScoreboardIsLost(t *testing.T) {
	tests := []struct {
		name   string
		blocks []SACKBlock
		seq    uint32
		want   bool
	}{
		{"nothing sacked", nil, 0, false},
		{"one segment above", []SACKBlock{blk(1000, 2000)}, 0, false},
		{"two segments above (=2*SMSS, not more)", []SACKBlock{blk(1000, 3000)}, 0, false},
		{"three contiguous segments", []SACKBlock{blk(1000, 4000)}, 0, true},
		{"just over 2*SMSS", []SACKBlock{blk(1000, 3001)}, 0, true},
		{"three tiny discontiguous ranges", []SACKBlock{blk(1000, 1100), blk(2000, 2100), blk(3000, 3100)}, 0, true},
		{"two tiny ranges", []SACKBlock{blk(1000, 1100), blk(2000, 2100)}, 0, false},
		{"above the sacked data", []SACKBlock{blk(1000, 4000)}, 5000, false},
		{"sacked octet is not lost", []SACKBlock{blk(1000, 5000)}, 1500, false},
		{"between ranges counts only higher ones", []SACKBlock{blk(1000, 4000), blk(6000, 7000)}, 5000, false},
		{"outside the window", []SACKBlock{blk(1000, 5000)}, 20000, false},
		// Octets strictly above seq count: at seq 999 the block
		// [1000,3001) gives 2001 > 2000; at 1000 it is sacked.
		{"counting starts above seq", []SACKBlock{blk(999, 3000)}, 998, true},
	}
	for _, tc := range tests {
		s := sb(t, 10000)
		s.Update(base, tc.blocks)
		if got := s.IsLost(base.Add(tc.seq)); got != tc.want {
			t.Errorf("%s: IsLost(%d) = %v, want %v", tc.name, tc.seq, got, tc.want)
		}
	}
}

func TestScoreboardPipeAndNextSeg(t *testing.T) {
	s := sb(t, 10000)
	s.Update(base, []SACKBlock{blk(3000, 6000)})
	// Hole [0,3000) is lost (3000 SACKed above > 2000); [6000,10000) is not.
	if p := s.Pipe(); p != 4000 {
		t.Fatalf("pipe %d, want 4000", p)
	}
	s.EnterRecovery()
	for i, want := range []NextSegment{{base, 1000, SegLost}, {base.Add(1000), 1000, SegLost}, {base.Add(2000), 1000, SegLost}} {
		got := s.NextSeg(0)
		if got != want {
			t.Fatalf("step %d: NextSeg %+v, want %+v", i, got, want)
		}
		s.Sent(got)
		if p, want := s.Pipe(), uint32(4000+1000*(i+1)); p != want {
			t.Fatalf("step %d: pipe %d, want %d", i, p, want)
		}
	}
	// Rule 2 before rule 3/4 when new data may go.
	if got := s.NextSeg(5000); got != (NextSegment{base.Add(10000), 1000, SegNew}) {
		t.Fatalf("rule 2: %+v", got)
	}
	// No new data: rule 4, the rescue retransmission of the tail.
	resc := s.NextSeg(0)
	if resc != (NextSegment{base.Add(9000), 1000, SegRescue}) {
		t.Fatalf("rule 4: %+v", resc)
	}
	s.Sent(resc)
	if p := s.Pipe(); p != 7000 {
		t.Fatalf("a rescue must not move HighRxt: pipe %d", p)
	}
	if got := s.NextSeg(0); got.Kind != SegNone {
		t.Fatalf("second rescue in the same recovery: %+v", got)
	}
	// The retransmissions fill [0,3000): everything up to 6000 acked.
	s.Update(base.Add(6000), nil)
	if p := s.Pipe(); p != 4000 {
		t.Fatalf("pipe after partial ack %d, want 4000", p)
	}
	s.ExitRecovery()
	if got := s.NextSeg(0); got.Kind != SegNone {
		t.Fatalf("outside recovery with nothing to do: %+v", got)
	}
}

func TestScoreboardRule3(t *testing.T) {
	s := sb(t, 10000)
	s.Update(base, []SACKBlock{blk(5000, 6000)})
	// One SACKed segment: nothing is lost yet, but holes below it may be
	// retransmitted by rule 3 when there is no new data.
	if got := s.NextSeg(0); got != (NextSegment{base, 1000, SegHole}) {
		t.Fatalf("rule 3: %+v", got)
	}
	// A short hole gives a short segment, never covering SACKed octets.
	s.Update(base, []SACKBlock{blk(500, 5000)})
	if got := s.NextSeg(0); got != (NextSegment{base, 500, SegLost}) {
		t.Fatalf("short hole: %+v", got)
	}
}

func TestScoreboardCapacity(t *testing.T) {
	s := sb(t, 200000)
	var added uint32
	for i := uint32(0); i < 40; i++ {
		added += s.Update(base, []SACKBlock{blk(2000*i+1000, 2000*i+1500)})
	}
	if len(s.Blocks()) != ScoreboardCapacity || added != 40*500 {
		t.Fatalf("%d blocks (added %d)", len(s.Blocks()), added)
	}
	if s.Blocks()[ScoreboardCapacity-1] != blk(2000*31+1000, 2000*31+1500) {
		t.Fatalf("highest kept %v: the lowest ranges must be kept", s.Blocks()[ScoreboardCapacity-1])
	}
	// A new low range evicts the highest.
	s.Update(base, []SACKBlock{blk(100, 200)})
	if s.Blocks()[0] != blk(100, 200) || s.Blocks()[ScoreboardCapacity-1] != blk(2000*30+1000, 2000*30+1500) {
		t.Fatalf("after a low insert: first %v last %v", s.Blocks()[0], s.Blocks()[ScoreboardCapacity-1])
	}
	s.ClearSACK()
	if len(s.Blocks()) != 0 || s.SackedBytes() != 0 {
		t.Fatal("ClearSACK left blocks")
	}
}

func TestScoreboardNoAllocs(t *testing.T) {
	s := sb(t, 100000)
	blocks := []SACKBlock{blk(3000, 6000), blk(8000, 9000), blk(20000, 21000)}
	if n := testing.AllocsPerRun(100, func() {
		s.Update(base, blocks)
		_ = s.IsLost(base)
		_ = s.Pipe()
		seg := s.NextSeg(1000)
		s.Sent(seg)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func BenchmarkScoreboardAck(b *testing.B) {
	s := NewScoreboard(ScoreboardOptions{SMSS: 1000}, 0)
	s.Sent(NextSegment{0, 1 << 20, SegNew})
	blocks := []SACKBlock{{3000, 6000}, {8000, 9000}, {20000, 21000}}
	b.ReportAllocs()
	for b.Loop() {
		s.Update(0, blocks)
		_ = s.Pipe()
		_ = s.NextSeg(0)
	}
}
