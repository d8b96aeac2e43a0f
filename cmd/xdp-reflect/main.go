// Command xdp-reflect is a bare AF_XDP UDP reflector: every UDP/IPv4
// datagram to its port is sent back to where it came from by swapping the
// MAC addresses, IPv4 addresses and UDP ports in place and posting the same
// UMEM frame to the TX ring. No netstack, no copy, no allocation per packet.
//
// It runs in shared-address mode: the steering program redirects only UDP
// to -port (and -addr, or any address) on the chosen queue to the socket;
// ARP, ICMP and all other traffic stay with the kernel. Run it inside the
// network namespace that holds the interface:
//
//	ip netns exec NS xdp-reflect -iface IF [-port 7777] [-addr IP] [-queue 0]
//	    [-frames 4096] [-mode auto|copy|zerocopy] [-batch 64] [-busy] [-cpuprofile F]
//	    [-sink [-progress]]
//
// -sink turns the reflector into a counter: every datagram to the port is
// counted (verdict_reflected counts them too) and dropped, nothing is sent.
// Datagrams in the stream format of internal/cli (cmd/xdp-client -stream)
// are followed by sequence number and every 16th is checked byte for
// byte; at exit it prints
//
//	sink: frames=.. bytes=.. stream=.. checked=.. corrupt=.. missing=.. late=..
//
// -progress (with -sink) prints "progress frames=N" whenever the loop runs
// out of work after counting more datagrams, so a sender can pace itself by
// what has arrived (the lab tests do).
//
// When ready it prints a line containing "listening" and the mode (copy or
// zerocopy). On SIGINT or SIGTERM it prints its counters, the kernel's
// XDP statistics and the steering counters, detaches and exits 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
)

// options are the command-line settings.
type options struct {
	iface      string
	port       uint
	addr       string
	queue      uint
	frames     int
	mode       string
	batch      int
	busy       bool
	spin       time.Duration
	cpuprofile string
	sink       bool
	progress   bool
}

func main() {
	var o options
	flag.StringVar(&o.iface, "iface", "", "interface to take a queue of (required)")
	flag.UintVar(&o.port, "port", 7777, "UDP port to reflect")
	flag.StringVar(&o.addr, "addr", "", "IPv4 destination address to serve (default: any, 0.0.0.0)")
	flag.UintVar(&o.queue, "queue", 0, "device queue")
	flag.IntVar(&o.frames, "frames", umem.DefaultNumFrames, "UMEM frames")
	flag.StringVar(&o.mode, "mode", "auto", "auto, copy or zerocopy")
	flag.IntVar(&o.batch, "batch", 64, "descriptors per ring operation (1-256)")
	flag.BoolVar(&o.busy, "busy", false, "busy-poll forever, never sleep in poll(2)")
	flag.DurationVar(&o.spin, "spin", 50*time.Microsecond, "busy-poll this long after the last packet before sleeping in poll(2)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile to this file")
	flag.BoolVar(&o.sink, "sink", false, "count and drop the datagrams instead of reflecting them")
	flag.BoolVar(&o.progress, "progress", false, "with -sink: print \"progress frames=N\" when idle after new datagrams")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "xdp-reflect:", err)
		os.Exit(1)
	}
}

func parseMode(s string) (xdp.Mode, error) {
	switch s {
	case "auto":
		return xdp.ModeAuto, nil
	case "copy":
		return xdp.ModeCopy, nil
	case "zerocopy":
		return xdp.ModeZeroCopy, nil
	}
	return 0, fmt.Errorf("-mode %q: want auto, copy or zerocopy", s)
}

// ringSize is the smallest power of two >= n, clamped to [64, 4096].
func ringSize(n int) uint32 {
	s := uint32(64)
	for int(s) < n && s < 4096 {
		s <<= 1
	}
	return s
}

func run(o options) error {
	if o.iface == "" {
		return errors.New("-iface is required")
	}
	if o.port == 0 || o.port > 65535 {
		return fmt.Errorf("-port %d out of range", o.port)
	}
	if o.batch < 1 || o.batch > maxBatch {
		return fmt.Errorf("-batch %d: want 1-%d", o.batch, maxBatch)
	}
	mode, err := parseMode(o.mode)
	if err != nil {
		return err
	}
	addr := netip.IPv4Unspecified()
	if o.addr != "" {
		if addr, err = netip.ParseAddr(o.addr); err != nil || !addr.Is4() {
			return fmt.Errorf("-addr %q: not an IPv4 address", o.addr)
		}
	}
	ifc, err := net.InterfaceByName(o.iface)
	if err != nil {
		return fmt.Errorf("interface %s: %w", o.iface, err)
	}

	u, err := umem.New(umem.Config{NumFrames: o.frames})
	if err != nil {
		return err
	}
	defer u.Close()
	pool, err := umem.NewPool(u, 0, uint32(u.NumFrames()))
	if err != nil {
		return err
	}
	rs := ringSize(o.frames)
	sock, err := xdp.Open(xdp.Config{
		Ifindex: ifc.Index, QueueID: int(o.queue),
		Umem: u.Bytes(), FrameSize: uint32(u.FrameSize()),
		FillSize: rs, CompletionSize: rs, RXSize: rs, TXSize: rs,
		Mode: mode,
		// The previous owner of the queue (a run that just exited) is
		// released by the kernel from deferred work.
		BusyWait: 3 * time.Second,
	})
	if err != nil {
		return err
	}
	defer sock.Close()

	st, err := bpf.Load(bpf.Config{Mode: bpf.Shared})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.AddAddr(addr); err != nil {
		return err
	}
	if err := st.AddPort(17, uint16(o.port)); err != nil {
		return err
	}
	if err := st.RegisterSocket(uint32(o.queue), sock.FD()); err != nil {
		return err
	}

	r := reflector{port: uint16(o.port)}
	if o.addr != "" {
		r.addr, r.matchAddr = addr.As4(), true
	}
	if o.progress && !o.sink {
		return errors.New("-progress needs -sink")
	}
	dp := newDatapath(u, pool, sock, r, o.batch)
	if o.sink {
		dp.sink = &sink{}
		if o.progress {
			var shown uint64
			dp.idle = func() {
				if dp.sink.frames != shown {
					shown = dp.sink.frames
					fmt.Printf("progress frames=%d\n", shown)
				}
			}
		}
	}
	dp.refill() // before attaching, so the first packets find frames
	if err := st.Attach(ifc.Index); err != nil {
		return err
	}

	var stop atomic.Bool
	defer cli.OnSignal(func() { stop.Store(true) })()

	stopProfile, err := cli.StartProfile(o.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()

	modeName := "copy"
	if sock.ZeroCopy() {
		modeName = "zerocopy"
	}
	fmt.Printf("listening iface=%s ifindex=%d queue=%d port=%d addr=%s mode=%s frames=%d ring=%d batch=%d busy=%v sink=%v\n",
		o.iface, ifc.Index, o.queue, o.port, addr, modeName, u.NumFrames(), rs, o.batch, o.busy, o.sink)

	spin := o.spin
	if o.busy {
		spin = -1
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	loopErr := dp.run(stop.Load, spin)
	runtime.ReadMemStats(&after)

	dp.st.write(os.Stdout)
	if dp.sink != nil {
		dp.sink.write(os.Stdout)
	}
	// Heap objects allocated by the whole process while the loop ran: the
	// datapath itself allocates none, so this stays flat however many
	// packets went through (the runtime and the signal goroutine account for
	// the few there are).
	fmt.Printf("loop_allocs=%d\n", after.Mallocs-before.Mallocs)
	if xs, err := sock.Stats(); err == nil {
		fmt.Printf("xdp: rx_dropped=%d rx_invalid_descs=%d tx_invalid_descs=%d rx_ring_full=%d rx_fill_ring_empty_descs=%d tx_ring_empty_descs=%d\n",
			xs.RxDropped, xs.RxInvalidDescs, xs.TxInvalidDescs, xs.RxRingFull, xs.RxFillRingEmptyDescs, xs.TxRingEmptyDescs)
	} else {
		fmt.Println("xdp: stats:", err)
	}
	if c, err := st.Counters(); err == nil {
		fmt.Printf("steering: redirected=%d passed=%d malformed=%d\n", c.Redirected, c.Passed, c.Malformed)
	} else {
		fmt.Println("steering: counters:", err)
	}
	if err := st.Detach(); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	fmt.Println("detached")
	return loopErr
}
