// Command tcp-bulk is a bulk-transfer client on the demixdp libOS: it
// connects to a TCP server, streams a number of bytes, shuts its sending
// side down and waits for the server to close, then reports the rate and
// the SHA-256 of everything it sent, so the receiver's hash can be
// compared.
//
// Run it inside the network namespace that holds the interface:
//
//	tcp-bulk -iface IF -local IP -remote IP:PORT -bytes N [-inflight 64]
//	    [-prefix 24] [-mode dedicated|shared] [-gateway IP] [-timeout 10s]
//	    [-spin D]
//
// Each push is an SGA of up to 16 segments (one UMEM frame each, SegmentSize
// bytes: one TCP segment per frame, headers written into its headroom),
// with up to -inflight pushes outstanding. A push refused with EAGAIN is
// retried with the same SGA; SGAAlloc's ENOBUFS waits for completions. The
// stream is a repeated block of random bytes (a fresh seed per run).
//
// In dedicated mode (the default) the libOS owns -local: the kernel on IF
// must not have that address. In shared mode it is the kernel's address.
//
// It prints its setup on stderr and one line on stdout:
//
//	gbps=.. bytes=.. sha256=.. elapsed_s=.. push_eagain=.. sga_nobufs=.. extra=.. loop_allocs=..
//
// The time runs from the established connection to the server's close
// (which follows its reading everything). extra counts bytes the server
// sent back; loop_allocs the Go heap allocations during the transfer. It
// exits 0 on a complete transfer, 1 if the transfer failed part way, 2 on
// a usage or setup error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// options are the command-line settings.
type options struct {
	common   cli.LibOSFlags
	local    string
	remote   string
	bytes    string
	inflight int
	timeout  time.Duration
}

func main() {
	var o options
	o.common.Register(flag.CommandLine, cli.FlagHelp{
		Prefix:   "on-link prefix length of the local address",
		Gateway:  "next hop for an off-link remote (optional)",
		Spin:     0,
		SpinHelp: "busy-poll this long before sleeping in poll(2) (0: the libOS default, negative: never spin)",
	})
	flag.StringVar(&o.local, "local", "", "the libOS's IPv4 address (IP or IP:PORT; required)")
	flag.StringVar(&o.remote, "remote", "", "the server, IP:PORT (required)")
	flag.StringVar(&o.bytes, "bytes", "100M", "bytes to send (suffixes K, M, G: powers of 1024)")
	flag.IntVar(&o.inflight, "inflight", 64, "pushes outstanding at most (1-1024)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up when nothing completes for this long")
	flag.Parse()
	os.Exit(run(o))
}

// parseBytes reads a byte count with an optional K, M or G suffix.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > (1<<50)/mult {
		return 0, fmt.Errorf("-bytes %q: want a positive count such as 1048576 or 100M", s)
	}
	return n * mult, nil
}

// parseLocal accepts IP or IP:PORT.
func parseLocal(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	return netip.ParseAddr(s)
}

// config turns the options into a libOS configuration, the addresses and
// the byte count.
func (o *options) config() (cfg libos.Config, local netip.Addr, remote netip.AddrPort, n int64, err error) {
	if local, err = parseLocal(o.local); err != nil || !local.Is4() || local.IsUnspecified() {
		return cfg, local, remote, 0, fmt.Errorf("-local %q: want an IPv4 address", o.local)
	}
	if remote, err = netip.ParseAddrPort(o.remote); err != nil || !remote.Addr().Is4() || remote.Port() == 0 {
		return cfg, local, remote, 0, fmt.Errorf("-remote %q: want an IPv4 IP:PORT with a port", o.remote)
	}
	if n, err = parseBytes(o.bytes); err != nil {
		return cfg, local, remote, 0, err
	}
	if o.inflight < 1 || o.inflight > 1024 || o.timeout <= 0 {
		return cfg, local, remote, 0, errors.New("need 1 <= -inflight <= 1024 and -timeout > 0")
	}
	if cfg, err = o.common.Config(local); err != nil {
		return cfg, local, remote, 0, err
	}
	return cfg, local, remote, n, nil
}

func run(o options) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "tcp-bulk:", err)
		return code
	}
	cfg, local, remote, n, err := o.config()
	if err != nil {
		return fail(2, err)
	}
	lib, err := cli.Open(cfg)
	if err != nil {
		return fail(2, err)
	}
	defer lib.Close()
	qd, err := dial(lib, local, remote)
	if err != nil {
		return fail(2, err)
	}
	fmt.Fprintf(os.Stderr, "tcp-bulk: %v -> %v iface=%s mode=%v xdp=%s bytes=%d inflight=%d segment=%d\n",
		local, remote, cfg.Interface, cfg.Mode, cli.XDPMode(lib), n, o.inflight, lib.SegmentSize())

	s := newSender(lib, qd, n, o.inflight, o.timeout, rand.Uint64())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	r, err := s.run()
	runtime.ReadMemStats(&ms)
	r.loopAllocs = ms.Mallocs - before
	fmt.Println(r.summary())
	if err != nil {
		return fail(1, err)
	}
	lib.CloseQueue(qd)
	if err := lib.Close(); err != nil {
		return fail(1, fmt.Errorf("close: %w", err))
	}
	return 0
}
