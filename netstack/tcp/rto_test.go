package tcp

import (
	"testing"
	"time"
)

func TestRTOInitial(t *testing.T) {
	var r RTO
	if r.Current() != time.Second || r.HasSample() {
		t.Fatalf("initial RTO %v", r.Current())
	}
	r2 := NewRTO(RTOOptions{Initial: 3 * time.Second})
	if r2.Current() != 3*time.Second {
		t.Fatalf("configured initial RTO %v", r2.Current())
	}
}

func TestRTOFormulas(t *testing.T) {
	r := NewRTO(RTOOptions{Min: time.Millisecond})
	// First sample: SRTT=R, RTTVAR=R/2, RTO=R+4*R/2=3R.
	r.Sample(100 * time.Millisecond)
	if r.SRTT() != 100*time.Millisecond || r.RTTVar() != 50*time.Millisecond || r.Current() != 300*time.Millisecond {
		t.Fatalf("after first sample srtt %v rttvar %v rto %v", r.SRTT(), r.RTTVar(), r.Current())
	}
	// Follow the RFC formulas in float and compare.
	srtt, rttvar := 100.0, 50.0 // ms
	for _, ms := range []float64{120, 80, 300, 90, 90, 90, 1, 500} {
		r.Sample(time.Duration(ms * float64(time.Millisecond)))
		d := srtt - ms
		if d < 0 {
			d = -d
		}
		rttvar = 0.75*rttvar + 0.25*d
		srtt = 0.875*srtt + 0.125*ms
		want := srtt + max(1, 4*rttvar)
		got := float64(r.Current()) / float64(time.Millisecond)
		if got < want-0.001 || got > want+0.001 {
			t.Fatalf("sample %vms: RTO %vms, want %vms", ms, got, want)
		}
	}
}

func TestRTOGranularityAndClamps(t *testing.T) {
	r := NewRTO(RTOOptions{Min: time.Microsecond, Granularity: 10 * time.Millisecond})
	r.Sample(0)
	r.Sample(0) // RTTVAR 0: G dominates.
	if r.Current() != 10*time.Millisecond {
		t.Fatalf("RTO with zero variance %v, want G", r.Current())
	}
	var d RTO
	d.Sample(time.Millisecond)
	if d.Current() != DefaultMinRTO {
		t.Fatalf("RTO %v, want the 200ms minimum", d.Current())
	}
	d.Sample(-time.Second) // ignored
	if d.SRTT() != time.Millisecond {
		t.Fatal("negative sample was used")
	}
	var big RTO
	big.Sample(100 * time.Second)
	if big.Current() != DefaultMaxRTO {
		t.Fatalf("RTO %v, want the 120s maximum", big.Current())
	}
}

func TestRTOBackoff(t *testing.T) {
	var r RTO
	r.Sample(100 * time.Millisecond) // 300ms
	want := 300 * time.Millisecond
	for i := 0; i < 20; i++ {
		if r.Current() != want {
			t.Fatalf("after %d backoffs RTO %v, want %v", i, r.Current(), want)
		}
		r.Backoff()
		want = min(2*want, DefaultMaxRTO)
	}
	if r.Backoffs() != 20 {
		t.Fatalf("Backoffs() = %d, want 20 (counted past the cap)", r.Backoffs())
	}
	r.ResetBackoff()
	if r.Current() != 300*time.Millisecond || r.Backoffs() != 0 {
		t.Fatalf("after ResetBackoff %v", r.Current())
	}
}

func TestRTONoAllocs(t *testing.T) {
	var r RTO
	if a := testing.AllocsPerRun(100, func() {
		r.Sample(time.Millisecond)
		r.Backoff()
		_ = r.Current()
		r.ResetBackoff()
	}); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}
