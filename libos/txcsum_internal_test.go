package libos

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/vishvananda/netlink/nl"
)

// TestParseXSKFeatures: xsk-features is found among a dev-get reply's
// attributes (after the generic netlink header), whatever comes before
// it; a reply without it, or a truncated one, yields nothing.
func TestParseXSKFeatures(t *testing.T) {
	attr := func(typ uint16, v []byte) []byte {
		return nl.NewRtAttr(int(typ), v).Serialize()
	}
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	hdr := genlHeader{cmd: netdevCmdDevGet, version: 1}.Serialize()
	msg := append([]byte(nil), hdr...)
	msg = append(msg, attr(netdevAttrIfindex, u32(7))...)
	msg = append(msg, attr(3, u64(0x7f))...) // xdp-features
	msg = append(msg, attr(netdevAttrXSKFeature, u64(xskTxChecksum|1))...)
	if f, ok := parseXSKFeatures(msg); !ok || f != xskTxChecksum|1 {
		t.Fatalf("parse: %#x %v", f, ok)
	}
	without := append(append([]byte(nil), hdr...), attr(netdevAttrIfindex, u32(7))...)
	if f, ok := parseXSKFeatures(without); ok {
		t.Fatalf("a reply without xsk-features gave %#x", f)
	}
	if _, ok := parseXSKFeatures(hdr[:2]); ok {
		t.Fatal("a truncated reply parsed")
	}
	wrongLen := append(append([]byte(nil), hdr...), attr(netdevAttrXSKFeature, u32(2))...)
	if _, ok := parseXSKFeatures(wrongLen); ok {
		t.Fatal("a 4-byte xsk-features parsed")
	}
}

// TestDeviceChecksumFeatures: the netdev family answers for a veth (whose
// driver has no AF_XDP TX metadata: xsk-features 0), and tx-checksumming
// reads as the lab set it.
func TestDeviceChecksumFeatures(t *testing.T) {
	for _, on := range []bool{false, true} {
		lab := vethlab.ForTest(t, vethlab.Config{Name: "xf", Offloads: on})
		err := lab.RunInA(func() error {
			ifi, err := net.InterfaceByName(lab.IfA)
			if err != nil {
				return err
			}
			f, err := xskFeatures(ifi.Index)
			if err != nil {
				t.Errorf("xskFeatures: %v", err)
			} else if f&xskTxChecksum != 0 {
				t.Errorf("a veth offers tx-checksum to AF_XDP (%#x)", f)
			}
			got, err := txChecksumming(lab.IfA)
			if err != nil {
				t.Errorf("txChecksumming: %v", err)
			} else if got != on {
				t.Errorf("tx-checksumming %v, the lab set %v", got, on)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
