package tcp

import (
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// segment is a received segment being processed. b is the payload view
// (Off at the first data octet) of the frame whose reference Input holds.
type segment struct {
	h        Header
	b        nic.Buf
	flags    Flags
	seq, ack Seq
	opts     *Options
}

// len is SEG.LEN: payload plus SYN and FIN.
func (s *segment) len() uint32 {
	n := uint32(s.b.Len)
	if s.flags.Has(FlagSYN) {
		n++
	}
	if s.flags.Has(FlagFIN) {
		n++
	}
	return n
}

// listenInput handles a segment to a listener (RFC 9293 §3.10.7.2) with
// SYN cookies (RFC 4987) when the half-open backlog is full.
func (l *Endpoint) listenInput(t *Tuple, seg *segment) bool {
	p := l.p
	f := seg.flags
	switch {
	case f.Has(FlagRST):
		return false
	case f.Has(FlagACK):
		if f.Has(FlagSYN) {
			p.sendReset(t, seg.h, seg.b.Len)
			return false
		}
		now := p.now()
		mss, ok := p.cfg.Cookies.Validate(seg.ack.Add(^uint32(0)), *t, seg.seq.Add(^uint32(0)), time.Duration(now))
		if !ok {
			p.ctr.SynCookiesBad++
			p.sendReset(t, seg.h, seg.b.Len)
			return false
		}
		if len(l.acceptQ) >= l.backlog {
			p.ctr.AcceptQueueFull++
			return false
		}
		p.ctr.SynCookiesOK++
		c := l.child(t, seg.ack.Add(^uint32(0)))
		var o Options
		o.MSS, o.HasMSS = mss, true
		c.negotiate(&o, true)
		c.irs = seg.seq.Add(^uint32(0))
		c.rcvNxt = seg.seq
		c.reasm.Reset(c.rcvNxt)
		c.rcvAdv = c.rcvNxt.Add(min(c.free(), 0xffff)) // the window of the cookie SYN-ACK
		c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1)
		c.state = StateSynRcvd
		l.synRcvd++
		return c.input(seg)
	case !f.Has(FlagSYN):
		// Neither RST, ACK nor SYN: RFC 9293 §3.10.7.2 drops it.
		p.ctr.NoACK++
		return false
	}
	// A SYN.
	if len(l.acceptQ) >= l.backlog {
		// As Linux: no SYN is answered while the accept queue is full;
		// the client retransmits.
		p.ctr.AcceptQueueFull++
		return false
	}
	now := p.now()
	if l.synRcvd >= p.cfg.MaxSynBacklog {
		var o Options
		c := Endpoint{p: p}
		c.initConn(0)
		o.HasMSS = true
		o.MSS = uint16(c.rcvMSS)
		if seg.opts.HasMSS {
			o.MSS = min(o.MSS, seg.opts.MSS)
		}
		cookie := p.cfg.Cookies.Generate(*t, seg.seq, o.MSS, time.Duration(now))
		p.ctr.SynCookiesSent++
		o.MSS = uint16(c.rcvMSS)
		p.sendRaw(t, cookie, seg.seq.Add(1), FlagSYN|FlagACK, uint16(min(p.cfg.RcvBuf, 0xffff)), &o)
		return false
	}
	c := l.child(t, p.cfg.ISN.ISN(*t, time.Duration(now)))
	c.negotiate(seg.opts, false)
	c.irs = seg.seq
	c.rcvNxt = seg.seq.Add(1)
	c.reasm.Reset(c.rcvNxt)
	c.rcvAdv = c.rcvNxt
	c.sndWnd = uint32(seg.h.Window())
	c.sndWl1, c.sndWl2 = seg.seq, c.iss
	c.state = StateSynRcvd
	c.sndNxt = c.iss.Add(1)
	c.sndMax = c.sndNxt
	l.synRcvd++
	_ = c.sendSyn(true)
	c.rtoAt = now + int64(c.rto.Current())
	c.stateAt = 0
	c.schedule()
	return false
}

// child creates a connection of listener l for t in the table.
func (l *Endpoint) child(t *Tuple, iss Seq) *Endpoint {
	c := l.p.NewEndpoint(0)
	c.t = *t
	c.parent = l
	c.noDelay, c.keepAlive = l.noDelay, l.keepAlive
	c.keepIdle, c.keepIntvl = l.keepIdle, l.keepIntvl
	c.initConn(iss)
	l.p.conns[*t] = c
	c.inTable = true
	return c
}

// input handles a segment for a connection (RFC 9293 §3.10.7.3, §3.10.7.4).
// It returns true if the frame's reference was kept.
func (e *Endpoint) input(seg *segment) bool {
	p := e.p
	now := p.now()
	e.ctr.SegsRcvd++
	if e.state == StateSynSent {
		return e.synSentInput(seg, now)
	}
	f := seg.flags
	o := seg.opts
	// RFC 7323 §5: PAWS.
	if e.tsOK && o.HasTS && !f.Has(FlagRST) && int32(o.TSVal-e.tsRecent) < 0 &&
		now-e.tsRecentT < int64(24*24*time.Hour) {
		p.ctr.PAWSDropped++
		e.sendAck()
		return false
	}
	// Acceptability of the sequence number (RFC 9293 §3.10.7.4 first),
	// with one allowance Linux and the BSDs make: a segment without data
	// whose sequence number is the right edge of the window is accepted.
	// A peer that filled the window and lost some of that data sends its
	// ACKs with SEG.SEQ = SND.NXT, which is our right edge while the hole
	// lasts: refusing them (RFC 9293's table) would throw away every
	// acknowledgement of our own data until both ends time out. A RST
	// gets no such allowance (RFC 5961 §3).
	wnd := e.rcvWnd()
	slen := seg.len()
	ok := false
	switch {
	case slen == 0 && !f.Has(FlagRST):
		ok = e.rcvNxt.LessEq(seg.seq) && seg.seq.LessEq(e.rcvNxt.Add(wnd))
	case slen == 0 && wnd == 0:
		ok = seg.seq == e.rcvNxt
	case slen == 0:
		ok = seg.seq.InWindow(e.rcvNxt, wnd)
	case wnd == 0:
		ok = false
	default:
		ok = seg.seq.InWindow(e.rcvNxt, wnd) || seg.seq.Add(slen-1).InWindow(e.rcvNxt, wnd)
	}
	if !ok && e.state == StateSynRcvd && f.Has(FlagSYN) && seg.seq == e.irs {
		if !f.Has(FlagACK) || seg.ack != e.iss.Add(1) {
			// The peer retransmitted its SYN: our SYN-ACK was lost.
			_ = e.sendSyn(true)
			return false
		}
		// Simultaneous open (RFC 9293 figure 8): the peer's SYN-ACK
		// acknowledges our SYN. Treat it as the ACK, without its SYN.
		ok = true
		f &^= FlagSYN
		seg.flags = f
		seg.seq = seg.seq.Add(1)
	}
	if !ok {
		p.ctr.OutOfWindow++
		if !f.Has(FlagRST) {
			if seg.b.Len > 0 && seg.seq.Add(uint32(seg.b.Len)).LessEq(e.rcvNxt) {
				// Data we had already: the peer retransmitted it in
				// vain. Say so (RFC 2883), so it can undo.
				e.reportDup(seg.seq, seg.seq.Add(uint32(seg.b.Len)))
			}
			e.sendAck()
		}
		return false
	}
	// RFC 5961 §3: RST.
	if f.Has(FlagRST) {
		if seg.seq != e.rcvNxt {
			if p.challengeOK(now) {
				e.sendAck()
			}
			return false
		}
		p.ctr.RSTsIn++
		switch {
		case e.state == StateSynRcvd && e.parent != nil:
			e.destroy() // back to LISTEN: the listener stays
		case e.state == StateSynRcvd:
			p.ctr.ConnsReset++
			e.fail(unix.ECONNREFUSED)
		case e.state == StateTimeWait || e.state == StateClosing || e.state == StateLastAck:
			e.destroy()
		default:
			p.ctr.ConnsReset++
			e.fail(unix.ECONNRESET)
		}
		return false
	}
	// RFC 5961 §4: SYN in a synchronized state.
	if f.Has(FlagSYN) {
		if p.challengeOK(now) {
			e.sendAck()
		}
		return false
	}
	if !f.Has(FlagACK) {
		// RFC 9293 §3.10.7.4, fifth check: "if the ACK bit is off, drop
		// the segment".
		p.ctr.NoACK++
		return false
	}
	// TS.Recent (RFC 7323 §4.3).
	if e.tsOK && o.HasTS && seg.seq.LessEq(e.lastAckTx) && int32(o.TSVal-e.tsRecent) >= 0 {
		e.tsRecent, e.tsRecentT = o.TSVal, now
	}
	e.lastRcv = now
	e.probes = 0
	if e.state == StateSynRcvd {
		if !seg.ack.InRange(e.sndUna.Add(1), e.sndNxt.Add(1)) {
			p.sendRaw(&e.t, seg.ack, 0, FlagRST, 0, nil)
			return false
		}
		if l := e.parent; l != nil {
			if len(l.acceptQ) >= l.backlog {
				p.ctr.AcceptQueueFull++
				return false // stays half-open; the SYN-ACK is retransmitted
			}
		}
		e.established(seg, now)
		if e.state == StateClosed {
			return false
		}
	}
	// RFC 5961 §5: ACK acceptability.
	if seg.ack.GreaterThan(e.sndMax) {
		p.ctr.BadACK++
		e.sendAck()
		return false
	}
	if seg.ack.LessThan(e.sndUna.Add(-e.maxWnd)) {
		p.ctr.BadACK++
		if p.challengeOK(now) {
			e.sendAck()
		}
		return false
	}
	if e.state == StateTimeWait {
		if f.Has(FlagFIN) {
			e.stateAt = now + 2*int64(p.cfg.MSL)
			e.sendAck()
			e.schedule()
		}
		return false
	}
	e.processAck(seg, now)
	if e.state == StateClosed {
		return false
	}
	kept := false
	if seg.b.Len > 0 || f.Has(FlagFIN) {
		switch e.state {
		case StateEstablished, StateFinWait1, StateFinWait2:
			kept = e.receive(seg, now)
		}
	}
	e.output()
	if e.ackNow {
		e.sendAck()
	}
	e.schedule()
	return kept
}

// established completes a handshake in SYN-RECEIVED.
func (e *Endpoint) established(seg *segment, now int64) {
	p := e.p
	if l := e.parent; l != nil && l.state != StateListen {
		e.orphan = true
		e.reset() // the listener is gone
		return
	}
	e.state = StateEstablished
	p.ctr.ConnsEstablished++
	e.rtoAt = 0
	e.retries = 0
	e.rto.ResetBackoff()
	e.sndUna = seg.ack
	e.sb.Reset(seg.ack)
	e.sndWnd = uint32(seg.h.Window()) << e.sndWScale
	e.maxWnd = max(e.maxWnd, e.sndWnd)
	e.sndWl1, e.sndWl2 = seg.seq, seg.ack
	if e.keepAlive {
		e.keepAt = now + int64(e.idle())
	}
	if l := e.parent; l != nil {
		l.synRcvd--
		l.acceptQ = append(l.acceptQ, e)
		e.queued = true
		if !l.orphan {
			p.note.Event(l.Cookie, EventAcceptable, nil)
		}
	} else {
		e.notify(EventEstablished)
	}
}

// synSentInput is RFC 9293 §3.10.7.3.
func (e *Endpoint) synSentInput(seg *segment, now int64) bool {
	p := e.p
	f := seg.flags
	if f.Has(FlagACK) && !seg.ack.InRange(e.iss.Add(1), e.sndNxt.Add(1)) {
		if !f.Has(FlagRST) {
			p.sendRaw(&e.t, seg.ack, 0, FlagRST, 0, nil)
		}
		return false
	}
	if f.Has(FlagRST) {
		if f.Has(FlagACK) {
			p.ctr.RSTsIn++
			e.fail(unix.ECONNREFUSED)
		}
		return false
	}
	if !f.Has(FlagSYN) {
		return false
	}
	e.negotiate(seg.opts, false)
	e.irs = seg.seq
	e.rcvNxt = seg.seq.Add(1)
	e.reasm.Reset(e.rcvNxt)
	e.rcvAdv = e.rcvNxt.Add(min(e.free(), 0xffff)) // the window of our SYN
	e.lastRcv = now
	if !f.Has(FlagACK) {
		// Simultaneous open.
		e.state = StateSynRcvd
		e.sndWnd = uint32(seg.h.Window())
		_ = e.sendSyn(true)
		e.rtoAt = now + int64(e.rto.Current())
		e.schedule()
		return false
	}
	if e.rto.Backoffs() == 0 {
		e.rto.Sample(time.Duration(now - e.lastSnd))
	}
	e.sndUna = seg.ack
	e.sb.Reset(e.sndUna)
	e.state = StateEstablished
	p.ctr.ConnsEstablished++
	e.rtoAt = 0
	e.rto.ResetBackoff()
	e.retries = 0
	e.sndWnd = uint32(seg.h.Window()) // never scaled in a SYN
	e.maxWnd = e.sndWnd
	e.sndWl1, e.sndWl2 = seg.seq, seg.ack
	if e.keepAlive {
		e.keepAt = now + int64(e.idle())
	}
	e.sendAck()
	e.notify(EventEstablished)
	e.output()
	e.schedule()
	return false
}

// processAck is the ACK step of §3.10.7.4 for synchronized states, with
// RTT sampling, congestion control and SACK/NewReno loss recovery.
func (e *Endpoint) processAck(seg *segment, now int64) {
	p := e.p
	ack := seg.ack
	o := seg.opts
	win := uint32(seg.h.Window()) << e.sndWScale
	// Window update (SND.WL1/WL2 rule).
	winChanged := false
	if e.sndWl1.LessThan(seg.seq) || (e.sndWl1 == seg.seq && e.sndWl2.LessEq(ack)) {
		winChanged = win != e.sndWnd
		e.sndWnd, e.sndWl1, e.sndWl2 = win, seg.seq, ack
		e.maxWnd = max(e.maxWnd, win)
	}
	if ack.GreaterThan(e.sndNxt) {
		// An ACK for data sent before an RTO rewound SND.NXT.
		e.sb.Sent(NextSegment{Seq: e.sndNxt, Len: e.sndNxt.Size(ack), Kind: SegNew})
		e.sndNxt = ack
	}
	var blocks []SACKBlock
	if e.sackOK && o.NumSACK > 0 {
		blocks = o.SACK[:o.NumSACK]
	}
	var parts [2 * MaxSACKBlocks]SACKBlock
	nparts, partsOK := 0, true
	dsack := false
	if e.sackOK {
		dsack = e.isDSACK(ack, blocks)
		nparts, partsOK = e.newSACKParts(ack, blocks, parts[:])
		e.rack.deliveredOK = false
	}
	newlySacked := e.sb.Update(ack, blocks)
	if e.sackOK && newlySacked > 0 {
		if partsOK {
			e.sackNewly(parts[:nparts], now)
		} else {
			e.sackNewly(blocks, now)
		}
	}
	if ack.GreaterThan(e.sndUna) {
		acked := e.sndUna.Size(ack)
		// RTT: timestamps (RFC 7323 §4) or one timed segment (Karn).
		if e.tsOK && o.HasTS && o.TSEcr != 0 {
			if d := int32(tsClock(now) - o.TSEcr); d >= 0 {
				e.rto.Sample(time.Duration(d) * time.Millisecond)
			}
		} else if e.rttOn && e.rttSeq.LessEq(ack) {
			e.rto.Sample(time.Duration(now - e.rttT))
			e.rttOn = false
		}
		e.sndUna = ack
		e.retries = 0
		e.rto.ResetBackoff()
		e.dupAcks = 0
		finAcked := e.finQ && ack == e.finSeq.Add(1)
		if finAcked {
			acked--
		}
		for e.sqN > 0 && e.sqAt(0).end().LessEq(ack) {
			s := e.sqAt(0)
			e.ctr.BytesAcked += uint64(s.b.Len)
			if !s.sacked {
				e.rackDelivered(s, now)
			}
			e.rackDrop(s)
			e.popSQ(nil, !e.orphan)
		}
		if e.sackOK && e.sqN > 0 && e.sqAt(0).sacked && e.sqAt(0).seq == ack {
			// The peer asks for data it SACKed: it reneged (RFC 2018
			// s8, as this engine does under frame pressure). Forget
			// every SACK; RACK finds what is missing again.
			e.renege()
		}
		if e.wantWr && e.sndRoomy() {
			e.wantWr = false
			e.notify(EventWritable)
		}
		if e.sb.InRecovery() {
			if ack.GreaterEq(e.sb.RecoveryPoint()) {
				e.sb.ExitRecovery()
				e.cc.OnRecoveryExit(time.Duration(now))
				e.rackOnRecoveryExit()
			} else if !e.sackOK {
				// RFC 6582 partial ACK: retransmit the next hole.
				e.retransmitHead()
			}
		} else {
			e.cc.OnAck(acked, e.rto.SRTT(), time.Duration(now))
		}
		if e.sndUna == e.sndMax {
			e.rtoAt = 0
			e.persist = false
		} else {
			e.rtoAt = now + int64(e.rto.Current())
			e.persist = false
		}
		if finAcked {
			switch e.state {
			case StateFinWait1:
				e.state = StateFinWait2
				if e.orphan {
					e.stateAt = now + int64(p.cfg.FinTimeout)
				}
			case StateClosing:
				e.enterTimeWait(now)
			case StateLastAck:
				e.destroy()
				return
			}
		}
	} else if ack == e.sndUna && e.sndUna != e.sndMax {
		// A duplicate ACK: with SACK, one that SACKs new data even if it
		// carries data (RFC 6675 §2, as Linux counts SACKed segments);
		// without, RFC 5681 §2's strict definition.
		dup := newlySacked > 0
		if !e.sackOK {
			dup = seg.b.Len == 0 && !seg.flags.Has(FlagFIN) && !winChanged
		}
		if dup {
			e.dupAcks++
			e.ctr.DupACKs++
		}
	}
	if e.sackOK {
		// RACK (rack.go) decides what is lost, on every ACK.
		if dsack {
			e.rackOnDSACK()
			e.undoOnDSACK(blocks[0], now)
		}
		e.rackDetect(now)
		e.tlpOnAck(ack, dsack, now)
		if e.lossAfterRTO && ack.GreaterEq(e.lossPoint) {
			e.lossAfterRTO = false
		}
		if !e.sb.InRecovery() && !e.lossAfterRTO && e.rack.lostBytes > 0 && e.sndNxt == e.sndMax {
			e.enterRecovery(now)
		}
	} else if !e.sb.InRecovery() && e.sndUna != e.sndMax && e.dupAcks >= DefaultDupThresh {
		e.enterRecovery(now)
	}
	if e.persist && e.sndWnd > 0 {
		e.persist = false
		e.rtoAt = 0
	}
}

// enterRecovery starts fast retransmit / fast recovery (RFC 6675 §5,
// RFC 6582).
func (e *Endpoint) enterRecovery(now int64) {
	e.p.ctr.FastRecoveries++
	e.ctr.FastRecoveries++
	flight := e.sndUna.Size(e.sndMax)
	e.cc.OnLoss(flight, time.Duration(now))
	e.undoN, e.undoRetrans, e.undoOn = 0, 0, true
	e.sb.EnterRecovery()
	e.rack.tlpAt = 0
	if !e.sackOK {
		// With SACK, output retransmits what RACK marked lost.
		e.retransmitHead()
	}
	e.rtoAt = now + int64(e.rto.Current())
}

// undoMax bounds the retransmissions of a fast recovery that can be
// undone: one with more was not a little reordering.
const undoMax = 16

// undoOnRetransmit records a retransmission of the current recovery.
func (e *Endpoint) undoOnRetransmit(seq Seq) {
	if int(e.undoN) == undoMax {
		e.undoOn = false
		return
	}
	e.undoSeq[e.undoN] = seq
	e.undoN++
	e.undoRetrans++
}

// undoOnDSACK counts a D-SACK that reports one of the last fast recovery's
// retransmissions as a duplicate: once every one of them has been, the
// losses were not losses (reordering, a late ACK) and the window comes
// back (Linux's tcp_try_undo_dsack). A D-SACK of anything else (a
// duplicate the network made of an original) does not count.
func (e *Endpoint) undoOnDSACK(b SACKBlock, now int64) {
	if !e.undoOn || e.undoRetrans <= 0 {
		return
	}
	for i := 0; i < int(e.undoN); i++ {
		if e.undoSeq[i] == b.Start {
			e.undoSeq[i] = e.undoSeq[e.undoN-1]
			e.undoN--
			e.undoRetrans--
			break
		}
	}
	if e.undoRetrans == 0 && e.undoN == 0 {
		e.undoOn = false
		if e.sb.InRecovery() {
			// Back to the open state, as Linux goes: a real loss found
			// later is a new episode, with its own reduction.
			e.sb.ExitRecovery()
			e.cc.OnRecoveryExit(time.Duration(now))
			e.rackOnRecoveryExit()
		}
		e.cc.Undo()
		e.p.ctr.SpuriousRecoveries++
	}
}

// retransmitHead resends the segment at SND.UNA (or the FIN).
func (e *Endpoint) retransmitHead() {
	if e.sqN > 0 {
		s := e.sqAt(0)
		if e.xmit(0, true) == nil {
			e.sb.Sent(NextSegment{Seq: s.seq, Len: uint32(s.b.Len), Kind: SegLost})
		}
		return
	}
	if e.finQ && e.sndUna == e.finSeq {
		e.sendFin(true)
	}
}

// receive queues the payload of an acceptable segment and handles its FIN
// (RFC 9293 §3.10.7.4 seventh and eighth). It returns true if the frame's
// reference moved to the receive or reassembly queue.
func (e *Endpoint) receive(seg *segment, now int64) bool {
	p := e.p
	seq := seg.seq
	n := uint32(seg.b.Len)
	fin := seg.flags.Has(FlagFIN)
	// Trim what is before RCV.NXT and beyond the window.
	if seq.LessThan(e.rcvNxt) {
		d := seq.Size(e.rcvNxt)
		if d >= n {
			d = n
		}
		if d > 0 {
			e.reportDup(seq, seq.Add(d))
			e.ackNow = true
		}
		seg.b.TrimFront(int(d))
		n -= d
		seq = seq.Add(d)
	}
	wnd := e.rcvWnd()
	if off := e.rcvNxt.Size(seq); n > 0 && off+n > wnd {
		cut := off + n - min(wnd, off+n)
		n -= min(cut, n)
		seg.b.Len = int(n)
		fin = false
	}
	if n > 0 && p.scarce() && (seq != e.rcvNxt || e.rcvFrames >= budgetFloor) {
		// Free frames are running out even after reclaiming
		// (budget.go): unless this is the next in-order segment of a
		// connection holding less than the floor (one holding nothing
		// always gets its segment at RCV.NXT), keep none of this
		// payload (its ACK was processed, so send queues keep draining)
		// and let the peer resend it; a FIN behind it waits for the
		// resend too. The out-of-order queue goes as well, as Linux
		// prunes it under memory pressure: its frames could only come
		// back once the gap is filled, and the data that fills it is
		// what we now refuse.
		p.ctr.RcvPressureDrops++
		if e.reasm.Len() > 0 {
			p.ctr.OOOPruned++
			e.pruneOOO()
		}
		e.ackNow = true
		n, fin = 0, false
	}
	if fin {
		e.finPend, e.finAt = true, seq.Add(n)
	}
	kept := false
	inOrder := seq == e.rcvNxt
	if n > 0 {
		if inOrder && e.reasm.Len() == 0 {
			if e.rqN >= maxRQ {
				p.ctr.RcvQueueFull++
				e.ackNow = true
				return false
			}
			if e.reasm.Advance(n) == nil {
				e.rcvNxt = e.rcvNxt.Add(n)
				e.pushRQ(seg.b)
				kept = true
				e.unacked += int(n)
			}
		} else {
			kept = e.insertOOO(seg.b, seq, n)
			e.ackNow = true
		}
	}
	if e.finPend && e.rcvNxt == e.finAt && !e.finRcvd {
		e.finRcvd = true
		e.finPend = false
		e.rcvNxt = e.rcvNxt.Add(1)
		e.ackNow = true
		switch e.state {
		case StateEstablished:
			e.state = StateCloseWait
		case StateFinWait1:
			if e.finQ && e.sndUna == e.finSeq.Add(1) {
				e.enterTimeWait(now)
			} else {
				e.state = StateClosing
			}
		case StateFinWait2:
			e.enterTimeWait(now)
		}
		e.notify(EventReadable)
	}
	if !e.ackNow {
		switch {
		case e.unacked >= maxStretch:
			e.ackNow = true
		case e.unacked >= 2*int(e.sndMSS):
			// RFC 5681 wants an ACK for every second full segment; it
			// goes at the end of the receive batch (EndBatch), one for
			// all the batch brought, as Linux acknowledges behind GRO.
			e.deferAck()
		}
		if !e.ackNow && e.delackAt == 0 {
			e.delackAt = now + int64(p.cfg.DelayedACK)
		}
	}
	return kept
}

// insertOOO queues an out-of-order (or gap-filling) segment and moves what
// became in-order to the receive queue. Each stored piece owns a
// reference on the frame (the caller's, and one more for each further
// piece).
func (e *Endpoint) insertOOO(b nic.Buf, seq Seq, n uint32) bool {
	p := e.p
	stored, err := e.reasm.Insert(seq, n, b)
	if err != nil || stored == 0 {
		if err != nil {
			p.ctr.OOODropped++
		} else if n > 0 {
			e.reportDup(seq, seq.Add(n)) // all of it was queued already
		}
		e.drainOOO()
		return false
	}
	p.ctr.OOOQueued++
	for i := 1; i < stored; i++ {
		p.link.Ref(b.Frame)
	}
	e.hold(stored, false)
	e.drainOOO()
	return true
}

// drainOOO moves the pieces at RCV.NXT to the receive queue.
func (e *Endpoint) drainOOO() {
	for {
		pc, ok := e.reasm.Pop()
		if !ok {
			break
		}
		b := pc.Handle
		b.Off += int(pc.Off)
		b.Len = int(pc.Len)
		e.hold(-1, false)
		e.rcvNxt = pc.Seq.Add(pc.Len)
		if e.rqN >= maxRQ {
			// Cannot happen while the window accounts the queue; drop
			// defensively and count.
			e.p.ctr.RcvQueueFull++
			e.p.link.Release(b.Frame)
			continue
		}
		e.pushRQ(b)
	}
}

func (e *Endpoint) pushRQ(b nic.Buf) {
	if e.rqN == len(e.rq) {
		c := max(len(e.rq)*2, initialQ)
		q := e.p.rqPool.get(c)
		for i := 0; i < e.rqN; i++ {
			j := e.rqHead + i
			if j >= len(e.rq) {
				j -= len(e.rq)
			}
			q[i] = e.rq[j]
		}
		e.p.rqPool.put(e.rq)
		e.rq, e.rqHead = q, 0
	}
	i := e.rqHead + e.rqN
	if i >= len(e.rq) {
		i -= len(e.rq)
	}
	e.rq[i] = b
	e.rqN++
	e.rqBytes += b.Len
	e.hold(1, false)
	e.ctr.BytesRcvd += uint64(b.Len)
	if e.rqN == 1 {
		e.notify(EventReadable)
	}
}

func (e *Endpoint) enterTimeWait(now int64) {
	e.state = StateTimeWait
	e.rtoAt, e.delackAt, e.keepAt, e.persist = 0, 0, 0, false
	e.stateAt = now + 2*int64(e.p.cfg.MSL)
	// Nothing can be sent any more: drop the send queue.
	for e.sqN > 0 {
		e.popSQ(nil, !e.orphan)
	}
}
