// Package memlink is an in-memory nic.Link for tests: frames live in a Go
// slice, every transmitted frame is recorded (a copy, so tests can inspect
// the bytes after the frame is reused) and completion is explicit, so tests
// control exactly when a transmission "finishes".
//
// It also checks the ownership rules the real datapath enforces: releasing a
// free frame, transmitting a frame that is still in flight, or leaking a
// reference are reported by Check.
package memlink

import (
	"fmt"

	"github.com/demixdp/demixdp/netstack/nic"
)

// Sent is one transmitted frame.
type Sent struct {
	Frame uint32
	Tag   uint64
	Bytes []byte // a copy of the frame's packet at Transmit time
}

// Link is an in-memory nic.Link.
type Link struct {
	MAC       [6]byte
	LinkMTU   int
	FrameSize int
	Headroom  int

	mem      []byte
	refs     []int
	inflight []bool
	free     []uint32

	// Sent holds frames transmitted and not yet completed, in order.
	Sent []Sent
	// TxLimit, if > 0, makes Transmit fail with nic.ErrTxFull once that
	// many frames are in flight.
	TxLimit int
	// Errors records ownership violations.
	Errors []string
	// OnComplete, if set, is called for each completed tag != 0.
	OnComplete func(tag uint64)
	// NoCopy stops Transmit from copying frames into Sent (Bytes stays
	// nil), for allocation tests.
	NoCopy bool
	// ScarceBelow makes Scarce report true below that many free frames.
	ScarceBelow int
}

// New returns a link with n frames of size frameSize and the given headroom.
func New(n, frameSize, headroom int) *Link {
	l := &Link{
		MAC:       [6]byte{0x02, 0, 0, 0, 0, 1},
		LinkMTU:   1500,
		FrameSize: frameSize,
		Headroom:  headroom,
		mem:       make([]byte, n*frameSize),
		refs:      make([]int, n),
		inflight:  make([]bool, n),
	}
	for i := n - 1; i >= 0; i-- {
		l.free = append(l.free, uint32(i))
	}
	return l
}

// HardwareAddr implements nic.Link.
func (l *Link) HardwareAddr() [6]byte { return l.MAC }

// MTU implements nic.Link.
func (l *Link) MTU() int { return l.LinkMTU }

func (l *Link) frame(i uint32) []byte {
	o := int(i) * l.FrameSize
	return l.mem[o : o+l.FrameSize : o+l.FrameSize]
}

// Alloc implements nic.Link.
func (l *Link) Alloc() (nic.Buf, error) {
	if len(l.free) == 0 {
		return nic.Buf{}, nic.ErrNoBufs
	}
	i := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	l.refs[i] = 1
	return nic.Buf{Frame: i, Data: l.frame(i), Off: l.Headroom}, nil
}

// Inject returns a frame holding pkt (at Off = 0, as a received frame) with
// one reference, ready for stack.Input.
func (l *Link) Inject(pkt []byte) nic.Buf {
	b, err := l.Alloc()
	if err != nil {
		panic("memlink: Inject: out of frames")
	}
	b.Off = 256
	b.Len = copy(b.Data[b.Off:], pkt)
	return b
}

// Transmit implements nic.Link.
func (l *Link) Transmit(b nic.Buf, tag uint64) error {
	if l.refs[b.Frame] == 0 {
		l.Errors = append(l.Errors, fmt.Sprintf("transmit of unreferenced frame %d", b.Frame))
	}
	if l.inflight[b.Frame] || (l.TxLimit > 0 && len(l.Sent) >= l.TxLimit) {
		return nic.ErrTxFull
	}
	l.inflight[b.Frame] = true
	var cp []byte
	if !l.NoCopy {
		cp = append([]byte(nil), b.Bytes()...)
	}
	l.Sent = append(l.Sent, Sent{Frame: b.Frame, Tag: tag, Bytes: cp})
	return nil
}

// Scarce implements nic.Link: fewer than ScarceBelow frames are free.
func (l *Link) Scarce() bool { return len(l.free) < l.ScarceBelow }

// Busy implements nic.Link.
func (l *Link) Busy(f uint32) bool { return l.inflight[f] }

// Ref implements nic.Link.
func (l *Link) Ref(f uint32) {
	if l.refs[f] == 0 && !l.inflight[f] {
		l.Errors = append(l.Errors, fmt.Sprintf("ref of free frame %d", f))
	}
	l.refs[f]++
}

// Release implements nic.Link.
func (l *Link) Release(f uint32) {
	if l.refs[f] == 0 {
		l.Errors = append(l.Errors, fmt.Sprintf("release of frame %d with no reference", f))
		return
	}
	l.refs[f]--
	if l.refs[f] == 0 && !l.inflight[f] {
		l.free = append(l.free, f)
	}
}

// Complete finishes every transmission in flight and returns them.
func (l *Link) Complete() []Sent {
	done := l.Sent
	l.Sent = nil
	l.complete(done)
	return done
}

// CompleteQuiet finishes every transmission in flight, reusing Sent's
// storage (no allocation).
func (l *Link) CompleteQuiet() {
	l.complete(l.Sent)
	l.Sent = l.Sent[:0]
}

func (l *Link) complete(done []Sent) {
	for _, s := range done {
		l.inflight[s.Frame] = false
		if l.refs[s.Frame] == 0 {
			l.free = append(l.free, s.Frame)
		}
		if s.Tag != 0 && l.OnComplete != nil {
			l.OnComplete(s.Tag)
		}
	}
}

// Free returns the number of free frames.
func (l *Link) Free() int { return len(l.free) }

// Refs returns the reference count of frame f.
func (l *Link) Refs(f uint32) int { return l.refs[f] }

// Check returns an error describing any ownership violation seen so far.
func (l *Link) Check() error {
	if len(l.Errors) > 0 {
		return fmt.Errorf("memlink: %d ownership errors, first: %s", len(l.Errors), l.Errors[0])
	}
	return nil
}
