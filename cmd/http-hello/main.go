// Command http-hello is an unchanged net/http server on demixdp: one
// http.Handler served by net/http's own http.Server, on a dxnet listener
// (AF_XDP and the libOS's TCP) or, with -kernel, on the kernel's
// net.Listen. The listener is the only thing that differs: the handler,
// the http.Server and its shutdown are the same lines (hello.go).
//
// Run it inside the network namespace that holds the interface:
//
//	http-hello -iface IF -addr IP:PORT [-prefix N] [-mode dedicated|shared]
//	    [-gateway IP] [-frames N] [-spin D] [-cpuprofile F]
//	http-hello -kernel -addr IP:PORT
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
// libOS's counters, closes the stack (detaching the XDP program), prints
// "stopped" and exits 0. Setup errors exit 1.
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
)

// options are the command-line settings.
type options struct {
	common cli.LibOSFlags
	addr   string
	kernel bool
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{Gateway: "next hop for off-link clients (optional)", Frames: true, CPUProfile: true})
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
	var st *dxnet.Stack
	if o.kernel {
		ln, err = net.Listen("tcp4", ap.String())
	} else {
		cfg, cerr := o.common.Config(ap.Addr())
		if cerr != nil {
			return cerr
		}
		if st, err = dxnet.Open(cfg); err == nil {
			ln, err = st.Listen("tcp4", ap.String())
		}
	}
	if err != nil {
		if st != nil {
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
	if st != nil {
		if c, err := st.Counters(); err == nil {
			cli.WriteGroup(out, "libos", c)
		}
		if err := st.Close(); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("close: %w", err)
		}
	}
	if serveErr == nil {
		fmt.Fprintln(out, "http-hello: stopped")
	}
	return serveErr
}
