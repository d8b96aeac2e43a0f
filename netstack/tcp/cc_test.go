package tcp

import (
	"testing"
	"time"
)

func TestInitialWindow(t *testing.T) {
	for _, c := range []struct{ mss, want uint32 }{{1460, 14600}, {536, 5360}, {9000, 18000}, {1000, 10000}, {100, 1000}} {
		if got := InitialWindow(c.mss); got != c.want {
			t.Errorf("InitialWindow(%d) = %d, want %d", c.mss, got, c.want)
		}
	}
	r := NewNewReno(CCOptions{MSS: 1460})
	if r.CWND() != 14600 || r.SSThresh() != maxWindow {
		t.Errorf("NewReno starts at cwnd %d ssthresh %d", r.CWND(), r.SSThresh())
	}
	if c := NewCubic(CubicOptions{CCOptions: CCOptions{MSS: 1000, InitialWindow: 4000}}); c.CWND() != 4000 {
		t.Errorf("Cubic initial cwnd %d", c.CWND())
	}
}

// Both controllers share RFC 5681 slow start with RFC 3465 byte counting,
// without the per-ACK limit: a stretch ACK counts every byte it covers.
func TestSlowStartABC(t *testing.T) {
	for _, cc := range []CongestionControl{
		NewNewReno(CCOptions{MSS: 1000, InitialWindow: 10000}),
		NewCubic(CubicOptions{CCOptions: CCOptions{MSS: 1000, InitialWindow: 10000}}),
	} {
		cc.OnAck(500, 0, 0)
		if cc.CWND() != 10500 {
			t.Fatalf("%T: ack 500 -> cwnd %d", cc, cc.CWND())
		}
		cc.OnAck(5000, 0, 0) // one stretch ACK for five segments
		if cc.CWND() != 15500 {
			t.Fatalf("%T: stretch ack -> cwnd %d, want 15500", cc, cc.CWND())
		}
		cc.OnAck(0, 0, 0) // a pure duplicate changes nothing
		if cc.CWND() != 15500 {
			t.Fatalf("%T: zero ack changed cwnd", cc)
		}
	}
}

func TestNewRenoCongestionAvoidance(t *testing.T) {
	r := NewNewReno(CCOptions{MSS: 1000, InitialWindow: 10000, InitialSSThresh: 10000})
	// 9999 bytes acked in small pieces: not yet a window's worth.
	for i := 0; i < 9; i++ {
		r.OnAck(1111, 0, 0)
	}
	if r.CWND() != 10000 {
		t.Fatalf("cwnd %d before a full window was acked", r.CWND())
	}
	r.OnAck(1, 0, 0)
	if r.CWND() != 11000 {
		t.Fatalf("cwnd %d after a full window, want 11000", r.CWND())
	}
	// The next increase needs 11000 more bytes.
	r.OnAck(10999, 0, 0)
	if r.CWND() != 11000 {
		t.Fatalf("grew early: %d", r.CWND())
	}
	r.OnAck(1, 0, 0)
	if r.CWND() != 12000 {
		t.Fatalf("cwnd %d, want 12000", r.CWND())
	}
}

func TestNewRenoLossAndRTO(t *testing.T) {
	r := NewNewReno(CCOptions{MSS: 1000, InitialWindow: 20000})
	r.OnLoss(20000, 0)
	if r.SSThresh() != 10000 || r.CWND() != 10000 || !r.InRecovery() {
		t.Fatalf("after loss ssthresh %d cwnd %d", r.SSThresh(), r.CWND())
	}
	r.OnLoss(10000, 0) // ignored inside recovery
	r.OnAck(5000, 0, 0)
	if r.SSThresh() != 10000 || r.CWND() != 10000 {
		t.Fatalf("recovery changed the window: ssthresh %d cwnd %d", r.SSThresh(), r.CWND())
	}
	r.OnRecoveryExit(0)
	r.OnLoss(3000, 0) // small flight: floor at 2*SMSS
	if r.SSThresh() != 2000 {
		t.Fatalf("ssthresh %d, want 2*SMSS", r.SSThresh())
	}
	r.OnRecoveryExit(0)

	r = NewNewReno(CCOptions{MSS: 1000, InitialWindow: 40000})
	r.OnRTO(40000, 0)
	if r.CWND() != 1000 || r.SSThresh() != 20000 || r.InRecovery() {
		t.Fatalf("after RTO cwnd %d ssthresh %d", r.CWND(), r.SSThresh())
	}
	r.OnRTO(1000, 0) // the retransmission was lost too: ssthresh held
	if r.SSThresh() != 20000 {
		t.Fatalf("second RTO changed ssthresh to %d", r.SSThresh())
	}
	r.OnAck(1000, 0, 0)
	r.OnRTO(8000, 0) // new data was acked in between: reduce again
	if r.SSThresh() != 4000 {
		t.Fatalf("ssthresh %d, want 4000", r.SSThresh())
	}
}

// cubicInCA returns a Cubic with mss 1000 that had cwnd = w segments when
// a loss hit with flight = cwnd, and has left recovery.
func cubicInCA(w float64, opts CubicOptions) *Cubic {
	opts.MSS = 1000
	opts.InitialWindow = uint32(w * 1000)
	opts.InitialSSThresh = 1000
	c := NewCubic(opts)
	c.OnLoss(uint32(w*1000), 0)
	c.OnRecoveryExit(0)
	return c
}

func TestCubicReduction(t *testing.T) {
	c := cubicInCA(100, CubicOptions{})
	if c.CWND() != 70000 || c.SSThresh() != 70000 {
		t.Fatalf("cwnd %d ssthresh %d, want 0.7 of 100000", c.CWND(), c.SSThresh())
	}
	if c.wMax != 100 {
		t.Fatalf("W_max %v, want 100", c.wMax)
	}
}

func TestCubicFastConvergence(t *testing.T) {
	for _, fc := range []bool{true, false} {
		c := cubicInCA(100, CubicOptions{DisableFastConvergence: !fc})
		// A second loss at cwnd 70 < W_max 100.
		c.OnLoss(70000, time.Second)
		want := 70.0
		if fc {
			want = 70 * (1 + CubicBeta) / 2 // 59.5
		}
		if c.wMax != want {
			t.Errorf("fast convergence %v: W_max %v, want %v", fc, c.wMax, want)
		}
		if c.CWND() != 49000 {
			t.Errorf("cwnd %d, want 49000", c.CWND())
		}
	}
}

// simulate drives c for d with a fixed rtt, acking cwnd bytes per RTT in
// per-segment ACKs spread across the RTT, starting at from.
func simulate(c *Cubic, from, d, rtt time.Duration, check func(now time.Duration)) time.Duration {
	now := from
	for now < from+d {
		n := int(c.cwnd / c.mss)
		for i := 0; i < n; i++ {
			c.OnAck(uint32(c.mss), rtt, now+time.Duration(i)*rtt/time.Duration(n))
		}
		now += rtt
		if check != nil {
			check(now)
		}
	}
	return now
}

func TestCubicCurve(t *testing.T) {
	// W_max = 100, cwnd_epoch = 70: K = cbrt(30/0.4) ≈ 4.217s. With a
	// 100ms RTT the cubic curve is above W_est until about 5s.
	c := cubicInCA(100, CubicOptions{})
	k := 4.2171633265087465
	rtt := 100 * time.Millisecond
	checks := map[time.Duration]bool{500 * time.Millisecond: false, time.Second: false, 2 * time.Second: false, 3 * time.Second: false, 4200 * time.Millisecond: false, 5 * time.Second: false}
	simulate(c, 0, 5*time.Second, rtt, func(now time.Duration) {
		if _, ok := checks[now]; !ok {
			return
		}
		checks[now] = true
		tt := now.Seconds()
		want := CubicC*(tt-k)*(tt-k)*(tt-k) + 100
		got := c.cwnd / c.mss
		if got < want*0.97 || got > want*1.03 {
			t.Errorf("t=%v: cwnd %.2f segments, RFC 9438 W_cubic(t) = %.2f", now, got, want)
		}
	})
	if c.k < k-1e-9 || c.k > k+1e-9 {
		t.Errorf("K = %v, want %v", c.k, k)
	}
	for d, seen := range checks {
		if !seen {
			t.Errorf("check at %v never ran", d)
		}
	}
	// Beyond K the curve is convex: past W_max and accelerating.
	w5 := c.cwnd / c.mss
	simulate(c, 5*time.Second, time.Second, rtt, nil)
	w6 := c.cwnd / c.mss
	simulate(c, 6*time.Second, time.Second, rtt, nil)
	w7 := c.cwnd / c.mss
	if !(w5 > 100 && w7-w6 > w6-w5) {
		t.Errorf("not convex past W_max: %.2f %.2f %.2f", w5, w6, w7)
	}
}

func TestCubicRenoFriendly(t *testing.T) {
	// At a 1ms RTT the cubic curve is almost flat over 50 RTTs; W_est
	// grows alpha_cubic = 0.529 segments per RTT and wins.
	c := cubicInCA(100, CubicOptions{})
	simulate(c, 0, 50*time.Millisecond, time.Millisecond, nil)
	got := c.cwnd / c.mss
	want := 70 + 50*cubicAlpha
	if got < want-1.5 || got > want+1.5 {
		t.Fatalf("cwnd %.2f segments after 50 RTTs, want about %.2f (Reno-friendly)", got, want)
	}
	tc := 0.05 - c.k
	if cub := CubicC*tc*tc*tc + 100; cub >= got {
		t.Fatalf("test setup: cubic curve %.2f not below W_est", cub)
	}
}

func TestCubicRTO(t *testing.T) {
	c := cubicInCA(100, CubicOptions{})
	c.OnRTO(70000, time.Second)
	if c.CWND() != 1000 || c.SSThresh() != 49000 {
		t.Fatalf("after RTO cwnd %d ssthresh %d", c.CWND(), c.SSThresh())
	}
	c.OnRTO(1000, 2*time.Second) // held
	if c.SSThresh() != 49000 {
		t.Fatalf("second RTO moved ssthresh to %d", c.SSThresh())
	}
	// Slow start back to ssthresh, then the first epoch has K = 0 and
	// W_max = cwnd at its start (§4.8).
	now := 3 * time.Second
	for c.cwnd < c.ssthresh {
		c.OnAck(1000, 100*time.Millisecond, now)
	}
	c.OnAck(1000, 100*time.Millisecond, now)
	if c.k != 0 || c.wMax < 49 || c.wMax > 50 {
		t.Fatalf("first epoch after RTO: K %v W_max %v", c.k, c.wMax)
	}
}

func TestCCNoAllocs(t *testing.T) {
	r := NewNewReno(CCOptions{MSS: 1460})
	c := NewCubic(CubicOptions{CCOptions: CCOptions{MSS: 1460}})
	now := time.Duration(0)
	for _, cc := range []CongestionControl{r, c} {
		if a := testing.AllocsPerRun(100, func() {
			now += time.Millisecond
			cc.OnAck(1460, 10*time.Millisecond, now)
			if now%(50*time.Millisecond) == 0 {
				cc.OnLoss(cc.CWND(), now)
				cc.OnRecoveryExit(now)
			}
			_ = cc.CWND()
		}); a != 0 {
			t.Fatalf("%T: %v allocs", cc, a)
		}
	}
}

func BenchmarkCubicOnAck(b *testing.B) {
	c := cubicInCA(100, CubicOptions{})
	now := time.Duration(0)
	b.ReportAllocs()
	for b.Loop() {
		now += time.Microsecond
		c.OnAck(1000, time.Millisecond, now)
	}
}
