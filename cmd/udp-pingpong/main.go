// Command udp-pingpong is a closed-loop UDP latency client on the demixdp
// libOS: one datagram in flight, every reply checked byte for byte.
//
// Run it inside the network namespace that holds the interface:
//
//	udp-pingpong -iface IF -local IP:PORT -remote IP:PORT [-n 10000] [-size 64]
//	    [-prefix 24] [-mode dedicated|shared] [-gateway IP] [-warmup 100]
//	    [-timeout 1s] [-spin 1ms] [-allow-loss L]
//
// It opens a LibOS on IF with the address of -local (port 0 picks an
// ephemeral one), connects to -remote and runs -warmup unmeasured round
// trips, then -n measured ones. Each request carries its sequence number
// (little endian, truncated to -size) followed by bytes derived from it and
// a per-run seed; a reply must equal its request exactly. A reply that does
// not come within -timeout counts as lost and the next request goes; a reply
// to an earlier, lost request that turns up later is counted as late and
// skipped. One SGA is allocated up front and reused for every request once
// its previous push has completed, so a round trip allocates nothing.
//
// In dedicated mode (the default) the libOS owns the -local address: the
// kernel on IF must not have it. In shared mode it is the kernel's address
// and only UDP to the -local port reaches the libOS.
//
// It prints its setup on stderr and one summary line on stdout, in the
// format of `kudp client`:
//
//	rtt_p50_us=.. rtt_p99_us=.. rtt_p999_us=.. rtt_max_us=.. pps=.. sent=.. received=.. lost=.. bad=.. late=.. warmup_lost=.. elapsed_s=.. loop_allocs=..
//
// pps is measured round trips per second; loop_allocs is the number of Go
// heap allocations the whole process made during the measured loop. It exits
// 1 if any reply was corrupt or more than -allow-loss requests (warm-up
// included) were lost, 2 on a usage or setup error.
package main

import (
	"errors"
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
	common    cli.LibOSFlags
	local     string
	remote    string
	n         int
	size      int
	warmup    int
	timeout   time.Duration
	allowLoss uint64
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{
		Prefix:   "on-link prefix length of the local address",
		Gateway:  "next hop for an off-link remote (optional)",
		Spin:     time.Millisecond,
		SpinHelp: "busy-poll this long before sleeping in poll(2) (negative: never spin)",
	})
	flag.StringVar(&o.local, "local", "", "the libOS's IPv4 address and UDP port, IP:PORT (required; port 0: ephemeral)")
	flag.StringVar(&o.remote, "remote", "", "the echo server, IP:PORT (required)")
	flag.IntVar(&o.n, "n", 10000, "measured round trips")
	flag.IntVar(&o.size, "size", 64, "UDP payload bytes")
	flag.IntVar(&o.warmup, "warmup", 100, "unmeasured round trips first (ARP, caches)")
	flag.DurationVar(&o.timeout, "timeout", time.Second, "a reply later than this counts as lost")
	flag.Uint64Var(&o.allowLoss, "allow-loss", 0, "lost requests tolerated before exiting 1")
	flag.Parse()
	os.Exit(run(o))
}

// config turns the options into a libOS configuration and the two
// addresses.
func (o *options) config() (cfg libos.Config, local, remote netip.AddrPort, err error) {
	if local, err = netip.ParseAddrPort(o.local); err != nil || !local.Addr().Is4() || local.Addr().IsUnspecified() {
		return cfg, local, remote, fmt.Errorf("-local %q: want an IPv4 IP:PORT", o.local)
	}
	if remote, err = netip.ParseAddrPort(o.remote); err != nil || !remote.Addr().Is4() || remote.Port() == 0 {
		return cfg, local, remote, fmt.Errorf("-remote %q: want an IPv4 IP:PORT with a port", o.remote)
	}
	if o.n < 1 || o.warmup < 0 || o.size < 1 || o.timeout <= 0 {
		return cfg, local, remote, errors.New("need -n >= 1, -warmup >= 0, -size >= 1, -timeout > 0")
	}
	if cfg, err = o.common.Config(local.Addr()); err != nil {
		return cfg, local, remote, err
	}
	return cfg, local, remote, nil
}

func run(o options) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "udp-pingpong:", err)
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
	if o.size > lib.MaxDatagram() {
		return fail(fmt.Errorf("-size %d: more than the %d bytes one datagram can carry here", o.size, lib.MaxDatagram()))
	}
	p, err := newPinger(lib, local, remote, clientConfig{
		n: o.n, warmup: o.warmup, size: o.size, timeout: o.timeout, seed: rand.Uint64(),
	})
	if err != nil {
		return fail(err)
	}
	la, _ := lib.LocalAddr(p.qd)
	fmt.Fprintf(os.Stderr, "udp-pingpong: %v -> %v iface=%s mode=%v xdp=%s size=%d n=%d warmup=%d\n",
		la, remote, cfg.Interface, cfg.Mode, cli.XDPMode(lib), o.size, o.n, o.warmup)

	r, err := p.run()
	fmt.Println(r.summary())
	if err != nil {
		return fail(err)
	}
	if err := lib.Close(); err != nil {
		return fail(fmt.Errorf("close: %w", err))
	}
	if r.bad > 0 || r.lost+r.warmupLost > o.allowLoss {
		return 1
	}
	return 0
}
