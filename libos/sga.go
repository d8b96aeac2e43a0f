package libos

import (
	"net/netip"

	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// MaxSegments is the most segments one SGA can have.
const MaxSegments = 16

// SGA is a scatter-gather array: segments of UMEM memory that Push sends and
// Pop fills, without copying.
//
// Each segment lies inside one UMEM frame, behind the headroom where Push
// writes the headers. The application may read and write a segment's bytes
// and shorten it by reslicing (Segs[i] = Segs[i][a:b]); a segment that no
// longer points into its own frame (appended past its capacity, or replaced
// by ordinary Go memory) makes Push fail with EINVAL.
//
// SGAs come from SGAAlloc or from a completed Pop and go back with SGAFree.
// The SGA value itself is recycled after SGAFree: do not touch it again.
type SGA struct {
	// Segs are the segments, in order.
	Segs [][]byte
	// Addr is the sender of a popped UDP datagram.
	Addr netip.AddrPort

	lib    *LibOS
	inUse  bool
	n      int
	frames [MaxSegments]uint32
	segs   [MaxSegments][]byte
}

// Len returns the total number of bytes in the segments.
func (s *SGA) Len() int {
	n := 0
	for _, b := range s.Segs {
		n += len(b)
	}
	return n
}

// Bytes copies the SGA's contents into one new slice (a convenience for
// tests and slow paths; it allocates).
func (s *SGA) Bytes() []byte {
	out := make([]byte, 0, s.Len())
	for _, b := range s.Segs {
		out = append(out, b...)
	}
	return out
}

// sgaPool recycles SGA values so that steady-state SGAAlloc, Pop and SGAFree
// allocate nothing.
type sgaPool struct{ free []*SGA }

func (p *sgaPool) get(l *LibOS) *SGA {
	var s *SGA
	if n := len(p.free); n > 0 {
		s = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		s = &SGA{lib: l}
	}
	s.inUse = true
	return s
}

func (p *sgaPool) put(s *SGA) {
	s.inUse = false
	clear(s.segs[:s.n]) // only the first n are ever set
	s.n = 0
	s.Segs = nil
	s.Addr = netip.AddrPort{}
	p.free = append(p.free, s)
}

// SegmentSize is the capacity of the segments of a multi-segment SGA: the
// largest TCP payload of an Ethernet frame with the timestamp option (MTU
// minus 52 bytes), so that a stream can send every segment as one packet
// without copying. An SGAAlloc of at most MaxDatagram bytes always yields a
// single segment, so every UDP datagram is one frame.
func (l *LibOS) SegmentSize() int {
	return min(l.mtu-52, l.um.FrameSize()-l.um.Headroom())
}

// SGAAlloc returns an SGA of size bytes: one segment if size is at most
// MaxDatagram, otherwise segments of SegmentSize bytes (the last shorter),
// each in its own UMEM frame with headroom in front.
// Errors: EINVAL (size <= 0 or more than MaxSegments*SegmentSize), ENOBUFS
// (the UMEM is exhausted: SGAAlloc leaves a small reserve of frames for the
// stack's own ACK, ARP and ICMP packets), EBADF (the LibOS is closed).
//
//demixdp:hotpath — allocates nothing once warmed up.
func (l *LibOS) SGAAlloc(size int) (*SGA, error) {
	if l.closed {
		return nil, unix.EBADF
	}
	seg := l.SegmentSize()
	if size <= 0 || size > MaxSegments*seg {
		return nil, unix.EINVAL
	}
	if size <= l.stack.MaxPayload() {
		seg = size // one datagram, one frame
	}
	if l.pool.Available()-(size+seg-1)/seg < l.reserve {
		l.ctr.SGANoBufs++
		return nil, unix.ENOBUFS
	}
	s := l.sgas.get(l)
	hr := l.um.Headroom()
	for size > 0 {
		n := min(size, seg)
		f, err := l.pool.Alloc()
		if err != nil {
			l.ctr.SGANoBufs++
			l.SGAFree(s)
			return nil, unix.ENOBUFS
		}
		fr := l.um.Frame(f)
		s.frames[s.n] = f
		s.segs[s.n] = fr[hr : hr+n : hr+n]
		s.n++
		size -= n
	}
	s.Segs = s.segs[:s.n:s.n]
	return s, nil
}

// popSGA wraps a received payload in an SGA; the frame reference moves to it.
func (l *LibOS) popSGA(b nic.Buf, from netip.AddrPort) *SGA {
	s := l.sgas.get(l)
	s.frames[0] = b.Frame
	s.segs[0] = b.Bytes()
	s.n = 1
	s.Segs = s.segs[:1:1]
	s.Addr = from
	return s
}

// SGAFree gives the SGA's frames back. A frame still being transmitted
// returns to the pool only when its transmission completes
// (free-protection). Errors: EINVAL (nil, already freed, or from another
// LibOS), EBADF (the LibOS is closed).
func (l *LibOS) SGAFree(s *SGA) error {
	if s == nil || s.lib != l || !s.inUse {
		return unix.EINVAL
	}
	if l.closed {
		return unix.EBADF
	}
	for i := 0; i < s.n; i++ {
		l.link.Release(s.frames[i])
	}
	l.sgas.put(s)
	return nil
}

// buffers validates s for Push and returns its segments as netstack
// buffers in dst. Every segment must be non-empty and inside the frame it
// was allocated in.
func (l *LibOS) buffers(s *SGA, dst *[MaxSegments]nic.Buf) (int, error) {
	if !l.pushable(s) {
		return 0, unix.EINVAL
	}
	for i := range s.Segs {
		b, err := l.buffer(s, i)
		if err != nil {
			return 0, err
		}
		dst[i] = b
	}
	return len(s.Segs), nil
}

// pushable reports whether s is a live SGA of this LibOS with between one
// and as many segments as it was allocated with.
func (l *LibOS) pushable(s *SGA) bool {
	return s != nil && s.lib == l && s.inUse && len(s.Segs) != 0 && len(s.Segs) <= s.n
}

// buffer returns segment i of a pushable s as a netstack buffer: it must
// be non-empty and inside the frame it was allocated in (else EINVAL).
func (l *LibOS) buffer(s *SGA, i int) (nic.Buf, error) {
	seg := s.Segs[i]
	if len(seg) == 0 {
		return nic.Buf{}, unix.EINVAL
	}
	f, off, ok := l.um.FrameOfSlice(seg)
	if !ok || f != s.frames[i] {
		return nic.Buf{}, unix.EINVAL
	}
	return nic.Buf{Frame: f, Data: l.um.Frame(f), Off: off, Len: len(seg)}, nil
}

// InUMEM reports whether b lies entirely inside this LibOS's UMEM, that is,
// whether the datapath can send it or did receive it without a copy.
func (l *LibOS) InUMEM(b []byte) bool {
	if l.closed || len(b) == 0 {
		return false
	}
	_, _, ok := l.um.FrameOfSlice(b)
	return ok
}
