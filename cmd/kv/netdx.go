package main

import (
	"net"
	"net/netip"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/libos"
)

// listenDX opens a dxnet stack on cfg and listens on ap: -api net's
// listener. The returned function closes the stack (detaching the XDP
// program) once the server is done with the listener.
func listenDX(cfg libos.Config, ap netip.AddrPort) (net.Listener, func() error, error) {
	st, err := dxnet.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	ln, err := st.Listen("tcp", ap.String())
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return ln, st.Close, nil
}
