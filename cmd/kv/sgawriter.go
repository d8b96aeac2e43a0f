package main

import (
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// sgaWriter is the queue server's Reply: it encodes replies straight into
// SGAs from SGAAlloc (no intermediate buffer) and pushes each array as it
// fills and at the end of every batch. A stored value longer than refMin
// is not copied when the command runs: the writer keeps a reference to it
// (stored values never change in place) and copies it into arrays of up to
// MaxSegments frames as pushes go out, so a large GET holds no more frames
// than one array, however long the value.
//
// Replies leave in order: a FIFO of pieces (filled arrays, value
// references, and bytes spilled to Go memory when no frame was free), with
// at most one array refused by Push (pending) in front of them.
type sgaWriter struct {
	s *queueServer
	c *qconn

	cur      *libos.SGA // the array being filled (not yet in q)
	seg, off int        // where the next byte goes in cur

	q       []piece
	head    int
	pending *libos.SGA // built, refused by Push: goes first

	unsent  int  // reply bytes not yet accepted by Push
	blocked bool // a push or an SGAAlloc was refused: wait for a completion or a retry
}

// piece is one part of the reply stream: a filled array, or bytes to copy
// into arrays when they are sent (a stored value, or spilled bytes).
type piece struct {
	sga *libos.SGA
	ref []byte
	off int
}

// refMin is the shortest value sent by reference rather than copied into
// the current array when the command runs.
const refMin = 2048

func (w *sgaWriter) init(s *queueServer, c *qconn) { w.s, w.c = s, c }

// parked reports whether the connection must stop executing requests until
// its replies drain.
func (w *sgaWriter) parked(s *queueServer) bool { return w.blocked || w.unsent >= parkAt }

// write copies b into the reply stream.
//
//demixdp:hotpath — allocates nothing while frames are available.
func (w *sgaWriter) write(b []byte) {
	if w.c.closed {
		return
	}
	w.unsent += len(b)
	for len(b) > 0 {
		if w.cur == nil {
			if !w.newArray(len(b)) {
				w.spill(b)
				return
			}
		}
		dst := w.cur.Segs[w.seg][w.off:]
		n := copy(dst, b)
		b = b[n:]
		w.off += n
		if w.off == len(w.cur.Segs[w.seg]) {
			w.seg++
			w.off = 0
			if w.seg == len(w.cur.Segs) {
				// Full: queue it and push what can go now, so that the
				// client starts receiving and a refusal is seen early.
				w.q = append(w.q, piece{sga: w.cur})
				w.cur = nil
				w.flush()
				if w.c.closed {
					return
				}
			}
		}
	}
}

// newArray allocates the array for the next need bytes: one frame for
// small replies, up to MaxSegments for longer ones. It refuses (and the
// bytes are spilled) when the connection is blocked or already holds
// parkAt bytes of replies, or when the UMEM has no frame to spare.
func (w *sgaWriter) newArray(need int) bool {
	if w.blocked || w.unsent > parkAt+refMin {
		return false
	}
	seg := w.s.lib.SegmentSize()
	size := min(max(need, seg), libos.MaxSegments*seg)
	size = (size + seg - 1) / seg * seg
	sga, err := w.s.lib.SGAAlloc(size)
	if err != nil {
		w.s.ctr.ReplyNoBufs++
		w.blocked = true
		return false
	}
	w.cur, w.seg, w.off = sga, 0, 0
	return true
}

// spill keeps b in Go memory, to be copied into arrays when sent.
func (w *sgaWriter) spill(b []byte) {
	w.s.ctr.SpilledBytes += uint64(len(b))
	if n := len(w.q); n > w.head && w.q[n-1].sga == nil && w.q[n-1].off == -1 {
		w.q[n-1].ref = append(w.q[n-1].ref, b...)
		return
	}
	// off -1 marks a spill piece, which later spills may extend; it is
	// reset to 0 when the piece is first sent.
	w.q = append(w.q, piece{ref: append([]byte(nil), b...), off: -1})
}

// seal queues the array being filled, trimmed to what was written.
func (w *sgaWriter) seal() {
	if w.cur == nil {
		return
	}
	sga := w.cur
	w.cur = nil
	if w.off > 0 {
		sga.Segs[w.seg] = sga.Segs[w.seg][:w.off]
		sga.Segs = sga.Segs[:w.seg+1]
	} else {
		sga.Segs = sga.Segs[:w.seg]
	}
	if len(sga.Segs) == 0 {
		w.s.lib.SGAFree(sga)
		return
	}
	w.q = append(w.q, piece{sga: sga})
}

// flush pushes every queued reply it can, in order, until Push or SGAAlloc
// refuses.
//
//demixdp:hotpath — allocates nothing.
func (w *sgaWriter) flush() {
	w.seal()
	s := w.s
	for !w.blocked {
		if w.pending == nil && !w.next() {
			return
		}
		n := w.pending.Len()
		qt, err := s.lib.Push(w.c.qd, w.pending)
		if err == unix.EAGAIN {
			s.ctr.PushEAGAIN++
			w.blocked = true
			return
		}
		_ = qt
		s.lib.SGAFree(w.pending) // free-protection: the frames stay until acknowledged
		w.pending = nil
		if err != nil {
			s.ctr.Failed++
			s.closeConn(w.c, false)
			return
		}
		s.ctr.Pushes++
		s.ctr.PushBytes += uint64(n)
		w.unsent -= n
		w.c.pushes++
		w.c.moved = s.now
	}
}

// next makes the next array to push (pending) from the queue; false when
// the queue is empty or no frame is free (then blocked is set).
func (w *sgaWriter) next() bool {
	if w.head == len(w.q) {
		w.q = w.q[:0]
		w.head = 0
		return false
	}
	p := &w.q[w.head]
	if p.sga != nil {
		w.pending = p.sga
		*p = piece{}
		w.head++
		return true
	}
	if p.off < 0 {
		p.off = 0
	}
	seg := w.s.lib.SegmentSize()
	n := min(len(p.ref)-p.off, libos.MaxSegments*seg)
	sga, err := w.s.lib.SGAAlloc(n)
	if err != nil {
		w.s.ctr.ReplyNoBufs++
		w.blocked = true
		return false
	}
	src := p.ref[p.off : p.off+n]
	for _, d := range sga.Segs {
		src = src[copy(d, src):]
	}
	p.off += n
	if p.off == len(p.ref) {
		*p = piece{}
		w.head++
	}
	w.pending = sga
	return true
}

// release frees every array the writer holds (the connection is closing).
func (w *sgaWriter) release() {
	lib := w.s.lib
	if w.cur != nil {
		lib.SGAFree(w.cur)
		w.cur = nil
	}
	if w.pending != nil {
		lib.SGAFree(w.pending)
		w.pending = nil
	}
	for i := w.head; i < len(w.q); i++ {
		if w.q[i].sga != nil {
			lib.SGAFree(w.q[i].sga)
		}
	}
	w.q, w.head, w.unsent = nil, 0, 0
}

// ref queues a reference to a stored value.
func (w *sgaWriter) ref(v []byte) {
	w.seal()
	w.unsent += len(v)
	w.q = append(w.q, piece{ref: v})
}

// The Reply methods.

func (w *sgaWriter) line(prefix byte, s string) {
	var buf [64]byte
	b := append(buf[:0], prefix)
	if len(s)+3 <= len(buf)-1 && !hasLineBreak(s) {
		b = append(append(b, s...), '\r', '\n')
		w.write(b)
		return
	}
	w.write(append(append([]byte{prefix}, oneLine(s)...), '\r', '\n'))
}

func hasLineBreak(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return true
		}
	}
	return false
}

func (w *sgaWriter) Status(s string) { w.line('+', s) }
func (w *sgaWriter) Error(s string)  { w.line('-', s) }

func (w *sgaWriter) Int(n int64) {
	var buf [24]byte
	w.write(header(buf[:0], ':', n))
}

func (w *sgaWriter) Array(n int) {
	var buf [24]byte
	w.write(header(buf[:0], '*', int64(n)))
}

func (w *sgaWriter) Null() { w.write(nullBulk) }

var (
	nullBulk = []byte("$-1\r\n")
	crlf     = []byte("\r\n")
)

func (w *sgaWriter) Bulk(b []byte) {
	var buf [24]byte
	w.write(header(buf[:0], '$', int64(len(b))))
	w.write(b)
	w.write(crlf)
}

func (w *sgaWriter) BulkString(s string) {
	var buf [24]byte
	w.write(header(buf[:0], '$', int64(len(s))))
	for len(s) > 0 { // through a stack buffer: no conversion to []byte
		var chunk [256]byte
		n := copy(chunk[:], s)
		w.write(chunk[:n])
		s = s[n:]
	}
	w.write(crlf)
}

func (w *sgaWriter) Value(v []byte) {
	if len(v) < refMin {
		w.Bulk(v)
		return
	}
	var buf [24]byte
	w.write(header(buf[:0], '$', int64(len(v))))
	w.ref(v)
	w.write(crlf)
}
