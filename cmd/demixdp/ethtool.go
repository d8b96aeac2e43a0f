package main

import (
	"unsafe"

	ethtoolreq "github.com/demixdp/demixdp/internal/ethtool"
	"golang.org/x/sys/unix"
)

// The legacy SIOCETHTOOL requests doctor reads; it never issues a SET.

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// rxnfc is struct ethtool_rxnfc, with room for the members doctor does not
// read (the kernel copies the whole struct for ETHTOOL_GRXRINGS).
type rxnfc struct {
	cmd      uint32
	flowType uint32
	data     uint64
	_        [256]byte
}

// Flow types and hash-field bits of ETHTOOL_GRXFH.
const (
	tcpV4Flow = 1
	udpV4Flow = 2

	rxhIPSrc = 1 << 4
	rxhIPDst = 1 << 5
	rxhL4Src = 1 << 6 // first two bytes of the L4 header: the source port
	rxhL4Dst = 1 << 7 // next two: the destination port
)

// rxRings runs ETHTOOL_GRXRINGS: the receive rings RSS spreads over.
func (e *ethtool) rxRings(ifname string) (uint64, error) {
	r := &rxnfc{cmd: unix.ETHTOOL_GRXRINGS}
	err := e.ioctl(ifname, unsafe.Pointer(r))
	return r.data, err
}

// rxHashFields runs ETHTOOL_GRXFH for flowType.
func (e *ethtool) rxHashFields(ifname string, flowType uint32) (uint64, error) {
	r := &rxnfc{cmd: unix.ETHTOOL_GRXFH, flowType: flowType}
	err := e.ioctl(ifname, unsafe.Pointer(r))
	return r.data, err
}

// ethFlagLRO is ETH_FLAG_LRO in ETHTOOL_GFLAGS.
const ethFlagLRO = 1 << 15

// ethtool wraps an AF_INET datagram socket of the calling thread's
// network namespace for SIOCETHTOOL.
type ethtool struct{ fd int }

func openEthtool() (*ethtool, error) {
	fd, err := ethtoolreq.Socket()
	if err != nil {
		return nil, err
	}
	return &ethtool{fd: fd}, nil
}

func (e *ethtool) close() { unix.Close(e.fd) }

func (e *ethtool) ioctl(ifname string, data unsafe.Pointer) error {
	return ethtoolreq.Ioctl(e.fd, ifname, data)
}

// value runs a GET request that answers with a struct ethtool_value.
func (e *ethtool) value(ifname string, cmd uint32) (uint32, error) {
	return ethtoolreq.Value(e.fd, ifname, cmd, 0)
}

// channels runs ETHTOOL_GCHANNELS.
func (e *ethtool) channels(ifname string) (ethtoolChannels, error) {
	c := &ethtoolChannels{cmd: unix.ETHTOOL_GCHANNELS}
	err := e.ioctl(ifname, unsafe.Pointer(c))
	return *c, err
}

// driver runs ETHTOOL_GDRVINFO.
func (e *ethtool) driver(ifname string) (name, version, bus string, err error) {
	info, err := unix.IoctlGetEthtoolDrvinfo(e.fd, ifname)
	if err != nil {
		return "", "", "", err
	}
	return unix.ByteSliceToString(info.Driver[:]), unix.ByteSliceToString(info.Version[:]), unix.ByteSliceToString(info.Bus_info[:]), nil
}
