// Command tcp-echo is a zero-copy TCP echo server on the demixdp libOS: it
// takes over one queue of an interface with AF_XDP, listens on IP:PORT and
// sends every byte of every connection back by pushing the very SGA it
// popped (a view of the received frame), freeing it right after the push.
//
// Run it inside the network namespace that holds the interface:
//
//	tcp-echo -iface IF -addr IP:PORT [-prefix 24] [-mode dedicated|shared]
//	    [-gateway IP] [-frames N] [-spin D] [-backlog N] [-idle-timeout D]
//	    [-cpuprofile F] [-queues N] [-cpus LIST] [-pcap FILE] [-metrics ADDR]
//	    [-log-level L]
//
// -queues N serves queues 0..N-1 of the interface (0: all of them), one
// libOS and one loop per queue on its own thread (pinned with -cpus), on
// one shared UMEM (libos.OpenQueues; -frames is then the total, shared
// evenly): every queue listens on IP:PORT, and a connection lives on the
// queue that received its SYN.
//
// It serves many connections at once from one goroutine: one WaitAny over
// the accept token and every connection's pop and push tokens. A push
// refused with EAGAIN (send buffer full, or UMEM frames running low) is
// held and retried, and that connection is not read until it goes, so no
// byte is lost and the client is slowed by TCP flow control. When a client
// closes its side, the connection is closed once everything has been echoed
// and acknowledged. A connection that makes no progress (nothing received,
// no echo acknowledged) for -idle-timeout (default 60s; 0 never) is closed,
// with a reset if it left data unread: a client that stops reading its
// echoes cannot keep its frames for ever. The libOS's frame budgets see to
// it that such clients hold no more than their fair share meanwhile.
//
// In dedicated mode the libOS owns IP (the kernel must not have it); in
// shared mode IP is the kernel's too and only TCP to PORT (and the libOS's
// connections) reaches the libOS.
//
// -pcap writes every frame received and sent as pcapng; -metrics serves
// Prometheus /metrics, /debug/vars and /debug/pprof/ on the kernel's
// network (it prints "metrics on http://ADDR/metrics"); lifecycle events
// are logged to stderr as text (-log-level off silences them).
//
// When it accepts connections it prints a line containing "listening". On
// SIGUSR1 it prints its counters (the libos.tcp group has the frames the
// connections hold, frames_held, the most one holds in one direction,
// max_conn_frames, and the share each may hold, share_frames) and goes on.
// With several queues SIGUSR1 prints each queue's "queue N: ..." line
// instead. On SIGINT or SIGTERM it closes the open connections, prints its
// counters as "group: key=value ..." lines (summed over the queues), then
// one line per NIC queue, "queue N: rx_descs=... tx_descs=... handoffs=...
// accepted=...", closes the libOS (detaching the XDP program), prints
// "detached" and exits 0. Setup errors exit 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/dxmetrics"
	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// options are the command-line settings.
type options struct {
	common  cli.LibOSFlags
	addr    string
	backlog int
	idle    time.Duration
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{Gateway: "next hop for off-link clients (optional)", Frames: true, CPUProfile: true, Ops: true, Queues: true})
	flag.StringVar(&o.addr, "addr", "", "IPv4 address and TCP port to serve, IP:PORT (required)")
	flag.IntVar(&o.backlog, "backlog", 1024, "established connections waiting for accept (1-4096)")
	flag.DurationVar(&o.idle, "idle-timeout", 60*time.Second, "close a connection that makes no progress (nothing received, no echo acknowledged) for this long, resetting it if data is left unread; 0 never")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tcp-echo:", err)
		os.Exit(1)
	}
}

// config turns the options into a libOS configuration and the address to
// listen on.
func (o *options) config() (libos.Config, netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil || !ap.Addr().Is4() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return libos.Config{}, netip.AddrPort{}, fmt.Errorf("-addr %q: want an IPv4 IP:PORT", o.addr)
	}
	if o.backlog < 1 || o.backlog > 4096 {
		return libos.Config{}, netip.AddrPort{}, fmt.Errorf("-backlog %d: want 1-4096", o.backlog)
	}
	if o.idle < 0 {
		return libos.Config{}, netip.AddrPort{}, fmt.Errorf("-idle-timeout %v: want 0 (never) or more", o.idle)
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
	// Every queue listens on the address: a connection lives on the
	// queue that received its SYN.
	lqds := make([]libos.QD, len(libs))
	for i, lib := range libs {
		lqd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := lib.Bind(lqd, ap); err != nil {
			return fmt.Errorf("bind %v: %w", ap, err)
		}
		if err := lib.Listen(lqd, o.backlog); err != nil {
			return fmt.Errorf("listen %v: %w", ap, err)
		}
		lqds[i] = lqd
	}
	err = ops.ServeQueues(&o.common.Ops, libs, out, func(i int) []dxmetrics.Queue { return []dxmetrics.Queue{{QD: lqds[i], Name: "listener"}} })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "tcp-echo: listening on %v (%s) iface=%s mode=%v xdp=%s mtu=%d queues=%d\n",
		ap, cfg.Addr, cfg.Interface, cfg.Mode, cli.XDPMode(libs[0]), libs[0].MTU(), len(libs))

	ss := make([]*server, len(libs))
	for i, lib := range libs {
		s := newServer(lib, lqds[i])
		s.ops = ops.Queue(i)
		s.idle, s.out, s.multi = o.idle, out, len(libs) > 1
		ss[i] = s
	}
	defer cli.OnInfo(func() {
		for _, s := range ss {
			s.info.Store(true)
		}
	})()
	// One loop per queue, each on its own thread pinned to its -cpus CPU;
	// a single unpinned queue runs here.
	loopErr := cli.RunLoops(libs, cfg.CPUs, func(i int) error { return ss[i].serve(&stop) })

	printCounters(out, libs, ss)
	if cerr := cli.CloseAll(libs); cerr != nil {
		return errors.Join(loopErr, fmt.Errorf("close: %w", cerr))
	}
	if err := ops.Close(); err != nil {
		return errors.Join(loopErr, err)
	}
	fmt.Fprintln(out, "tcp-echo: detached")
	return loopErr
}
