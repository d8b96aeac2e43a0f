package vethlab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// AddAddrB gives IfB, the kernel peer's end in NSB, more IPv4 addresses
// besides AddrB, so that the kernel in B can open more connections to one
// service than the ephemeral port range of a single address allows (the
// scale tests bind each client to one of them). Each prefix obeys the rules
// of Config.AddrA/AddrB (198.51.100.0/24 or 203.0.113.0/24, /24 to /31, not
// a network or broadcast address) and must differ from AddrA and AddrB;
// otherwise AddAddrB fails with ErrBadConfig and adds nothing. Use the
// prefix length of AddrB so the new address is a secondary one on the
// existing connected route. The addresses go away with the lab.
func (l *Lab) AddAddrB(addrs ...netip.Prefix) error { return l.addAddrs(l.NSB, l.IfB, addrs) }

// AddAddrA gives IfA, in NSA, IPv4 addresses of the kernel's own, under the
// rules of AddAddrB: beside a libOS that owns AddrA (dedicated mode, whose
// steering program leaves every other address to the kernel), a kernel
// socket in A can then serve the same peer over the same veth, as a
// reference measured under the same conditions.
func (l *Lab) AddAddrA(addrs ...netip.Prefix) error { return l.addAddrs(l.NSA, l.IfA, addrs) }

func (l *Lab) addAddrs(ns, ifname string, addrs []netip.Prefix) error {
	for _, p := range addrs {
		if err := checkAddr("extra address", p); err != nil {
			return err
		}
		if p.Addr() == l.AddrA.Addr() || p.Addr() == l.AddrB.Addr() {
			return fmt.Errorf("vethlab: extra address %v is AddrA or AddrB: %w", p, ErrBadConfig)
		}
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("vethlab: open %s: %w", ns, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("vethlab: netlink in %s: %w", ns, err)
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("vethlab: find %s in %s: %w", ifname, ns, err)
	}
	for _, p := range addrs {
		ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
		if err := nh.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("vethlab: address %v on %s: %w", p, ifname, err)
		}
	}
	return nil
}
