package main

import (
	"errors"
	"net"
	"net/netip"

	"github.com/demixdp/demixdp/libos"
)

// listenDX opens dxnet on cfg and listens on ap (filled in once dxnet is
// merged).
func listenDX(cfg libos.Config, ap netip.AddrPort) (net.Listener, func() error, error) {
	return nil, nil, errors.New("-api net: dxnet not available yet")
}
