package rss

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// msKey is the key of Microsoft's "Verifying the RSS Hash Calculation"
// suite, also printed in the Intel 82599 datasheet (7.1.2.8.3).
var msKey = mustHex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// msVectors are the suite's IPv4 cases: the packet's destination and
// source, and the expected hashes of the addresses alone and of the
// 4-tuple.
var msVectors = []struct {
	dst, src       string
	ipv4, ipv4Port uint32
}{
	{"161.142.100.80:1766", "66.9.149.187:2794", 0x323e8fc2, 0x51ccc178},
	{"65.69.140.83:4739", "199.92.111.2:14230", 0xd718262a, 0xc626b0ea},
	{"12.22.207.184:38024", "24.19.198.95:12898", 0xd2d0a5de, 0x5c2b394a},
	{"209.142.163.6:2217", "38.27.205.30:48228", 0x82989176, 0xafc7327f},
	{"202.188.127.2:1303", "153.39.163.191:44251", 0x5d1809c5, 0x10e828a2},
}

func TestHashMicrosoftVectors(t *testing.T) {
	for _, v := range msVectors {
		dst, src := netip.MustParseAddrPort(v.dst), netip.MustParseAddrPort(v.src)
		if got := HashIPv4Addrs(msKey, src.Addr(), dst.Addr()); got != v.ipv4 {
			t.Errorf("%s -> %s: addresses hash to %#08x, want %#08x", v.src, v.dst, got, v.ipv4)
		}
		if got := HashIPv4(msKey, src, dst); got != v.ipv4Port {
			t.Errorf("%s -> %s: 4-tuple hashes to %#08x, want %#08x", v.src, v.dst, got, v.ipv4Port)
		}
	}
}

// TestHashIsLinear checks the property the Chooser is built on: the hash
// of a XOR b is the XOR of the hashes.
func TestHashIsLinear(t *testing.T) {
	a := mustHex("0102030405060708090a0b0c")
	b := mustHex("f0e0d0c0b0a0908070605040")
	x := make([]byte, len(a))
	for i := range a {
		x[i] = a[i] ^ b[i]
	}
	if Hash(msKey, x) != Hash(msKey, a)^Hash(msKey, b) {
		t.Fatal("Toeplitz hash is not linear")
	}
	if Hash(msKey, make([]byte, 12)) != 0 {
		t.Fatal("hash of zeros is not zero")
	}
}

func TestHashShortKeyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a 15-byte key for 12 bytes of input did not panic")
		}
	}()
	Hash(msKey[:15], make([]byte, 12))
}

func BenchmarkHashIPv4(b *testing.B) {
	src, dst := netip.MustParseAddrPort("66.9.149.187:2794"), netip.MustParseAddrPort("161.142.100.80:1766")
	for b.Loop() {
		HashIPv4(msKey, src, dst)
	}
}
