// Package checksum computes the Internet checksum (RFC 1071) used by IPv4,
// ICMP, UDP and TCP, and updates stored checksums incrementally (RFC 1624).
//
// All values are in host representation of the big-endian (network order)
// 16-bit words: Checksum returns the number to store with
// binary.BigEndian.PutUint16. Nothing in this package allocates.
//
// A partial sum (the uint32 returned by Sum and PseudoIPv4) is an unfolded
// ones'-complement accumulator: it is congruent modulo 0xFFFF to the sum of
// the 16-bit words seen so far, and can be passed as the initial value of the
// next Sum call to continue over another buffer. Only the last buffer of such
// a chain may have an odd length, because an odd trailing byte is padded with
// a zero byte as RFC 1071 prescribes.
package checksum

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds the 16-bit big-endian words of b to the partial sum initial and
// returns the new, unfolded partial sum. An odd trailing byte is treated as
// the high byte of a final word whose low byte is zero.
//
// Sum reads 32 bytes per loop step with a 64-bit carry chain: the
// ones'-complement sum of 64-bit words, folded, equals the ones'-complement
// sum of 16-bit words because 2^16-1 divides 2^64-1.
//
// The result is zero only if initial is zero and b is all zeros.
func Sum(b []byte, initial uint32) uint32 {
	acc := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	// Up to 7 bytes remain: build one left-aligned, zero-padded 64-bit word.
	var w uint64
	shift := uint(56) // bit position of the next byte's low end
	if len(b) >= 4 {
		w = uint64(binary.BigEndian.Uint32(b)) << 32
		b = b[4:]
		shift = 24
	}
	if len(b) >= 2 {
		w |= uint64(binary.BigEndian.Uint16(b)) << (shift - 8)
		b = b[2:]
		shift -= 16
	}
	if len(b) == 1 {
		w |= uint64(b[0]) << shift
	}
	acc, c = bits.Add64(acc, w, c)
	// End-around carry: adding the final carry can itself overflow only when
	// acc was all ones, in which case acc becomes 0 and the carry makes it 1.
	acc, c = bits.Add64(acc, 0, c)
	acc += c
	// Fold 64 -> 32 bits; two rounds always fit (see Fold).
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	return uint32(acc)
}

// Fold adds the carries of a partial sum back into its low 16 bits and
// returns the ones'-complement sum, not complemented. It returns 0 only for
// a zero sum; any other sum folds into 1..0xFFFF.
func Fold(sum uint32) uint16 {
	// First round: at most 0xFFFF + 0xFFFF = 0x1FFFE. Second round: if the
	// high half is 1, the low half is at most 0xFFFE, so the result fits.
	s := (sum >> 16) + (sum & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// Checksum returns the Internet checksum of b continuing the partial sum
// initial: the complement of the folded sum, the value to store in a header
// whose checksum field is zero (or excluded from b). A receiver verifies a
// message by computing Checksum over it including the stored field: the
// result is 0 when the message is intact.
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(Sum(b, initial))
}

// PseudoIPv4 returns the partial sum of the IPv4 pseudo-header used by UDP
// and TCP (RFC 768, RFC 9293): source and destination addresses, a zero
// byte, the protocol number and the transport length (header plus data).
func PseudoIPv4(src, dst [4]byte, proto uint8, length uint16) uint32 {
	// Six 16-bit terms cannot overflow 32 bits, so no folding is needed.
	return (uint32(src[0])<<8 | uint32(src[1])) +
		(uint32(src[2])<<8 | uint32(src[3])) +
		(uint32(dst[0])<<8 | uint32(dst[1])) +
		(uint32(dst[2])<<8 | uint32(dst[3])) +
		uint32(proto) + uint32(length)
}

// Update16 returns the checksum check updated for one 16-bit word of the
// covered data changing from old to new, by RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m'). It avoids recomputing over the whole message.
//
// The result equals a full recomputation in every case but one: when the
// covered data becomes all zeros, a full recomputation gives 0xFFFF and
// Update16 gives 0x0000. Headers that always contain a nonzero word (IPv4:
// the version) never meet that case; others (an ICMP echo reply with zero
// identifier, sequence and payload) must recompute when the result is 0.
func Update16(check, old, new uint16) uint16 {
	s := uint32(^check) + uint32(^old) + uint32(new)
	return ^Fold(s)
}

// Update32 is Update16 for a 4-byte field such as an IPv4 address, seen as
// two 16-bit words. The same all-zero caveat applies.
func Update32(check uint16, old, new [4]byte) uint16 {
	s := uint32(^check) +
		uint32(^(uint16(old[0])<<8 | uint16(old[1]))) +
		uint32(^(uint16(old[2])<<8 | uint16(old[3]))) +
		(uint32(new[0])<<8 | uint32(new[1])) +
		(uint32(new[2])<<8 | uint32(new[3]))
	return ^Fold(s)
}
