package tcp

import (
	"math"
	"time"
)

// CUBIC constants (RFC 9438 §5).
const (
	// CubicC is C, the aggressiveness of the cubic function (segments/s^3).
	CubicC = 0.4
	// CubicBeta is beta_cubic, the multiplicative decrease factor.
	CubicBeta = 0.7
	// cubicAlpha is alpha_cubic = 3(1-beta)/(1+beta), Reno-friendly slope.
	cubicAlpha = 3 * (1 - CubicBeta) / (1 + CubicBeta)
)

// Cubic is CUBIC congestion control (RFC 9438). Slow start is RFC 5681's
// with RFC 3465 byte counting (no HyStart++). In congestion avoidance the
// window follows W_cubic(t) = C*(t-K)^3 + W_max over time since the epoch
// began, or the Reno-friendly estimate W_est when that is larger. A
// congestion event sets ssthresh = FlightSize*beta_cubic (at least 2*SMSS)
// and cwnd = ssthresh, with fast convergence (§4.7). Not implemented:
// spurious-loss undo (§4.9) and ECN reaction. It implements
// CongestionControl.
type Cubic struct {
	mss        float64
	cwnd       float64 // bytes
	ssthresh   float64 // bytes
	wMax       float64 // segments
	cwndPrior  float64 // segments, cwnd at the last congestion event
	wEst       float64 // segments
	k          float64 // seconds
	epochStart time.Duration
	epochValid bool
	inRecovery bool
	afterRTO   bool // an RTO fired and no new data was acked since
	rtoEpoch   bool // the next epoch is the first after an RTO (§4.8)
	noFastConv bool
	// Before the last OnLoss, for Undo.
	undoCwnd, undoSS, undoWMax float64
}

var _ CongestionControl = (*Cubic)(nil)

// CubicOptions configures a Cubic controller.
type CubicOptions struct {
	CCOptions
	// DisableFastConvergence turns off RFC 9438 §4.7 fast convergence.
	DisableFastConvergence bool
}

// NewCubic returns a CUBIC controller configured by opts.
func NewCubic(opts CubicOptions) *Cubic {
	c := new(Cubic)
	c.init(opts)
	return c
}

// init makes c a new controller in place (an endpoint's own, without an
// allocation).
func (c *Cubic) init(opts CubicOptions) {
	o := opts.CCOptions.normalize()
	*c = Cubic{
		mss:        float64(o.MSS),
		cwnd:       float64(o.InitialWindow),
		ssthresh:   float64(o.InitialSSThresh),
		noFastConv: opts.DisableFastConvergence,
	}
}

// wCubic is RFC 9438 equation 1, in segments, for t seconds into the epoch.
func (c *Cubic) wCubic(t float64) float64 {
	d := t - c.k
	return CubicC*d*d*d + c.wMax
}

// OnAck implements CongestionControl. rtt is the RTT used for the target
// W_cubic(t+RTT) (RFC 9438 §4.2); pass SRTT.
func (c *Cubic) OnAck(acked uint32, rtt, now time.Duration) {
	if acked == 0 {
		return
	}
	c.afterRTO = false
	if c.inRecovery {
		return
	}
	if c.cwnd < c.ssthresh {
		c.cwnd = min(c.cwnd+float64(slowStartIncrease(acked, uint32(c.mss))), maxWindow)
		return
	}
	cwndSeg := c.cwnd / c.mss
	if !c.epochValid {
		// A congestion-avoidance epoch starts (§4.2): t counts from here.
		c.epochValid = true
		c.epochStart = now
		c.wEst = cwndSeg
		if c.rtoEpoch || c.wMax <= cwndSeg {
			// After an RTO (§4.8) or with no earlier reduction to
			// recover to, the curve starts on its plateau.
			c.wMax = cwndSeg
			c.k = 0
		} else {
			c.k = math.Cbrt((c.wMax - cwndSeg) / CubicC)
		}
		c.rtoEpoch = false
	}
	t := (now - c.epochStart).Seconds()
	if t < 0 {
		t = 0
	}
	segs := float64(acked) / c.mss

	// Reno-friendly region (§4.3): W_est grows alpha_cubic segments per
	// RTT, and 1 per RTT once it reaches the window before the last
	// reduction.
	alpha := cubicAlpha
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	c.wEst += alpha * segs / cwndSeg

	if c.wCubic(t) < c.wEst {
		cwndSeg = max(cwndSeg, c.wEst)
	} else {
		// Concave and convex regions (§4.4, §4.5): move towards
		// W_cubic(t+RTT), clamped to [cwnd, 1.5*cwnd].
		target := c.wCubic(t + rtt.Seconds())
		target = min(max(target, cwndSeg), 1.5*cwndSeg)
		cwndSeg += (target - cwndSeg) / cwndSeg * segs
	}
	c.cwnd = min(cwndSeg*c.mss, maxWindow)
}

// reduce applies a congestion event (§4.6, §4.7).
func (c *Cubic) reduce(flight uint32) {
	cwndSeg := c.cwnd / c.mss
	if !c.noFastConv && cwndSeg < c.wMax {
		c.wMax = cwndSeg * (1 + CubicBeta) / 2
	} else {
		c.wMax = cwndSeg
	}
	c.cwndPrior = cwndSeg
	c.ssthresh = max(float64(flight)*CubicBeta, 2*c.mss)
	c.epochValid = false
}

// OnLoss implements CongestionControl: ssthresh = max(flight*0.7, 2*SMSS),
// cwnd = ssthresh.
func (c *Cubic) OnLoss(flight uint32, _ time.Duration) {
	if c.inRecovery {
		return
	}
	c.undoCwnd, c.undoSS, c.undoWMax = c.cwnd, c.ssthresh, c.wMax
	c.reduce(flight)
	c.cwnd = c.ssthresh
	c.inRecovery = true
}

// Undo implements CongestionControl: the window, the threshold and W_max
// from before the reduction; a new epoch starts.
func (c *Cubic) Undo() {
	if c.undoCwnd > c.cwnd {
		c.cwnd, c.wMax = c.undoCwnd, c.undoWMax
		c.epochValid = false
	}
	c.ssthresh = max(c.ssthresh, c.undoSS)
}

// OnRTO implements CongestionControl (§4.8): ssthresh as for a loss, cwnd
// one SMSS, and the next congestion-avoidance epoch starts with K = 0 and
// W_max = cwnd at its start.
func (c *Cubic) OnRTO(flight uint32, _ time.Duration) {
	if !c.afterRTO {
		c.reduce(flight)
	}
	c.cwnd = c.mss
	c.epochValid = false
	c.rtoEpoch = true
	c.inRecovery = false
	c.afterRTO = true
}

// OnRecoveryExit implements CongestionControl.
func (c *Cubic) OnRecoveryExit(time.Duration) { c.inRecovery = false }

// CWND implements CongestionControl.
func (c *Cubic) CWND() uint32 { return uint32(c.cwnd) }

// SSThresh implements CongestionControl.
func (c *Cubic) SSThresh() uint32 { return uint32(min(c.ssthresh, maxWindow)) }

// InRecovery reports whether OnLoss was called and recovery has not ended.
func (c *Cubic) InRecovery() bool { return c.inRecovery }
