package xdp

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// TxMetadataLen is the TX metadata area Config.TxMetadata registers: the
// size of struct xsk_tx_metadata in <linux/if_xdp.h> (flags, then the
// request: csum_start, csum_offset, launch_time), which the kernel reads at
// the descriptor's address minus this length.
const TxMetadataLen = 24

// Offsets within struct xsk_tx_metadata.
const (
	txmdFlags      = 0
	txmdCsumStart  = 8
	txmdCsumOffset = 10
	txmdLaunchTime = 16
)

// PutTxChecksum writes, into meta (the TxMetadataLen bytes right before
// the packet in its frame), a request that the device compute the L4
// checksum over the packet from byte start to its end and store it at
// start+offset. The checksum field must hold the folded sum of the
// pseudo-header (the CHECKSUM_PARTIAL convention). The descriptor must
// carry unix.XDP_TX_METADATA in its options. In copy mode the kernel turns
// the request into a CHECKSUM_PARTIAL skb, which the device's checksum
// offload or the kernel's software fallback completes; in zero-copy mode
// the driver must offer it (tx-checksum in the netdev family's
// xsk-features; libos/txcsum.go reads them).
func PutTxChecksum(meta []byte, start, offset uint16) {
	_ = meta[TxMetadataLen-1]
	binary.NativeEndian.PutUint64(meta[txmdFlags:], unix.XDP_TXMD_FLAGS_CHECKSUM)
	binary.NativeEndian.PutUint16(meta[txmdCsumStart:], start)
	binary.NativeEndian.PutUint16(meta[txmdCsumOffset:], offset)
	binary.NativeEndian.PutUint32(meta[txmdCsumOffset+2:], 0)
	binary.NativeEndian.PutUint64(meta[txmdLaunchTime:], 0)
}
