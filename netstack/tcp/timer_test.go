package tcp

import (
	"math/rand"
	"testing"
	"time"
)

// The timer wheel against a model, over random arms, re-arms, cancels and
// clock steps (from microseconds to hours): an entry fires at the first
// expire at or after its time, never before; a cancelled or moved entry
// fires only at its new time; nextExpiry is never after the earliest
// entry, so an event loop that sleeps until it misses nothing.
func TestTimerWheelAgainstAModel(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		var w timerWheel
		now := int64(time.Hour) + rng.Int63n(int64(time.Hour))
		w.clk = now >> wheelTick
		es := make([]*Endpoint, 200)
		want := make(map[*Endpoint]int64)
		for i := range es {
			es[i] = &Endpoint{}
		}
		delay := func() int64 {
			switch rng.Intn(5) {
			case 0:
				return rng.Int63n(int64(200 * time.Microsecond))
			case 1:
				return rng.Int63n(int64(50 * time.Millisecond))
			case 2:
				return rng.Int63n(int64(2 * time.Second))
			case 3:
				return rng.Int63n(int64(2 * time.Minute))
			}
			return rng.Int63n(int64(3 * time.Hour))
		}
		looks := 0
		for step := 0; step < 5000; step++ {
			e := es[rng.Intn(len(es))]
			switch op := rng.Intn(10); {
			case op < 5:
				d := now + delay()
				w.set(e, d)
				want[e] = d
			case op < 7:
				w.remove(e)
				delete(want, e)
			default:
				next := w.nextExpiry()
				if (next == 0) != (len(want) == 0) {
					t.Fatalf("seed %d: nextExpiry %d with %d armed", seed, next, len(want))
				}
				for _, d := range want {
					if next > d {
						t.Fatalf("seed %d: nextExpiry %v after an entry's time", seed, time.Duration(next-d))
					}
				}
				// Advance: to the next expiry, as an event loop that
				// sleeps does, or by a random step.
				if next != 0 && rng.Intn(2) == 0 {
					now = max(now, next)
					looks++
				} else {
					now += delay() / 4
				}
				w.expire(now)
				for e := w.pop(); e != nil; e = w.pop() {
					d, ok := want[e]
					if !ok {
						t.Fatalf("seed %d: an entry fired that was not armed", seed)
					}
					if now < d {
						t.Fatalf("seed %d: fired %v early", seed, time.Duration(d-now))
					}
					delete(want, e)
				}
				for _, d := range want {
					if d <= now {
						t.Fatalf("seed %d: not fired %v after its time", seed, time.Duration(now-d))
					}
				}
				if w.len() != len(want) {
					t.Fatalf("seed %d: len %d, model %d", seed, w.len(), len(want))
				}
			}
		}
	}
}

// Arming, moving and cancelling do not allocate.
func TestTimerWheelAllocatesNothing(t *testing.T) {
	var w timerWheel
	es := make([]Endpoint, 64)
	now := int64(time.Hour)
	w.clk = now >> wheelTick
	if a := testing.AllocsPerRun(100, func() {
		for i := range es {
			w.set(&es[i], now+int64(i)*int64(time.Millisecond))
		}
		for i := range es {
			w.set(&es[i], now+int64(i)*int64(time.Second))
		}
		now += int64(time.Second)
		w.expire(now)
		for e := w.pop(); e != nil; e = w.pop() {
		}
		for i := range es {
			w.remove(&es[i])
		}
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

func BenchmarkTimerWheelArmCancel(b *testing.B) {
	var w timerWheel
	es := make([]Endpoint, 1024)
	now := int64(time.Hour)
	w.clk = now >> wheelTick
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := &es[i&1023]
		w.set(e, now+int64(i&4095)*int64(time.Millisecond))
		if i&1 == 0 {
			w.remove(e)
		}
		i++
	}
}
