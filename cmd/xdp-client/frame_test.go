package main

import (
	"net/netip"
	"testing"
)

func testEndpoints() endpoints {
	return endpoints{
		srcMAC: [6]byte{2, 0, 0, 0, 0, 2}, dstMAC: [6]byte{2, 0, 0, 0, 0, 1},
		src: netip.MustParseAddrPort("198.51.100.2:9000"),
		dst: netip.MustParseAddrPort("198.51.100.1:7777"),
	}
}

// reflectFrame turns a request into the reply a reflector would send.
func reflectFrame(f []byte) {
	for i := 0; i < 6; i++ {
		f[i], f[6+i] = f[6+i], f[i]
	}
	ip := f[ethLen:]
	for i := 0; i < 4; i++ {
		ip[12+i], ip[16+i] = ip[16+i], ip[12+i]
	}
	u := ip[ipLen:]
	u[0], u[1], u[2], u[3] = u[2], u[3], u[0], u[1]
}

func TestStampChecksumsVerify(t *testing.T) {
	for _, size := range []int{12, 13, 64, 1472} {
		tm := newTemplate(testEndpoints(), size)
		buf := make([]byte, 2048)
		for seq := uint64(0); seq < 300; seq += 37 {
			n := tm.stamp(buf, seq*0x0101010101, uint32(seq))
			f := buf[:n]
			if got := fold(sum(f[ethLen:ethLen+ipLen], 0)); got != 0 {
				t.Fatalf("size %d: IPv4 header checksum does not verify (%#x)", size, got)
			}
			// UDP: pseudo-header + UDP header + payload must sum to 0xffff.
			ip := f[ethLen:]
			ps := sum(ip[12:20], 0) + protoUDP + uint32(len(f)-ethLen-ipLen)
			if got := fold(sum(f[ethLen+ipLen:], ps)); got != 0 {
				t.Fatalf("size %d seq %d: UDP checksum does not verify (%#x)", size, seq, got)
			}
		}
	}
}

func TestParseReply(t *testing.T) {
	tm := newTemplate(testEndpoints(), 64)
	buf := make([]byte, 2048)
	n := tm.stamp(buf, 12345, 7)
	if _, _, ok := tm.parseReply(buf[:n]); ok {
		t.Fatal("the request itself was accepted as a reply")
	}
	reflectFrame(buf[:n])
	seq, slot, ok := tm.parseReply(buf[:n])
	if !ok || seq != 12345 || slot != 7 {
		t.Fatalf("parseReply = %d, %d, %v; want 12345, 7, true", seq, slot, ok)
	}
	// Every truncation and a wrong size are refused without a panic.
	for i := 0; i < n; i++ {
		if _, _, ok := tm.parseReply(buf[:i]); ok {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	other := newTemplate(testEndpoints(), 65)
	if _, _, ok := other.parseReply(buf[:n]); ok {
		t.Fatal("a reply of another size was accepted")
	}
}

func TestStampAllocatesNothing(t *testing.T) {
	tm := newTemplate(testEndpoints(), 64)
	buf := make([]byte, 2048)
	var seq uint64
	allocs := testing.AllocsPerRun(1000, func() {
		n := tm.stamp(buf, seq, 1)
		reflectFrame(buf[:n])
		tm.parseReply(buf[:n])
		seq++
	})
	if allocs != 0 {
		t.Fatalf("stamp+parseReply: %v allocs per run, want 0", allocs)
	}
}

func TestParseOptions(t *testing.T) {
	good := options{iface: "x", src: "198.51.100.2:9", dst: "198.51.100.1:7", dstmac: "02:00:00:00:00:01",
		n: 1, size: 64, outstanding: 1, frames: 4096, batch: 64}
	if _, err := parseOptions(good); err != nil {
		t.Fatal(err)
	}
	bad := []func(*options){
		func(o *options) { o.src = "" },
		func(o *options) { o.dst = "[2001:db8::1]:7" },
		func(o *options) { o.dstmac = "zz" },
		func(o *options) { o.size = 11 },
		func(o *options) { o.outstanding = 0 },
		func(o *options) { o.frames = 3000 },
		func(o *options) { o.src = "198.51.100.2:0" },
	}
	for i, f := range bad {
		o := good
		f(&o)
		if _, err := parseOptions(o); err == nil {
			t.Errorf("case %d: accepted", i)
		}
	}
}

// FuzzParseReply: any bytes handed up by the RX ring are either refused or
// parsed into the fields of one of our requests; never a panic.
func FuzzParseReply(f *testing.F) {
	tpl := newTemplate(testEndpoints(), 64)
	good := make([]byte, len(tpl.frame))
	tpl.stamp(good, 7, 3)
	reflectFrame(good)
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, slot, ok := tpl.parseReply(b)
		if ok && len(b) < hdrLen+minPayload {
			t.Fatalf("accepted a %d-byte frame (seq %d slot %d)", len(b), seq, slot)
		}
	})
}
