package tcp

import "time"

// RACK-TLP loss detection (RFC 8985) for connections that negotiated SACK.
//
// Every send-queue segment carries the time and the order of its latest
// transmission (txSeg.sentAt, xmitN: the engine reads the clock once per
// event, so many segments share a time, and RFC 8985's tie-break by
// sequence number would misorder a retransmission sent in the same
// instant as later new data) and three flags: sacked (fully SACKed), lost (deemed lost by
// RACK; it stays set once retransmitted) and rxOut (a retransmission of
// it is in flight). RACK remembers the latest
// transmission time among the segments an ACK newly delivers (cumulatively
// or by SACK); a segment sent a reordering window before that one and not
// yet delivered is lost, whether it was a first transmission or a
// retransmission, so lost retransmissions are found without an RTO.
//
// RACK replaces RFC 6675's DupThresh rule on SACK connections: recovery
// starts when RACK marks a segment lost, the send loop retransmits lost
// segments (lowest first) before new data, and the pipe is
// flight - SACKed - lost + retransmitted-in-flight (as Linux counts it).
// The scoreboard still holds the SACKed ranges and the recovery point.
// Connections without SACK keep RFC 5681/6582 dupACK recovery.
//
// The reordering window is RFC 8985 §6.2 step 4: zero while no
// reordering was observed and the sender is in recovery or DupThresh
// segments are SACKed, otherwise min(min_RTT/4 * mult, SRTT), where mult
// grows by one per round trip with D-SACKs and falls back to 1 after 16
// recoveries without one.
//
// The Tail Loss Probe (RFC 8985 §7) fires PTO = 2*SRTT after the last
// transmission or ACK (plus the worst-case delayed ACK, 200ms, when one
// segment is in flight; at least tlpMinPTO, never past the RTO). It sends
// one new segment if the windows allow, else retransmits the highest one,
// so the ACK it draws lets RACK find the tail losses and repair them by
// fast recovery instead of an RTO.
//
// The RFC 6298 RTO stays the last resort, with its backoff and retry
// limit: on expiry the per-segment state is cleared and the sender goes
// back to SND.UNA in slow start, as before.

const (
	// tlpWCDelAck is RFC 8985's WCDelAckT: the worst-case delayed-ACK
	// timer a probe waits for when one segment is in flight.
	tlpWCDelAck = int64(200 * time.Millisecond)
	// tlpMinPTO is a floor on the PTO (Linux's TCP_TIMEOUT_MIN): on
	// microsecond RTTs 2*SRTT is shorter than scheduling jitter.
	tlpMinPTO = int64(2 * time.Millisecond)
	// rackReoPersist is how many recoveries an inflated reordering window
	// lasts without further D-SACKs (RFC 8985 §6.2 step 4).
	rackReoPersist = 16
)

// rackState is RFC 8985's per-connection RACK state.
type rackState struct {
	xmitTs      int64  // RACK.xmit_ts: latest transmission time of a delivered segment
	xmitN       uint64 // its transmission order (see xmits)
	endSeq      Seq    // RACK.end_seq
	xmits       uint64 // transmissions so far: orders segments sent at one clock reading
	rtt         int64  // RACK.rtt: RTT of that delivery
	minRTT      int64  // smallest RACK.rtt seen (0: none)
	fack        Seq    // RACK.fack: highest end delivered
	reord       bool   // RACK.reordering_seen
	mult        int    // RACK.reo_wnd_mult
	persist     int    // RACK.reo_wnd_persist
	dsackRound  Seq    // RACK.dsack_round, valid when dsackOn
	dsackOn     bool
	valid       bool   // xmitTs/endSeq set
	lostBytes   uint32 // octets of segments deemed lost (retransmitted or not)
	sackedBytes uint32 // octets of segments SACKed (from the segments' own flags)
	rxOutBytes  uint32 // octets of retransmissions in flight
	awaitN      int    // segments lost and not retransmitted since
	lostHint    Seq    // no segment awaiting retransmission lies below it
	reoAt       int64  // reordering timer (0: off)
	tlpAt       int64  // probe timeout (0: off)
	tlpOut      bool   // a probe is outstanding (TLP.end_seq != None)
	tlpEnd      Seq    // TLP.end_seq
	tlpRetrans  bool   // the probe was a retransmission
	tlpDSACK    bool   // a D-SACK arrived during the probe episode
	deliveredOK bool   // this ACK delivered something (re-arm the PTO)
}

// rackDelivered is RFC 8985 §6.2 steps 2 and 3 for one segment newly
// acknowledged or SACKed.
func (e *Endpoint) rackDelivered(s *txSeg, now int64) {
	r := &e.rack
	r.deliveredOK = true
	rtt := now - s.sentAt
	if s.rexmit && (r.minRTT == 0 || rtt < r.minRTT) {
		// Probably the ACK of an earlier transmission: ambiguous.
		return
	}
	end := s.end()
	if !r.valid {
		r.fack = end // the zero Seq is no lower bound
	}
	if !s.rexmit && end.LessThan(r.fack) {
		r.reord = true
	}
	r.fack = MaxSeq(r.fack, end)
	r.rtt = rtt
	if r.minRTT == 0 || rtt < r.minRTT {
		r.minRTT = max(rtt, 1)
	}
	if !r.valid || s.xmitN > r.xmitN {
		r.xmitTs, r.xmitN, r.endSeq, r.valid = s.sentAt, s.xmitN, end, true
	}
}

// rackDrop adjusts the byte counts for a segment leaving the queue or
// becoming SACKed.
func (e *Endpoint) rackDrop(s *txSeg) {
	r := &e.rack
	if s.lost {
		s.lost = false
		r.lostBytes -= min(r.lostBytes, uint32(s.b.Len))
		if !s.rxOut {
			r.awaitN--
		}
	}
	if s.rxOut {
		s.rxOut = false
		r.rxOutBytes -= min(r.rxOutBytes, uint32(s.b.Len))
	}
}

// rackClear forgets every segment's loss state (after an RTO, or when
// the queue is dropped).
func (e *Endpoint) rackClear() {
	for i := 0; i < e.sqN; i++ {
		s := e.sqAt(i)
		s.lost, s.rxOut, s.sacked = false, false, false
	}
	r := &e.rack
	r.lostBytes, r.rxOutBytes, r.awaitN, r.sackedBytes = 0, 0, 0, 0
	r.reoAt, r.tlpAt, r.tlpOut = 0, 0, false
	r.lostHint = e.sndUna
}

// isDSACK reports whether blocks start with a D-SACK (RFC 2883): a first
// block below the cumulative ACK, or inside the second block, or inside
// what the scoreboard already holds.
func (e *Endpoint) isDSACK(ack Seq, blocks []SACKBlock) bool {
	if len(blocks) == 0 {
		return false
	}
	b := blocks[0]
	if !b.Start.LessThan(b.End) {
		return false
	}
	if b.End.LessEq(ack) {
		return true
	}
	if len(blocks) > 1 && blocks[1].Start.LessEq(b.Start) && b.End.LessEq(blocks[1].End) {
		return true
	}
	return e.sb.covers(b.Start, b.End)
}

// sackNewly walks the segments in the parts of blocks the scoreboard did
// not yet hold (computed before Update into parts), marks those now fully
// SACKed and feeds them to RACK. Each segment becomes SACKed once, so the
// work per ACK is amortized over the segments.
func (e *Endpoint) sackNewly(parts []SACKBlock, now int64) {
	for _, p := range parts {
		i := e.segIndex(p.Start)
		if i < 0 {
			continue
		}
		for ; i < e.sqN; i++ {
			s := e.sqAt(i)
			if !s.seq.LessThan(p.End) {
				break
			}
			if s.sacked || !e.sb.covers(s.seq, s.end()) {
				continue
			}
			s.sacked = true
			e.rack.sackedBytes += uint32(s.b.Len)
			e.rackDrop(s)
			e.rackDelivered(s, now)
		}
	}
}

// newSACKParts returns in parts[:n] the pieces of blocks (clipped to
// [ack, SND.NXT)) that the scoreboard does not hold yet; ok is false if
// they did not fit, and the caller then walks the blocks whole.
func (e *Endpoint) newSACKParts(ack Seq, blocks []SACKBlock, parts []SACKBlock) (n int, ok bool) {
	lo := MaxSeq(e.sb.UNA(), ack)
	hi := e.sb.NXT()
	old := e.sb.Blocks()
	for _, b := range blocks {
		start, end := MaxSeq(b.Start, lo), MinSeq(b.End, hi)
		if !start.LessThan(end) || !b.Start.LessThan(b.End) {
			continue
		}
		for _, o := range old {
			if !start.LessThan(end) {
				break
			}
			if o.End.LessEq(start) {
				continue
			}
			if end.LessEq(o.Start) {
				break
			}
			if start.LessThan(o.Start) {
				if n == len(parts) {
					return n, false
				}
				parts[n] = SACKBlock{start, o.Start}
				n++
			}
			start = MaxSeq(start, o.End)
		}
		if start.LessThan(end) {
			if n == len(parts) {
				return n, false
			}
			parts[n] = SACKBlock{start, end}
			n++
		}
	}
	return n, true
}

// rackReoWnd is RFC 8985 §6.2 step 4's reordering window.
func (e *Endpoint) rackReoWnd() int64 {
	r := &e.rack
	if !r.reord {
		if e.sb.InRecovery() {
			return 0
		}
		if e.rack.sackedBytes >= DefaultDupThresh*e.sndMSS {
			return 0
		}
	}
	base := r.minRTT
	srtt := int64(e.rto.SRTT())
	if base == 0 {
		base = srtt
	}
	w := base / 4 * int64(max(r.mult, 1))
	if srtt > 0 {
		w = min(w, srtt)
	}
	return w
}

// rackOnDSACK is the D-SACK part of step 4: widen the window once per
// round trip with D-SACKs.
func (e *Endpoint) rackOnDSACK() {
	r := &e.rack
	if r.dsackOn && e.sndUna.GreaterEq(r.dsackRound) {
		r.dsackOn = false
	}
	if !r.dsackOn {
		r.dsackOn, r.dsackRound = true, e.sndMax
		r.mult = max(r.mult, 1) + 1
		r.persist = rackReoPersist
	}
}

// rackOnRecoveryExit decays the widened window (step 4).
func (e *Endpoint) rackOnRecoveryExit() {
	r := &e.rack
	if r.persist > 0 {
		r.persist--
		if r.persist == 0 {
			r.mult = 1
		}
	}
}

// rackDetect is RFC 8985 §6.2 step 5: mark lost every segment sent a
// reordering window before RACK.xmit_ts and not delivered, and arm the
// reordering timer for those still inside the window. Only segments below
// SND.NXT are considered (after an RTO the rest is resent anyway).
//
// Segments never retransmitted were first sent in sequence order, so the
// walk stops at the first of them that is not old enough: everything
// later was sent later still. SACKed runs are skipped through the
// scoreboard.
func (e *Endpoint) rackDetect(now int64) {
	r := &e.rack
	if !r.valid || e.sqN == 0 {
		return
	}
	reo := e.rackReoWnd()
	e.rackHint()
	var wait int64
	for i := 0; i < e.sqN; i++ {
		s := e.sqAt(i)
		if !s.seq.LessThan(e.sndNxt) {
			break
		}
		if s.sacked {
			if end := e.sb.blockEnd(s.seq); end.GreaterThan(s.end()) {
				j := e.segIndex(end)
				if j < 0 {
					break
				}
				i = max(i, j-1)
			}
			continue
		}
		if s.lost && !s.rxOut {
			continue // awaits retransmission
		}
		if s.xmitN > r.xmitN { // sent after the RACK segment
			if s.rexmit {
				continue
			}
			break
		}
		left := s.sentAt + r.rtt + reo - now
		if left <= 0 {
			if !s.lost {
				s.lost = true
				r.lostBytes += uint32(s.b.Len)
			}
			if s.rxOut { // the retransmission was lost too
				s.rxOut = false
				r.rxOutBytes -= min(r.rxOutBytes, uint32(s.b.Len))
			}
			r.awaitN++
			if s.seq.LessThan(r.lostHint) {
				r.lostHint = s.seq
			}
			continue
		}
		if wait == 0 || left < wait {
			wait = left
		}
		if !s.rexmit {
			break
		}
	}
	if wait > 0 {
		r.reoAt = now + wait
	} else {
		r.reoAt = 0
	}
}

// rackHint keeps lostHint inside [SND.UNA, SND.MAX]: acknowledged
// segments below it are gone, and a stale value must not skip one.
func (e *Endpoint) rackHint() {
	if !e.rack.lostHint.InRange(e.sndUna, e.sndMax.Add(1)) {
		e.rack.lostHint = e.sndUna
	}
}

// nextLost returns the index of the lowest segment deemed lost and not
// retransmitted since, or -1.
func (e *Endpoint) nextLost() int {
	r := &e.rack
	if r.awaitN <= 0 {
		return -1
	}
	e.rackHint()
	i := e.segIndex(r.lostHint)
	if i < 0 {
		i = 0
	}
	for ; i < e.sqN; i++ {
		s := e.sqAt(i)
		if s.lost && !s.rxOut {
			r.lostHint = s.seq
			return i
		}
	}
	// The count drifted (cannot happen if the bookkeeping is right):
	// resynchronize rather than walk again.
	r.awaitN = 0
	return -1
}

// rackPipe is the pipe estimate: octets sent (below SND.NXT), minus those
// SACKed or deemed lost, plus retransmissions in flight. The SACKed octets
// are the segments' own (the scoreboard forgets ranges past its capacity,
// and a pipe that counted those as in flight would hold sending back).
func (e *Endpoint) rackPipe() uint32 {
	r := &e.rack
	p := int64(e.sndUna.Size(e.sndNxt)) - int64(r.sackedBytes) - int64(r.lostBytes) + int64(r.rxOutBytes)
	return uint32(max(p, 0))
}

// renege forgets every SACKed mark: the receiver dropped data it had
// SACKed.
func (e *Endpoint) renege() {
	e.p.ctr.SACKReneging++
	for i := 0; i < e.sqN; i++ {
		e.sqAt(i).sacked = false
	}
	e.rack.sackedBytes = 0
	e.sb.ClearSACK()
}

// rackMarkAllLost deems every segment sent and not SACKed lost, for the
// retransmission timer: only those are sent again, the SACKed ones are not
// (Linux's tcp_timeout_mark_lost, as opposed to going back to SND.UNA).
func (e *Endpoint) rackMarkAllLost() {
	r := &e.rack
	r.awaitN = 0
	for i := 0; i < e.sqN; i++ {
		s := e.sqAt(i)
		if !s.seq.LessThan(e.sndMax) {
			break
		}
		if s.sacked {
			continue
		}
		if s.rxOut {
			s.rxOut = false
			r.rxOutBytes -= min(r.rxOutBytes, uint32(s.b.Len))
		}
		if !s.lost {
			s.lost = true
			r.lostBytes += uint32(s.b.Len)
		}
		r.awaitN++
	}
	r.lostHint = e.sndUna
	r.reoAt, r.tlpAt, r.tlpOut = 0, 0, false
}

// tlpEligible reports whether a probe timeout may be armed now.
func (e *Endpoint) tlpEligible() bool {
	return e.sackOK && e.canSend() && e.sndUna != e.sndMax &&
		e.sndNxt == e.sndMax && !e.rack.tlpOut && !e.persist && e.rto.HasSample()
}

// armTLP (re)starts the probe timeout (RFC 8985 §7.2).
func (e *Endpoint) armTLP(now int64) {
	r := &e.rack
	if !e.tlpEligible() {
		r.tlpAt = 0
		return
	}
	pto := 2 * int64(e.rto.SRTT())
	if e.sndUna.Size(e.sndMax) <= e.sndMSS {
		pto += tlpWCDelAck
	}
	pto = max(pto, tlpMinPTO)
	r.tlpAt = now + pto
	if e.rtoAt != 0 && r.tlpAt > e.rtoAt {
		// The probe goes instead of the retransmission timeout, and
		// rearms it (Linux caps the PTO at the RTO): a lone segment
		// whose ACK a receiver delays, or whose ACK was lost, then
		// costs a probe, not the window.
		r.tlpAt = e.rtoAt
	}
}

// sendTLP sends the loss probe (RFC 8985 §7.3): a new segment if the
// receive window allows, else the highest segment again.
func (e *Endpoint) sendTLP(now int64) {
	r := &e.rack
	r.tlpAt = 0
	if !e.tlpEligible() {
		return
	}
	e.p.ctr.LossProbes++
	if idx := e.segIndex(e.sndNxt); idx >= 0 {
		if s := e.sqAt(idx); s.end().LessEq(e.sndUna.Add(e.sndWnd)) {
			if e.xmit(idx, false) != nil {
				return
			}
			e.sb.Sent(NextSegment{Seq: s.seq, Len: uint32(s.b.Len), Kind: SegNew})
			e.sndNxt = s.end()
			e.sndMax = MaxSeq(e.sndMax, e.sndNxt)
			r.tlpOut, r.tlpEnd, r.tlpRetrans, r.tlpDSACK = true, e.sndMax, false, false
			e.rtoAt = now + int64(e.rto.Current())
			return
		}
	}
	if e.finQ && e.sndMax == e.finSeq.Add(1) {
		if e.sendFin(true) != nil {
			return
		}
	} else {
		j := e.segIndex(e.sndMax.Add(^uint32(0)))
		if j < 0 {
			return
		}
		s := e.sqAt(j)
		if s.sacked || e.xmit(j, true) != nil {
			return
		}
		if !s.rxOut {
			s.rxOut = true
			r.rxOutBytes += uint32(s.b.Len)
		}
	}
	r.tlpOut, r.tlpEnd, r.tlpRetrans, r.tlpDSACK = true, e.sndMax, true, false
	e.rtoAt = now + int64(e.rto.Current())
}

// tlpOnAck ends a probe episode (RFC 8985 §7.4): once the probe is
// acknowledged, a retransmitted probe that drew no D-SACK repaired a loss,
// which congestion control must hear about.
func (e *Endpoint) tlpOnAck(ack Seq, dsack bool, now int64) {
	r := &e.rack
	if !r.tlpOut {
		return
	}
	if dsack {
		r.tlpDSACK = true
	}
	if e.sb.InRecovery() {
		r.tlpOut = false // recovery reduces the window itself
		return
	}
	if ack.GreaterEq(r.tlpEnd) {
		r.tlpOut = false
		if r.tlpRetrans && !r.tlpDSACK {
			e.cc.OnLoss(e.sndUna.Size(e.sndMax), time.Duration(now))
			e.cc.OnRecoveryExit(time.Duration(now))
		}
	}
}
