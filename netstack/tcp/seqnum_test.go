package tcp

import "testing"

func TestSeqCompare(t *testing.T) {
	tests := []struct {
		a, b           Seq
		lt, le, gt, ge bool
		sub            int32
	}{
		{1, 2, true, true, false, false, -1},
		{2, 1, false, false, true, true, 1},
		{5, 5, false, true, false, true, 0},
		// Across the 2^32 wrap: 0xFFFFFFF0 is before 0x10.
		{0xFFFFFFF0, 0x10, true, true, false, false, -0x20},
		{0x10, 0xFFFFFFF0, false, false, true, true, 0x20},
		{0xFFFFFFFF, 0, true, true, false, false, -1},
		{0, 0xFFFFFFFF, false, false, true, true, 1},
		// Just under half the space apart: still ordered.
		{0, 0x7FFFFFFF, true, true, false, false, -0x7FFFFFFF},
		{0x80000000, 0xFFFFFFFF, true, true, false, false, -0x7FFFFFFF},
	}
	for _, tc := range tests {
		if got := tc.a.LessThan(tc.b); got != tc.lt {
			t.Errorf("%#x.LessThan(%#x) = %v", tc.a, tc.b, got)
		}
		if got := tc.a.LessEq(tc.b); got != tc.le {
			t.Errorf("%#x.LessEq(%#x) = %v", tc.a, tc.b, got)
		}
		if got := tc.a.GreaterThan(tc.b); got != tc.gt {
			t.Errorf("%#x.GreaterThan(%#x) = %v", tc.a, tc.b, got)
		}
		if got := tc.a.GreaterEq(tc.b); got != tc.ge {
			t.Errorf("%#x.GreaterEq(%#x) = %v", tc.a, tc.b, got)
		}
		if got := tc.a.Sub(tc.b); got != tc.sub {
			t.Errorf("%#x.Sub(%#x) = %d, want %d", tc.a, tc.b, got, tc.sub)
		}
	}
}

func TestSeqAddWraps(t *testing.T) {
	if got := Seq(0xFFFFFFFE).Add(5); got != 3 {
		t.Fatalf("Add across wrap = %#x, want 3", got)
	}
	if got := Seq(0xFFFFFFFE).Size(3); got != 5 {
		t.Fatalf("Size across wrap = %d, want 5", got)
	}
	if MaxSeq(0xFFFFFFFF, 2) != 2 || MinSeq(0xFFFFFFFF, 2) != 0xFFFFFFFF {
		t.Fatal("MaxSeq/MinSeq wrong across the wrap")
	}
}

func TestSeqInRange(t *testing.T) {
	tests := []struct {
		s, a, b Seq
		want    bool
	}{
		{5, 5, 10, true},
		{9, 5, 10, true},
		{10, 5, 10, false},
		{4, 5, 10, false},
		{5, 5, 5, false}, // empty
		{0xFFFFFFFF, 0xFFFFFFF0, 0x10, true},
		{0, 0xFFFFFFF0, 0x10, true},
		{0xF, 0xFFFFFFF0, 0x10, true},
		{0x10, 0xFFFFFFF0, 0x10, false},
		{0xFFFFFFEF, 0xFFFFFFF0, 0x10, false},
	}
	for _, tc := range tests {
		if got := tc.s.InRange(tc.a, tc.b); got != tc.want {
			t.Errorf("%#x.InRange(%#x, %#x) = %v, want %v", tc.s, tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSeqInWindow(t *testing.T) {
	tests := []struct {
		s, start Seq
		size     uint32
		want     bool
	}{
		{100, 100, 1, true},
		{101, 100, 1, false},
		{100, 100, 0, false},
		{99, 100, 10, false},
		{3, 0xFFFFFFFE, 6, true},
		{4, 0xFFFFFFFE, 6, false},
		{0xFFFFFFFD, 0xFFFFFFFE, 6, false},
		{0x7FFFFFFF, 0, 0x80000000, true},
	}
	for _, tc := range tests {
		if got := tc.s.InWindow(tc.start, tc.size); got != tc.want {
			t.Errorf("%#x.InWindow(%#x, %d) = %v, want %v", tc.s, tc.start, tc.size, got, tc.want)
		}
	}
}
