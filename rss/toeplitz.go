package rss

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Hash returns the Toeplitz hash of input under key, as Microsoft's RSS
// specification defines it: for every bit of input, from the most
// significant bit of input[0] on, that is set, the result is XORed with
// the 32 bits of key that start at the same bit position. key must hold at
// least len(input)+4 bytes; Hash panics otherwise, as an index out of range
// would (a NIC's 40-byte key covers the 36 bytes of an IPv6 4-tuple).
func Hash(key, input []byte) uint32 {
	if len(key) < len(input)+4 {
		panic(fmt.Sprintf("rss: %d-byte key for %d bytes of input", len(key), len(input)))
	}
	var h uint32
	window := binary.BigEndian.Uint32(key) // key bits [i, i+32) for input bit i
	for i, b := range input {
		next := key[i+4] // the 8 key bits that shift into the window over this byte
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				h ^= window
			}
			window = window<<1 | uint32(next>>bit)&1
		}
	}
	return h
}

// HashIPv4 returns the Toeplitz hash a NIC computes for a TCP or UDP
// packet over IPv4 from src to dst when it hashes the 4-tuple: the input is
// source address, destination address, source port, destination port, in
// network byte order. It panics if key is shorter than 16 bytes.
func HashIPv4(key []byte, src, dst netip.AddrPort) uint32 {
	var in [12]byte
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(in[0:4], s[:])
	copy(in[4:8], d[:])
	binary.BigEndian.PutUint16(in[8:10], src.Port())
	binary.BigEndian.PutUint16(in[10:12], dst.Port())
	return Hash(key, in[:])
}

// HashIPv4Addrs returns the hash of the addresses alone (the 2-tuple a NIC
// hashes when its flow hash leaves the ports out).
func HashIPv4Addrs(key []byte, src, dst netip.Addr) uint32 {
	var in [8]byte
	s, d := src.As4(), dst.As4()
	copy(in[0:4], s[:])
	copy(in[4:8], d[:])
	return Hash(key, in[:])
}
