package rss

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/demixdp/demixdp/internal/ethtool"
	"golang.org/x/sys/unix"
)

// The ETHTOOL requests used here are all reads (GET); this package never
// changes a NIC's configuration.

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// rxfhHeader is the fixed part of struct ethtool_rxfh; the indirection
// table (indir_size u32) and the key (key_size bytes) follow it.
type rxfhHeader struct {
	cmd        uint32
	rssContext uint32
	indirSize  uint32
	keySize    uint32
	hfunc      uint8
	inputXfrm  uint8
	_          [2]uint8
	_          uint32
}

// rxnfc is struct ethtool_rxnfc with room for the members not read here.
type rxnfc struct {
	cmd      uint32
	flowType uint32
	data     uint64
	_        [256]byte
}

const (
	hashTop = 1 << 0 // ETH_RSS_HASH_TOP: Toeplitz

	tcpV4Flow = 1
	udpV4Flow = 2

	rxhIPSrc = 1 << 4
	rxhIPDst = 1 << 5
	rxhL4Src = 1 << 6 // RXH_L4_B_0_1
	rxhL4Dst = 1 << 7 // RXH_L4_B_2_3

	fourTuple = rxhIPSrc | rxhIPDst | rxhL4Src | rxhL4Dst
)

// ethtoolIoctl runs one SIOCETHTOOL request on ifname with an AF_INET socket
// of the calling thread's network namespace.
func ethtoolIoctl(ifname string, data unsafe.Pointer) error {
	fd, err := ethtool.Socket()
	if err != nil {
		return fmt.Errorf("rss: %w", err)
	}
	defer unix.Close(fd)
	return ethtool.Ioctl(fd, ifname, data) // the kernel's bare errno, as callers test it
}

// Channels returns the number of receive queues of ifname (ETHTOOL_GCHANNELS:
// the receive-only channels plus the combined ones), asking the kernel in
// the calling thread's network namespace. It fails with the kernel's errno
// (EOPNOTSUPP for a driver without channels) or ENODEV.
func Channels(ifname string) (int, error) {
	c := &ethtoolChannels{cmd: unix.ETHTOOL_GCHANNELS}
	if err := ethtoolIoctl(ifname, unsafe.Pointer(c)); err != nil {
		return 0, fmt.Errorf("rss: ETHTOOL_GCHANNELS %s: %w", ifname, err)
	}
	n := int(c.rxCount + c.combinedCount)
	if n == 0 {
		return 0, fmt.Errorf("rss: ETHTOOL_GCHANNELS %s: no receive channel: %w", ifname, unix.EOPNOTSUPP)
	}
	return n, nil
}

// Read returns ifname's RSS configuration for IPv4 (ETHTOOL_GRSSH for the
// key, indirection table and hash function; ETHTOOL_GRXFH for the fields
// TCP and UDP over IPv4 hash), asking the kernel in the calling thread's
// network namespace. It fails with an error wrapping ErrUnavailable when
// the driver has no RSS configuration to give (veth), uses a hash function
// other than Toeplitz, or transforms the input (symmetric hashing), and
// with ErrInvalid if what the kernel gave cannot be used.
func Read(ifname string) (Config, error) {
	var h rxfhHeader
	h.cmd = unix.ETHTOOL_GRSSH
	if err := ethtoolIoctl(ifname, unsafe.Pointer(&h)); err != nil {
		return Config{}, fmt.Errorf("rss: ETHTOOL_GRSSH %s: %w: %w", ifname, ErrUnavailable, err)
	}
	if h.indirSize == 0 || h.keySize == 0 || h.indirSize > 1<<16 || h.keySize > 1024 {
		return Config{}, fmt.Errorf("rss: %s: indirection table of %d, key of %d bytes: %w", ifname, h.indirSize, h.keySize, ErrUnavailable)
	}
	hdr := int(unsafe.Sizeof(h))
	buf := make([]byte, hdr+4*int(h.indirSize)+int(h.keySize)+8)
	req := (*rxfhHeader)(unsafe.Pointer(&buf[0]))
	req.cmd, req.indirSize, req.keySize = unix.ETHTOOL_GRSSH, h.indirSize, h.keySize
	if err := ethtoolIoctl(ifname, unsafe.Pointer(&buf[0])); err != nil {
		return Config{}, fmt.Errorf("rss: ETHTOOL_GRSSH %s: %w: %w", ifname, ErrUnavailable, err)
	}
	if req.hfunc != 0 && req.hfunc&hashTop == 0 {
		return Config{}, fmt.Errorf("rss: %s hashes with function %#x, not Toeplitz: %w", ifname, req.hfunc, ErrUnavailable)
	}
	if req.inputXfrm != 0 {
		return Config{}, fmt.Errorf("rss: %s transforms the hash input (%#x, symmetric hashing): %w", ifname, req.inputXfrm, ErrUnavailable)
	}
	cfg := Config{Indir: make([]uint32, req.indirSize), Key: make([]byte, req.keySize)}
	for i := range cfg.Indir {
		cfg.Indir[i] = binary.NativeEndian.Uint32(buf[hdr+4*i:])
	}
	copy(cfg.Key, buf[hdr+4*int(req.indirSize):])
	cfg.TCPPorts = hashFields(ifname, tcpV4Flow) == fourTuple
	cfg.UDPPorts = hashFields(ifname, udpV4Flow) == fourTuple
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// hashFields returns the RXH_ bits ETHTOOL_GRXFH reports for flowType, or
// 0 if the driver does not say.
func hashFields(ifname string, flowType uint32) uint64 {
	r := &rxnfc{cmd: unix.ETHTOOL_GRXFH, flowType: flowType}
	if ethtoolIoctl(ifname, unsafe.Pointer(r)) != nil {
		return 0
	}
	return r.data &^ (1 << 31) // RXH_DISCARD is not a field
}
