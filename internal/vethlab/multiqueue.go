package vethlab

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
)

// MaxQueues is the most queues a lab's veth ends may have (Config.Queues).
const MaxQueues = 64

// setQueues gives both ends of the pair n RX and n TX queues.
func setQueues(v *netlink.Veth, n int) {
	if n <= 1 {
		return
	}
	v.NumTxQueues, v.NumRxQueues = n, n
	v.PeerNumTxQueues, v.PeerNumRxQueues = uint32(n), uint32(n)
}

// txrehashPath is the per-namespace switch for redrawing a socket's flow
// hash on trouble (retransmission timeouts and the like).
const txrehashPath = "/proc/sys/net/core/txrehash"

// pinFlowsToQueues keeps each of B's sockets on one transmit queue, hence
// on one of A's receive queues, for its whole life: with several queues
// it turns off net.core.txrehash in B. Otherwise a retransmission timeout
// makes the kernel draw a new flow hash and the connection moves to
// another queue, which a real NIC's RSS never does to a flow (its hash
// depends only on the 4-tuple). A kernel without the switch needs nothing.
func (l *Lab) pinFlowsToQueues(n int) error {
	if n <= 1 {
		return nil
	}
	return runInNetns(l.NSB, func() error {
		if err := os.WriteFile(txrehashPath, []byte("0\n"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("vethlab: %s in %s: %w", txrehashPath, l.NSB, err)
		}
		return nil
	})
}
