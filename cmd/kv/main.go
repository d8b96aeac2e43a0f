// Command kv is a Redis-compatible key-value server (RESP2) on demixdp, for
// redis-cli, redis-benchmark and every Redis client library.
//
// Run it inside the network namespace that holds the interface:
//
//	kv -iface IF -addr IP:PORT [-prefix N] [-mode dedicated|shared]
//	    [-api queue|net] [-maxvalue BYTES] [-max-request BYTES]
//	    [-max-unsent BYTES] [-stall-timeout D] [-backlog N]
//	    [-gateway IP] [-frames N] [-spin D] [-cpuprofile F]
//	    [-queues N] [-cpus LIST] [-pcap FILE] [-metrics ADDR] [-log-level L]
//	kv -kernel -addr IP:PORT [...]
//
// Three servers, one store and one command table:
//
//   - -api queue (the default): the libOS's queue API, one loop per NIC
//     queue over every connection of that queue (WaitNext). Requests are
//     parsed in place in the popped SGAs, pipelined requests answered in
//     order, replies encoded straight into SGAs and pushed; values are
//     copied out of the received frames into the store, and a large GET
//     is sent from the stored value in pieces, never copied whole.
//   - -api net: github.com/tidwall/redcon, unchanged, on dxnet listeners
//     (net.Listener and net.Conn over the libOS), one per NIC queue.
//   - -kernel: the same redcon server on the kernel's net.Listen, for
//     comparison; -iface and the libOS flags are ignored.
//
// -queues N (default 1; 0: every receive queue the interface has) serves
// queues 0..N-1 of the interface on one shared UMEM (-frames is then the
// total, shared evenly): with -api queue one libOS and one loop per queue,
// each on its own thread (pinned with -cpus), with -api net one dxnet
// stack per queue (-cpus is not applied: dxnet's loops are not locked to
// threads). Every queue listens on IP:PORT, and a connection lives on the
// queue RSS delivered its SYN to. The queues share one store, split into
// shards by key hash with a lock each (store.go), so every client sees
// the same keys whatever its queue; CLIENT INFO names the connection's
// queue (queue=N).
//
// Commands (names case-insensitive, keys and values binary-safe): PING,
// ECHO, SET key value [EX s|PX ms|EXAT|PXAT|KEEPTTL] [NX|XX] [GET], GET,
// GETSET, DEL, EXISTS, INCR, INCRBY, DECR, DECRBY, APPEND, STRLEN, MGET,
// MSET, EXPIRE, PEXPIRE (with NX|XX|GT|LT), TTL, PTTL, PERSIST, DBSIZE,
// FLUSHALL, FLUSHDB, SELECT 0, QUIT, and enough of COMMAND, CONFIG GET,
// INFO and CLIENT (SETNAME, GETNAME, ID, INFO, SETINFO) for redis-cli,
// redis-benchmark and client libraries. Replies and error texts are
// Redis 7's. Keys expire lazily on access and through a sweep every 100 ms
// driven by the loops' timeouts (-api queue: each loop sweeps its share
// of the shards) or one ticker (-api net).
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
// (-api queue) it prints its counters and goes on (with several queues,
// each queue's line). On SIGINT or SIGTERM it closes the connections,
// prints its counters as "group: key=value ..." lines (summed over the
// queues), then one line per NIC queue, "queue N: rx_descs=...
// tx_descs=... accepted=... commands=...", closes the libOS (detaching
// the XDP program), prints "stopped" and exits 0. Setup errors exit 1.
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
	"github.com/demixdp/demixdp/dxnet"
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
	o.common.Register(flag.CommandLine, cli.FlagHelp{Gateway: "next hop for off-link clients (optional)", Frames: true, CPUProfile: true, Ops: true, Queues: true})
	flag.StringVar(&o.addr, "addr", "", "IPv4 address and TCP port to serve, IP:PORT (required)")
	flag.StringVar(&o.api, "api", "queue", "queue (the libOS's queue API, one loop per queue) or net (redcon on dxnet's net.Listener)")
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
	db := NewDB(NewStore(), o.maxValue)
	if o.kernel {
		ln, err := net.Listen("tcp4", ap.String())
		if err != nil {
			return err
		}
		return runNet(o, db, out, "kernel", []net.Listener{ln}, []int{-1}, nil)
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
		sts, lns, err := listenDX(cfg, ap)
		if err != nil {
			return err
		}
		ids := make([]int, len(sts))
		for i, st := range sts {
			ids[i] = st.QueueID()
		}
		return runNet(o, db, out, "dxnet", lns, ids, sts)
	}
	return runQueue(o, cfg, ap, db, out)
}

// runNet serves redcon on lns, the listeners of dxnet's stacks sts (one
// per NIC queue, ids[i] for lns[i]) or the kernel's (sts nil), and closes
// the stacks once redcon is done.
func runNet(o options, db *DB, out io.Writer, stack string, lns []net.Listener, ids []int, sts []*dxnet.Stack) error {
	s := &netServer{db: db, maxValue: o.maxValue, maxRequest: o.maxRequest, maxUnsent: o.maxUnsent, stall: o.stall}
	done := make(chan error, 1)
	go func() { done <- s.serve(lns, ids) }()
	fmt.Fprintf(out, "kv: listening on %v api=net stack=%s queues=%d\n", lns[0].Addr(), stack, len(lns))
	sig := make(chan struct{})
	cancel := cli.OnSignal(func() { close(sig) })
	defer cancel()
	var serveErr error
	select {
	case <-sig:
		for _, ln := range lns {
			ln.Close()
		}
		serveErr = <-done
	case serveErr = <-done:
	}
	fmt.Fprintln(out, s.counterLine())
	printDBCounters(out, db)
	if len(sts) > 0 {
		printStackCounters(out, sts, s)
	}
	var errs []error
	for _, st := range sts {
		errs = append(errs, st.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(serveErr, fmt.Errorf("close: %w", err))
	}
	if serveErr != nil {
		return serveErr
	}
	fmt.Fprintln(out, "kv: stopped")
	return nil
}

// printStackCounters writes the libOS's counters summed over the dxnet
// stacks ("libos: ..."), then one "queue N: ..." line per stack with the
// connections its listener accepted and the commands they ran.
func printStackCounters(w io.Writer, sts []*dxnet.Stack, s *netServer) {
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
		}
		extra[i] = netQueueLine{Accepted: s.queues[i].accepted.Load(), Commands: s.db.Totals(i).Commands}
	}
	cli.WriteGroup(w, "libos", sum)
	cli.PrintQueueCounters(w, ids, cs, errs, extra)
}

// netQueueLine is what a queue's line of -api net adds to the libOS's
// counters.
type netQueueLine struct {
	Accepted uint64 // connections the queue's listener accepted
	Commands uint64 // commands they ran
}

// runQueue serves on the libOS's queue API: one LibOS and one loop per NIC
// queue (-queues), each listening on ap, all on db.
func runQueue(o options, cfg libos.Config, ap netip.AddrPort, db *DB, out io.Writer) error {
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
	// Every queue listens on the address: a connection lives on the queue
	// that received its SYN.
	lqds := make([]libos.QD, len(libs))
	for i, lib := range libs {
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
		lqds[i] = lqd
	}
	err = ops.ServeQueues(&o.common.Ops, libs, out, func(i int) []dxmetrics.Queue { return []dxmetrics.Queue{{QD: lqds[i], Name: "listener"}} })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "kv: listening on %v (%s) api=queue iface=%s mode=%v xdp=%s mtu=%d queues=%d\n",
		ap, cfg.Addr, cfg.Interface, cfg.Mode, cli.XDPMode(libs[0]), libs[0].MTU(), len(libs))
	var ids atomic.Int64
	ss := make([]*queueServer, len(libs))
	for i, lib := range libs {
		s := &queueServer{lib: lib, lqd: lqds[i], x: db.NewSession(i), sweeper: NewSweeper(db.Store, i, len(libs)),
			ids: &ids, multi: len(libs) > 1, ops: ops.Queue(i), out: out,
			maxValue: o.maxValue, maxRequest: o.maxRequest, maxUnsent: o.maxUnsent, stall: o.stall}
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

	printQueueCounters(out, libs, ss)
	if cerr := cli.CloseAll(libs); cerr != nil {
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

// printQueueCounters writes the queue servers', the commands', the
// store's and the libOS's counters, one group per line, summed over the
// queues, then one "queue N: ..." line per NIC queue. It runs once the
// loops have stopped (or, for SIGUSR1 with one queue, on the loop).
func printQueueCounters(w io.Writer, libs []*libos.LibOS, ss []*queueServer) {
	var sum queueCounters
	extra := make([]any, len(ss))
	for i, s := range ss {
		cli.Add(&sum, s.ctr)
		extra[i] = s.line()
	}
	cli.WriteGroup(w, "kv", sum)
	printDBCounters(w, ss[0].x.db)
	cli.PrintCountersQueues(w, libs, nil, extra)
}

// dbLine is the "db" group: the sessions' counters.
type dbLine struct {
	Commands uint64 // commands executed
	Errors   uint64 // error replies
	Unknown  uint64 // unknown commands
}

func printDBCounters(w io.Writer, db *DB) {
	t := db.Totals(-1)
	cli.WriteGroup(w, "db", dbLine{Commands: t.Commands, Errors: t.Errors, Unknown: t.Unknown})
	sc, _ := db.Store.Counters()
	sc.AdoptedValues = t.Adopted
	cli.WriteGroup(w, "store", sc)
}
