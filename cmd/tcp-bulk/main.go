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

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// options are the command-line settings.
type options struct {
	iface    string
	local    string
	remote   string
	bytes    string
	inflight int
	prefix   int
	mode     string
	gateway  string
	timeout  time.Duration
	spin     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.iface, "iface", "", "interface to take queue 0 of (required)")
	flag.StringVar(&o.local, "local", "", "the libOS's IPv4 address (IP or IP:PORT; required)")
	flag.StringVar(&o.remote, "remote", "", "the server, IP:PORT (required)")
	flag.StringVar(&o.bytes, "bytes", "100M", "bytes to send (suffixes K, M, G: powers of 1024)")
	flag.IntVar(&o.inflight, "inflight", 64, "pushes outstanding at most (1-1024)")
	flag.IntVar(&o.prefix, "prefix", 24, "on-link prefix length of the local address")
	flag.StringVar(&o.mode, "mode", "dedicated", "dedicated (the libOS owns the address) or shared (the kernel's address)")
	flag.StringVar(&o.gateway, "gateway", "", "next hop for an off-link remote (optional)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up when nothing completes for this long")
	flag.DurationVar(&o.spin, "spin", 0, "busy-poll this long before sleeping in poll(2) (0: the libOS default, negative: never spin)")
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
	if o.iface == "" {
		return cfg, local, remote, 0, errors.New("-iface is required")
	}
	if local, err = parseLocal(o.local); err != nil || !local.Is4() || local.IsUnspecified() {
		return cfg, local, remote, 0, fmt.Errorf("-local %q: want an IPv4 address", o.local)
	}
	if remote, err = netip.ParseAddrPort(o.remote); err != nil || !remote.Addr().Is4() || remote.Port() == 0 {
		return cfg, local, remote, 0, fmt.Errorf("-remote %q: want an IPv4 IP:PORT with a port", o.remote)
	}
	if n, err = parseBytes(o.bytes); err != nil {
		return cfg, local, remote, 0, err
	}
	if o.prefix < 1 || o.prefix > 32 {
		return cfg, local, remote, 0, fmt.Errorf("-prefix %d: want 1-32", o.prefix)
	}
	mode, err := libos.ParseMode(o.mode)
	if err != nil {
		return cfg, local, remote, 0, fmt.Errorf("-mode: %w", err)
	}
	if o.inflight < 1 || o.inflight > 1024 || o.timeout <= 0 {
		return cfg, local, remote, 0, errors.New("need 1 <= -inflight <= 1024 and -timeout > 0")
	}
	cfg = libos.Config{
		Interface: o.iface,
		Addr:      netip.PrefixFrom(local, o.prefix),
		Mode:      mode,
		Spin:      o.spin,
	}
	if o.gateway != "" {
		if cfg.Gateway, err = netip.ParseAddr(o.gateway); err != nil || !cfg.Gateway.Is4() {
			return cfg, local, remote, 0, fmt.Errorf("-gateway %q: not an IPv4 address", o.gateway)
		}
	}
	return cfg, local, remote, n, nil
}

// openLibOS opens the libOS, retrying EBUSY for up to 3 seconds (the
// queue's previous owner may have just exited).
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

func run(o options) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "tcp-bulk:", err)
		return code
	}
	cfg, local, remote, n, err := o.config()
	if err != nil {
		return fail(2, err)
	}
	lib, err := openLibOS(cfg)
	if err != nil {
		return fail(2, err)
	}
	defer lib.Close()
	qd, err := dial(lib, local, remote)
	if err != nil {
		return fail(2, err)
	}
	xmode := "copy"
	if lib.ZeroCopy() {
		xmode = "zerocopy"
	}
	fmt.Fprintf(os.Stderr, "tcp-bulk: %v -> %v iface=%s mode=%v xdp=%s bytes=%d inflight=%d segment=%d\n",
		local, remote, cfg.Interface, cfg.Mode, xmode, n, o.inflight, lib.SegmentSize())

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
