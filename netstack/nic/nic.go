// Package nic is the seam between the netstack and whatever moves frames:
// the AF_XDP datapath in production, an in-memory wire in tests.
//
// The stack never makes a system call. It receives frames as Bufs through
// (*stack.Stack).Input, builds outgoing frames in place (headers are written
// into the headroom in front of the payload) and hands them to a Link. Time
// comes from a Clock, so the same code runs against a virtual clock in
// deterministic tests.
package nic

import (
	"encoding/binary"
	"errors"

	"github.com/demixdp/demixdp/netstack/checksum"
)

// ErrNoBufs reports that the link has no free frame (the UMEM is exhausted).
var ErrNoBufs = errors.New("nic: no free frame")

// ErrTxFull reports that the link cannot take another frame right now (the
// TX ring is full, or the frame is still being transmitted).
var ErrTxFull = errors.New("nic: transmit queue full")

// A Buf is one packet inside one frame of the link's memory.
//
// Data is the whole frame as a bounded slice (len == cap), so headers can be
// prepended in front of Off without copying and nothing can be appended past
// the frame. The packet is Data[Off : Off+Len]. A Buf is a value; whoever
// keeps one beyond the call that gave it must hold a reference on its frame
// (Link.Ref) and drop it with Link.Release.
type Buf struct {
	Frame uint32 // the link's handle for the frame
	Data  []byte // the whole frame
	Off   int    // first byte of the packet
	Len   int    // packet length
}

// CopyBuf copies src to dst one field at a time. Use it where src was
// just written piecewise (Prepend moves Off and Len): a whole-struct copy
// loads it 16 bytes at a time, and the CPU cannot forward narrower stores
// still in flight to a wider load, which then waits for them to drain
// (60 ns per segment in tcp's output, in the tcp_rtt profile).
func CopyBuf(dst, src *Buf) {
	dst.Frame = src.Frame
	dst.Data = src.Data
	dst.Off = src.Off
	dst.Len = src.Len
}

// L4Checksum finds the UDP or TCP checksum of pkt, an Ethernet frame
// carrying IPv4: it returns where the L4 header starts and where its
// checksum field sits from there. ok is false for anything else (ARP,
// ICMP, fragments, a frame too short). A link whose stack leaves
// checksums partial (stack.Config.TxChecksumOffload) uses it to find them:
// the stack marks nothing in the Buf, so that building a packet writes
// nothing but the packet (a narrow store into the Buf, copied whole right
// after, stalls the copy's wide loads).
func L4Checksum(pkt []byte) (start, offset int, ok bool) {
	if len(pkt) < 14+20 || pkt[12] != 0x08 || pkt[13] != 0x00 {
		return 0, 0, false
	}
	ihl := int(pkt[14]&0x0f) * 4
	if ihl < 20 || pkt[14+6]&0x3f != 0 || pkt[14+7] != 0 { // MF or a fragment offset
		return 0, 0, false
	}
	start = 14 + ihl
	switch pkt[14+9] {
	case 6:
		offset = 16
	case 17:
		offset = 6
	default:
		return 0, 0, false
	}
	if start+offset+2 > len(pkt) {
		return 0, 0, false
	}
	return start, offset, true
}

// CompleteChecksum completes the partial checksum of l4, which runs from
// where the checksum starts to the end of the packet and holds at offset
// the folded sum of the pseudo-header: it stores the ones' complement of
// the sum of l4, written as 0xffff when it comes out 0 (RFC 768's rule;
// TCP treats both as equal).
func CompleteChecksum(l4 []byte, offset int) {
	c := ^checksum.Fold(checksum.Sum(l4, 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[offset:], c)
}

// Bytes returns the packet, capped so that append cannot write past it.
func (b *Buf) Bytes() []byte { return b.Data[b.Off : b.Off+b.Len : b.Off+b.Len] }

// Prepend grows the packet by n bytes at the front and returns them. It
// reports false, leaving b unchanged, if the headroom is smaller than n.
func (b *Buf) Prepend(n int) ([]byte, bool) {
	if n < 0 || n > b.Off {
		return nil, false
	}
	b.Off -= n
	b.Len += n
	return b.Data[b.Off : b.Off+n : b.Off+n], true
}

// TrimFront drops n bytes from the front of the packet (n <= Len).
func (b *Buf) TrimFront(n int) {
	b.Off += n
	b.Len -= n
}

// Link moves frames. It is driven by one goroutine, as the stack is.
type Link interface {
	// HardwareAddr is the link's Ethernet address.
	HardwareAddr() [6]byte
	// MTU is the largest IPv4 packet (header included) the link carries.
	MTU() int
	// Alloc returns a frame for a packet the stack builds itself (ARP,
	// ICMP, TCP control segments) with one reference held by the caller,
	// Off at the link's headroom and Len 0. It fails with ErrNoBufs.
	Alloc() (Buf, error)
	// Transmit queues the frame b.Bytes() for sending. It does not consume
	// the caller's reference: the link keeps the frame alive until the
	// transmission completes, then reports tag (if non-zero) to its owner.
	// A frame may be queued again only after its transmission completed;
	// until then Transmit fails with ErrTxFull.
	Transmit(b Buf, tag uint64) error
	// Busy reports whether the frame is still being transmitted: its bytes
	// must not be rewritten (a zero-copy NIC may be reading them) and
	// Transmit would fail with ErrTxFull.
	Busy(frame uint32) bool
	// Scarce reports that the link's free frames are running low: the
	// stack should keep no more received payload than it must, so that
	// frames keep coming back for receiving (an ACK that frees a send
	// queue needs a frame to arrive in).
	Scarce() bool
	// Ref takes one more reference on a frame.
	Ref(frame uint32)
	// Release drops one reference; the last one returns the frame to the
	// link (after any transmission in progress completes).
	Release(frame uint32)
}

// Clock tells monotonic time in nanoseconds.
type Clock interface {
	Now() int64
}

// VirtualClock is a Clock that moves only when told to.
type VirtualClock struct{ T int64 }

// Now returns the clock's time.
func (c *VirtualClock) Now() int64 { return c.T }

// Advance moves the clock forward by d nanoseconds.
func (c *VirtualClock) Advance(d int64) { c.T += d }
