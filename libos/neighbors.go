package libos

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelNeighbors reads the kernel's neighbour table for one interface
// (Shared mode: the kernel owns ARP on the shared address, so ARP replies
// never reach the libOS). The netlink handle is opened in New, so it stays
// bound to the interface's network namespace whatever thread uses it later.
type kernelNeighbors struct {
	h       *netlink.Handle
	ifindex int
}

func newKernelNeighbors(ifindex int) (*kernelNeighbors, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("libos: netlink: %w", err)
	}
	return &kernelNeighbors{h: h, ifindex: ifindex}, nil
}

// Lookup implements stack.Neighbors. It runs only on a cache miss or when
// an entry expires, never per packet.
func (k *kernelNeighbors) Lookup(ip [4]byte) ([6]byte, bool) {
	list, err := k.h.NeighList(k.ifindex, netlink.FAMILY_V4)
	if err != nil {
		return [6]byte{}, false
	}
	want := netip.AddrFrom4(ip)
	for _, n := range list {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != want || len(n.HardwareAddr) != 6 {
			continue
		}
		if n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) == 0 {
			continue
		}
		return [6]byte(n.HardwareAddr), true
	}
	return [6]byte{}, false
}

// Resolve implements stack.Neighbors: an RTM_NEWNEIGH with NTF_USE makes the
// kernel start resolving the address itself (as if it had a packet for it),
// without sending anything on our behalf.
func (k *kernelNeighbors) Resolve(ip [4]byte) {
	_ = k.h.NeighSet(&netlink.Neigh{
		LinkIndex: k.ifindex,
		Family:    netlink.FAMILY_V4,
		Flags:     netlink.NTF_USE,
		State:     netlink.NUD_NONE,
		IP:        net.IP(ip[:]),
	})
}

func (k *kernelNeighbors) close() { k.h.Close() }
