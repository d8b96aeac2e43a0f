package main

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// clientConfig describes one run.
type clientConfig struct {
	n       int           // measured round trips
	warmup  int           // unmeasured round trips first
	size    int           // payload bytes
	timeout time.Duration // a reply later than this counts as lost
	seed    uint64        // payload seed
}

// result is what a run measured. Counts cover the measured round trips;
// warmupLost counts losses during the warm-up.
type result struct {
	sent, received, lost, bad, late uint64
	warmupLost                      uint64
	pushErrors                      uint64 // pushes refused (counted lost too)
	rtts                            []time.Duration
	elapsed                         time.Duration
	loopAllocs                      uint64
}

// lateWindow is how many recently lost requests a late reply is matched
// against.
const lateWindow = 64

// pinger is the closed loop over one connected queue and one reused SGA.
type pinger struct {
	lib  *libos.LibOS
	qd   libos.QD
	cfg  clientConfig
	sga  *libos.SGA
	want []byte       // the expected reply of the request in flight
	pop  libos.QToken // the outstanding pop, 0 if none

	lostSeqs [lateWindow]uint64 // recently lost requests, a ring
	nLost    uint64
	scratch  []byte
}

// newPinger opens, binds and connects the queue and allocates the SGA.
func newPinger(lib *libos.LibOS, local, remote netip.AddrPort, cfg clientConfig) (*pinger, error) {
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := lib.Bind(qd, local); err != nil {
		return nil, fmt.Errorf("bind %v: %w", local, err)
	}
	qt, err := lib.Connect(qd, remote)
	if err != nil {
		return nil, fmt.Errorf("connect %v: %w", remote, err)
	}
	if r, err := lib.Wait(qt, time.Second); err != nil || r.Opcode != libos.OpConnect {
		return nil, fmt.Errorf("connect %v: %v %v", remote, err, r.Err)
	}
	sga, err := lib.SGAAlloc(cfg.size)
	if err != nil {
		return nil, fmt.Errorf("sgaalloc %d: %w", cfg.size, err)
	}
	return &pinger{
		lib: lib, qd: qd, cfg: cfg, sga: sga,
		want:    make([]byte, cfg.size),
		scratch: make([]byte, cfg.size),
	}, nil
}

// outcome is how one round trip ended.
type outcome int

const (
	replied outcome = iota // the right reply came back
	lost                   // no (right) reply within the timeout
)

// run does the warm-up and the measured round trips.
func (p *pinger) run() (result, error) {
	r := result{rtts: make([]time.Duration, 0, p.cfg.n)}
	seq := uint64(0)
	for i := 0; i < p.cfg.warmup; i++ {
		o, _, err := p.roundTrip(seq, &r)
		seq++
		if err != nil {
			return r, err
		}
		if o == lost {
			r.warmupLost++
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	start := time.Now()
	for i := 0; i < p.cfg.n; i++ {
		r.sent++
		o, rtt, err := p.roundTrip(seq, &r)
		seq++
		if err != nil {
			r.elapsed = time.Since(start)
			return r, err
		}
		if o == lost {
			r.lost++
			continue
		}
		r.received++
		r.rtts = append(r.rtts, rtt)
	}
	r.elapsed = time.Since(start)
	runtime.ReadMemStats(&ms)
	r.loopAllocs = ms.Mallocs - mallocs
	return r, nil
}

// roundTrip sends request seq and waits for its reply. Bad and late replies
// are counted in r; the caller counts the outcome.
//
//demixdp:hotpath — allocates nothing.
func (p *pinger) roundTrip(seq uint64, r *result) (outcome, time.Duration, error) {
	cli.Payload(p.want, p.cfg.seed, seq)
	off := 0
	for _, s := range p.sga.Segs {
		off += copy(s, p.want[off:])
	}
	if p.pop == 0 {
		qt, err := p.lib.Pop(p.qd)
		if err != nil {
			return lost, 0, fmt.Errorf("pop: %w", err)
		}
		p.pop = qt
	}
	t0 := time.Now()
	deadline := t0.Add(p.cfg.timeout)
	push, err := p.lib.Push(p.qd, p.sga)
	if err != nil {
		// Nothing was sent (e.g. EAGAIN: the TX ring is full). Let the
		// loop run out the timeout so a stuck ring is not a busy loop.
		r.pushErrors++
		p.noteLost(seq)
		p.drain(deadline, r)
		return lost, 0, nil
	}
	pushDone, got := false, false
	var rtt time.Duration
	for !pushDone || !got {
		var ws [2]libos.QToken
		k := 0
		if !got {
			ws[k] = p.pop
			k++
		}
		if !pushDone {
			ws[k] = push
			k++
		}
		wait := time.Until(deadline)
		if got {
			// The reply is in: only the push completion is missing, and
			// the SGA cannot be reused before it.
			wait = p.cfg.timeout
		}
		if wait <= 0 {
			wait = 0
		}
		i, res, err := p.lib.WaitAny(ws[:k], wait)
		if err == unix.ETIMEDOUT {
			if !got {
				// Lost: the pop stays outstanding for the next request;
				// the push must still complete before the SGA is reused.
				p.noteLost(seq)
				if !pushDone {
					if err := p.finishPush(push); err != nil {
						return lost, 0, err
					}
				}
				return lost, 0, nil
			}
			return lost, 0, fmt.Errorf("push of request %d did not complete within %v", seq, p.cfg.timeout)
		}
		if err != nil {
			return lost, 0, fmt.Errorf("wait: %w", err)
		}
		if ws[i] == push {
			pushDone = true
			if res.Opcode != libos.OpPush {
				// Not sent (EHOSTUNREACH: the remote did not answer ARP).
				// The SGA is ours again; the reply will not come.
				p.noteLost(seq)
				return lost, 0, nil
			}
			continue
		}
		now := time.Now()
		p.pop = 0
		if res.Opcode != libos.OpPop {
			return lost, 0, fmt.Errorf("pop failed: %v", res.Err)
		}
		switch p.check(res.SGA) {
		case matchOK:
			got, rtt = true, now.Sub(t0)
		case matchLate:
			r.late++
		default:
			r.bad++
		}
		p.lib.SGAFree(res.SGA)
		if !got {
			if p.pop, err = p.lib.Pop(p.qd); err != nil {
				return lost, 0, fmt.Errorf("pop: %w", err)
			}
		}
	}
	return replied, rtt, nil
}

// finishPush waits for a push to complete so its SGA may be rewritten. A
// UDP push completes when the kernel returns the frame, or fails when ARP
// gives up; either happens within seconds.
func (p *pinger) finishPush(push libos.QToken) error {
	if _, err := p.lib.Wait(push, 10*time.Second); err != nil {
		return fmt.Errorf("push did not complete: %w", err)
	}
	return nil
}

// drain runs the loop until deadline, taking (and classifying) any reply
// that turns up, so the time of a refused push is not spent spinning.
func (p *pinger) drain(deadline time.Time, r *result) {
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		if p.pop == 0 {
			qt, err := p.lib.Pop(p.qd)
			if err != nil {
				return
			}
			p.pop = qt
		}
		res, err := p.lib.Wait(p.pop, wait)
		if err != nil {
			return
		}
		p.pop = 0
		if res.Opcode != libos.OpPop {
			return
		}
		if p.check(res.SGA) == matchLate {
			r.late++
		} else {
			r.bad++
		}
		p.lib.SGAFree(res.SGA)
	}
}

func (p *pinger) noteLost(seq uint64) {
	p.lostSeqs[p.nLost%lateWindow] = seq
	p.nLost++
}

type match int

const (
	matchOK   match = iota // the reply of the request in flight
	matchLate              // the reply of a recently lost request
	matchBad               // anything else
)

// check compares a reply with the request in flight, then with the
// recently lost ones.
func (p *pinger) check(s *libos.SGA) match {
	if equalSGA(s, p.want) {
		return matchOK
	}
	if s.Len() != len(p.want) {
		return matchBad
	}
	for i := uint64(0); i < min(p.nLost, lateWindow); i++ {
		cli.Payload(p.scratch, p.cfg.seed, p.lostSeqs[i])
		if equalSGA(s, p.scratch) {
			return matchLate
		}
	}
	return matchBad
}

// equalSGA reports whether the SGA's bytes are exactly want.
func equalSGA(s *libos.SGA, want []byte) bool {
	off := 0
	for _, seg := range s.Segs {
		if off+len(seg) > len(want) || string(seg) != string(want[off:off+len(seg)]) {
			return false
		}
		off += len(seg)
	}
	return off == len(want)
}

// summary is the one-line, machine-readable report (kudp client's keys,
// plus late, warmup_lost and loop_allocs).
func (r *result) summary() string {
	slices.Sort(r.rtts)
	pps := 0.0
	if r.elapsed > 0 {
		pps = float64(r.received) / r.elapsed.Seconds()
	}
	var max time.Duration
	if len(r.rtts) > 0 {
		max = r.rtts[len(r.rtts)-1]
	}
	return fmt.Sprintf("rtt_p50_us=%s rtt_p99_us=%s rtt_p999_us=%s rtt_max_us=%s pps=%.0f sent=%d received=%d lost=%d bad=%d late=%d warmup_lost=%d push_errors=%d elapsed_s=%.3f loop_allocs=%d",
		cli.US(cli.Percentile(r.rtts, 0.50)), cli.US(cli.Percentile(r.rtts, 0.99)), cli.US(cli.Percentile(r.rtts, 0.999)), cli.US(max),
		pps, r.sent, r.received, r.lost, r.bad, r.late, r.warmupLost, r.pushErrors, r.elapsed.Seconds(), r.loopAllocs)
}
