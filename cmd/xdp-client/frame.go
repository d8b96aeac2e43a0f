package main

import (
	"encoding/binary"
	"net/netip"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/netstack/checksum"
)

// Frame layout of the only frames the client sends and accepts: untagged
// Ethernet II, a 20-byte IPv4 header (no options), UDP.
const (
	ethLen   = 14
	ipLen    = 20
	udpLen   = 8
	hdrLen   = ethLen + ipLen + udpLen
	protoUDP = 17
	// minPayload holds the request's sequence number (8 bytes, little
	// endian) and its slot (4 bytes).
	minPayload = 12
)

// endpoints are the addresses a request carries and a reply must mirror.
type endpoints struct {
	srcMAC, dstMAC [6]byte
	src, dst       netip.AddrPort
}

// template is a request frame with every header field filled in; only the
// payload's sequence number, slot and the UDP checksum change per request.
type template struct {
	frame  []byte // hdrLen + payload bytes
	pseudo uint32 // UDP pseudo-header sum plus the constant payload tail
	ep     endpoints
}

// sum and fold are netstack/checksum's ones'-complement sum and its
// complemented fold (the reference client stays free of the stack itself).
func sum(b []byte, s uint32) uint32 { return checksum.Sum(b, s) }
func fold(s uint32) uint16          { return ^checksum.Fold(s) }

// newTemplate builds the request frame for payload bytes of UDP payload
// (at least minPayload). The IPv4 checksum is final; the UDP checksum is
// computed per request by stamp.
func newTemplate(ep endpoints, payload int) template {
	if payload < minPayload {
		payload = minPayload
	}
	f := make([]byte, hdrLen+payload)
	copy(f[0:6], ep.dstMAC[:])
	copy(f[6:12], ep.srcMAC[:])
	binary.BigEndian.PutUint16(f[12:14], 0x0800)
	ip := f[ethLen : ethLen+ipLen]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipLen+udpLen+payload))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64
	ip[9] = protoUDP
	s4, d4 := ep.src.Addr().As4(), ep.dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:12], fold(sum(ip, 0)))
	udp := f[ethLen+ipLen:]
	binary.BigEndian.PutUint16(udp[0:2], ep.src.Port())
	binary.BigEndian.PutUint16(udp[2:4], ep.dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen+payload))
	for i := hdrLen + minPayload; i < len(f); i++ {
		f[i] = cli.StreamByte(i - hdrLen) // the stream format's constant tail (-stream)
	}
	// Pseudo-header (addresses, protocol, length), the UDP header (checksum
	// field zero) and the constant payload tail: all fixed per run.
	ps := sum(s4[:], 0)
	ps = sum(d4[:], ps)
	ps += protoUDP + uint32(udpLen+payload)
	ps = sum(udp[:udpLen], ps)
	ps = sum(f[hdrLen+minPayload:], ps)
	return template{frame: f, pseudo: ps, ep: ep}
}

// stamp copies the template into dst (which must hold len(t.frame) bytes),
// writes seq and slot into the payload and sets the UDP checksum. It
// returns the frame length. It allocates nothing.
func (t *template) stamp(dst []byte, seq uint64, slot uint32) int {
	n := copy(dst, t.frame)
	t.stampHead(dst, seq, slot)
	return n
}

// stampHead writes seq and slot into a frame that already holds a copy of
// the template and sets its UDP checksum: the stream mode copies the
// template into each transmit frame once and then only changes this much.
// It allocates nothing.
func (t *template) stampHead(dst []byte, seq uint64, slot uint32) {
	p := dst[hdrLen : hdrLen+minPayload]
	binary.LittleEndian.PutUint64(p[0:8], seq)
	binary.LittleEndian.PutUint32(p[8:12], slot)
	c := fold(sum(p, t.pseudo))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(dst[ethLen+ipLen+6:], c)
}

// parseReply checks that frame is the echo of one of our requests: IPv4/UDP
// from the server's address and port to ours, with a payload of the
// request's size. It returns the sequence number and slot the payload
// carries. It never panics and allocates nothing.
func (t *template) parseReply(frame []byte) (seq uint64, slot uint32, ok bool) {
	if len(frame) < hdrLen+minPayload || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return 0, 0, false
	}
	ip := frame[ethLen:]
	if ip[0]>>4 != 4 || ip[9] != protoUDP {
		return 0, 0, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < ipLen || total < ihl+udpLen || total > len(ip) {
		return 0, 0, false
	}
	s4, d4 := t.ep.src.Addr().As4(), t.ep.dst.Addr().As4()
	if [4]byte(ip[12:16]) != d4 || [4]byte(ip[16:20]) != s4 {
		return 0, 0, false
	}
	udp := ip[ihl:total]
	if binary.BigEndian.Uint16(udp[0:2]) != t.ep.dst.Port() || binary.BigEndian.Uint16(udp[2:4]) != t.ep.src.Port() {
		return 0, 0, false
	}
	p := udp[udpLen:]
	if len(p) != len(t.frame)-hdrLen {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(p[0:8]), binary.LittleEndian.Uint32(p[8:12]), true
}
