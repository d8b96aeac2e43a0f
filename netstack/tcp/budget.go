package tcp

import (
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
)

// Frame budgets.
//
// On a zero-copy stack every queued byte sits in a frame of a fixed pool
// that the link shares with the kernel: a send queue keeps each segment's
// frame until it is acknowledged, a receive queue keeps each received frame
// until the application is done with it. Bytes are the wrong unit (a
// 100-byte segment costs a whole frame), and the pool is the same for every
// connection, so a few connections that stop making progress (a peer that
// never reads, an application that never pops) could otherwise hold every
// frame and deny service to the rest. Config.Frames turns frame budgets on:
//
//   - Every connection may hold, in each direction, its share of
//     Config.Frames: Frames / (2 * (holders + 1)), where holders is the
//     number of connections holding at least one frame (the +1 leaves room
//     for the next one to start), never less than the floor (budgetFloor
//     frames, so each connection can always make progress) and never more
//     than the ceiling (Frames / 4, so a connection alone can still fill a
//     fast path). Connections that hold nothing do not dilute the share.
//   - The receive window is advertised from the share: never more than
//     the frames the connection may still fill (and, as always, its right
//     edge never moves back: a window closes by not advancing).
//   - Send takes no push that would take the send queue beyond the share
//     (EAGAIN: back-pressure to the application); an empty queue always
//     takes one push, so no push is too large to ever go.
//   - Shares shrink as connections start holding frames, but frames already
//     held cannot be given back by closing a window. When the connections
//     hold more than three quarters of Frames, or the link's free frames
//     run low (nic.Link.Scarce), the engine reclaims: every
//     connection holding more than its share has its out-of-order queue
//     dropped (reneging, as RFC 2018 allows) and the rest of its queues
//     (what is not on the TX ring) spilled out of the frames into memory
//     of its own, newest data first, down to its share; if frames are
//     still scarce, every connection's queues are spilled. Spilled data is
//     copied back into a frame when it is sent (again) or received by the
//     application. Nothing is lost: a stuck connection costs memory
//     instead of frames. Spilled data still counts against the window and
//     the send share, so a peer that never reads cannot make the engine
//     keep more than its share in memory either.
//   - If frames are still scarce after that, payload is kept only in order
//     and only for connections below the floor (the segment at RCV.NXT of
//     a connection holding nothing is always taken); the rest is dropped
//     and the peers resend. Handshakes need no frame and go on.

const (
	// budgetFloor is the frames per direction a connection may always
	// hold, whatever the number of connections.
	budgetFloor = 4
	// reclaimEvery bounds how often the high watermark (three quarters of
	// Frames held) starts a reclaim pass: a pass walks every connection
	// holding frames, and when all are within their shares it finds
	// nothing to do.
	reclaimEvery = int64(time.Millisecond)
	// noFrame marks a queued buffer whose bytes were spilled out of the
	// link's frames: its Data is memory of the endpoint's own.
	noFrame = ^uint32(0)
)

// budget is the engine's frame accounting.
type budget struct {
	frames  int       // Config.Frames; 0: budgets off
	held    int       // frames held by all connections
	holders int       // connections holding at least one frame
	share   int       // per-direction share at the current holder count
	head    *Endpoint // the holders, in a list for reclaim
	lastRec int64     // time of the last reclaim pass
	high    int       // held above this starts a reclaim pass
}

func (b *budget) init(frames int) {
	b.frames = frames
	b.high = frames - frames/4
	b.update()
}

// shareFor is the per-direction share with h connections holding frames.
func shareFor(frames, h int) int {
	if frames <= 0 {
		return 0
	}
	s := frames / (2 * (h + 1))
	return min(max(s, budgetFloor), max(frames/4, budgetFloor))
}

func (b *budget) update() { b.share = shareFor(b.frames, b.holders) }

// Share returns the frames per direction a connection may hold now (0 when
// frame budgets are off).
func (p *Proto) Share() int { return p.bud.share }

// FramesHeld returns the frames held by every connection's queues.
func (p *Proto) FramesHeld() int { return p.bud.held }

// hold records that e holds d more frames in its send (snd) or receive
// queues, keeping the holder list and the share current.
func (e *Endpoint) hold(d int, snd bool) {
	if snd {
		e.sndFrames += d
	} else {
		e.rcvFrames += d
	}
	b := &e.p.bud
	b.held += d
	n := e.sndFrames + e.rcvFrames
	switch {
	case n > 0 && !e.holding:
		e.holding = true
		e.hNext, e.hPrev = b.head, nil
		if b.head != nil {
			b.head.hPrev = e
		}
		b.head = e
		b.holders++
		b.update()
	case n == 0 && e.holding:
		e.holding = false
		if e.hPrev != nil {
			e.hPrev.hNext = e.hNext
		} else {
			b.head = e.hNext
		}
		if e.hNext != nil {
			e.hNext.hPrev = e.hPrev
		}
		e.hNext, e.hPrev = nil, nil
		b.holders--
		b.update()
	}
}

// Held returns the frames the endpoint holds in its send queue and in its
// receive and out-of-order queues, and the segments of each that were
// spilled out of frames (budget.go).
func (e *Endpoint) Held() (snd, rcv, sndSpilled, rcvSpilled int) {
	return e.sndFrames, e.rcvFrames, e.sndSpilled, e.rcvSpilled
}

// rcvRoomFrames is how many more frames the receive side may fill (spilled
// segments count as the frames they came from), or -1 when budgets are
// off.
func (e *Endpoint) rcvRoomFrames() int {
	if e.p.bud.frames <= 0 {
		return -1
	}
	return max(e.p.bud.share-e.rcvFrames-e.rcvSpilled, 0)
}

// sndFull reports whether a push of segs more frames would take the send
// queue beyond its share (an empty queue always takes one push).
func (e *Endpoint) sndFull(segs int) bool {
	b := &e.p.bud
	return b.frames > 0 && e.sqN > 0 && e.sndFrames+e.sndSpilled+segs > b.share
}

// sndRoomy reports whether the send queue has drained enough for a
// refused push to be worth retrying (EventWritable).
func (e *Endpoint) sndRoomy() bool {
	b := &e.p.bud
	return e.sqBytes < e.p.cfg.SndBuf/2 && (b.frames <= 0 || e.sndFrames+e.sndSpilled <= b.share/2)
}

// pressure starts a reclaim pass (at most one per reclaimEvery) while the
// connections hold more than the high watermark.
//
// allocates, only when connections hold more than their shares).
//
//demixdp:hotpath — allocates nothing (a pass spills, and spilling
func (p *Proto) pressure() {
	b := &p.bud
	if b.frames <= 0 || b.held <= b.high {
		return
	}
	if now := p.now(); now-b.lastRec >= reclaimEvery {
		b.lastRec = now
		p.reclaim()
	}
}

// scarce reports that the link is short of frames, after a reclaim pass
// (at most one per clock reading) has tried to give some back.
func (p *Proto) scarce() bool {
	if !p.link.Scarce() {
		return false
	}
	if p.bud.frames > 0 {
		if now := p.now(); p.bud.lastRec != now {
			p.bud.lastRec = now
			p.reclaim()
		}
	}
	return p.link.Scarce()
}

// reclaim trims every connection holding more than its share down to it
// (out-of-order queues are dropped, the rest spilled out of the frames);
// if frames are still scarce, it spills every connection's queues.
func (p *Proto) reclaim() {
	p.ctr.Reclaims++
	p.trim(p.bud.share)
	if p.link.Scarce() {
		p.trim(0)
	}
}

func (p *Proto) trim(limit int) {
	for e := p.bud.head; e != nil; {
		next := e.hNext // trimming may take e off the list
		if e.rcvFrames > limit {
			if e.reasm.Len() > 0 {
				p.ctr.OOOPruned++
				e.pruneOOO()
			}
			e.spillRQ(limit)
		}
		if e.sndFrames > limit {
			e.spillSQ(limit)
		}
		e = next
	}
}

// spillRQ copies the newest in-order received data out of its frames until
// the receive side holds at most limit frames.
func (e *Endpoint) spillRQ(limit int) {
	p := e.p
	n, bytes := 0, 0
	for i := e.rqN - 1; i >= 0 && e.rcvFrames-n > limit; i-- {
		if b := e.rqAt(i); b.Frame != noFrame {
			n++
			bytes += b.Len
		}
	}
	if n == 0 {
		return
	}
	slab := make([]byte, bytes)
	for i := e.rqN - 1; i >= 0 && n > 0; i-- {
		b := e.rqAt(i)
		if b.Frame == noFrame {
			continue
		}
		m := copy(slab, b.Bytes())
		p.link.Release(b.Frame)
		*b = nic.Buf{Frame: noFrame, Data: slab[:m:m], Len: m}
		slab = slab[m:]
		n--
		e.rcvSpilled++
		e.hold(-1, false)
		p.ctr.SpilledFrames++
	}
}

// spillSQ copies the newest queued send data that is not being transmitted
// out of its frames until the send queue holds at most limit frames.
func (e *Endpoint) spillSQ(limit int) {
	p := e.p
	n, bytes := 0, 0
	for i := e.sqN - 1; i >= 0 && e.sndFrames-n > limit; i-- {
		if s := e.sqAt(i); s.b.Frame != noFrame && !p.link.Busy(s.b.Frame) {
			n++
			bytes += s.b.Len
		}
	}
	if n == 0 {
		return
	}
	slab := make([]byte, bytes)
	for i := e.sqN - 1; i >= 0 && n > 0; i-- {
		s := e.sqAt(i)
		if s.b.Frame == noFrame || p.link.Busy(s.b.Frame) {
			continue
		}
		m := copy(slab, s.b.Bytes())
		p.link.Release(s.b.Frame)
		s.b = nic.Buf{Frame: noFrame, Data: slab[:m:m], Len: m}
		slab = slab[m:]
		n--
		e.sndSpilled++
		e.hold(-1, true)
		p.ctr.SpilledFrames++
	}
}

// unspill copies a spilled buffer into a fresh frame (with headroom in
// front, as Send requires) that the caller owns. It refuses while frames
// are scarce, so spilled data never eats the reserve kept for ACKs.
func (p *Proto) unspill(b *nic.Buf) (nic.Buf, bool) {
	if p.link.Scarce() {
		return nic.Buf{}, false
	}
	nb, err := p.link.Alloc()
	if err != nil {
		p.ctr.NoBufs++
		return nic.Buf{}, false
	}
	if nb.Off < Headroom || len(nb.Data)-nb.Off < b.Len {
		p.link.Release(nb.Frame)
		p.ctr.NoBufs++
		return nic.Buf{}, false
	}
	nb.Len = copy(nb.Data[nb.Off:], b.Bytes())
	p.ctr.UnspillBytes += uint64(nb.Len)
	return nb, true
}
