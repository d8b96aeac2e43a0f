package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/xdp"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/demixdp/demixdp/bpf"
)

// gvisorStack is gVisor's netstack on its AF_XDP link endpoint, on queue 0
// of one interface. gVisor's endpoint takes an AF_XDP socket we create,
// registers its own UMEM on it and binds it; it loads no XDP program, so
// demixdp's steering program in dedicated mode redirects ARP and IPv4 for
// the stack's address into that socket.
type gvisorStack struct {
	s     *stack.Stack
	steer *bpf.Steering
	fd    int
}

const gvisorNIC = 1

// newGvisorStack retries EBUSY for up to 3 s: the kernel releases a queue
// from deferred work after the previous owner's process exits.
func newGvisorStack(iface string, addr netip.Prefix) (*gvisorStack, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		g, err := openGvisorStack(iface, addr)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return g, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isBusy reports EBUSY; gVisor formats the errno into its message (%v),
// so the text is checked too.
func isBusy(err error) bool {
	return errors.Is(err, unix.EBUSY) || strings.Contains(err.Error(), unix.EBUSY.Error())
}

func openGvisorStack(iface string, addr netip.Prefix) (*gvisorStack, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_XDP socket: %w", err)
	}
	g := &gvisorStack{fd: fd}
	ep, err := xdp.New(&xdp.Options{
		FD:             fd,
		Address:        tcpip.LinkAddress(ifc.HardwareAddr),
		InterfaceIndex: ifc.Index,
		Bind:           true,
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("gvisor xdp endpoint: %w", err)
	}
	g.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if terr := g.s.CreateNIC(gvisorNIC, ep); terr != nil {
		g.Close()
		return nil, fmt.Errorf("gvisor CreateNIC: %s", terr)
	}
	a4 := addr.Addr().As4()
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom4(a4).WithPrefix()}
	pa.AddressWithPrefix.PrefixLen = addr.Bits()
	if terr := g.s.AddProtocolAddress(gvisorNIC, pa, stack.AddressProperties{}); terr != nil {
		g.Close()
		return nil, fmt.Errorf("gvisor AddProtocolAddress: %s", terr)
	}
	g.s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: gvisorNIC}})
	// Bulk transfer wants buffers as large as the kernel's defaults.
	sack := tcpip.TCPSACKEnabled(true)
	g.s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	g.s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 8 << 20}
	g.s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd)

	g.steer, err = bpf.Load(bpf.Config{Mode: bpf.Dedicated})
	if err == nil {
		err = g.steer.AddAddr(addr.Addr())
	}
	if err == nil {
		err = g.steer.RegisterSocket(0, fd)
	}
	if err == nil {
		err = g.steer.Attach(ifc.Index)
	}
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("steering for gvisor: %w", err)
	}
	return g, nil
}

// Close detaches the steering program and closes the stack.
func (g *gvisorStack) Close() {
	if g.steer != nil {
		g.steer.Close()
	}
	if g.s != nil {
		g.s.Close()
	}
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: gvisorNIC, Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}
}
