package tcp

import (
	"fmt"
	"testing"
)

// Every test of the package checks that a queue array given back as
// already zeroed is: a slot left holding a frame view would outlive its
// use in the pool. (Bytes, not values: the check must not allocate, as
// the allocation tests run with it.)
func init() {
	checkZeroed = func(mem []byte) {
		for i, b := range mem {
			if b != 0 {
				panic(fmt.Sprintf("tcp: a queue array given back as zeroed has byte %d = %#x", i, b))
			}
		}
	}
}

// TestPutZeroedChecks: the check catches an array that is not zero, and
// the pool takes back one that is without clearing it.
func TestPutZeroedChecks(t *testing.T) {
	var p ringPool[txSeg]
	q := p.get(16)
	q[3].seq = 7
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("putZeroed took an array holding an entry")
			}
		}()
		p.putZeroed(q)
	}()
	q[3] = txSeg{}
	p.putZeroed(q)
	if got := p.get(16); &got[0] != &q[0] {
		t.Fatal("the zeroed array did not go back to the pool")
	}
}

// TestRingClass: every pooled capacity has its class, anything else none.
func TestRingClass(t *testing.T) {
	for k := 0; k < ringClasses; k++ {
		if got := ringClass(ringMin << k); got != k {
			t.Errorf("ringClass(%d) = %d, want %d", ringMin<<k, got, k)
		}
	}
	for _, c := range []int{0, 1, 4, 7, 9, 12, 24, 100, ringMin << ringClasses, ringMin<<ringClasses + 8, -8} {
		if got := ringClass(c); got != -1 {
			t.Errorf("ringClass(%d) = %d, want -1", c, got)
		}
	}
}
