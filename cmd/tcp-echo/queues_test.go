package main

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// TestQueuesEveryQueueAccepts: tcp-echo -queues N on an N-queue lab (2 in
// shared mode, 4 in dedicated mode) serves 200 kernel connections at once,
// each echoing 8 KB, every byte checked (SHA-256): every queue listens, a
// connection lives on the queue its SYN arrived on, and every queue
// accepted some. Nothing is reset, every connection closes cleanly, and
// each queue's line shows its traffic.
func TestQueuesEveryQueueAccepts(t *testing.T) {
	priv.Require(t, "tcp-echo on a multi-queue veth lab")
	for _, c := range []struct {
		queues int
		mode   string
	}{{2, "shared"}, {4, "dedicated"}} {
		t.Run(fmt.Sprintf("%dq-%s", c.queues, c.mode), func(t *testing.T) {
			lab := vethlab.ForTest(t, vethlab.Config{Name: "teq", Queues: c.queues, KernelAddrA: c.mode == "shared"})
			srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
			p := startEcho(t, lab, "-addr", srv.String(), "-mode", c.mode, "-queues", fmt.Sprint(c.queues))
			const conns, each = 200, 8192
			cs := make([]*net.TCPConn, conns)
			for i := range cs {
				c, err := dial(lab, srv)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				defer c.Close()
				cs[i] = c
			}
			errs := make(chan error, conns)
			var wg sync.WaitGroup
			for i, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := echoThrough(c, each, 1000, uint64(i)); err != nil {
						errs <- fmt.Errorf("connection %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			k := stopEcho(t, lab, p, syscall.SIGINT)
			if k["echo.accepted"] != conns || k["echo.closed"] != conns || k["echo.aborted"] != 0 || k["echo.failed"] != 0 {
				t.Errorf("accepted %d closed %d aborted %d failed %d, want %d, %d, 0, 0",
					k["echo.accepted"], k["echo.closed"], k["echo.aborted"], k["echo.failed"], conns, conns)
			}
			if k["echo.bytes"] != conns*each {
				t.Errorf("echoed %d bytes, want %d", k["echo.bytes"], conns*each)
			}
			if k["libos.tcp.rsts_out"] != 0 || k["libos.tcp.rsts_in"] != 0 {
				t.Errorf("resets: out %d in %d", k["libos.tcp.rsts_out"], k["libos.tcp.rsts_in"])
			}
			qs := labtest.QueueLines(p.Output())
			if len(qs) != c.queues {
				t.Fatalf("%d queue lines for %d queues:\n%s", len(qs), c.queues, p.Output())
			}
			var accepted uint64
			for q := range c.queues {
				l := qs[q]
				t.Logf("queue %d: rx_descs=%d tx_descs=%d accepted=%d bytes=%d handoffs=%d", q, l["rx_descs"], l["tx_descs"], l["accepted"], l["bytes"], l["handoffs"])
				if l["rx_descs"] == 0 || l["tx_descs"] == 0 || l["accepted"] == 0 {
					t.Errorf("queue %d carried no connection: %v", q, l)
				}
				if l["handoffs"] != l["arp_copies"] {
					t.Errorf("queue %d handed off %d frames (%d ARP copies) of connections it holds itself", q, l["handoffs"], l["arp_copies"])
				}
				accepted += l["accepted"]
			}
			if accepted != conns {
				t.Errorf("queue lines accepted %d, want %d", accepted, conns)
			}
		})
	}
}
