package tcp

import (
	"errors"
	"testing"
)

// rb is the test's RCV.NXT, just below the 2^32 wrap.
const rb = Seq(0xFFFFFF00)

func pieces(r *Reassembler[uint64]) []ReasmPiece[uint64] {
	var out []ReasmPiece[uint64]
	for i := 0; i < r.Len(); i++ {
		out = append(out, r.At(i))
	}
	return out
}

func TestReasmInOrder(t *testing.T) {
	r := NewReassembler[uint64](rb)
	if n, err := r.Insert(rb, 100, 1); n != 1 || err != nil {
		t.Fatalf("Insert = %d, %v", n, err)
	}
	p, ok := r.Pop()
	if !ok || p != (ReasmPiece[uint64]{rb, 100, 1, 0}) || r.RcvNxt() != rb.Add(100) {
		t.Fatalf("Pop = %+v %v, RcvNxt %#x", p, ok, r.RcvNxt())
	}
	if _, ok := r.Pop(); ok {
		t.Fatal("Pop from empty queue")
	}
}

func TestReasmOutOfOrderAcrossWrap(t *testing.T) {
	r := NewReassembler[uint64](rb)
	r.Insert(rb.Add(512), 256, 3) // crosses 2^32: 0x100..0x200
	r.Insert(rb.Add(256), 256, 2) // 0..0x100
	if _, ok := r.Pop(); ok {
		t.Fatal("popped before the gap was filled")
	}
	r.Insert(rb, 256, 1)
	for i, want := range []ReasmPiece[uint64]{{rb, 256, 1, 0}, {0, 256, 2, 0}, {0x100, 256, 3, 0}} {
		p, ok := r.Pop()
		if !ok || p != want {
			t.Fatalf("pop %d = %+v, want %+v", i, p, want)
		}
	}
	if r.RcvNxt() != 0x200 || r.Len() != 0 {
		t.Fatalf("RcvNxt %#x Len %d", r.RcvNxt(), r.Len())
	}
}

func TestReasmOverlaps(t *testing.T) {
	tests := []struct {
		name   string
		seq    uint32 // offset from rb
		n      uint32
		stored int
		want   []ReasmPiece[uint64] // the whole queue afterwards
	}{
		// The queue starts as [100,200) h1 and [300,400) h2.
		{"exact duplicate", 100, 100, 0, nil},
		{"inside", 120, 50, 0, nil},
		{"zero length", 500, 0, 0, nil},
		{"below RCV.NXT entirely", 0xFFFFFF00, 0x100, 0, nil}, // [rb-256, rb)
		{"front overlap", 50, 100, 1, []ReasmPiece[uint64]{{rb.Add(50), 50, 9, 0}}},
		{"tail overlap", 150, 100, 1, []ReasmPiece[uint64]{{rb.Add(200), 50, 9, 50}}},
		{"spans a piece", 50, 400, 3, []ReasmPiece[uint64]{{rb.Add(50), 50, 9, 0}, {rb.Add(200), 100, 9, 150}, {rb.Add(400), 50, 9, 350}}},
		{"starts before RCV.NXT", 0xFFFFFFF0, 0x20, 1, []ReasmPiece[uint64]{{rb, 0x10, 9, 0x10}}},
		{"adjacent, not merged", 200, 100, 1, []ReasmPiece[uint64]{{rb.Add(200), 100, 9, 0}}},
	}
	for _, tc := range tests {
		r := NewReassembler[uint64](rb)
		r.Insert(rb.Add(100), 100, 1)
		r.Insert(rb.Add(300), 100, 2)
		got, err := r.Insert(rb.Add(tc.seq), tc.n, 9)
		if got != tc.stored || err != nil {
			t.Errorf("%s: stored %d (%v), want %d", tc.name, got, err, tc.stored)
			continue
		}
		var added []ReasmPiece[uint64]
		for _, p := range pieces(r) {
			if p.Handle == 9 {
				added = append(added, p)
			}
		}
		if len(added) != len(tc.want) {
			t.Errorf("%s: new pieces %+v, want %+v", tc.name, added, tc.want)
			continue
		}
		for i := range added {
			if added[i] != tc.want[i] {
				t.Errorf("%s: new pieces %+v, want %+v", tc.name, added, tc.want)
			}
		}
		// The first arrivals are untouched and the queue stays sorted
		// and disjoint.
		ps := pieces(r)
		for i := 1; i < len(ps); i++ {
			if ps[i-1].Seq.Add(ps[i-1].Len).GreaterThan(ps[i].Seq) {
				t.Errorf("%s: overlap in %+v", tc.name, ps)
			}
		}
	}
}

func TestReasmSACKBlocks(t *testing.T) {
	r := NewReassembler[uint64](rb)
	r.Insert(rb.Add(1000), 100, 1) // A
	r.Insert(rb.Add(3000), 100, 2) // B
	r.Insert(rb.Add(2000), 100, 3) // C
	r.Insert(rb.Add(1100), 100, 4) // D joins A's run and is the newest
	var dst [4]SACKBlock
	n := r.SACKBlocks(dst[:])
	want := []SACKBlock{{rb.Add(1000), rb.Add(1200)}, {rb.Add(2000), rb.Add(2100)}, {rb.Add(3000), rb.Add(3100)}}
	if n != 3 || dst[0] != want[0] || dst[1] != want[1] || dst[2] != want[2] {
		t.Fatalf("blocks %v (%d), want %v", dst[:n], n, want)
	}
	if n := r.SACKBlocks(dst[:2]); n != 2 || dst[1] != want[1] {
		t.Fatalf("two blocks: %v", dst[:n])
	}
	// One segment split into two pieces: its two runs share the stamp and
	// both come first, lower one first.
	r.Insert(rb.Add(900), 2300, 5)
	n = r.SACKBlocks(dst[:])
	if n != 1 || dst[0] != (SACKBlock{rb.Add(900), rb.Add(3200)}) {
		t.Fatalf("after spanning insert: %v", dst[:n])
	}
	// Data at RCV.NXT is not advertised.
	r.Insert(rb, 100, 6)
	if n := r.SACKBlocks(dst[:]); n != 1 {
		t.Fatalf("run at RCV.NXT advertised: %v", dst[:n])
	}
	r.Insert(rb.Add(100), 800, 7) // fills the gap: one run from RCV.NXT
	if n := r.SACKBlocks(dst[:]); n != 0 {
		t.Fatalf("in-order run advertised: %v", dst[:n])
	}
	total := uint32(0)
	for {
		p, ok := r.Pop()
		if !ok {
			break
		}
		total += p.Len
	}
	if total != 3200 || r.RcvNxt() != rb.Add(3200) {
		t.Fatalf("popped %d, RcvNxt %#x", total, r.RcvNxt())
	}
}

func TestReasmCapacity(t *testing.T) {
	r := NewReassembler[uint64](rb)
	for i := uint32(0); i < ReasmCapacity-1; i++ {
		if n, err := r.Insert(rb.Add(100+200*i), 100, uint64(i)); n != 1 || err != nil {
			t.Fatalf("insert %d: %d %v", i, n, err)
		}
	}
	if n, err := r.Insert(rb.Add(100000), 100, 99); n != 0 || !errors.Is(err, ErrReasmFull) {
		t.Fatalf("over capacity: %d %v", n, err)
	}
	// The segment at RCV.NXT still gets in, even if it spans more gaps
	// than there is room for: the first piece is kept.
	if n, err := r.Insert(rb, 1000, 100); n != 1 || err != nil {
		t.Fatalf("in-order when full: %d %v", n, err)
	}
	if r.Len() != ReasmCapacity {
		t.Fatalf("Len %d", r.Len())
	}
	for i := 0; i < 2; i++ {
		if _, ok := r.Pop(); !ok {
			t.Fatalf("pop %d failed", i)
		}
	}
	if _, ok := r.Pop(); ok {
		t.Fatal("the dropped remainder [200,300) was popped")
	}
	if r.RcvNxt() != rb.Add(200) {
		t.Fatalf("RcvNxt %#x", r.RcvNxt())
	}
}

func TestReasmAdvance(t *testing.T) {
	r := NewReassembler[uint64](rb)
	if err := r.Advance(100); err != nil || r.RcvNxt() != rb.Add(100) {
		t.Fatal(err)
	}
	r.Insert(rb.Add(300), 100, 1)
	if err := r.Advance(200); err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(1); !errors.Is(err, ErrReasmOverlap) || r.RcvNxt() != rb.Add(300) {
		t.Fatalf("advance past queued data: %v", err)
	}
	if p, ok := r.Pop(); !ok || p.Handle != 1 {
		t.Fatal("queued piece lost")
	}
	r.Reset(5)
	if r.Len() != 0 || r.RcvNxt() != 5 || r.Bytes() != 0 {
		t.Fatal("Reset")
	}
}

func TestReasmNoAllocs(t *testing.T) {
	r := NewReassembler[uint64](rb)
	var dst [4]SACKBlock
	if n := testing.AllocsPerRun(100, func() {
		r.Insert(r.RcvNxt().Add(2000), 1000, 2)
		r.Insert(r.RcvNxt().Add(500), 2000, 3)
		_ = r.SACKBlocks(dst[:])
		r.Insert(r.RcvNxt(), 1000, 1)
		for {
			if _, ok := r.Pop(); !ok {
				break
			}
		}
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func BenchmarkReasmOutOfOrder(b *testing.B) {
	r := NewReassembler[uint64](0)
	var dst [4]SACKBlock
	b.ReportAllocs()
	for b.Loop() {
		nxt := r.RcvNxt()
		r.Insert(nxt.Add(1460), 1460, 2)
		r.Insert(nxt.Add(4380), 1460, 4)
		_ = r.SACKBlocks(dst[:])
		r.Insert(nxt, 1460, 1)
		r.Insert(nxt.Add(2920), 1460, 3)
		for {
			if _, ok := r.Pop(); !ok {
				break
			}
		}
	}
}

func TestReasmSetLimit(t *testing.T) {
	r := NewReassembler[uint64](rb)
	r.SetLimit(600)
	if r.Limit() != 600 {
		t.Fatalf("Limit %d", r.Limit())
	}
	for i := uint32(0); i < 599; i++ {
		if n, err := r.Insert(rb.Add(100+200*i), 100, uint64(i)); n != 1 || err != nil {
			t.Fatalf("insert %d: %d %v", i, n, err)
		}
	}
	if n, err := r.Insert(rb.Add(200000), 100, 9999); n != 0 || !errors.Is(err, ErrReasmFull) {
		t.Fatalf("over the limit: %d %v", n, err)
	}
	if n, err := r.Insert(rb, 100, 9999); n != 1 || err != nil || r.Len() != 600 {
		t.Fatalf("in-order at the limit: %d %v, Len %d", n, err, r.Len())
	}
	r.SetLimit(0)
	if r.Limit() != ReasmCapacity {
		t.Fatalf("SetLimit(0): Limit %d", r.Limit())
	}
}
