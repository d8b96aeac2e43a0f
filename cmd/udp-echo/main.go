// Command udp-echo is a zero-copy UDP echo server on the demixdp libOS: it
// takes over one queue of an interface with AF_XDP, binds IP:PORT and sends
// every datagram back to its sender by pushing the very SGA it popped (the
// payload is never copied), freeing it right after the push
// (free-protection keeps the frame until the kernel has sent it).
//
// Run it inside the network namespace that holds the interface:
//
//	udp-echo -iface IF -addr IP:PORT [-prefix 24] [-mode dedicated|shared]
//	    [-gateway IP] [-frames N] [-pops K] [-spin D] [-cpuprofile F]
//	    [-queues N] [-cpus LIST] [-pcap FILE] [-metrics ADDR] [-log-level L]
//
// -queues N serves queues 0..N-1 of the interface (0: all of them), one
// libOS and one loop per queue on its own thread (pinned with -cpus), all
// bound to IP:PORT, on one shared UMEM (libos.OpenQueues); -frames is then
// the total, shared evenly.
//
// In dedicated mode the libOS owns IP (the kernel must not have it) and
// answers ARP and ping for it; in shared mode IP is the kernel's too and
// only UDP to PORT reaches the libOS.
//
// -pcap writes every frame received and sent as pcapng; -metrics serves
// Prometheus /metrics, /debug/vars and /debug/pprof/ on the kernel's
// network (it prints "metrics on http://ADDR/metrics"); lifecycle events
// are logged to stderr as text (-log-level off silences them).
//
// When it can receive it prints a line containing "listening", the
// address, the mode and copy or zerocopy. On SIGINT or SIGTERM it prints
// its counters as "group: key=value ..." lines (summed over the queues),
// then one line per NIC queue, "queue N: rx_descs=... tx_descs=...
// handoffs=... echoed=...", closes the libOS (which detaches the XDP
// program), prints "detached" and exits 0. Setup errors exit 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/demixdp/demixdp/dxmetrics"
	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// options are the command-line settings.
type options struct {
	common cli.LibOSFlags
	addr   string
	pops   int
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{Gateway: "next hop for off-link senders (optional)", Frames: true, CPUProfile: true, Ops: true, Queues: true})
	flag.StringVar(&o.addr, "addr", "", "IPv4 address and UDP port to serve, IP:PORT (required)")
	flag.IntVar(&o.pops, "pops", 8, "pops kept outstanding (1-64)")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "udp-echo:", err)
		os.Exit(1)
	}
}

// config turns the options into a libOS configuration and the address to
// bind.
func (o *options) config() (libos.Config, netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil || !ap.Addr().Is4() || ap.Addr().IsUnspecified() {
		return libos.Config{}, netip.AddrPort{}, fmt.Errorf("-addr %q: want an IPv4 IP:PORT", o.addr)
	}
	if o.pops < 1 || o.pops > maxPops {
		return libos.Config{}, netip.AddrPort{}, fmt.Errorf("-pops %d: want 1-%d", o.pops, maxPops)
	}
	cfg, err := o.common.Config(ap.Addr())
	if err != nil {
		return cfg, netip.AddrPort{}, err
	}
	return cfg, ap, nil
}

func run(o options, out io.Writer) error {
	cfg, ap, err := o.config()
	if err != nil {
		return err
	}
	stopProfile, err := cli.StartProfile(o.common.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()

	ops, err := o.common.Ops.Start(&cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer ops.Close()

	var stop atomic.Bool
	defer cli.OnSignal(func() { stop.Store(true) })()

	libs, err := cli.OpenQueues(cfg)
	if err != nil {
		return err
	}
	defer cli.CloseAll(libs)
	qds := make([]libos.QD, len(libs))
	for i, lib := range libs {
		qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := lib.Bind(qd, ap); err != nil {
			return fmt.Errorf("bind %v: %w", ap, err)
		}
		qds[i] = qd
	}
	err = ops.ServeQueues(&o.common.Ops, libs, out, func(i int) []dxmetrics.Queue { return []dxmetrics.Queue{{QD: qds[i], Name: "echo"}} })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "udp-echo: listening on %v (%s) iface=%s mode=%v xdp=%s mtu=%d queues=%d\n",
		ap, cfg.Addr, cfg.Interface, cfg.Mode, cli.XDPMode(libs[0]), libs[0].MTU(), len(libs))

	es := make([]*echoer, len(libs))
	for i, lib := range libs {
		es[i] = newEchoer(lib, qds[i], o.pops)
		es[i].ops = ops.Queue(i)
	}
	// One loop per queue, each on its own thread pinned to its -cpus CPU;
	// a single unpinned queue runs here.
	loopErr := cli.RunLoops(libs, cfg.CPUs, func(i int) error { return es[i].serve(&stop) })

	printCounters(out, libs, qds, es)
	if cerr := cli.CloseAll(libs); cerr != nil {
		return errors.Join(loopErr, fmt.Errorf("close: %w", cerr))
	}
	if err := ops.Close(); err != nil {
		return errors.Join(loopErr, err)
	}
	fmt.Fprintln(out, "udp-echo: detached")
	return loopErr
}
