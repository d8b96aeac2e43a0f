package main

import (
	"net"
	"net/netip"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/libos"
)

// listenDX opens one dxnet stack per NIC queue cfg names (-queues; one
// UMEM) and listens on ap on each: -api net's listeners, lns[i] on
// sts[i]. Close the stacks (detaching the XDP program) once the server is
// done with the listeners.
func listenDX(cfg libos.Config, ap netip.AddrPort) (sts []*dxnet.Stack, lns []net.Listener, err error) {
	if sts, err = dxnet.OpenQueues(cfg); err != nil {
		return nil, nil, err
	}
	for _, st := range sts {
		ln, err := st.Listen("tcp", ap.String())
		if err != nil {
			for _, st := range sts {
				st.Close()
			}
			return nil, nil, err
		}
		lns = append(lns, ln)
	}
	return sts, lns, nil
}
