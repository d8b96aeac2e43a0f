package main

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/demixdp/demixdp/internal/cli"
)

// sinkSample checks the bytes of every sinkSample-th stream frame (by
// sequence number); the others are counted and their sequence numbers
// followed, which costs almost nothing at line rate.
const sinkSample = 16

// sink counts and drops the datagrams that -sink receives instead of
// reflecting them: the receiving end of the bare pair's bulk ceiling
// (cmd/xdp-client -stream). Frames of the stream format (internal/cli) are
// followed by sequence number, so frames the kernel dropped on the way show
// up as missing, and a sample of them is checked byte for byte.
type sink struct {
	frames, bytes uint64 // datagrams to the port and their UDP payload bytes
	stream        uint64 // of them, stream payloads
	checked       uint64 // stream payloads whose every byte was checked
	corrupt       uint64 // checked payloads with a wrong byte
	missing       uint64 // sequence numbers skipped (not arrived, or not yet)
	late          uint64 // stream payloads older than one already seen
	next          uint64 // the next sequence number expected
}

// count takes one datagram (UDP header and payload) that match accepted.
// It allocates nothing.
func (s *sink) count(udp []byte) {
	ulen := int(binary.BigEndian.Uint16(udp[4:6])) // match checked it fits
	p := udp[udpHeaderLen:ulen]
	s.frames++
	s.bytes += uint64(len(p))
	seq, ok := cli.StreamSeq(p)
	if !ok {
		return
	}
	s.stream++
	if seq >= s.next {
		s.missing += seq - s.next
		s.next = seq + 1
	} else {
		s.late++
		if s.missing > 0 {
			s.missing-- // it was counted missing when a later one came first
		}
	}
	if seq%sinkSample == 0 {
		s.checked++
		if !cli.StreamIntact(p) {
			s.corrupt++
		}
	}
}

func (s *sink) write(w io.Writer) {
	fmt.Fprintf(w, "sink: frames=%d bytes=%d stream=%d checked=%d corrupt=%d missing=%d late=%d\n",
		s.frames, s.bytes, s.stream, s.checked, s.corrupt, s.missing, s.late)
}
