package umem

import "testing"

func BenchmarkAllocFree(b *testing.B) {
	u := mustNew(b, Config{NumFrames: 4096})
	p := mustPool(b, u, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		idx, err := p.Alloc()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Unref(idx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitComplete is the transmit life of one frame with
// free-protection: allocate, submit, free before completion, complete.
func BenchmarkSubmitComplete(b *testing.B) {
	u := mustNew(b, Config{NumFrames: 4096})
	p := mustPool(b, u, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		idx, err := p.Alloc()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.SubmitTX(idx); err != nil {
			b.Fatal(err)
		}
		if err := p.Unref(idx); err != nil {
			b.Fatal(err)
		}
		if err := p.Completed(idx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRXCycle is the receive life of a frame: fill, receive, free.
func BenchmarkRXCycle(b *testing.B) {
	u := mustNew(b, Config{NumFrames: 4096})
	p := mustPool(b, u, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		idx, err := p.AllocFill()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Received(idx); err != nil {
			b.Fatal(err)
		}
		if err := p.Unref(idx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFrameOfSlice(b *testing.B) {
	u := mustNew(b, Config{NumFrames: 4096})
	s := u.Frame(1234)[300:400]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := u.FrameOfSlice(s); !ok {
			b.Fatal("not found")
		}
	}
}

// TestDatapathAllocatesNothing: the steady-state operations, including
// exhaustion, allocate nothing on the Go heap.
func TestDatapathAllocatesNothing(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 64})
	p := mustPool(t, u, 0, 64)
	var sink uint64
	n := testing.AllocsPerRun(1000, func() {
		idx, _ := p.Alloc()
		p.Ref(idx)
		p.SubmitTX(idx)
		p.Unref(idx)
		p.Unref(idx)
		p.Completed(idx)

		f, _ := p.AllocFill()
		p.Received(f)
		fr := u.Frame(f)
		i, off, _ := u.FrameOfSlice(fr[u.Headroom():])
		j, _ := u.FrameOf(u.Addr(f) + 100)
		sink += uint64(i) + uint64(off) + uint64(j)
		p.Unref(f)
	})
	if n != 0 {
		t.Errorf("datapath allocates %v times per run", n)
	}
	if p.Available() != 64 {
		t.Fatalf("leak: available %d", p.Available())
	}

	// Exhaustion is a steady state under load too.
	for p.Available() > 0 {
		p.Alloc()
	}
	n = testing.AllocsPerRun(1000, func() {
		if _, err := p.Alloc(); err != ErrExhausted {
			t.Fatal(err)
		}
		if _, err := p.AllocFill(); err != ErrExhausted {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("ErrExhausted allocates %v times per run", n)
	}
	_ = sink
}
