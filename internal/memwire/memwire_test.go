package memwire

import (
	"testing"

	"github.com/demixdp/demixdp/netstack/nic"
)

type sink struct {
	l   *Link
	got [][]byte
}

func (s *sink) Input(b nic.Buf) {
	s.got = append(s.got, append([]byte(nil), b.Bytes()...))
	s.l.Release(b.Frame)
}
func (s *sink) EndBatch()           {}
func (s *sink) Tick()               {}
func (s *sink) NextDeadline() int64 { return 0 }

func newTest(cfg Config) (*Wire, *sink, *sink) {
	w := New(cfg)
	a, b := &sink{l: w.A}, &sink{l: w.B}
	w.Attach(a, b)
	return w, a, b
}

func send(t *testing.T, l *Link, s string) nic.Buf {
	b, err := l.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	b.Len = copy(b.Data[b.Off:], s)
	if err := l.Transmit(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeliveryAfterDelayAndCompletionAtNextStep(t *testing.T) {
	w, _, b := newTest(Config{})
	f := send(t, w.A, "hello")
	if err := w.A.Transmit(f, 0); err != nic.ErrTxFull {
		t.Fatalf("second Transmit in flight: %v", err)
	}
	w.A.Release(f.Frame)
	w.Step()
	if len(b.got) != 0 {
		t.Fatal("delivered before the delay")
	}
	if !w.Advance() || !w.Step() || len(b.got) != 1 || string(b.got[0]) != "hello" {
		t.Fatalf("got %q", b.got)
	}
	if w.A.InUse() != 0 || w.B.InUse() != 0 {
		t.Fatalf("frames in use: %d %d", w.A.InUse(), w.B.InUse())
	}
	if w.Advance() {
		t.Fatal("events left on an idle wire")
	}
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestImpairmentsFollowTheSeed(t *testing.T) {
	run := func() (Stats, int) {
		w, _, b := newTest(Config{Seed: 5, Loss: 0.1, Dup: 0.1, Reorder: 0.1, Corrupt: 0.1})
		for i := 0; i < 2000; i++ {
			f := send(t, w.A, "0123456789")
			w.A.Release(f.Frame)
			w.Step()
		}
		for w.Advance() {
			w.Step()
		}
		return w.Stats, len(b.got)
	}
	s1, n1 := run()
	s2, n2 := run()
	if s1 != s2 || n1 != n2 {
		t.Fatalf("runs differ: %+v %+v", s1, s2)
	}
	if s1.Lost < 150 || s1.Lost > 250 || s1.Duplicated < 130 || s1.Corrupted < 130 || s1.Reordered < 130 {
		t.Fatalf("impairment rates off: %+v", s1)
	}
	if uint64(n1) != s1.Delivered || s1.Delivered != s1.Sent-s1.Lost+s1.Duplicated {
		t.Fatalf("accounting: %+v delivered %d", s1, n1)
	}
}

func TestOwnershipViolationsAreRecorded(t *testing.T) {
	w, _, _ := newTest(Config{})
	b, _ := w.A.Alloc()
	w.A.Release(b.Frame)
	w.A.Release(b.Frame)
	if w.Check() == nil {
		t.Fatal("double release not reported")
	}
}
