// Package cli holds what the libOS example commands share in their main
// packages: the common flags and the libos.Config they make, opening the
// libOS with EBUSY retried, the CPU profile, and the "group: key=value"
// counter lines printed at exit.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/pprof"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// FlagHelp says which of the optional common flags a command has, their
// defaults and the help texts that differ between commands. Empty help
// strings get the texts of the echo servers.
type FlagHelp struct {
	// Prefix is the help of -prefix.
	Prefix string
	// Gateway is the help of -gateway.
	Gateway string
	// Spin is the default of -spin and SpinHelp its help.
	Spin     time.Duration
	SpinHelp string
	// Frames registers -frames (default 0: the libOS default).
	Frames bool
	// CPUProfile registers -cpuprofile.
	CPUProfile bool
	// Ops registers the operation flags -pcap, -metrics and -log-level
	// (OpsFlags).
	Ops bool
	// Queues registers -queues and -cpus (queues.go): the command serves
	// several NIC queues, one loop each.
	Queues bool
}

// LibOSFlags are the flags every libOS command shares: -iface, -prefix,
// -mode, -gateway and -spin, and optionally -frames, -cpuprofile and the
// operation flags (-pcap, -metrics, -log-level).
type LibOSFlags struct {
	Iface      string
	Prefix     int
	Mode       string
	Gateway    string
	Frames     int
	Spin       time.Duration
	CPUProfile string
	Ops        OpsFlags
	Queues     int    // -queues (with FlagHelp.Queues; 1 otherwise)
	CPUs       string // -cpus
}

// Register defines the flags on fs, with the defaults and help of h.
func (f *LibOSFlags) Register(fs *flag.FlagSet, h FlagHelp) {
	if h.Prefix == "" {
		h.Prefix = "on-link prefix length of the address"
	}
	if h.Gateway == "" {
		h.Gateway = "next hop for off-link senders (optional)"
	}
	if h.SpinHelp == "" {
		h.SpinHelp = "busy-poll this long after the last activity before sleeping in poll(2) (0: the libOS default, negative: never spin)"
	}
	fs.StringVar(&f.Iface, "iface", "", "interface to take queue 0 of (required)")
	fs.IntVar(&f.Prefix, "prefix", 24, h.Prefix)
	fs.StringVar(&f.Mode, "mode", "dedicated", "dedicated (the libOS owns the address) or shared (the kernel's address)")
	fs.StringVar(&f.Gateway, "gateway", "", h.Gateway)
	fs.DurationVar(&f.Spin, "spin", h.Spin, h.SpinHelp)
	if h.Frames {
		fs.IntVar(&f.Frames, "frames", 0, "UMEM frames (0: the libOS default)")
	}
	if h.CPUProfile {
		fs.StringVar(&f.CPUProfile, "cpuprofile", "", "write a CPU profile to this file")
	}
	if h.Ops {
		f.Ops.Register(fs)
	}
	f.Queues = 1
	if h.Queues {
		f.registerQueues(fs)
	}
}

// Config checks the flags and returns the libOS configuration for the
// local address addr (which the command parsed from its own flag). Its
// errors name the flag at fault.
func (f *LibOSFlags) Config(addr netip.Addr) (libos.Config, error) {
	var cfg libos.Config
	if f.Iface == "" {
		return cfg, errors.New("-iface is required")
	}
	if f.Prefix < 1 || f.Prefix > 32 {
		return cfg, fmt.Errorf("-prefix %d: want 1-32", f.Prefix)
	}
	mode, err := libos.ParseMode(f.Mode)
	if err != nil {
		return cfg, fmt.Errorf("-mode: %w", err)
	}
	if f.Frames < 0 {
		return cfg, fmt.Errorf("-frames %d: want >= 0", f.Frames)
	}
	cfg = libos.Config{
		Interface: f.Iface,
		Addr:      netip.PrefixFrom(addr, f.Prefix),
		Mode:      mode,
		Frames:    f.Frames,
		Spin:      f.Spin,
	}
	if f.Gateway != "" {
		if cfg.Gateway, err = netip.ParseAddr(f.Gateway); err != nil || !cfg.Gateway.Is4() {
			return cfg, fmt.Errorf("-gateway %q: not an IPv4 address", f.Gateway)
		}
	}
	if err := f.queuesConfig(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// BusyRetry is how long Open retries a queue the kernel still holds.
const BusyRetry = 3 * time.Second

// Open opens the libOS, retrying EBUSY for up to BusyRetry: when the
// queue's previous owner has just exited, the kernel releases the queue
// from deferred work shortly afterwards. Other errors return at once.
func Open(cfg libos.Config) (*libos.LibOS, error) {
	deadline := time.Now().Add(BusyRetry)
	for {
		lib, err := libos.New(cfg)
		if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return lib, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// XDPMode names the AF_XDP mode lib runs in, "copy" or "zerocopy", as the
// commands print it.
func XDPMode(lib *libos.LibOS) string {
	if lib.ZeroCopy() {
		return "zerocopy"
	}
	return "copy"
}

// StartProfile starts a CPU profile into the file path and returns the
// function that stops it and closes the file. With an empty path it does
// nothing and returns a stop that does nothing.
func StartProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
