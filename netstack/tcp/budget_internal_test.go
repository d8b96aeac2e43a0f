package tcp

import "testing"

// The share arithmetic: half of Frames/(holders+1) per direction, never
// under the floor, never over a quarter of the frames.
func TestShareArithmetic(t *testing.T) {
	for _, c := range []struct{ frames, holders, want int }{
		{0, 0, 0},        // budgets off
		{0, 100, 0},      // budgets off
		{4000, 0, 1000},  // nobody holds: the ceiling
		{4000, 1, 1000},  // one holder: 4000/4, the ceiling
		{4000, 2, 666},   // 4000/6
		{4000, 9, 200},   // 4000/20
		{4000, 99, 20},   // 4000/200
		{4000, 499, 4},   // 4000/1000: the floor
		{4000, 20000, 4}, // far beyond: still the floor
		{8, 0, 4},        // a tiny pool: the floor wins over the ceiling
		{3000, 51, 28},   // 32 hogs + 20 clients on the default UMEM
	} {
		if got := shareFor(c.frames, c.holders); got != c.want {
			t.Errorf("shareFor(%d, %d) = %d, want %d", c.frames, c.holders, got, c.want)
		}
	}
}
