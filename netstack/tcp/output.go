package tcp

import (
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// txRetry is how soon a send that found the link busy is retried.
const txRetry = int64(100 * time.Microsecond)

// spillRetry is how soon spilled data that found no frame to be copied
// into (frames scarce) is tried again.
const spillRetry = int64(time.Millisecond)

// rcvWnd is RCV.WND: what is left of the window we advertised.
func (e *Endpoint) rcvWnd() uint32 {
	if e.rcvAdv.GreaterThan(e.rcvNxt) {
		return e.rcvNxt.Size(e.rcvAdv)
	}
	return 0
}

// free is the receive buffer space not held by queued data: the bytes of
// RcvBuf left, and with frame budgets no more than the frames left of the
// connection's share can carry (budget.go).
func (e *Endpoint) free() uint32 {
	f := max(e.p.cfg.RcvBuf-e.rqBytes-int(e.reasm.Bytes()), 0)
	if room := e.rcvRoomFrames(); room >= 0 && room*e.rcvSegBytes() < f {
		f = room * e.rcvSegBytes()
		e.p.ctr.RcvShareLimited++
	}
	return uint32(f)
}

// rcvSegBytes is the most payload one received segment, and so one frame,
// carries.
func (e *Endpoint) rcvSegBytes() int {
	if e.tsOK {
		return int(e.rcvMSS) - 12
	}
	return int(e.rcvMSS)
}

// newEdge is the right window edge we could advertise now, with receiver
// silly-window avoidance (RFC 9293 §3.8.6.2.2): the edge moves only by at
// least min(RcvBuf/2, MSS), and never backwards.
func (e *Endpoint) newEdge() Seq {
	cur := MaxSeq(e.rcvAdv, e.rcvNxt)
	edge := e.rcvNxt.Add(e.free())
	if edge.GreaterThan(cur) && cur.Size(edge) >= min(uint32(e.p.cfg.RcvBuf/2), e.rcvMSS) {
		return edge
	}
	return cur
}

// windowField computes the window to send and records the edge advertised.
func (e *Endpoint) windowField() uint16 {
	w := min(e.rcvNxt.Size(e.newEdge())>>e.rcvWScale, 0xffff)
	e.rcvAdv = MaxSeq(e.rcvAdv, e.rcvNxt.Add(w<<e.rcvWScale))
	return uint16(w)
}

// windowUpdate sends an ACK after the application freed receive space, if
// the window grew enough to matter: as Linux decides (tcp_cleanup_rbuf),
// when what the peer may still send has fallen to half the most we ever
// offer or less, and the window we can offer now is at least twice that.
// A window update for every segment read would double the ACKs of a bulk
// transfer, and every ACK is a transmission (on a copy-mode link, a copy
// into an skb) for both ends; the ACKs that data calls for carry the
// window anyway.
func (e *Endpoint) windowUpdate() {
	switch e.state {
	case StateEstablished, StateFinWait1, StateFinWait2:
	default:
		return
	}
	now := e.rcvWnd()
	if 2*now > e.windowClamp() {
		return
	}
	if w := e.rcvNxt.Size(e.newEdge()); w > 0 && w >= 2*now {
		e.sendAck()
	}
}

// windowClamp is the largest window the connection offers: RcvBuf, or what
// its share of frames carries when frame budgets are on.
func (e *Endpoint) windowClamp() uint32 {
	c := e.p.cfg.RcvBuf
	if b := &e.p.bud; b.frames > 0 {
		c = min(c, b.share*e.rcvSegBytes())
	}
	return uint32(c)
}

// writeHeader prepends the TCP header with its options to the payload in
// b (possibly empty) and fills in the checksum.
func (e *Endpoint) writeHeader(b *nic.Buf, seq Seq, flags Flags) bool {
	var o Options
	now := e.p.now()
	syn := flags.Has(FlagSYN)
	var win uint16
	if syn {
		active := !flags.Has(FlagACK)
		o.HasMSS, o.MSS = true, uint16(min(e.rcvMSS, 0xffff))
		if active || e.wsOK {
			o.HasWScale, o.WScale = true, e.rcvWScale
		}
		o.SACKPermitted = active || e.sackOK
		if active || e.tsOK {
			o.HasTS, o.TSVal = true, tsClock(now)
			if !active {
				o.TSEcr = e.tsRecent
			}
		}
		w := min(e.free(), 0xffff)
		win = uint16(w)
		if !active {
			e.rcvAdv = MaxSeq(e.rcvAdv, e.rcvNxt.Add(w))
		}
	} else {
		if e.tsOK {
			o.HasTS, o.TSVal, o.TSEcr = true, tsClock(now), e.tsRecent
		}
		e.sackOwed = false
		if e.sackOK && (e.reasm.Len() > 0 || e.dsack.Start != e.dsack.End) {
			// As many blocks as fit beside the payload within the MTU,
			// a D-SACK block first (RFC 2883 §4). A full-sized data
			// segment has no room for any: output follows it with a
			// pure ACK that carries them (sackOwed), since RFC 2018
			// wants them in every ACK while the hole lasts and a peer
			// whose SACK-bearing ACKs were lost learns of the hole
			// from nothing else.
			room := e.p.net.MTU() - 40 - b.Len
			if e.tsOK {
				room -= 12
			}
			n := min((room-4)/8, MaxSACKBlocks)
			e.sackOwed = n <= 0
			if n > 0 {
				k := 0
				if e.dsack.Start != e.dsack.End {
					o.SACK[0] = e.dsack
					e.dsack = SACKBlock{}
					e.p.ctr.DSACKsOut++
					k = 1
				}
				o.NumSACK = k + e.reasm.SACKBlocks(o.SACK[k:n])
			}
		}
		win = e.windowField()
	}
	n := EncodeOptions(e.scratch[:], &o, syn)
	hb, ok := b.Prepend(HeaderLen + n)
	if !ok {
		return false
	}
	h := Header(hb[: HeaderLen+n : HeaderLen+n])
	var ack Seq
	if flags.Has(FlagACK) {
		ack = e.rcvNxt
	}
	h.Encode(&Fields{SrcPort: e.t.LocalPort, DstPort: e.t.RemotePort, Seq: seq, Ack: ack,
		DataOffset: uint8(HeaderLen + n), Flags: flags, Window: win})
	copy(h[HeaderLen:], e.scratch[:n])
	e.p.setChecksum(b, &e.t)
	if flags.Has(FlagACK) {
		e.ackNow, e.delackAt, e.unacked = false, 0, 0
		e.lastAckTx = e.rcvNxt
	}
	return true
}

// sendCtl sends a segment without payload in a fresh frame.
func (e *Endpoint) sendCtl(seq Seq, flags Flags) error {
	p := e.p
	b, err := p.link.Alloc()
	if err != nil {
		p.ctr.NoBufs++
		return unix.ENOBUFS
	}
	defer p.link.Release(b.Frame)
	if b.Off < Headroom || !e.writeHeader(&b, seq, flags) {
		p.ctr.NoBufs++
		return unix.ENOBUFS
	}
	if err := p.output(&b, e.t.RemoteAddr); err != nil {
		return err
	}
	p.ctr.SegsOut++
	e.ctr.SegsSent++
	e.lastSnd = p.now()
	return nil
}

// sendSyn sends our SYN (or SYN-ACK).
func (e *Endpoint) sendSyn(synack bool) error {
	f := FlagSYN
	if synack {
		f |= FlagACK
	}
	return e.sendCtl(e.iss, f)
}

// maxStretch is the most in-order payload a connection receives before it
// acknowledges at once, even within a receive batch: about what GRO merges
// on Linux.
const maxStretch = 64 << 10

// deferAck asks for an ACK at the end of the receive batch.
func (e *Endpoint) deferAck() {
	if !e.ackQueued {
		e.ackQueued = true
		e.p.ackList = append(e.p.ackList, e)
	}
}

// reportDup records [start, end) as duplicate data received, for the
// D-SACK block of the next ACK (RFC 2883), which goes at once.
func (e *Endpoint) reportDup(start, end Seq) {
	if e.sackOK {
		e.dsack = SACKBlock{Start: start, End: end}
		e.ackNow = true
	}
}

// sendAck sends a pure ACK now.
func (e *Endpoint) sendAck() {
	if !e.inTable || e.state < StateSynRcvd {
		return
	}
	// SND.MAX, not SND.NXT: after an RTO rewinds SND.NXT the peer has
	// seen more, and would find an ACK at SND.NXT out of its window.
	_ = e.sendCtl(e.sndMax, FlagACK)
}

// sendProbe sends a zero-window or keepalive probe: an ACK one octet
// below SND.UNA, which the peer must answer with an ACK.
func (e *Endpoint) sendProbe() { _ = e.sendCtl(e.sndUna.Add(^uint32(0)), FlagACK) }

// sendFin sends the FIN (seq finSeq).
func (e *Endpoint) sendFin(rexmit bool) error {
	err := e.sendCtl(e.finSeq, FlagFIN|FlagACK)
	if err == nil && rexmit {
		e.p.ctr.Retransmits++
		e.ctr.Retransmits++
	}
	return err
}

// xmit sends send-queue segment i (headers rewritten in its headroom).
func (e *Endpoint) xmit(i int, rexmit bool) error {
	p := e.p
	s := e.sqAt(i)
	b := s.b
	if b.Frame == noFrame {
		// Spilled under frame pressure: send from a copy in a fresh
		// frame, which the link keeps until the transmission completes.
		nb, ok := p.unspill(&s.b)
		if !ok {
			e.spillWait = true
			return unix.EAGAIN
		}
		defer p.link.Release(nb.Frame)
		b = nb
	} else if p.link.Busy(b.Frame) {
		// Its previous transmission has not completed: rewriting the
		// headers now could change bytes a zero-copy NIC is reading.
		e.txStuck = true
		return unix.EAGAIN
	}
	if !e.writeHeader(&b, s.seq, FlagACK|FlagPSH) {
		return unix.EINVAL
	}
	if err := p.output(&b, e.t.RemoteAddr); err != nil {
		if err == unix.EAGAIN || err == unix.ENOBUFS {
			e.txStuck = true
		}
		return err
	}
	p.ctr.SegsOut++
	e.ctr.SegsSent++
	now := p.now()
	e.lastSnd = now
	s.sentAt = now
	e.rack.xmits++
	s.xmitN = e.rack.xmits
	if rexmit {
		s.rexmit = true
		p.ctr.Retransmits++
		e.ctr.Retransmits++
		if e.undoOn {
			e.undoOnRetransmit(s.seq)
		}
		e.rttOn = false // Karn
	} else {
		e.ctr.BytesSent += uint64(s.b.Len)
		if !e.rttOn && !e.tsOK {
			e.rttOn, e.rttSeq, e.rttT = true, s.end(), now
		}
	}
	return nil
}

// segIndex returns the index of the send-queue segment holding seq, or -1.
func (e *Endpoint) segIndex(seq Seq) int {
	lo, hi := 0, e.sqN
	for lo < hi {
		m := (lo + hi) / 2
		if e.sqAt(m).end().LessEq(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < e.sqN && e.sqAt(lo).seq.LessEq(seq) {
		return lo
	}
	return -1
}

// canSend reports whether the state lets data and FIN go out.
func (e *Endpoint) canSend() bool {
	switch e.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
		return true
	}
	return false
}

// output sends what the windows, Nagle and loss recovery allow: new data,
// retransmissions (RFC 6675 NextSeg in recovery) and the FIN; then arms
// the retransmission or persist timer.
//
//demixdp:hotpath — allocates nothing.
func (e *Endpoint) output() {
	if !e.canSend() {
		return
	}
	now := e.p.now()
	e.txStuck = false
	mss := e.sndMSS
	var pipe uint32
	sentNew := false
	for iter := 0; iter < 4096; iter++ {
		idx := e.segIndex(e.sndNxt)
		avail := uint32(0)
		var s *txSeg
		if idx >= 0 {
			s = e.sqAt(idx)
			if s.end().LessEq(e.sndUna.Add(e.sndWnd)) {
				avail = uint32(s.b.Len)
			}
		}
		if e.sb.InRecovery() && e.sackOK {
			// RACK recovery: lost segments first, then new data,
			// while the pipe leaves room in cwnd.
			if iter == 0 {
				pipe = e.rackPipe()
			}
			// RFC 6675: send while cwnd - pipe >= SMSS. (Letting a
			// shorter segment use a smaller room was measured to
			// cost more RTOs: the receiver's reassembly queue
			// counts pieces, not bytes.)
			if cw := e.cc.CWND(); pipe >= cw || cw-pipe < mss {
				break
			}
			if j := e.nextLost(); j >= 0 {
				r := e.sqAt(j)
				if e.xmit(j, true) != nil {
					break
				}
				n := uint32(r.b.Len)
				r.rxOut = true
				e.rack.rxOutBytes += n
				e.rack.awaitN--
				e.rack.lostHint = r.end()
				pipe += n
				e.sb.Sent(NextSegment{Seq: r.seq, Len: n, Kind: SegLost})
				continue
			}
			if avail == 0 {
				break
			}
			pipe += avail
		} else if e.sb.InRecovery() {
			pipe := e.sb.Pipe()
			if !e.sackOK {
				pipe -= min(pipe, uint32(e.dupAcks)*mss)
			}
			cw := e.cc.CWND()
			if pipe >= cw || cw-pipe < mss {
				break
			}
			ns := e.sb.NextSeg(avail)
			if ns.Kind == SegNone {
				break
			}
			if ns.Kind != SegNew {
				j := e.segIndex(ns.Seq)
				if j < 0 {
					if e.finQ && ns.Seq == e.finSeq {
						if e.sendFin(true) != nil {
							break
						}
						e.sb.Sent(NextSegment{Seq: e.finSeq, Len: 1, Kind: ns.Kind})
						continue
					}
					break
				}
				r := e.sqAt(j)
				if e.xmit(j, true) != nil {
					break
				}
				e.sb.Sent(NextSegment{Seq: r.seq, Len: uint32(r.b.Len), Kind: ns.Kind})
				continue
			}
		} else {
			if e.sackOK && e.rack.awaitN > 0 && e.rackPipe() < e.cc.CWND() {
				// Going back after an RTO: RACK found some of the
				// resent segments lost again; resend them first.
				if j := e.nextLost(); j >= 0 {
					r := e.sqAt(j)
					if e.xmit(j, true) != nil {
						break
					}
					r.rxOut = true
					e.rack.rxOutBytes += uint32(r.b.Len)
					e.rack.awaitN--
					e.rack.lostHint = r.end()
					continue
				}
			}
			if avail == 0 {
				break
			}
			flight := e.sndUna.Size(e.sndNxt)
			// Limited transmit (RFC 3042): each of the first two
			// duplicate ACKs lets one more segment out.
			if flight > 0 && flight+avail > e.cc.CWND()+uint32(min(e.dupAcks, 2))*mss {
				break
			}
			if avail < mss && !e.noDelay && flight > 0 && idx == e.sqN-1 &&
				e.sndSml.GreaterThan(e.sndUna) && s.end().GreaterThan(e.sndMax) {
				// Nagle (RFC 9293 §3.7.4) in Minshall's form, as
				// Linux does: hold a small segment at the tail of
				// the queue only while an earlier small one is
				// unacknowledged. A small segment with data queued
				// behind it goes: it cannot be coalesced anyway.
				break
			}
		}
		rexmit := s.end().LessEq(e.sndMax)
		if e.xmit(idx, rexmit) != nil {
			break
		}
		if uint32(s.b.Len) < mss {
			e.sndSml = s.end()
		}
		e.sb.Sent(NextSegment{Seq: s.seq, Len: uint32(s.b.Len), Kind: SegNew})
		e.sndNxt = MaxSeq(e.sndNxt, s.end())
		e.sndMax = MaxSeq(e.sndMax, e.sndNxt)
		sentNew = true
	}
	if e.finQ && e.sndNxt == e.finSeq && e.segIndex(e.sndNxt) < 0 {
		rexmit := e.sndMax.GreaterThan(e.finSeq)
		if e.sendFin(rexmit) == nil {
			e.sb.Sent(NextSegment{Seq: e.finSeq, Len: 1, Kind: SegNew})
			e.sndNxt = e.finSeq.Add(1)
			e.sndMax = MaxSeq(e.sndMax, e.sndNxt)
			sentNew = true
		} else {
			e.txStuck = true
		}
	}
	if e.sackOwed {
		if e.p.inBatch {
			// Output runs for every ACK of a receive batch: one pure
			// ACK with the blocks at its end does for all of them.
			e.deferAck()
			if e.delackAt == 0 {
				e.delackAt = now + int64(e.p.cfg.DelayedACK)
			}
		} else {
			e.sendAck()
		}
	}
	switch {
	case e.sndMax != e.sndUna:
		if e.rtoAt == 0 || e.persist {
			e.rtoAt, e.persist = now+int64(e.rto.Current()), false
		}
	case e.sqN > 0 && e.rtoAt == 0:
		// Data waits for the peer's window: probe it (persist timer).
		e.rtoAt, e.persist = now+int64(e.rto.Current()), true
	}
	if sentNew || e.rack.deliveredOK || e.rack.tlpAt == 0 {
		// RFC 8985 §7.2: (re)start the PTO after sending new data or
		// on an ACK that delivered data.
		e.rack.deliveredOK = false
		e.armTLP(now)
	}
	e.schedule()
}

// schedule puts the endpoint in the timer wheel at its earliest timer. A
// later deadline than the one armed is left for the armed entry to find
// (it re-schedules when it fires early), so per-segment timer moves cost
// nothing.
func (e *Endpoint) schedule() {
	d := int64(0)
	for _, t := range [...]int64{e.rtoAt, e.delackAt, e.stateAt, e.keepAt, e.rack.reoAt, e.rack.tlpAt} {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	if e.txStuck {
		if r := e.p.now() + txRetry; d == 0 || r < d {
			d = r
		}
	} else if e.spillWait || e.rcvStuck {
		if r := e.p.now() + spillRetry; d == 0 || r < d {
			d = r
		}
	}
	if d == 0 || !e.inTable {
		return
	}
	if !e.armed() || d < e.deadline {
		e.p.timers.set(e, d)
	}
}

// onTimer runs the endpoint's due timers.
func (e *Endpoint) onTimer(now int64) {
	p := e.p
	if e.stateAt != 0 && now >= e.stateAt {
		e.stateAt = 0
		switch e.state {
		case StateTimeWait, StateFinWait2:
			e.destroy()
			return
		}
	}
	if e.delackAt != 0 && now >= e.delackAt {
		e.delackAt = 0
		if e.unacked > 0 || e.ackNow || e.sackOwed {
			e.sendAck()
		}
	}
	if e.txStuck || e.spillWait {
		e.spillWait = false
		e.output()
	}
	if e.rcvStuck && !p.link.Scarce() {
		e.rcvStuck = false
		e.notify(EventReadable)
	}
	if r := &e.rack; r.reoAt != 0 && now >= r.reoAt {
		// RACK reordering timer (RFC 8985 §6.3): the window has passed.
		r.reoAt = 0
		if e.sackOK && e.sndUna != e.sndMax {
			e.rackDetect(now)
			if !e.sb.InRecovery() && !e.lossAfterRTO && r.lostBytes > 0 && e.sndNxt == e.sndMax {
				e.enterRecovery(now)
			}
			e.output()
		}
	}
	if r := &e.rack; r.tlpAt != 0 && now >= r.tlpAt && (e.rtoAt == 0 || r.tlpAt <= e.rtoAt) {
		e.sendTLP(now) // it rearms the RTO if it sends
	}
	if e.rtoAt != 0 && now >= e.rtoAt {
		e.rtoAt = 0
		if e.persist {
			e.persist = false
			if e.sqN > 0 && e.sndUna == e.sndMax {
				if idx := e.segIndex(e.sndNxt); e.sndWnd > 0 && idx >= 0 && e.canSend() {
					// The window is open but smaller than the next
					// segment, which cannot be split without a copy:
					// send it whole, as a probe (RFC 9293 §3.8.6.1);
					// the peer keeps what fits and acknowledges it.
					s := e.sqAt(idx)
					if e.xmit(idx, false) == nil {
						e.sb.Sent(NextSegment{Seq: s.seq, Len: uint32(s.b.Len), Kind: SegNew})
						e.sndNxt = MaxSeq(e.sndNxt, s.end())
						e.sndMax = MaxSeq(e.sndMax, e.sndNxt)
						e.rtoAt = now + int64(e.rto.Current())
						return
					}
				}
				e.sendProbe()
				e.rto.Backoff()
				e.rtoAt, e.persist = now+int64(e.rto.Current()), true
			}
		} else {
			e.onRTO(now)
			if e.state == StateClosed {
				return
			}
		}
	}
	if e.keepAt != 0 && now >= e.keepAt {
		e.keepAt = 0
		if e.keepAlive && e.state.synchronized() && e.state != StateTimeWait {
			idle := int64(e.idle())
			switch {
			case e.probes == 0 && now-e.lastRcv < idle:
				e.keepAt = e.lastRcv + idle
			case e.probes >= p.cfg.KeepCount:
				p.ctr.ConnsTimedOut++
				e.fail(unix.ETIMEDOUT)
				return
			default:
				e.sendProbe()
				e.probes++
				e.keepAt = now + int64(e.interval())
			}
		}
	}
}

// onRTO handles the retransmission timer (RFC 6298 §5, RFC 5681 §3.1).
func (e *Endpoint) onRTO(now int64) {
	p := e.p
	e.retries++
	switch e.state {
	case StateSynSent:
		if e.retries > p.cfg.SynRetries {
			p.ctr.ConnsTimedOut++
			e.fail(unix.ECONNREFUSED)
			return
		}
		e.rto.Backoff()
		_ = e.sendSyn(false)
		e.rtoAt = now + int64(e.rto.Current())
		return
	case StateSynRcvd:
		if e.retries > p.cfg.SynAckRetries {
			if e.parent != nil {
				e.destroy()
			} else {
				p.ctr.ConnsTimedOut++
				e.fail(unix.ETIMEDOUT)
			}
			return
		}
		e.rto.Backoff()
		_ = e.sendSyn(true)
		e.rtoAt = now + int64(e.rto.Current())
		return
	}
	if e.sndUna == e.sndMax {
		e.retries--
		return
	}
	if e.retries > p.cfg.Retries {
		p.ctr.ConnsTimedOut++
		e.fail(unix.ETIMEDOUT)
		return
	}
	p.ctr.RTOs++
	e.ctr.RTOs++
	if e.sb.InRecovery() {
		p.ctr.RTOsInRecovery++
	}
	e.undoOn = false // an RTO is not undone
	e.cc.OnRTO(e.sndUna.Size(e.sndMax), time.Duration(now))
	e.rto.Backoff()
	e.dupAcks = 0
	e.rttOn = false
	if e.sackOK && e.retries == 1 {
		// The first expiry: what the peer SACKed it has (unless it
		// reneged: processAck watches for that, and a second expiry
		// in a row goes back all the way). Every other segment sent is
		// deemed lost and resent, in slow start, before new data; the
		// SACKed ones are not.
		if e.sb.InRecovery() {
			e.sb.ExitRecovery()
			e.rackOnRecoveryExit()
		}
		e.rackMarkAllLost()
		// Until everything sent before the expiry is acknowledged, the
		// losses RACK finds are this episode's (Linux's CA_Loss), not a
		// new fast recovery with a reduction of its own.
		e.lossAfterRTO, e.lossPoint = true, e.sndMax
		if e.finQ && e.sndMax == e.finSeq.Add(1) {
			e.sndNxt = e.finSeq // the FIN goes again once the data before it has
		}
	} else {
		e.lossAfterRTO = false
		e.sb.Reset(e.sndUna)
		e.rackClear()
		e.sndNxt = e.sndUna // go back: resend from SND.UNA in slow start
	}
	e.rtoAt = now + int64(e.rto.Current())
	e.output()
}
