package tcp

import "time"

// NewReno is RFC 5681 congestion control with RFC 3465 appropriate byte
// counting: slow start grows cwnd by the bytes acked and congestion
// avoidance by one SMSS per cwnd of bytes acked. On
// loss ssthresh = max(FlightSize/2, 2*SMSS) (RFC 5681 equation 4); after an
// RTO cwnd is one SMSS (the loss window). It implements CongestionControl.
type NewReno struct {
	mss, cwnd, ssthresh uint32
	acc                 uint32 // bytes acked in congestion avoidance, RFC 3465 bytes_acked
	undoCwnd, undoSS    uint32 // before the last OnLoss
	inRecovery          bool
	afterRTO            bool // an RTO fired and no new data was acked since
}

var _ CongestionControl = (*NewReno)(nil)

// NewNewReno returns a NewReno controller configured by opts.
func NewNewReno(opts CCOptions) *NewReno {
	o := opts.normalize()
	return &NewReno{mss: o.MSS, cwnd: o.InitialWindow, ssthresh: o.InitialSSThresh}
}

// OnAck implements CongestionControl.
func (r *NewReno) OnAck(acked uint32, _, _ time.Duration) {
	if acked == 0 {
		return
	}
	r.afterRTO = false
	if r.inRecovery {
		return
	}
	if r.cwnd < r.ssthresh {
		r.cwnd = min(r.cwnd+slowStartIncrease(acked, r.mss), maxWindow)
		return
	}
	r.acc += min(acked, maxWindow)
	for r.acc >= r.cwnd && r.cwnd < maxWindow { // a stretch ACK may cover more than a window
		r.acc -= r.cwnd
		r.cwnd = min(r.cwnd+r.mss, maxWindow)
	}
}

// lossThreshold is RFC 5681 equation 4.
func (r *NewReno) lossThreshold(flight uint32) uint32 { return max(flight/2, 2*r.mss) }

// OnLoss implements CongestionControl.
func (r *NewReno) OnLoss(flight uint32, _ time.Duration) {
	if r.inRecovery {
		return
	}
	r.undoCwnd, r.undoSS = r.cwnd, r.ssthresh
	r.ssthresh = r.lossThreshold(flight)
	r.cwnd = r.ssthresh
	r.acc = 0
	r.inRecovery = true
}

// Undo implements CongestionControl.
func (r *NewReno) Undo() {
	r.cwnd = max(r.cwnd, r.undoCwnd)
	r.ssthresh = max(r.ssthresh, r.undoSS)
}

// OnRTO implements CongestionControl.
func (r *NewReno) OnRTO(flight uint32, _ time.Duration) {
	if !r.afterRTO {
		r.ssthresh = r.lossThreshold(flight)
	}
	r.cwnd = r.mss
	r.acc = 0
	r.inRecovery = false
	r.afterRTO = true
}

// OnRecoveryExit implements CongestionControl.
func (r *NewReno) OnRecoveryExit(time.Duration) { r.inRecovery = false }

// CWND implements CongestionControl.
func (r *NewReno) CWND() uint32 { return r.cwnd }

// SSThresh implements CongestionControl.
func (r *NewReno) SSThresh() uint32 { return r.ssthresh }

// InRecovery reports whether OnLoss was called and recovery has not ended.
func (r *NewReno) InRecovery() bool { return r.inRecovery }
