package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	axdp "github.com/asavie/xdp"

	"github.com/demixdp/demixdp/bpf"
)

// asavieReflector reflects UDP to port on addr with github.com/asavie/xdp's
// socket and rings, busy-polling like xdp-reflect -busy. asavie's own XDP
// program redirects every packet of a queue; demixdp's steering program in
// shared mode is used instead so that ARP and everything else stay with the
// kernel, exactly as for xdp-reflect.
func asavieReflector(iface string, addr netip.Addr, port uint16, ready func(), stop *atomic.Bool) (reflected uint64, err error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return 0, err
	}
	// The previous owner of the queue is released from deferred work
	// shortly after its process exits: retry EBUSY for up to 3 s.
	var xsk *axdp.Socket
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		xsk, err = axdp.NewSocket(ifc.Index, 0, nil)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	defer xsk.Close()
	st, err := bpf.Load(bpf.Config{Mode: bpf.Shared})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if err = st.AddAddr(addr); err == nil {
		err = st.AddPort(17, port)
	}
	if err == nil {
		err = st.RegisterSocket(0, xsk.FD())
	}
	if err != nil {
		return 0, err
	}
	xsk.Fill(xsk.GetDescs(xsk.NumFreeFillSlots()))
	if err := st.Attach(ifc.Index); err != nil {
		return 0, err
	}
	ready()
	for turn := 0; ; turn++ {
		if turn&4095 == 0 && stop.Load() {
			return reflected, nil
		}
		if n := xsk.NumCompleted(); n > 0 {
			xsk.Complete(n)
		}
		if n := xsk.NumFreeFillSlots(); n > 0 {
			xsk.Fill(xsk.GetDescs(n))
		}
		n := xsk.NumReceived()
		if n == 0 {
			continue
		}
		descs := xsk.Receive(n)
		for i := range descs {
			swapUDP(xsk.GetFrame(descs[i]))
		}
		reflected += uint64(xsk.Transmit(descs))
	}
}

// swapUDP turns an Ethernet/IPv4/UDP frame into its reply in place (MACs,
// addresses, ports swapped; the checksums do not change). The steering
// program only lets UDP to our port through.
func swapUDP(f []byte) {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return
	}
	var mac [6]byte
	copy(mac[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac[:])
	ip := f[14:]
	var a [4]byte
	copy(a[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], a[:])
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl+8 {
		return
	}
	u := ip[ihl:]
	u[0], u[1], u[2], u[3] = u[2], u[3], u[0], u[1]
}
