package vethlab

import (
	"fmt"

	"github.com/demixdp/demixdp/internal/ethtool"
	"golang.org/x/sys/unix"
)

// Offloads is the state of the offload features the lab controls on one
// veth end, as the legacy ethtool GET commands report them.
type Offloads struct {
	RXChecksum    bool // rx-checksumming (ETHTOOL_GRXCSUM)
	TXChecksum    bool // tx-checksumming (ETHTOOL_GTXCSUM)
	ScatterGather bool // scatter-gather (ETHTOOL_GSG)
	TSO           bool // tcp-segmentation-offload (ETHTOOL_GTSO)
	GSO           bool // generic-segmentation-offload (ETHTOOL_GGSO)
	GRO           bool // generic-receive-offload (ETHTOOL_GGRO)
}

// AllOn reports whether every controlled offload is on.
func (o Offloads) AllOn() bool {
	return o.RXChecksum && o.TXChecksum && o.ScatterGather && o.TSO && o.GSO && o.GRO
}

// AllOff reports whether every controlled offload is off.
func (o Offloads) AllOff() bool {
	return !o.RXChecksum && !o.TXChecksum && !o.ScatterGather && !o.TSO && !o.GSO && !o.GRO
}

// offloadCmd pairs the legacy GET and SET ethtool commands of one feature.
type offloadCmd struct {
	name     string
	get, set uint32
	field    func(*Offloads) *bool
}

// offloadOrder lists features so that each one's prerequisites come before
// it (the kernel drops SG without a checksum feature and TSO without SG).
// Turning on walks it forwards; turning off walks it backwards.
var offloadOrder = []offloadCmd{
	{"rx-checksumming", unix.ETHTOOL_GRXCSUM, unix.ETHTOOL_SRXCSUM, func(o *Offloads) *bool { return &o.RXChecksum }},
	{"tx-checksumming", unix.ETHTOOL_GTXCSUM, unix.ETHTOOL_STXCSUM, func(o *Offloads) *bool { return &o.TXChecksum }},
	{"scatter-gather", unix.ETHTOOL_GSG, unix.ETHTOOL_SSG, func(o *Offloads) *bool { return &o.ScatterGather }},
	{"tso", unix.ETHTOOL_GTSO, unix.ETHTOOL_STSO, func(o *Offloads) *bool { return &o.TSO }},
	{"gso", unix.ETHTOOL_GGSO, unix.ETHTOOL_SGSO, func(o *Offloads) *bool { return &o.GSO }},
	{"gro", unix.ETHTOOL_GGRO, unix.ETHTOOL_SGRO, func(o *Offloads) *bool { return &o.GRO }},
}

// getOffloads reads the offload state of ifname through fd.
func getOffloads(fd int, ifname string) (Offloads, error) {
	var o Offloads
	for _, c := range offloadOrder {
		v, err := ethtool.Value(fd, ifname, c.get, 0)
		if err != nil {
			return o, fmt.Errorf("vethlab: %s: get %s: %w", ifname, c.name, err)
		}
		*c.field(&o) = v != 0
	}
	return o, nil
}

// setOffloads turns every controlled offload of ifname on or off through fd
// and verifies the result with the GET commands.
func setOffloads(fd int, ifname string, on bool) error {
	var val uint32
	if on {
		val = 1
	}
	n := len(offloadOrder)
	for i := range n {
		c := offloadOrder[i]
		if !on {
			c = offloadOrder[n-1-i]
		}
		if _, err := ethtool.Value(fd, ifname, c.set, val); err != nil {
			return fmt.Errorf("vethlab: %s: set %s=%v: %w", ifname, c.name, on, err)
		}
	}
	got, err := getOffloads(fd, ifname)
	if err != nil {
		return err
	}
	if (on && !got.AllOn()) || (!on && !got.AllOff()) {
		return fmt.Errorf("vethlab: %s: offloads are %+v after setting them to %v: %w", ifname, got, on, ErrOffloads)
	}
	return nil
}
