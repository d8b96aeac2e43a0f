package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

var (
	testMACA = []byte{0x02, 0, 0, 0, 0, 0x0a}
	testMACB = []byte{0x02, 0, 0, 0, 0, 0x0b}
	testIPA  = [4]byte{198, 51, 100, 1}
	testIPB  = [4]byte{198, 51, 100, 2}
)

// csum is an independent RFC 1071 ones'-complement sum, folded, not inverted.
func csum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// udpFrame builds Ethernet/IPv4/UDP from B to A with valid checksums.
func udpFrame(t testing.TB, payload []byte, sport, dport uint16, options int) []byte {
	t.Helper()
	ihl := 20 + options
	f := make([]byte, 14+ihl+8+len(payload))
	copy(f[0:6], testMACA)
	copy(f[6:12], testMACB)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+8+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:16], testIPB[:])
	copy(ip[16:20], testIPA[:])
	for i := 20; i < ihl; i++ {
		ip[i] = 1 // NOP options
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(csum(0, ip[:ihl])))
	u := ip[ihl:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	c := ^uint16(udpSum(ip[12:16], ip[16:20], u))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return f
}

func udpSum(src, dst, u []byte) uint32 {
	var ph [12]byte
	copy(ph[0:4], src)
	copy(ph[4:8], dst)
	ph[9] = 17
	binary.BigEndian.PutUint16(ph[10:], uint16(len(u)))
	return csum(csum(0, ph[:]), u)
}

// checkReply verifies that reply is req reflected, with checksums that verify.
func checkReply(t *testing.T, req, reply []byte) {
	t.Helper()
	if !bytes.Equal(reply[0:6], req[6:12]) || !bytes.Equal(reply[6:12], req[0:6]) {
		t.Fatalf("MACs not swapped: % x", reply[:12])
	}
	ihl := int(reply[14]&0xf) * 4
	ip, rq := reply[14:], req[14:]
	if !bytes.Equal(ip[12:16], rq[16:20]) || !bytes.Equal(ip[16:20], rq[12:16]) {
		t.Fatalf("IPv4 addresses not swapped: % x", ip[12:20])
	}
	if csum(0, ip[:ihl]) != 0xffff {
		t.Fatalf("IPv4 header checksum does not verify")
	}
	u, ru := ip[ihl:], rq[ihl:]
	if !bytes.Equal(u[0:2], ru[2:4]) || !bytes.Equal(u[2:4], ru[0:2]) {
		t.Fatalf("ports not swapped: % x", u[:4])
	}
	if binary.BigEndian.Uint16(u[6:]) != 0 && udpSum(ip[12:16], ip[16:20], u) != 0xffff {
		t.Fatalf("UDP checksum does not verify")
	}
	if !bytes.Equal(u[4:], ru[4:]) || !bytes.Equal(ip[:12], rq[:12]) || !bytes.Equal(ip[20:ihl], rq[20:ihl]) {
		t.Fatalf("bytes other than addresses and ports changed")
	}
}

func TestReflectSwapsInPlaceAndChecksumsVerify(t *testing.T) {
	r := reflector{port: 7777}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 2, 3, 17, 64, 1000, 1471, 1472} {
		for _, opts := range []int{0, 4, 40} {
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			req := udpFrame(t, p, 40000+uint16(size), 7777, opts)
			reply := bytes.Clone(req)
			if v := r.reflect(reply); v != verdictReflected {
				t.Fatalf("size %d opts %d: verdict %v", size, opts, v)
			}
			checkReply(t, req, reply)
			// Reflecting twice restores the request exactly.
			back := reflector{port: 40000 + uint16(size)}
			if v := back.reflect(reply); v != verdictReflected || !bytes.Equal(reply, req) {
				t.Fatalf("double reflection is not the identity (%v)", v)
			}
		}
	}
}

func TestReflectKeepsZeroUDPChecksum(t *testing.T) {
	req := udpFrame(t, []byte("hi"), 1234, 7777, 0)
	req[14+20+6], req[14+20+7] = 0, 0
	reply := bytes.Clone(req)
	if v := (&reflector{port: 7777}).reflect(reply); v != verdictReflected {
		t.Fatalf("verdict %v", v)
	}
	if reply[14+20+6] != 0 || reply[14+20+7] != 0 {
		t.Fatal("a zero (absent) UDP checksum must stay zero")
	}
	checkReply(t, req, reply)
}

func TestReflectAddressFilter(t *testing.T) {
	req := udpFrame(t, []byte("x"), 1, 7777, 0)
	if v := (&reflector{port: 7777, addr: testIPA, matchAddr: true}).reflect(bytes.Clone(req)); v != verdictReflected {
		t.Fatalf("to our address: %v", v)
	}
	if v := (&reflector{port: 7777, addr: testIPB, matchAddr: true}).reflect(bytes.Clone(req)); v != verdictWrongAddr {
		t.Fatalf("to another address: %v", v)
	}
}

func TestReflectRejectsWithoutTouching(t *testing.T) {
	good := func() []byte { return udpFrame(t, []byte("payload"), 5000, 7777, 0) }
	cases := []struct {
		name string
		mut  func(f []byte) []byte
		want verdict
	}{
		{"empty", func(f []byte) []byte { return f[:0] }, verdictMalformed},
		{"short ethernet", func(f []byte) []byte { return f[:13] }, verdictMalformed},
		{"short ipv4", func(f []byte) []byte { return f[:14+19] }, verdictMalformed},
		{"arp", func(f []byte) []byte { f[12], f[13] = 0x08, 0x06; return f }, verdictNotIPv4},
		{"short arp", func(f []byte) []byte { f[12], f[13] = 0x08, 0x06; return f[:20] }, verdictNotIPv4},
		{"vlan", func(f []byte) []byte { f[12], f[13] = 0x81, 0x00; return f }, verdictNotIPv4},
		{"ipv6", func(f []byte) []byte { f[12], f[13] = 0x86, 0xdd; return f }, verdictNotIPv4},
		{"version 6", func(f []byte) []byte { f[14] = 0x65; return f }, verdictMalformed},
		{"ihl 4", func(f []byte) []byte { f[14] = 0x44; return f }, verdictMalformed},
		{"ihl past end", func(f []byte) []byte { f[14] = 0x4f; return f }, verdictMalformed},
		{"total length past end", func(f []byte) []byte { f[16], f[17] = 0x05, 0xdc; return f }, verdictMalformed},
		{"total length < ihl", func(f []byte) []byte { f[16], f[17] = 0, 19; return f }, verdictMalformed},
		{"no room for udp header", func(f []byte) []byte { f[16], f[17] = 0, 27; return f }, verdictMalformed},
		{"udp length < 8", func(f []byte) []byte { f[14+20+4], f[14+20+5] = 0, 7; return f }, verdictMalformed},
		{"udp length past ip", func(f []byte) []byte { f[14+20+4], f[14+20+5] = 0x01, 0; return f }, verdictMalformed},
		{"tcp", func(f []byte) []byte { f[14+9] = 6; return f }, verdictNotUDP},
		{"icmp", func(f []byte) []byte { f[14+9] = 1; return f }, verdictNotUDP},
		{"first fragment", func(f []byte) []byte { f[14+6] = 0x20; return f }, verdictFragment},
		{"later fragment", func(f []byte) []byte { f[14+6], f[14+7] = 0, 8; return f }, verdictFragment},
		{"multicast", func(f []byte) []byte { f[14+16] = 239; return f }, verdictNotUnicast},
		{"broadcast", func(f []byte) []byte { copy(f[14+16:], []byte{255, 255, 255, 255}); return f }, verdictNotUnicast},
		{"other port", func(f []byte) []byte { f[14+20+3]++; return f }, verdictWrongPort},
	}
	r := reflector{port: 7777}
	for _, c := range cases {
		f := c.mut(good())
		before := bytes.Clone(f)
		if v := r.reflect(f); v != c.want {
			t.Errorf("%s: verdict %v, want %v", c.name, v, c.want)
		}
		if !bytes.Equal(before, f) {
			t.Errorf("%s: a rejected frame was modified", c.name)
		}
	}
}

func TestReflectAllocatesNothing(t *testing.T) {
	f := udpFrame(t, make([]byte, 64), 7777, 7777, 0)
	r := reflector{port: 7777}
	if n := testing.AllocsPerRun(1000, func() { r.reflect(f) }); n != 0 {
		t.Fatalf("reflect allocates %v per frame", n)
	}
}

func BenchmarkReflect(b *testing.B) {
	f := udpFrame(b, make([]byte, 64), 7777, 7777, 0) // same ports: reflection repeats
	r := reflector{port: 7777}
	b.ReportAllocs()
	for b.Loop() {
		if r.reflect(f) != verdictReflected {
			b.Fatal("not reflected")
		}
	}
}

// FuzzReflect: any input either is rejected unmodified or is reflected into a
// frame whose reflection is the original (so only swaps happened), never a panic.
func FuzzReflect(f *testing.F) {
	f.Add(udpFrame(f, []byte("seed"), 5000, 7777, 0))
	f.Add(udpFrame(f, nil, 5000, 7777, 8))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := reflector{port: 7777}
		orig := bytes.Clone(b)
		v := r.reflect(b)
		if v != verdictReflected {
			if !bytes.Equal(orig, b) {
				t.Fatalf("rejected (%v) but modified", v)
			}
			return
		}
		// Undo the three swaps by hand: the rest must be untouched.
		ihl := int(b[14]&0xf) * 4
		u := b[14+ihl:]
		undo := bytes.Clone(b)
		copy(undo[0:6], b[6:12])
		copy(undo[6:12], b[0:6])
		copy(undo[14+12:14+16], b[14+16:14+20])
		copy(undo[14+16:14+20], b[14+12:14+16])
		copy(undo[14+ihl:14+ihl+2], u[2:4])
		copy(undo[14+ihl+2:14+ihl+4], u[0:2])
		if !bytes.Equal(undo, orig) {
			t.Fatalf("reflection changed more than MACs, addresses and ports")
		}
	})
}
