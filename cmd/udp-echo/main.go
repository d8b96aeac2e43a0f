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
//
// In dedicated mode the libOS owns IP (the kernel must not have it) and
// answers ARP and ping for it; in shared mode IP is the kernel's too and
// only UDP to PORT reaches the libOS.
//
// When it can receive it prints a line containing "listening", the
// address, the mode and copy or zerocopy. On SIGINT or SIGTERM it prints
// its counters as "group: key=value ..." lines, closes the libOS (which
// detaches the XDP program), prints "detached" and exits 0. Setup errors
// exit 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// options are the command-line settings.
type options struct {
	iface      string
	addr       string
	prefix     int
	mode       string
	gateway    string
	frames     int
	pops       int
	spin       time.Duration
	cpuprofile string
}

func main() {
	var o options
	flag.StringVar(&o.iface, "iface", "", "interface to take queue 0 of (required)")
	flag.StringVar(&o.addr, "addr", "", "IPv4 address and UDP port to serve, IP:PORT (required)")
	flag.IntVar(&o.prefix, "prefix", 24, "on-link prefix length of the address")
	flag.StringVar(&o.mode, "mode", "dedicated", "dedicated (the libOS owns the address) or shared (the kernel's address)")
	flag.StringVar(&o.gateway, "gateway", "", "next hop for off-link senders (optional)")
	flag.IntVar(&o.frames, "frames", 0, "UMEM frames (0: the libOS default)")
	flag.IntVar(&o.pops, "pops", 8, "pops kept outstanding (1-64)")
	flag.DurationVar(&o.spin, "spin", 0, "busy-poll this long after the last activity before sleeping in poll(2) (0: the libOS default, negative: never spin)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "udp-echo:", err)
		os.Exit(1)
	}
}

// config turns the options into a libOS configuration and the address to
// bind.
func (o *options) config() (libos.Config, netip.AddrPort, error) {
	var cfg libos.Config
	if o.iface == "" {
		return cfg, netip.AddrPort{}, errors.New("-iface is required")
	}
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil || !ap.Addr().Is4() || ap.Addr().IsUnspecified() {
		return cfg, netip.AddrPort{}, fmt.Errorf("-addr %q: want an IPv4 IP:PORT", o.addr)
	}
	if o.prefix < 1 || o.prefix > 32 {
		return cfg, netip.AddrPort{}, fmt.Errorf("-prefix %d: want 1-32", o.prefix)
	}
	mode, err := libos.ParseMode(o.mode)
	if err != nil {
		return cfg, netip.AddrPort{}, fmt.Errorf("-mode: %w", err)
	}
	if o.pops < 1 || o.pops > maxPops {
		return cfg, netip.AddrPort{}, fmt.Errorf("-pops %d: want 1-%d", o.pops, maxPops)
	}
	if o.frames < 0 {
		return cfg, netip.AddrPort{}, fmt.Errorf("-frames %d: want >= 0", o.frames)
	}
	cfg = libos.Config{
		Interface: o.iface,
		Addr:      netip.PrefixFrom(ap.Addr(), o.prefix),
		Mode:      mode,
		Frames:    o.frames,
		Spin:      o.spin,
	}
	if o.gateway != "" {
		if cfg.Gateway, err = netip.ParseAddr(o.gateway); err != nil || !cfg.Gateway.Is4() {
			return cfg, netip.AddrPort{}, fmt.Errorf("-gateway %q: not an IPv4 address", o.gateway)
		}
	}
	return cfg, ap, nil
}

// openLibOS opens the libOS, retrying EBUSY for up to 3 seconds: when the
// queue's previous owner has just exited, the kernel releases the queue
// from deferred work shortly afterwards.
func openLibOS(cfg libos.Config) (*libos.LibOS, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		lib, err := libos.New(cfg)
		if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return lib, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func run(o options, out io.Writer) error {
	cfg, ap, err := o.config()
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	var stop atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		stop.Store(true)
	}()

	lib, err := openLibOS(cfg)
	if err != nil {
		return err
	}
	defer lib.Close()
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := lib.Bind(qd, ap); err != nil {
		return fmt.Errorf("bind %v: %w", ap, err)
	}
	xmode := "copy"
	if lib.ZeroCopy() {
		xmode = "zerocopy"
	}
	fmt.Fprintf(out, "udp-echo: listening on %v (%s) iface=%s mode=%v xdp=%s mtu=%d\n",
		ap, cfg.Addr, cfg.Interface, cfg.Mode, xmode, lib.MTU())

	e := newEchoer(lib, qd, o.pops)
	loopErr := e.serve(&stop)

	printCounters(out, lib, qd, &e.ctr)
	if cerr := lib.Close(); cerr != nil {
		return errors.Join(loopErr, fmt.Errorf("close: %w", cerr))
	}
	fmt.Fprintln(out, "udp-echo: detached")
	return loopErr
}
