package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/demixdp/demixdp/libos"
)

// Flows: the kernel client spreading its load over many flows (-flows N),
// so that the receive side's RSS (on the lab's veth: the kernel's per
// socket transmit hash) spreads it over the libOS's queues.

// udpFlows runs udpClient on flows connected sockets at once, the
// outstanding datagrams divided between them, and sums what they did.
func udpFlows(rem netip.AddrPort, flows int, cfg udpClientConfig) (runResult, error) {
	per := cfg
	per.outstanding = max(cfg.outstanding/flows, 1)
	per.n = max(cfg.n/flows, 1)
	per.warmup = cfg.warmup / flows
	cs := make([]*net.UDPConn, flows)
	for i := range cs {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(rem))
		if err != nil {
			return runResult{}, err
		}
		defer c.Close()
		cs[i] = c
	}
	return sumFlows(flows, func(i int) (runResult, error) { return udpClient(cs[i], per) })
}

// connectFlows runs tcpConnect from flows goroutines at once.
func connectFlows(dial dialer, flows int, d time.Duration) (runResult, error) {
	return sumFlows(flows, func(int) (runResult, error) { return tcpConnect(dial, d) })
}

// sumFlows runs run(0..flows-1) concurrently: the rate is everything
// received over the longest elapsed time. The first error wins.
func sumFlows(flows int, run func(i int) (runResult, error)) (runResult, error) {
	res := make([]runResult, flows)
	errs := make([]error, flows)
	var wg sync.WaitGroup
	for i := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = run(i)
		}()
	}
	wg.Wait()
	var sum runResult
	for i, r := range res {
		if errs[i] != nil {
			return sum, errs[i]
		}
		sum.received += r.received
		sum.lost += r.lost
		sum.elapsed = max(sum.elapsed, r.elapsed)
	}
	if sum.elapsed > 0 {
		sum.rate = float64(sum.received) / sum.elapsed.Seconds()
	}
	return sum, nil
}

// openLibOSQueues opens the libOS TCP server's queues (-queues, -cpus).
func openLibOSQueues(d driverFlags, prefix netip.Prefix) ([]*libos.LibOS, error) {
	cfg := libos.Config{Interface: d.iface, Addr: prefix, Mode: libos.Dedicated, Spin: d.spin, Queues: d.queues}
	if d.cpus != "" {
		for _, f := range strings.Split(d.cpus, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("-cpus %q: %w", d.cpus, err)
			}
			cfg.CPUs = append(cfg.CPUs, c)
		}
	}
	return libos.OpenQueues(cfg)
}

func closeLibs(libs []*libos.LibOS) {
	for _, l := range libs {
		l.Close()
	}
}

// printQueueLines prints each queue's "queue N: ..." line at exit, as the
// libOS commands do, for the harness to split the throughput by queue.
func printQueueLines(libs []*libos.LibOS) {
	for _, l := range libs {
		c, err := l.Counters()
		if err != nil {
			continue
		}
		fmt.Printf("queue %d: rx_descs=%d tx_descs=%d conns_established=%d handoffs=%d handoffs_in=%d\n",
			l.QueueID(), c.RxDescs, c.TxDescs, c.TCP.ConnsEstablished, c.Handoffs.Out, c.Handoffs.In)
	}
}
