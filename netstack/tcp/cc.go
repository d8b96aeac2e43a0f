package tcp

import "time"

// CongestionControl is a sender's congestion controller. All windows are in
// bytes. The connection calls it from its single goroutine; it keeps no
// clock of its own, every event carries now (any monotonic origin).
//
// The loss-recovery convention is RFC 6675's: when fast retransmit starts,
// OnLoss sets cwnd to the new ssthresh and the connection limits sending by
// its pipe estimate (see Scoreboard.Pipe) instead of inflating cwnd with
// duplicate ACKs. Acks during recovery do not grow the window.
type CongestionControl interface {
	// OnAck reports that acked bytes of new data were cumulatively
	// acknowledged. rtt is the current smoothed RTT (0 if unknown).
	OnAck(acked uint32, rtt, now time.Duration)
	// OnLoss reports entering fast retransmit / fast recovery with
	// flight bytes outstanding. Calls while already in recovery are
	// ignored (one reduction per window of data).
	OnLoss(flight uint32, now time.Duration)
	// OnRTO reports that the retransmission timer expired with flight
	// bytes outstanding. It ends any recovery and sets cwnd to one MSS.
	// On consecutive expiries with no new data acknowledged in between,
	// ssthresh is held (RFC 5681 §3.1).
	OnRTO(flight uint32, now time.Duration)
	// OnRecoveryExit reports that fast recovery ended (the recovery point
	// was acknowledged).
	OnRecoveryExit(now time.Duration)
	// Undo reports that the last OnLoss was spurious (D-SACKs showed that
	// every retransmission of the episode was a duplicate): the window
	// goes back to what it was before that reduction, or stays where it
	// is if it has grown past it.
	Undo()
	// CWND returns the congestion window.
	CWND() uint32
	// SSThresh returns the slow-start threshold.
	SSThresh() uint32
}

// CCOptions configures a congestion controller.
type CCOptions struct {
	// MSS is the sender's maximum segment size (SMSS); required (values
	// below 1 are treated as 536).
	MSS uint32
	// InitialWindow is the initial cwnd in bytes; 0 takes RFC 6928's
	// min(10*MSS, max(2*MSS, 14600)).
	InitialWindow uint32
	// InitialSSThresh is the initial ssthresh; 0 means "arbitrarily high"
	// (RFC 5681 §3.1).
	InitialSSThresh uint32
}

// maxWindow caps cwnd so arithmetic never overflows; it is far above any
// scaled receive window (2^30).
const maxWindow = 1 << 30

// InitialWindow returns RFC 6928's initial window for mss:
// min(10*MSS, max(2*MSS, 14600)).
func InitialWindow(mss uint32) uint32 {
	return min(10*mss, max(2*mss, 14600))
}

func (o CCOptions) normalize() CCOptions {
	if o.MSS == 0 {
		o.MSS = 536
	}
	if o.InitialWindow == 0 {
		o.InitialWindow = InitialWindow(o.MSS)
	}
	o.InitialWindow = min(o.InitialWindow, maxWindow)
	if o.InitialSSThresh == 0 {
		o.InitialSSThresh = maxWindow
	}
	return o
}

// slowStartIncrease is RFC 3465 appropriate byte counting in slow start:
// grow by the bytes acknowledged. RFC 3465's limit of L*SMSS per ACK is left
// out, as Linux leaves it out: the receiver acknowledges once per receive
// batch (stretch ACKs, tcp.Proto.EndBatch, as Linux does behind GRO), and a
// limit per ACK would slow slow start down for no gain (counting bytes
// already defeats ACK division).
func slowStartIncrease(acked, _ uint32) uint32 { return acked }
