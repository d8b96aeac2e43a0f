package dxnet

import (
	"io"
	"net"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// Zero-copy I/O, for callers that opt in. Read and Write copy once each
// way between the caller's buffer and the UMEM frames; ReadSGA hands over
// the received frames themselves, and WriteSGA sends frames the caller
// filled in place. An SGA belongs to the stack's libOS: only the stack
// frees it (FreeSGA), and it is invalid after Stack.Close.

// AllocSGA returns an SGA of size bytes in UMEM frames (libos.SGAAlloc:
// one segment up to the MTU's payload, otherwise segments of
// SegmentSize bytes, at most libos.MaxSegments of them) for the caller to
// fill and pass to WriteSGA, or to give back with FreeSGA. While the UMEM
// is exhausted it waits for frames to come back, as Write waits for room
// (an application that holds every frame itself waits forever). Errors:
// EINVAL (size <= 0 or too large), net.ErrClosed.
func (s *Stack) AllocSGA(size int) (*libos.SGA, error) {
	r, _, err := s.rpc(kAlloc, func(r *request) { r.size = size })
	if err != nil {
		return nil, err
	}
	sga, err := r.sga, r.err
	r.sga = nil
	reqPool.Put(r)
	return sga, err
}

// FreeSGA gives an SGA from ReadSGA or AllocSGA back to the stack. It
// returns at once (the loop goroutine frees it) and must be called once
// per SGA; the SGA must not be touched afterwards.
func (s *Stack) FreeSGA(sga *libos.SGA) {
	if sga != nil {
		s.submit(item{kind: kFree, sga: sga})
	}
}

// SegmentSize is the capacity of one segment of a multi-segment SGA:
// the TCP payload of one full-sized packet.
func (s *Stack) SegmentSize() int { return s.segSize }

// ReadSGA returns the next received bytes without copying them: the SGA
// views the frame (or frames) they arrived in, starting where the last
// Read stopped. The caller reads its Segs and gives it back with
// Stack.FreeSGA; holding many SGAs holds many frames, which the stack
// needs to receive. Errors are Read's (io.EOF after the peer's FIN).
func (c *TCPConn) ReadSGA() (*libos.SGA, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return nil, c.opErr("read", net.ErrClosed)
	}
	r := &c.rd
	err := c.run(r, &c.rdl, kReadSGA, nil, nil)
	if err == nil {
		err = r.err
	}
	sga := r.sga
	r.sga = nil
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, c.opErr("read", err)
	}
	return sga, nil
}

// WriteSGA sends sga (from AllocSGA, filled by the caller; its segments
// may be shortened) without copying: each segment becomes one TCP segment,
// its headers written into the frame's headroom. It returns once the SGA
// is queued, waiting for room as Write does. The stack takes the SGA in
// every case, sent or not: the caller must not touch or free it again.
// Errors are Write's, and EINVAL for a nil or empty SGA.
func (c *TCPConn) WriteSGA(sga *libos.SGA) error {
	if sga == nil || sga.Len() == 0 {
		if sga != nil {
			c.s.FreeSGA(sga)
		}
		return c.opErr("write", unix.EINVAL)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		c.s.FreeSGA(sga)
		return c.opErr("write", net.ErrClosed)
	}
	r := &c.wr
	err := c.run(r, &c.wdl, kWriteSGA, nil, sga) // frees sga if the deadline passed
	if err == nil {
		err = r.err
	}
	if err != nil {
		return c.opErr("write", err)
	}
	return nil
}
