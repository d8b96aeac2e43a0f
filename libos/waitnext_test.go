package libos_test

import (
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// TestWaitNext: completions come out of WaitNext oldest first, each once;
// a token consumed by Wait never shows up in WaitNext; nothing completed
// is ETIMEDOUT; an empty slice is EINVAL; and the steady state allocates
// nothing.
func TestWaitNext(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	qd, peer := roundTripper(t, lab, lib)
	var out [8]libos.Result
	if _, err := lib.WaitNext(out[:0], 0); err != unix.EINVAL {
		t.Fatalf("WaitNext(empty): %v, want EINVAL", err)
	}
	if n, err := lib.WaitNext(out[:], 0); err != unix.ETIMEDOUT || n != 0 {
		t.Fatalf("WaitNext with nothing pending: %d %v, want ETIMEDOUT", n, err)
	}
	// Three pops posted first, then three pushes whose reflections
	// complete the pops; Wait takes the second push itself.
	var pops, pushes [3]libos.QToken
	for i := range pops {
		pops[i], _ = lib.Pop(qd)
	}
	for i := range pushes {
		sga, _ := lib.SGAAlloc(32)
		sga.Segs[0][0] = byte(i)
		var err error
		if pushes[i], err = lib.PushTo(qd, sga, peer); err != nil {
			t.Fatal(err)
		}
		lib.SGAFree(sga)
	}
	if r, err := lib.Wait(pushes[1], 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("Wait push 1: %v %+v", err, r)
	}
	seen := map[libos.QToken]libos.Result{}
	var order []libos.QToken
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 5 && time.Now().Before(deadline) {
		n, err := lib.WaitNext(out[:], time.Second)
		if err == unix.ETIMEDOUT {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out[:n] {
			if _, dup := seen[r.QT]; dup {
				t.Fatalf("token %x returned twice", r.QT)
			}
			seen[r.QT] = r
			order = append(order, r.QT)
		}
	}
	if len(seen) != 5 {
		t.Fatalf("WaitNext returned %d operations, want 5 (3 pops, 2 pushes)", len(seen))
	}
	if _, ok := seen[pushes[1]]; ok {
		t.Fatal("WaitNext returned the push that Wait consumed")
	}
	for i, qt := range pops {
		r, ok := seen[qt]
		if !ok || r.Opcode != libos.OpPop || r.QD != qd {
			t.Fatalf("pop %d: %+v (present %v)", i, r, ok)
		}
		if got := r.SGA.Segs[0][0]; got != byte(i) {
			t.Fatalf("pop %d carried datagram %d: pops complete in order", i, got)
		}
		lib.SGAFree(r.SGA)
	}
	// Pops completed in the order they were posted, and so came out.
	pos := map[libos.QToken]int{}
	for i, qt := range order {
		pos[qt] = i
	}
	if !(pos[pops[0]] < pos[pops[1]] && pos[pops[1]] < pos[pops[2]]) {
		t.Fatalf("completion order %v: pops out of order", order)
	}
	if _, err := lib.Wait(pops[0], 0); err != unix.EINVAL {
		t.Fatalf("Wait on a token WaitNext consumed: %v, want EINVAL", err)
	}
	// Steady state: one push and its pop per WaitNext round.
	sga, _ := lib.SGAAlloc(64)
	defer lib.SGAFree(sga)
	round := func() {
		if _, err := lib.PushTo(qd, sga, peer); err != nil {
			t.Fatal(err)
		}
		if _, err := lib.Pop(qd); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < 2; {
			n, err := lib.WaitNext(out[:], 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out[:n] {
				if r.Opcode == libos.OpPop {
					lib.SGAFree(r.SGA)
				}
			}
			got += n
		}
	}
	for i := 0; i < 50; i++ {
		round()
	}
	if a := testing.AllocsPerRun(500, round); a != 0 {
		t.Fatalf("push+pop+WaitNext: %v allocations per round, want 0", a)
	}
}
