package main

import "encoding/binary"

// Frame layout constants for the only frames the reflector answers:
// untagged Ethernet II carrying IPv4 carrying UDP.
const (
	ethHeaderLen  = 14
	ethTypeIPv4   = 0x0800
	ipv4MinHeader = 20
	udpHeaderLen  = 8
	protoUDP      = 17
)

// verdict says what the reflector did with one frame. Everything except
// verdictReflected is a reason to release the frame, counted separately.
type verdict uint8

const (
	verdictReflected  verdict = iota // addresses swapped in place: transmit
	verdictMalformed                 // truncated or inconsistent headers
	verdictNotIPv4                   // ethertype other than IPv4 (ARP, IPv6, VLAN...)
	verdictNotUDP                    // IPv4 but not UDP
	verdictFragment                  // an IPv4 fragment (MF set or offset != 0)
	verdictNotUnicast                // destination is broadcast or multicast
	verdictWrongAddr                 // not addressed to -addr
	verdictWrongPort                 // UDP to a port other than -port
	numVerdicts
)

var verdictNames = [numVerdicts]string{
	"reflected", "malformed", "not_ipv4", "not_udp", "fragment", "not_unicast", "wrong_addr", "wrong_port",
}

func (v verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "unknown"
}

// reflector turns a UDP/IPv4 datagram to its port into the reply in place.
type reflector struct {
	port      uint16  // UDP destination port the reflector serves
	addr      [4]byte // destination IPv4 address, when matchAddr
	matchAddr bool    // false: any unicast destination (0.0.0.0 wildcard)
}

// reflect validates frame as an Ethernet/IPv4/UDP datagram to r's port and,
// if it is one, swaps the MAC addresses, the IPv4 addresses and the UDP ports
// in place. No checksum changes: the IPv4 header checksum and the UDP checksum
// (pseudo-header included) are ones'-complement sums, and a sum does not
// depend on the order of its terms. TTL is left alone so nothing else needs
// fixing. A frame that is not reflected is left unmodified.
//
// Datapath: it allocates nothing and never panics on any input.
func (r *reflector) reflect(frame []byte) verdict {
	v, udp := r.match(frame)
	if v != verdictReflected {
		return v
	}
	ip := frame[ethHeaderLen:]

	var mac [6]byte
	copy(mac[:], frame[0:6])
	copy(frame[0:6], frame[6:12])
	copy(frame[6:12], mac[:])

	var a [4]byte
	copy(a[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], a[:])

	udp[0], udp[1], udp[2], udp[3] = udp[2], udp[3], udp[0], udp[1]
	return verdictReflected
}

// match validates frame as reflect does, without changing it: it returns
// verdictReflected and the UDP datagram (header and payload, as long as
// the IPv4 total length says) for a datagram to r's port, or the reason to
// drop it. It allocates nothing and never panics on any input.
func (r *reflector) match(frame []byte) (verdict, []byte) {
	if len(frame) < ethHeaderLen+ipv4MinHeader {
		if len(frame) >= ethHeaderLen && binary.BigEndian.Uint16(frame[12:14]) != ethTypeIPv4 {
			return verdictNotIPv4, nil
		}
		return verdictMalformed, nil
	}
	if binary.BigEndian.Uint16(frame[12:14]) != ethTypeIPv4 {
		return verdictNotIPv4, nil
	}
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 != 4 {
		return verdictMalformed, nil
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < ipv4MinHeader || ihl > len(ip) {
		return verdictMalformed, nil
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total < ihl || total > len(ip) {
		return verdictMalformed, nil
	}
	if ip[9] != protoUDP {
		return verdictNotUDP, nil
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return verdictFragment, nil
	}
	udp := ip[ihl:total]
	if len(udp) < udpHeaderLen {
		return verdictMalformed, nil
	}
	if ulen := int(binary.BigEndian.Uint16(udp[4:6])); ulen < udpHeaderLen || ulen > len(udp) {
		return verdictMalformed, nil
	}
	dst := ip[16:20]
	if dst[0]&0xf0 == 0xe0 || (dst[0] == 0xff && dst[1] == 0xff && dst[2] == 0xff && dst[3] == 0xff) {
		return verdictNotUnicast, nil
	}
	if r.matchAddr && [4]byte(dst) != r.addr {
		return verdictWrongAddr, nil
	}
	if binary.BigEndian.Uint16(udp[2:4]) != r.port {
		return verdictWrongPort, nil
	}
	return verdictReflected, udp
}
