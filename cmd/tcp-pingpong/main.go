// Command tcp-pingpong is a request/response latency client on the demixdp
// libOS: C TCP connections, each with one request outstanding, every reply
// byte checked against its request.
//
// Run it inside the network namespace that holds the interface:
//
//	tcp-pingpong -iface IF -local IP -remote IP:PORT [-n 10000] [-size 64]
//	    [-conns 1] [-warmup 10] [-prefix 24] [-mode dedicated|shared]
//	    [-gateway IP] [-nodelay=true] [-timeout 10s] [-spin 1ms]
//
// It opens a LibOS on IF with the address -local (the port of an IP:PORT
// form is ignored: each connection binds an ephemeral port), connects C
// queues to -remote, runs -warmup unmeasured round trips on each, then -n
// measured ones, round-robin: a connection sends its next request as soon
// as the whole reply to its previous one has arrived. A request of
// connection c, number s, is -size bytes derived from c, s and a per-run
// seed, pushed from a fresh SGA (pooled UMEM frames, no heap allocation);
// a reply must equal it byte for byte. The round-trip time runs from the
// push to the reply's last byte.
//
// In dedicated mode (the default) the libOS owns -local: the kernel on IF
// must not have that address. In shared mode it is the kernel's address.
//
// It prints its setup on stderr and one summary line on stdout:
//
//	rtt_p50_us=.. rtt_p99_us=.. rtt_p999_us=.. rps=.. sent=.. received=.. bad=.. conns=.. elapsed_s=.. loop_allocs=..
//
// rps is measured round trips per second; loop_allocs counts the Go heap
// allocations of the whole process during the measured loop. Afterwards
// every connection is shut down and the server's close awaited (at most 2
// s). It exits 1 if any reply was corrupt, 2 on a usage or setup error or
// when a connection fails or makes no progress for -timeout.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// options are the command-line settings.
type options struct {
	common  cli.LibOSFlags
	local   string
	remote  string
	n       int
	size    int
	conns   int
	warmup  int
	nodelay bool
	timeout time.Duration
}

// maxConns bounds -conns.
const maxConns = 4096

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{
		Prefix:   "on-link prefix length of the local address",
		Gateway:  "next hop for an off-link remote (optional)",
		Spin:     time.Millisecond,
		SpinHelp: "busy-poll this long before sleeping in poll(2) (negative: never spin)",
	})
	flag.StringVar(&o.local, "local", "", "the libOS's IPv4 address (IP or IP:PORT; required)")
	flag.StringVar(&o.remote, "remote", "", "the echo server, IP:PORT (required)")
	flag.IntVar(&o.n, "n", 10000, "measured round trips, over all connections")
	flag.IntVar(&o.size, "size", 64, "request bytes")
	flag.IntVar(&o.conns, "conns", 1, "connections, each with one request outstanding")
	flag.IntVar(&o.warmup, "warmup", 10, "unmeasured round trips per connection first")
	flag.BoolVar(&o.nodelay, "nodelay", true, "turn Nagle's algorithm off (TCP_NODELAY)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up when nothing completes for this long")
	flag.Parse()
	os.Exit(run(o))
}

// parseLocal accepts IP or IP:PORT.
func parseLocal(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	return netip.ParseAddr(s)
}

// config turns the options into a libOS configuration and the addresses.
func (o *options) config() (cfg libos.Config, local netip.Addr, remote netip.AddrPort, err error) {
	if local, err = parseLocal(o.local); err != nil || !local.Is4() || local.IsUnspecified() {
		return cfg, local, remote, fmt.Errorf("-local %q: want an IPv4 address", o.local)
	}
	if remote, err = netip.ParseAddrPort(o.remote); err != nil || !remote.Addr().Is4() || remote.Port() == 0 {
		return cfg, local, remote, fmt.Errorf("-remote %q: want an IPv4 IP:PORT with a port", o.remote)
	}
	if o.n < 1 || o.size < 1 || o.conns < 1 || o.conns > maxConns || o.warmup < 0 || o.timeout <= 0 {
		return cfg, local, remote, fmt.Errorf("need -n >= 1, -size >= 1, 1 <= -conns <= %d, -warmup >= 0, -timeout > 0", maxConns)
	}
	if cfg, err = o.common.Config(local); err != nil {
		return cfg, local, remote, err
	}
	return cfg, local, remote, nil
}

func run(o options) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "tcp-pingpong:", err)
		return 2
	}
	cfg, local, remote, err := o.config()
	if err != nil {
		return fail(err)
	}
	lib, err := cli.Open(cfg)
	if err != nil {
		return fail(err)
	}
	defer lib.Close()
	if max := libos.MaxSegments * lib.SegmentSize(); o.size > max {
		return fail(fmt.Errorf("-size %d: more than one SGA holds here (%d)", o.size, max))
	}
	c, err := newClient(lib, local, remote, clientConfig{
		n: o.n, size: o.size, conns: o.conns, warmup: o.warmup,
		nodelay: o.nodelay, timeout: o.timeout, seed: rand.Uint64(),
	})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "tcp-pingpong: %v -> %v iface=%s mode=%v xdp=%s size=%d n=%d conns=%d warmup=%d nodelay=%v\n",
		local, remote, cfg.Interface, cfg.Mode, cli.XDPMode(lib), o.size, o.n, o.conns, o.warmup, o.nodelay)

	r, err := c.run()
	fmt.Println(r.summary())
	if err != nil {
		fail(err)
		if r.bad > 0 {
			return 1
		}
		return 2
	}
	c.close(2 * time.Second)
	if err := lib.Close(); err != nil {
		return fail(fmt.Errorf("close: %w", err))
	}
	if r.bad > 0 {
		return 1
	}
	return 0
}
