package cli

import "encoding/binary"

// The stream format: the UDP payload of every frame of a one-way stream
// (cmd/xdp-client -stream, counted by cmd/xdp-reflect -sink). Bytes 0..8
// are the frame's sequence number (little endian, from 0), bytes 8..12 are
// StreamMark, and every later byte j is StreamByte(j), the same in every
// frame: the sender precomputes its checksum once, and the receiver checks
// what arrived without knowing anything else about the sender.
const (
	// StreamMark marks a stream payload ("STRM" in little endian). A
	// request of cmd/xdp-client's echo mode carries a slot number below
	// 1024 in the same place, so the two never look alike.
	StreamMark uint32 = 0x4d525453
	// StreamHeader is the length of the sequence number and the mark.
	StreamHeader = 12
)

// StreamByte is byte j (j >= StreamHeader) of every stream payload.
func StreamByte(j int) byte { return byte(j*7 + 0x5a) }

// FillStream writes payload seq of the stream into p (len(p) >=
// StreamHeader); it allocates nothing.
func FillStream(p []byte, seq uint64) {
	binary.LittleEndian.PutUint64(p[0:8], seq)
	binary.LittleEndian.PutUint32(p[8:12], StreamMark)
	for j := StreamHeader; j < len(p); j++ {
		p[j] = StreamByte(j)
	}
}

// StreamSeq reports whether p is a stream payload (long enough and
// marked) and returns its sequence number. It does not look at the rest.
func StreamSeq(p []byte) (seq uint64, ok bool) {
	if len(p) < StreamHeader || binary.LittleEndian.Uint32(p[8:12]) != StreamMark {
		return 0, false
	}
	return binary.LittleEndian.Uint64(p[0:8]), true
}

// StreamIntact reports whether the bytes after the header of the stream
// payload p are the ones every stream payload carries. It allocates
// nothing.
func StreamIntact(p []byte) bool {
	for j := StreamHeader; j < len(p); j++ {
		if p[j] != StreamByte(j) {
			return false
		}
	}
	return true
}
