// Command http-hello is an unchanged net/http server on demixdp: one
// http.Handler served by net/http's own http.Server, on a dxnet listener
// (AF_XDP and the libOS's TCP) or, with -kernel, on the kernel's
// net.Listen. The listener is the only thing that differs: the handler,
// the http.Server and its shutdown are the same lines (hello.go).
//
// Run it inside the network namespace that holds the interface:
//
//	http-hello -iface IF -addr IP:PORT [-prefix N] [-mode dedicated|shared]
//	    [-gateway IP] [-frames N] [-spin D] [-cpuprofile F] [-queues N]
//	http-hello -kernel -addr IP:PORT
//
// -queues N serves queues 0..N-1 of the interface (0: all of them), one
// dxnet stack and loop per queue on one shared UMEM (dxnet.OpenQueues),
// all listening on IP:PORT (dxnet.ListenQueues); -frames is then the
// total, shared evenly. -cpus is not applied: dxnet's loops are not
// locked to threads.
//
// Routes:
//
//	GET  /          "hello\n"
//	POST /echo      the request body, unchanged
//	GET  /bytes/N   N bytes (0 <= N <= 1 GiB) of a fixed pattern: byte i is i mod 251
//
// When it serves it prints a line containing "listening". On SIGINT or
// SIGTERM it shuts down gracefully (http.Server.Shutdown: stops accepting,
// lets the requests in progress finish, for up to 10 s), prints the
// libOS's counters (summed over the queues, then one "queue N:
// rx_descs=... tx_descs=..." line per queue), closes the stacks (detaching
// the XDP program), prints "stopped" and exits 0. Setup errors exit 1.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// options are the command-line settings.
type options struct {
	common cli.LibOSFlags
	addr   string
	kernel bool
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{Gateway: "next hop for off-link clients (optional)", Frames: true, CPUProfile: true, Queues: true})
	flag.StringVar(&o.addr, "addr", "", "IPv4 address and TCP port to serve, IP:PORT (required)")
	flag.BoolVar(&o.kernel, "kernel", false, "serve on the kernel's sockets (net.Listen) instead of dxnet; -iface and the libOS flags are then ignored")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "http-hello:", err)
		os.Exit(1)
	}
}

func run(o options, out io.Writer) error {
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return fmt.Errorf("-addr %q: want an IPv4 IP:PORT", o.addr)
	}
	stopProfile, err := cli.StartProfile(o.common.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()

	// The listener: the one thing the two servers do not share.
	var ln net.Listener
	var sts []*dxnet.Stack // one per NIC queue (-queues)
	if o.kernel {
		ln, err = net.Listen("tcp4", ap.String())
	} else {
		cfg, cerr := o.common.Config(ap.Addr())
		if cerr != nil {
			return cerr
		}
		if sts, err = dxnet.OpenQueues(cfg); err == nil {
			ln, err = dxnet.ListenQueues(sts, "tcp4", ap.String())
		}
	}
	if err != nil {
		for _, st := range sts {
			st.Close()
		}
		return err
	}
	stack := "dxnet"
	if o.kernel {
		stack = "kernel"
	}
	serveErr := serve(ln, func() {
		fmt.Fprintf(out, "http-hello: listening on %v stack=%s\n", ln.Addr(), stack)
	})
	if len(sts) > 0 {
		printCounters(out, sts)
	}
	for _, st := range sts {
		if err := st.Close(); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("close: %w", err)
		}
	}
	if serveErr == nil {
		fmt.Fprintln(out, "http-hello: stopped")
	}
	return serveErr
}

// queueConns is what a queue line adds for http-hello: the connections
// the queue served (each lives on the queue that received its SYN).
type queueConns struct {
	ConnsEstablished uint64
}

// printCounters writes the libOS's counters summed over the stacks' queues
// ("libos: ..."), then one "queue N: ..." line per queue.
func printCounters(w io.Writer, sts []*dxnet.Stack) {
	var sum libos.Counters
	ids := make([]int, len(sts))
	cs := make([]libos.Counters, len(sts))
	errs := make([]error, len(sts))
	extra := make([]any, len(sts))
	for i, st := range sts {
		ids[i] = st.QueueID()
		cs[i], errs[i] = st.Counters()
		if errs[i] == nil {
			cli.Add(&sum, cs[i])
			extra[i] = queueConns{cs[i].TCP.ConnsEstablished}
		}
	}
	cli.WriteGroup(w, "libos", sum)
	cli.PrintQueueCounters(w, ids, cs, errs, extra)
}
