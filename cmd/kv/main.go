// Command kv is a Redis-compatible key-value server (RESP2) on demixdp, for
// redis-cli, redis-benchmark and every Redis client library.
//
// Run it inside the network namespace that holds the interface:
//
//	kv -iface IF -addr IP:PORT [-prefix N] [-mode dedicated|shared]
//	    [-api queue|net] [-maxvalue BYTES] [-max-request BYTES]
//	    [-max-unsent BYTES] [-stall-timeout D] [-backlog N]
//	    [-gateway IP] [-frames N] [-spin D] [-cpuprofile F]
//	    [-pcap FILE] [-metrics ADDR] [-log-level L]
//	kv -kernel -addr IP:PORT [...]
//
// Three servers, one store and one command table:
//
//   - -api queue (the default): the libOS's queue API, one loop over every
//     connection (WaitNext). Requests are parsed in place in the popped
//     SGAs, pipelined requests answered in order, replies encoded straight
//     into SGAs and pushed; values are copied out of the received frames
//     into the store, and a large GET is sent from the stored value in
//     pieces, never copied whole.
//   - -api net: github.com/tidwall/redcon, unchanged, on a dxnet listener
//     (net.Listener and net.Conn over the libOS).
//   - -kernel: the same redcon server on the kernel's net.Listen, for
//     comparison; -iface and the libOS flags are ignored.
//
// Commands (names case-insensitive, keys and values binary-safe): PING,
// ECHO, SET key value [EX s|PX ms|EXAT|PXAT|KEEPTTL] [NX|XX] [GET], GET,
// GETSET, DEL, EXISTS, INCR, INCRBY, DECR, DECRBY, APPEND, STRLEN, MGET,
// MSET, EXPIRE, PEXPIRE (with NX|XX|GT|LT), TTL, PTTL, PERSIST, DBSIZE,
// FLUSHALL, FLUSHDB, SELECT 0, QUIT, and enough of COMMAND, CONFIG GET,
// INFO and CLIENT (SETNAME, GETNAME, ID, SETINFO) for redis-cli,
// redis-benchmark and client libraries. Replies and error texts are
// Redis 7's. Keys expire lazily on access and through a sweep every 100 ms
// driven by the loop's timeout (-api queue) or one ticker (-api net).
//
// Hostile input is refused as Redis refuses it: an inline command, a
// malformed multibulk header, a bulk length above -maxvalue or negative,
// or a request above -max-request is answered "-ERR Protocol error: ..."
// after the replies of the requests before it, and the connection is
// closed. A connection pins at most one request (-max-request) and about
// 32 KiB of replies in frames: once its replies stop leaving (its client
// does not read) it executes nothing more until they do; a reply stream
// over -max-unsent bytes, or one stuck for -stall-timeout, resets it.
//
// When it serves it prints a line containing "listening". On SIGUSR1
// (-api queue) it prints its counters and goes on. On SIGINT or SIGTERM it
// closes the connections, prints its counters as "group: key=value ..."
// lines, closes the libOS (detaching the XDP program), prints "stopped"
// and exits 0. Setup errors exit 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
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
	common     cli.LibOSFlags
	addr       string
	api        string
	kernel     bool
	backlog    int
	maxValue   int
	maxRequest int
	maxUnsent  int
	stall      time.Duration
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{Gateway: "next hop for off-link clients (optional)", Frames: true, CPUProfile: true, Ops: true})
	flag.StringVar(&o.addr, "addr", "", "IPv4 address and TCP port to serve, IP:PORT (required)")
	flag.StringVar(&o.api, "api", "queue", "queue (the libOS's queue API, one loop) or net (redcon on dxnet's net.Listener)")
	flag.BoolVar(&o.kernel, "kernel", false, "serve with redcon on the kernel's sockets (net.Listen); -iface, -api and the libOS flags are ignored")
	flag.IntVar(&o.backlog, "backlog", 1024, "established connections waiting for accept (1-4096; -api queue)")
	flag.IntVar(&o.maxValue, "maxvalue", 16<<20, "the longest bulk string (key, value, argument) a request may carry, in bytes")
	flag.IntVar(&o.maxRequest, "max-request", 64<<20, "the largest request, its bulk strings together, in bytes (at least -maxvalue)")
	flag.IntVar(&o.maxUnsent, "max-unsent", 64<<20, "reset a connection whose replies not yet sent exceed this many bytes")
	flag.DurationVar(&o.stall, "stall-timeout", 60*time.Second, "reset a connection whose replies have not moved for this long (its client stopped reading); 0 never")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}

func (o *options) check() (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return ap, fmt.Errorf("-addr %q: want an IPv4 IP:PORT", o.addr)
	}
	switch {
	case o.api != "queue" && o.api != "net":
		return ap, fmt.Errorf("-api %q: want queue or net", o.api)
	case o.backlog < 1 || o.backlog > 4096:
		return ap, fmt.Errorf("-backlog %d: want 1-4096", o.backlog)
	case o.maxValue < 1:
		return ap, fmt.Errorf("-maxvalue %d: want at least 1", o.maxValue)
	case o.maxRequest < o.maxValue:
		return ap, fmt.Errorf("-max-request %d: want at least -maxvalue (%d)", o.maxRequest, o.maxValue)
	case o.maxUnsent < 1:
		return ap, fmt.Errorf("-max-unsent %d: want at least 1", o.maxUnsent)
	case o.stall < 0:
		return ap, fmt.Errorf("-stall-timeout %v: want 0 (never) or more", o.stall)
	}
	return ap, nil
}

func run(o options, out io.Writer) error {
	ap, err := o.check()
	if err != nil {
		return err
	}
	stopProfile, err := cli.StartProfile(o.common.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	db := &DB{Store: NewStore(), MaxValue: o.maxValue}
	if o.kernel {
		return runNet(o, db, out, "kernel", func() (net.Listener, func() error, error) {
			ln, err := net.Listen("tcp4", ap.String())
			return ln, func() error { return nil }, err
		})
	}
	if ap.Addr().IsUnspecified() {
		return fmt.Errorf("-addr %q: the libOS needs its own address", o.addr)
	}
	cfg, err := o.common.Config(ap.Addr())
	if err != nil {
		return err
	}
	if o.api == "net" {
		if o.common.Ops.Metrics != "" {
			return fmt.Errorf("-metrics: only with -api queue (the net server's libOS belongs to dxnet)")
		}
		ops, err := o.common.Ops.Start(&cfg, os.Stderr) // the log and -pcap
		if err != nil {
			return err
		}
		defer ops.Close()
		return runNet(o, db, out, "dxnet", func() (net.Listener, func() error, error) { return listenDX(cfg, ap) })
	}
	return runQueue(o, cfg, ap, db, out)
}

// runNet serves redcon on the listener listen returns (dxnet's or the
// kernel's); closeStack closes what is under it once redcon is done.
func runNet(o options, db *DB, out io.Writer, stack string, listen func() (net.Listener, func() error, error)) error {
	ln, closeStack, err := listen()
	if err != nil {
		return err
	}
	s := &netServer{db: db, maxValue: o.maxValue, maxRequest: o.maxRequest, maxUnsent: o.maxUnsent, stall: o.stall}
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	fmt.Fprintf(out, "kv: listening on %v api=net stack=%s\n", ln.Addr(), stack)
	var stop atomic.Bool
	sig := make(chan struct{})
	cancel := cli.OnSignal(func() { stop.Store(true); close(sig) })
	defer cancel()
	var serveErr error
	select {
	case <-sig:
		ln.Close()
		serveErr = <-done
	case serveErr = <-done:
	}
	fmt.Fprintln(out, s.counterLine())
	s.mu.Lock()
	printDBCounters(out, db)
	s.mu.Unlock()
	if err := closeStack(); err != nil {
		return errors.Join(serveErr, fmt.Errorf("close: %w", err))
	}
	if serveErr != nil {
		return serveErr
	}
	fmt.Fprintln(out, "kv: stopped")
	return nil
}

func runQueue(o options, cfg libos.Config, ap netip.AddrPort, db *DB, out io.Writer) error {
	ops, err := o.common.Ops.Start(&cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer ops.Close()
	var stop atomic.Bool
	defer cli.OnSignal(func() { stop.Store(true) })()

	lib, err := cli.Open(cfg)
	if err != nil {
		return err
	}
	defer lib.Close()
	lqd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := lib.Bind(lqd, ap); err != nil {
		return fmt.Errorf("bind %v: %w", ap, err)
	}
	if err := lib.SetNoDelay(lqd, true); err != nil { // replies leave at once, as Redis sets TCP_NODELAY
		return fmt.Errorf("nodelay: %w", err)
	}
	if err := lib.Listen(lqd, o.backlog); err != nil {
		return fmt.Errorf("listen %v: %w", ap, err)
	}
	if err := ops.Serve(&o.common.Ops, lib, out, dxmetrics.Queue{QD: lqd, Name: "listener"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "kv: listening on %v (%s) api=queue iface=%s mode=%v xdp=%s mtu=%d\n",
		ap, cfg.Addr, cfg.Interface, cfg.Mode, cli.XDPMode(lib), lib.MTU())
	s := &queueServer{lib: lib, lqd: lqd, db: db, ops: ops, out: out,
		maxValue: o.maxValue, maxRequest: o.maxRequest, maxUnsent: o.maxUnsent, stall: o.stall}
	defer cli.OnInfo(func() { s.info.Store(true) })()
	loopErr := s.serve(&stop)

	printQueueCounters(out, lib, s)
	if cerr := lib.Close(); cerr != nil {
		return errors.Join(loopErr, fmt.Errorf("close: %w", cerr))
	}
	if err := ops.Close(); err != nil {
		return errors.Join(loopErr, err)
	}
	if loopErr == nil {
		fmt.Fprintln(out, "kv: detached")
		fmt.Fprintln(out, "kv: stopped")
	}
	return loopErr
}

// printQueueCounters writes the queue server's, the commands', the store's
// and the libOS's counters, one group per line.
func printQueueCounters(w io.Writer, lib *libos.LibOS, s *queueServer) {
	cli.WriteGroup(w, "kv", s.ctr)
	printDBCounters(w, s.db)
	cli.PrintCounters(w, lib)
}

func printDBCounters(w io.Writer, db *DB) {
	cli.WriteGroup(w, "db", db.ctr)
	cli.WriteGroup(w, "store", db.Store.ctr)
}
