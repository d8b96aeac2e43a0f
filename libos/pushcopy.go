package libos

import (
	"net/netip"

	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// pushCopyChunks bounds PushCopy: at most this many SGAs of MaxSegments
// segments, so 64 frames (92 KB of TCP payload at an MTU of 1500, and at
// least 65,535 bytes, Demikernel's largest SGA, from an MTU of 1076 up).
const pushCopyChunks = 4

// PushCopyMax is the most bytes one PushCopy can send on a TCP queue.
func (l *LibOS) PushCopyMax() int { return pushCopyChunks * MaxSegments * l.SegmentSize() }

// PushCopy sends a copy of p, for memory that is not an SGA: the explicit
// copying helper DESIGN.md allows beside the zero-copy Push. It copies p
// once into UMEM frames and pushes them as one operation whose token
// completes as Push's and PushTo's do; p may be reused as soon as it
// returns.
//
// On a UDP queue p is one datagram to "to" (the zero AddrPort means the
// connected peer): EMSGSIZE if it is longer than MaxDatagram. On a TCP
// queue "to" must be the zero AddrPort (else EISCONN) and p becomes the
// next bytes of the stream, one TCP segment per SegmentSize bytes, all or
// nothing: EAGAIN (send buffer full) leaves nothing queued. EMSGSIZE if p
// is longer than PushCopyMax.
//
// Errors: those of Push and PushTo, EINVAL for an empty p, and ENOBUFS
// when the UMEM has no frames to copy into.
//
//demixdp:hotpath — allocates nothing once warmed up.
func (l *LibOS) PushCopy(qd QD, p []byte, to netip.AddrPort) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, unix.EINVAL
	}
	if !q.stream {
		if len(p) > l.MaxDatagram() {
			q.ctr.PushErrors++
			return 0, unix.EMSGSIZE
		}
		s, err := l.SGAAlloc(len(p))
		if err != nil {
			return 0, err
		}
		copy(s.Segs[0], p)
		qt, err := l.PushTo(qd, s, to)
		l.SGAFree(s) // free-protection keeps the frame until it is sent
		return qt, err
	}
	if to.IsValid() {
		return 0, unix.EISCONN
	}
	if len(p) > l.PushCopyMax() {
		q.ctr.PushErrors++
		return 0, unix.EMSGSIZE
	}
	// Whole SegmentSize segments, MaxSegments to an SGA, all pushed by
	// one Send: one token, and EAGAIN or ENOBUFS leave nothing behind.
	chunk := MaxSegments * l.SegmentSize()
	var sgas [pushCopyChunks]*SGA
	var bufs [pushCopyChunks * MaxSegments]nic.Buf
	ns, nb := 0, 0
	var qt QToken
	for rest := p; len(rest) > 0 && err == nil; {
		n := min(len(rest), chunk)
		if n > l.SegmentSize() && n <= l.MaxDatagram() {
			// SGAAlloc would make this one segment longer than the MSS,
			// which the engine would split with a second copy.
			n = l.SegmentSize()
		}
		var s *SGA
		if s, err = l.SGAAlloc(n); err != nil {
			break
		}
		sgas[ns] = s
		ns++
		for _, seg := range s.Segs {
			rest = rest[copy(seg, rest):]
		}
		var sb [MaxSegments]nic.Buf
		var k int
		k, err = l.buffers(s, &sb)
		nb += copy(bufs[nb:], sb[:k])
	}
	if err == nil {
		qt, err = l.pushStream(qd, q, bufs[:nb])
	}
	for _, s := range sgas[:ns] {
		l.SGAFree(s) // the stream holds its own references to the frames
	}
	return qt, err
}
