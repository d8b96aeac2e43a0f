package tcp

import "time"

// Defaults for RTOOptions.
const (
	// DefaultMinRTO is the lower bound on the RTO. RFC 6298 §2.4 says 1s;
	// Linux (TCP_RTO_MIN) and most modern stacks use 200ms, which suits
	// the short-RTT networks demixdp targets, so it is the default here.
	DefaultMinRTO = 200 * time.Millisecond
	// DefaultMaxRTO is the upper bound (RFC 6298 §2.5 allows a maximum of
	// at least 60s; Linux's TCP_RTO_MAX is 120s).
	DefaultMaxRTO = 120 * time.Second
	// DefaultInitialRTO is the RTO before any sample (RFC 6298 §2.1).
	DefaultInitialRTO = time.Second
	// DefaultGranularity is the clock granularity G of RFC 6298 §2.
	DefaultGranularity = time.Millisecond
)

// RTOOptions configures an RTO estimator. Zero fields take the defaults.
type RTOOptions struct {
	Min, Max, Initial, Granularity time.Duration
}

// RTO is the retransmission-timeout estimator of RFC 6298. The zero value
// is ready to use with the defaults.
//
// Karn's rule (RFC 6298 §3) is the caller's: do not call Sample with the
// RTT of a segment that was retransmitted (unless timestamps disambiguate
// it, RFC 7323 §4). The caller calls Backoff when the timer expires (§5.5)
// and ResetBackoff when an ACK acknowledges new data.
type RTO struct {
	opts      RTOOptions
	srtt      time.Duration
	rttvar    time.Duration
	hasSample bool
	backoff   uint32
}

// NewRTO returns an estimator configured by opts.
func NewRTO(opts RTOOptions) RTO { return RTO{opts: opts} }

func (r *RTO) min() time.Duration     { return pick(r.opts.Min, DefaultMinRTO) }
func (r *RTO) max() time.Duration     { return pick(r.opts.Max, DefaultMaxRTO) }
func (r *RTO) initial() time.Duration { return pick(r.opts.Initial, DefaultInitialRTO) }
func (r *RTO) g() time.Duration       { return pick(r.opts.Granularity, DefaultGranularity) }

func pick(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// Sample feeds one round-trip measurement (RFC 6298 §2.2, §2.3). The first
// sets SRTT = R and RTTVAR = R/2; later ones use alpha = 1/8 and
// beta = 1/4, updating RTTVAR with the old SRTT. Negative samples are
// ignored.
func (r *RTO) Sample(rtt time.Duration) {
	if rtt < 0 {
		return
	}
	if !r.hasSample {
		r.srtt = rtt
		r.rttvar = rtt / 2
		r.hasSample = true
		return
	}
	d := r.srtt - rtt
	if d < 0 {
		d = -d
	}
	r.rttvar = r.rttvar - r.rttvar/4 + d/4
	r.srtt = r.srtt - r.srtt/8 + rtt/8
}

// base is the un-backed-off RTO clamped to [min, max].
func (r *RTO) base() time.Duration {
	v := r.initial()
	if r.hasSample {
		v = r.srtt + max(r.g(), 4*r.rttvar)
	}
	return min(max(v, r.min()), r.max())
}

// Current returns the timeout to arm: SRTT + max(G, 4*RTTVAR) (or the
// initial RTO before any sample), clamped to [Min, Max], then doubled once
// per Backoff without exceeding Max.
func (r *RTO) Current() time.Duration {
	v, m := r.base(), r.max()
	for i := uint32(0); i < r.backoff; i++ {
		if v >= m/2 {
			return m
		}
		v *= 2
	}
	return v
}

// Backoff doubles the timeout after the timer expires (RFC 6298 §5.5), up
// to Max. Every call is counted (see Backoffs), also once Max is reached.
func (r *RTO) Backoff() {
	if r.backoff < 1<<30 {
		r.backoff++
	}
}

// ResetBackoff undoes every Backoff, typically when an ACK acknowledges
// new data.
func (r *RTO) ResetBackoff() { r.backoff = 0 }

// Backoffs returns how many times Backoff doubled the timeout since the last
// ResetBackoff, for the caller's retry limit.
func (r *RTO) Backoffs() int { return int(r.backoff) }

// SRTT returns the smoothed RTT, or 0 before the first sample.
func (r *RTO) SRTT() time.Duration { return r.srtt }

// RTTVar returns the RTT variation, or 0 before the first sample.
func (r *RTO) RTTVar() time.Duration { return r.rttvar }

// HasSample reports whether Sample has been called with a valid RTT.
func (r *RTO) HasSample() bool { return r.hasSample }
