package tcp

// TIME-WAIT without the connection.
//
// The side that closes first keeps the connection's 4-tuple for 2*MSL
// (RFC 9293 §3.6), so that a late segment of this incarnation cannot be
// taken for the next one and the peer's retransmitted FIN gets its ACK.
// A whole Endpoint (over a kilobyte) for each would cost a server that
// closes 30,000 connections a second two gigabytes of TIME-WAIT; Linux
// keeps a small timewait sock instead, and so does this engine: once the
// application has closed a connection in TIME-WAIT, it becomes a twEntry
// (about a hundred bytes with its table slot) in a table of its own, and
// the Endpoint goes. All entries live for the same 2*MSL, so they expire in
// the order they came: the table is a FIFO, and expiry costs O(1) per entry
// without a timer each. Config.MaxTimeWait bounds the table, as Linux's
// tcp_max_tw_buckets does: past it, a connection skips TIME-WAIT (counted).

// twEntry is one connection in TIME-WAIT.
type twEntry struct {
	t          Tuple
	sndNxt     Seq // past our FIN
	rcvNxt     Seq // past the peer's FIN
	tsRecent   uint32
	tsOK       bool
	expires    int64
	prev, next *twEntry // the FIFO, oldest first
}

// twTable holds the TIME-WAIT entries.
type twTable struct {
	m          map[Tuple]*twEntry
	head, tail *twEntry
	free       []*twEntry
}

func (w *twTable) len() int { return len(w.m) }

func (w *twTable) append(tw *twEntry) {
	tw.prev, tw.next = w.tail, nil
	if w.tail != nil {
		w.tail.next = tw
	} else {
		w.head = tw
	}
	w.tail = tw
}

func (w *twTable) unlink(tw *twEntry) {
	if tw.prev != nil {
		tw.prev.next = tw.next
	} else {
		w.head = tw.next
	}
	if tw.next != nil {
		tw.next.prev = tw.prev
	} else {
		w.tail = tw.prev
	}
	tw.prev, tw.next = nil, nil
}

// remove takes tw out of the table and recycles it.
func (w *twTable) remove(tw *twEntry) {
	w.unlink(tw)
	delete(w.m, tw.t)
	*tw = twEntry{}
	if len(w.free) < 1024 {
		w.free = append(w.free, tw)
	}
}

// toTimeWait replaces a closed connection that entered TIME-WAIT by an
// entry in the TIME-WAIT table, and frees the endpoint. The caller has
// made sure the application no longer uses e (orphan).
func (e *Endpoint) toTimeWait() {
	p := e.p
	w := &p.tw
	if w.len() >= p.cfg.MaxTimeWait {
		p.ctr.TimeWaitOverflow++
		e.destroy()
		return
	}
	var tw *twEntry
	if n := len(w.free); n > 0 {
		tw = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		tw = new(twEntry)
	}
	*tw = twEntry{t: e.t, sndNxt: e.sndMax, rcvNxt: e.rcvNxt, tsRecent: e.tsRecent, tsOK: e.tsOK, expires: e.stateAt}
	e.destroy()
	if w.m == nil {
		w.m = make(map[Tuple]*twEntry)
	}
	w.m[tw.t] = tw
	w.append(tw)
}

// twAck acknowledges the peer's FIN again from a TIME-WAIT entry.
func (p *Proto) twAck(tw *twEntry) {
	var o Options
	opts := (*Options)(nil)
	if tw.tsOK {
		o.HasTS, o.TSVal, o.TSEcr = true, tsClock(p.now()), tw.tsRecent
		opts = &o
	}
	p.sendRaw(&tw.t, tw.sndNxt, tw.rcvNxt, FlagACK, 0, opts)
}

// twInput handles a segment for a connection in TIME-WAIT (RFC 9293
// §3.10.7.4, with RFC 7323's PAWS and RFC 6191's reuse by a new SYN). It
// returns true if the frame's reference was kept (a new incarnation).
func (p *Proto) twInput(tw *twEntry, t *Tuple, seg *segment) bool {
	f := seg.flags
	o := seg.opts
	if tw.tsOK && o.HasTS && !f.Has(FlagRST) && int32(o.TSVal-tw.tsRecent) < 0 {
		p.ctr.PAWSDropped++
		p.twAck(tw)
		return false
	}
	if f.Has(FlagSYN) && !f.Has(FlagACK) {
		newer := seg.seq.GreaterThan(tw.rcvNxt) || (tw.tsOK && o.HasTS && int32(o.TSVal-tw.tsRecent) > 0)
		if l := p.listeners[t.LocalPort]; l != nil && newer {
			// A new incarnation of the connection (RFC 9293 §3.6.1).
			p.tw.remove(tw)
			return l.listenInput(t, seg)
		}
	}
	switch {
	case f.Has(FlagRST):
		if seg.seq == tw.rcvNxt {
			p.ctr.RSTsIn++
			p.tw.remove(tw)
		}
	case f.Has(FlagFIN):
		// The peer did not get our ACK of its FIN: again, and 2*MSL
		// more.
		tw.expires = p.now() + 2*int64(p.cfg.MSL)
		p.tw.unlink(tw)
		p.tw.append(tw)
		p.twAck(tw)
	case f.Has(FlagSYN) || seg.b.Len > 0:
		if p.challengeOK(p.now()) {
			p.twAck(tw)
		}
	}
	return false
}

// expireTimeWait drops the TIME-WAIT entries whose 2*MSL has passed.
func (p *Proto) expireTimeWait(now int64) {
	for tw := p.tw.head; tw != nil && tw.expires <= now; tw = p.tw.head {
		p.tw.remove(tw)
	}
}

// TimeWait returns the number of connections in TIME-WAIT kept without
// their endpoint.
func (p *Proto) TimeWait() int { return p.tw.len() }
