package bpf

import (
	"encoding/binary"
	"net/netip"
)

// Frame builders for the program tests. They write only what the steering
// program reads; checksums are left zero.

var (
	ourAddr   = netip.MustParseAddr("198.51.100.1")
	otherAddr = netip.MustParseAddr("198.51.100.2")
	peerAddr  = netip.MustParseAddr("203.0.113.9")
)

func ether(etype uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 1})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(f[12:], etype)
	return append(f, payload...)
}

// vlan wraps an inner ethertype and payload in one tag with outer type tpid.
func vlan(tpid, inner uint16, payload []byte) []byte {
	tag := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint16(tag[0:], 10) // VID 10
	binary.BigEndian.PutUint16(tag[2:], inner)
	return ether(tpid, append(tag, payload...))
}

// arpBody is a 28-byte Ethernet/IPv4 ARP request for target.
func arpBody(target netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], 0x0800)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], 1)
	copy(b[8:14], []byte{0x02, 0, 0, 0, 0, 2})
	s := peerAddr.As4()
	copy(b[14:18], s[:])
	t := target.As4()
	copy(b[24:28], t[:])
	return b
}

type ipOpts struct {
	ihl      int    // header length in words; 0 means 5
	version  int    // 0 means 4
	totalLen int    // 0 means header + payload
	frag     uint16 // flags and fragment offset field
	proto    uint8
	dst      netip.Addr
}

// ipv4 builds an IPv4 header (options padded with NOPs) plus payload.
func ipv4(o ipOpts, payload []byte) []byte {
	if o.ihl == 0 {
		o.ihl = 5
	}
	if o.version == 0 {
		o.version = 4
	}
	hl := o.ihl * 4
	if hl < 20 {
		hl = 20
	}
	h := make([]byte, hl, hl+len(payload))
	h[0] = byte(o.version<<4 | o.ihl&0x0f)
	tl := o.totalLen
	if tl == 0 {
		tl = hl + len(payload)
	}
	binary.BigEndian.PutUint16(h[2:], uint16(tl))
	binary.BigEndian.PutUint16(h[6:], o.frag)
	h[8] = 64
	h[9] = o.proto
	s := peerAddr.As4()
	copy(h[12:16], s[:])
	d := o.dst.As4()
	copy(h[16:20], d[:])
	for i := 20; i < hl; i++ {
		h[i] = 1 // NOP option
	}
	return append(h, payload...)
}

func udp(dport uint16) []byte {
	b := make([]byte, 8+4)
	binary.BigEndian.PutUint16(b[0:], 40000)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	return b
}

func tcp(dport uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], 40000)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5 << 4
	b[13] = 0x02 // SYN
	return b
}

func icmpEcho() []byte {
	b := make([]byte, 8+8)
	b[0] = 8
	return b
}

func ipFrame(o ipOpts, payload []byte) []byte { return ether(0x0800, ipv4(o, payload)) }
