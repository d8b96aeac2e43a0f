package libos

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"github.com/demixdp/demixdp/internal/ethtool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// TxChecksum chooses who computes the UDP and TCP checksums of outgoing
// packets (Config.TxChecksum).
type TxChecksum int

const (
	// TxChecksumAuto leaves them to the NIC where it computes them: in
	// zero-copy mode when the driver offers it (the netdev family's
	// xsk-features has tx-checksum), in copy mode on a hardware device
	// (one with a /sys/class/net/IF/device) whose tx-checksumming is on.
	// Elsewhere the libOS computes them.
	TxChecksumAuto TxChecksum = iota
	// TxChecksumSoftware makes the libOS compute every checksum.
	TxChecksumSoftware
	// TxChecksumKernel is TxChecksumAuto that, in copy mode on a device
	// with tx-checksumming off, also leaves them to the kernel, which
	// computes them in software over the bytes it has just copied. On
	// the lab's veth that measured no faster than the libOS (udp_rtt
	// about 7% slower, bulk no faster), so Auto does not do it; it
	// exercises the offload path where no NIC offers it.
	TxChecksumKernel
)

func (c TxChecksum) String() string {
	switch c {
	case TxChecksumAuto:
		return "auto"
	case TxChecksumSoftware:
		return "software"
	case TxChecksumKernel:
		return "kernel"
	}
	return "TxChecksum(" + strconv.Itoa(int(c)) + ")"
}

// Transmit checksum offload. The stack leaves the UDP and TCP checksums of
// outgoing packets partial (the pseudo-header's sum in the field; the
// link finds them with nic.L4Checksum), and the link asks for them to be
// completed through the AF_XDP TX metadata in front of the packet
// (xdp.PutTxChecksum). In zero-copy mode the driver hands the request to
// the NIC. In copy mode the kernel turns it into a CHECKSUM_PARTIAL skb,
// which the device's checksum offload completes, or the kernel in software
// when the device has none. A virtual device with tx-checksumming on (a
// veth) would hand the partial checksum to a peer that may be an XDP
// program or another libOS, which would see it wrong: Auto therefore asks
// only of hardware devices in copy mode. The decision is made once, at
// New; TxChecksumOffload says who computes the checksums, or why the
// libOS does.

// txChecksumOffload decides whether the link of l may leave checksums to
// the device or the kernel, and why.
func (l *LibOS) txChecksumOffload(name string) (bool, string) {
	switch {
	case l.cfg.TxChecksum == TxChecksumSoftware:
		return false, "the libOS (Config.TxChecksum software)"
	case l.sock.TxMetadataLen() == 0:
		return false, "the libOS: the kernel has no AF_XDP TX metadata (6.11 or later needed)"
	case l.sock.ZeroCopy():
		f, err := xskFeatures(l.ifindex)
		if err != nil {
			return false, "the libOS: the device's xsk-features are unknown: " + err.Error()
		}
		if f&xskTxChecksum == 0 {
			return false, "the libOS: the driver does not offer checksum offload to AF_XDP (xsk-features)"
		}
		return true, "the NIC (zero-copy, xsk-features tx-checksum)"
	}
	on, err := txChecksumming(name)
	if err != nil {
		return false, "the libOS: the device's tx-checksumming is unknown: " + err.Error()
	}
	_, err = os.Stat("/sys/class/net/" + name + "/device")
	hardware := err == nil
	switch {
	case on && hardware:
		return true, "the NIC (copy mode, tx-checksumming on)"
	case on:
		return false, "the libOS: copy mode on a virtual device with tx-checksumming on, which would pass the partial checksum on"
	case l.cfg.TxChecksum == TxChecksumKernel:
		return true, "the kernel, in software (copy mode, tx-checksumming off, Config.TxChecksum kernel)"
	}
	return false, "the libOS: copy mode, the device computes no checksums (tx-checksumming off)"
}

// The netdev generic netlink family (Documentation/netlink/specs/netdev.yaml).
const (
	netdevCmdDevGet      = 1 // dev-get
	netdevAttrIfindex    = 1 // dev: ifindex
	netdevAttrXSKFeature = 6 // dev: xsk-features (u64)
	xskTxChecksum        = 2 // xsk-flags: tx-checksum
)

// xskFeatures returns the device's xsk-features: the AF_XDP TX metadata
// offloads its driver implements.
func xskFeatures(ifindex int) (uint64, error) {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return 0, fmt.Errorf("netdev genetlink family: %w", err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), 0)
	req.AddData(genlHeader{cmd: netdevCmdDevGet, version: 1})
	req.AddData(nl.NewRtAttr(netdevAttrIfindex, nl.Uint32Attr(uint32(ifindex))))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get: %w", err)
	}
	for _, m := range msgs {
		if f, ok := parseXSKFeatures(m); ok {
			return f, nil
		}
	}
	return 0, nil // a kernel without the attribute: no offloads
}

// genlHeader is struct genlmsghdr. (nl.Genlmsg's Serialize reads four
// bytes from its two-byte struct, sending whatever follows it in memory as
// the reserved field, which the netdev family refuses with EINVAL.)
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int          { return nl.SizeofGenlmsg }
func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

// parseXSKFeatures finds xsk-features in a dev-get reply (the generic
// netlink header, then attributes).
func parseXSKFeatures(m []byte) (uint64, bool) {
	if len(m) < nl.SizeofGenlmsg {
		return 0, false
	}
	attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
	if err != nil {
		return 0, false
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK == netdevAttrXSKFeature && len(a.Value) == 8 {
			return binary.NativeEndian.Uint64(a.Value), true
		}
	}
	return 0, false
}

// txChecksumming reads the device's tx-checksumming (ETHTOOL_GTXCSUM).
func txChecksumming(name string) (bool, error) {
	v, err := ethtool.Get(name, unix.ETHTOOL_GTXCSUM)
	return v != 0, err
}
