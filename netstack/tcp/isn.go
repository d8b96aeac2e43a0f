package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"time"
)

// Tuple identifies a connection from the local side's point of view.
type Tuple struct {
	LocalAddr  [4]byte
	LocalPort  uint16
	RemoteAddr [4]byte
	RemotePort uint16
}

// put writes the 12-byte canonical encoding of t into b.
func (t *Tuple) put(b []byte) {
	copy(b[0:4], t.LocalAddr[:])
	binary.BigEndian.PutUint16(b[4:], t.LocalPort)
	copy(b[6:10], t.RemoteAddr[:])
	binary.BigEndian.PutUint16(b[10:], t.RemotePort)
}

// ISNGenerator chooses initial sequence numbers as RFC 6528 §3 specifies:
// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
// is a timer ticking every 4 microseconds and F is SipHash-2-4 keyed with a
// random 128-bit secret. ISN allocates nothing.
type ISNGenerator struct {
	k0, k1 uint64
}

// NewISNGenerator returns a generator keyed with 16 bytes from crypto/rand.
func NewISNGenerator() *ISNGenerator {
	var key [16]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails (it crashes the program instead).
	return NewISNGeneratorKey(key)
}

// NewISNGeneratorKey returns a generator with a caller-chosen key, for tests
// and for processes that share a key.
func NewISNGeneratorKey(key [16]byte) *ISNGenerator {
	return &ISNGenerator{k0: binary.LittleEndian.Uint64(key[0:]), k1: binary.LittleEndian.Uint64(key[8:])}
}

// ISN returns the initial sequence number for t at time now (any monotonic
// clock; only its 4-microsecond ticks modulo 2^32 matter).
func (g *ISNGenerator) ISN(t Tuple, now time.Duration) Seq {
	var b [12]byte
	t.put(b[:])
	m := uint32(now / (4 * time.Microsecond))
	return Seq(m + uint32(sipHash24(g.k0, g.k1, b[:])))
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) of msg under the
// key (k0, k1), each read little-endian from the 16-byte key.
func sipHash24(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		round()
		v0 ^= m
		msg = msg[8:]
	}
	last := uint64(n) << 56
	for i, c := range msg {
		last |= uint64(c) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
