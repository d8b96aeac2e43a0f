package main

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// TestQueuesEchoEveryQueue: udp-echo -queues N on an N-queue lab (2 and
// 4) answers 10,000 datagrams from 125 kernel source ports, every byte
// checked; at exit it prints one "queue N:" line per queue, and every
// queue received, sent and echoed. The 2-queue run is in shared mode, the
// 4-queue run in dedicated mode.
func TestQueuesEchoEveryQueue(t *testing.T) {
	priv.Require(t, "udp-echo on a multi-queue veth lab")
	for _, c := range []struct {
		queues int
		mode   string
	}{{2, "shared"}, {4, "dedicated"}} {
		t.Run(fmt.Sprintf("%dq-%s", c.queues, c.mode), func(t *testing.T) {
			lab := vethlab.ForTest(t, vethlab.Config{Name: "ueq", Queues: c.queues, KernelAddrA: c.mode == "shared"})
			srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
			p := startEcho(t, lab, "-addr", srv.String(), "-mode", c.mode, "-queues", fmt.Sprint(c.queues), "-pops", "16")
			const sockets, per = 125, 80
			retries := labtest.UDPEchoFlows(t, lab, srv, sockets, per, uint64(c.queues))
			total := uint64(sockets*per + retries + 1)
			k := checkCleanExit(t, lab, p, syscall.SIGINT, total)
			qs := labtest.QueueLines(p.Output())
			if len(qs) != c.queues {
				t.Fatalf("%d queue lines for %d queues:\n%s", len(qs), c.queues, p.Output())
			}
			var echoed uint64
			for q := range c.queues {
				l := qs[q]
				t.Logf("queue %d: rx_descs=%d tx_descs=%d echoed=%d handoffs=%d", q, l["rx_descs"], l["tx_descs"], l["echoed"], l["handoffs"])
				if l["rx_descs"] == 0 || l["tx_descs"] == 0 || l["echoed"] == 0 {
					t.Errorf("queue %d carried no traffic: %v", q, l)
				}
				echoed += l["echoed"]
			}
			if echoed != k["echo.echoed"] {
				t.Errorf("queue lines echoed %d, the echo line %d", echoed, k["echo.echoed"])
			}
			if retries != 0 {
				t.Logf("%d datagrams sent again", retries)
			}
		})
	}
}
