package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/demixdp/demixdp/internal/lossy"
	"github.com/demixdp/demixdp/libos"
)

// driverFlags are the flags shared by the server and client subcommands.
type driverFlags struct {
	stack, iface, addr string
	port               int
	cpuprofile         string
	spin               time.Duration
	queues             int    // libOS TCP server: NIC queues (libos.OpenQueues)
	cpus               string // and the CPUs of their loops
}

func (d *driverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.stack, "stack", "kernel", "kernel, gvisor, libos or asavie")
	fs.StringVar(&d.iface, "iface", "", "interface (gvisor, libos, asavie)")
	fs.StringVar(&d.addr, "addr", "", "own address as IP/PREFIX (the kernel's for -stack kernel)")
	fs.IntVar(&d.port, "port", 7777, "own port (servers: the service port, TCP: the first of three)")
	fs.StringVar(&d.cpuprofile, "cpuprofile", "", "write a CPU profile here")
	fs.DurationVar(&d.spin, "spin", 0, "libOS: busy-poll this long before sleeping (0: the libOS default, negative: never spin)")
	fs.IntVar(&d.queues, "queues", 1, "libOS tcp-server: serve this many NIC queues, one loop each")
	fs.StringVar(&d.cpus, "cpus", "", "libOS tcp-server: pin the queues' loops to these CPUs, comma separated")
}

func startProfile(path string) (stop func(), err error) {
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
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return p, fmt.Errorf("-addr %q: want IPv4/PREFIX", s)
	}
	return p, nil
}

// signalled returns a flag set on SIGINT/SIGTERM and a channel closed then.
func signalled() (*atomic.Bool, chan struct{}) {
	var stop atomic.Bool
	ch := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; stop.Store(true); close(ch) }()
	return &stop, ch
}

// serverMain runs a UDP echo (udp-echo) or the TCP services (tcp-server)
// until signalled. It prints "listening" when ready.
func serverMain(tcpServer bool, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	var d driverFlags
	d.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	prefix, err := parsePrefix(d.addr)
	if err != nil {
		return err
	}
	stopProf, err := startProfile(d.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProf()
	stop, stopCh := signalled()
	ap := func(off int) netip.AddrPort { return netip.AddrPortFrom(prefix.Addr(), uint16(d.port+off)) }
	errc := make(chan error, 3)
	switch d.stack {
	case "kernel":
		if tcpServer {
			for k := tcpEcho; k <= tcpAcceptClose; k++ {
				l, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(ap(k)))
				if err != nil {
					return err
				}
				defer l.Close()
				go func() { errc <- serveTCP(l, k) }()
			}
		} else {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap(0)))
			if err != nil {
				return err
			}
			defer c.Close()
			go func() { errc <- udpEchoKernel(c) }()
		}
	case "gvisor":
		g, err := newGvisorStack(d.iface, prefix)
		if err != nil {
			return err
		}
		defer g.Close()
		if tcpServer {
			for k := tcpEcho; k <= tcpAcceptClose; k++ {
				l, err := gonet.ListenTCP(g.s, fullAddr(ap(k)), ipv4.ProtocolNumber)
				if err != nil {
					return err
				}
				defer l.Close()
				go func() { errc <- serveTCP(l, k) }()
			}
		} else {
			la := fullAddr(ap(0))
			c, err := gonet.DialUDP(g.s, &la, nil, ipv4.ProtocolNumber)
			if err != nil {
				return err
			}
			defer c.Close()
			go func() { errc <- udpEchoPacket(c) }()
		}
	case "libos":
		if !tcpServer {
			return errors.New("the libOS UDP echo server is cmd/udp-echo")
		}
		libs, err := openLibOSQueues(d, prefix)
		if err != nil {
			return err
		}
		defer closeLibs(libs)
		defer printQueueLines(libs) // after the loops stopped, before the close
		ready := make(chan struct{})
		var readyWG sync.WaitGroup
		readyWG.Add(len(libs))
		go func() { readyWG.Wait(); close(ready) }()
		go func() {
			if len(libs) == 1 {
				errc <- libosTCPServer(libs[0], ap(0), readyWG.Done, stop)
				return
			}
			errc <- libos.RunQueues(libs, func(lib *libos.LibOS) error { return libosTCPServer(lib, ap(0), readyWG.Done, stop) })
		}()
		select {
		case <-ready:
		case err := <-errc:
			return err
		}
	case "asavie":
		if tcpServer {
			return errors.New("asavie is a UDP reflector only")
		}
		ready := make(chan struct{})
		go func() {
			n, err := asavieReflector(d.iface, prefix.Addr(), uint16(d.port), func() { close(ready) }, stop)
			fmt.Printf("reflected=%d\n", n)
			errc <- err
		}()
		select {
		case <-ready:
		case err := <-errc:
			return err
		}
	default:
		return fmt.Errorf("-stack %q: want kernel, gvisor or asavie (the libOS server is cmd/udp-echo)", d.stack)
	}
	fmt.Printf("listening stack=%s addr=%s port=%d\n", d.stack, prefix.Addr(), d.port)
	select {
	case <-stopCh:
		// The asavie and libOS loops poll stop; give them a moment to
		// finish (the libOS must be left before it is closed).
		select {
		case err := <-errc:
			return err
		case <-time.After(500 * time.Millisecond):
		}
		return nil
	case err := <-errc:
		return err
	}
}

// clientMain runs one workload against -remote and prints one result line.
func clientMain(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	var d driverFlags
	d.register(fs)
	workload := fs.String("workload", "udp_rtt", "udp_rtt, udp_pps, tcp_rtt, tcp_bulk, tcp_connect or tcp_loss (kernel stack only)")
	remote := fs.String("remote", "", "server IP:PORT (TCP: the first of the three service ports)")
	n := fs.Int("n", 20000, "round trips to measure")
	warmup := fs.Int("warmup", 1000, "round trips before measuring")
	outstanding := fs.Int("outstanding", 1, "datagrams in flight (UDP)")
	size := fs.Int("size", 64, "payload bytes")
	duration := fs.Duration("duration", 0, "stop after this long (0: -n decides)")
	bytes := fs.Int64("bytes", 1<<30, "tcp_bulk and tcp_loss: bytes to stream")
	lossRate := fs.Float64("loss", 0.05, "tcp_loss: the fraction of frames dropped in each direction")
	lossIface := fs.String("loss-iface", "", "tcp_loss: this namespace's end of the veth, where the loss is attached")
	samples := fs.String("samples", "", "write RTT samples here (int64 ns little endian)")
	inflight := fs.Int("inflight", 64, "libOS tcp_bulk: pushes of up to 16 segments kept unacknowledged")
	flows := fs.Int("flows", 1, "kernel udp_pps and tcp_connect: spread the load over this many sockets (flows) at once")
	idleProbe := fs.Bool("idle-probe", false, "kernel udp_rtt/tcp_rtt: after the run print \"warm\", then time one more exchange on the same socket for every line read on stdin (see idleProbes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rem, err := netip.ParseAddrPort(*remote)
	if err != nil {
		return fmt.Errorf("-remote: %w", err)
	}
	cfg := udpClientConfig{n: *n, warmup: *warmup, size: max(*size, 12), outstanding: max(*outstanding, 1),
		duration: *duration, timeout: 200 * time.Millisecond}
	remPort := func(off int) netip.AddrPort { return netip.AddrPortFrom(rem.Addr(), rem.Port()+uint16(off)) }

	var res runResult
	var runErr error
	var loss lossy.Counters // tcp_loss
	switch d.stack {
	case "kernel":
		stopProf, err := startProfile(d.cpuprofile)
		if err != nil {
			return err
		}
		defer stopProf()
		dial := func(off int) dialer {
			return func() (net.Conn, error) { return net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(remPort(off))) }
		}
		switch {
		case *flows > 1 && *workload == "udp_pps":
			res, runErr = udpFlows(rem, *flows, cfg)
		case *flows > 1 && *workload == "tcp_connect":
			if *duration <= 0 {
				*duration = time.Second
			}
			res, runErr = connectFlows(dial(tcpAcceptClose), *flows, *duration)
		case *workload == "udp_rtt" || *workload == "udp_pps":
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(rem))
			if err != nil {
				return err
			}
			defer c.Close()
			res, runErr = udpClient(c, cfg)
			if runErr == nil && *idleProbe {
				runErr = idleProbes(c, cfg.size)
			}
		case *workload == "tcp_loss":
			res, loss, runErr = tcpLoss(dial(tcpEcho), *lossIface, *lossRate, *bytes)
		case *workload == "tcp_rtt" && *idleProbe:
			c, err := dial(tcpEcho)()
			if err != nil {
				return err
			}
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			res, runErr = tcpRTTOn(c, *n, *warmup, *size, *duration)
			if runErr == nil {
				runErr = idleProbes(c, *size)
			}
		default:
			res, runErr = tcpWorkload(*workload, dial, *n, *warmup, *size, *duration, *bytes)
		}
	case "gvisor":
		prefix, err := parsePrefix(d.addr)
		if err != nil {
			return err
		}
		g, err := newGvisorStack(d.iface, prefix)
		if err != nil {
			return err
		}
		defer g.Close()
		stopProf, err := startProfile(d.cpuprofile)
		if err != nil {
			return err
		}
		defer stopProf()
		dial := func(off int) dialer {
			return func() (net.Conn, error) {
				return gonet.DialTCP(g.s, fullAddr(remPort(off)), ipv4.ProtocolNumber)
			}
		}
		switch *workload {
		case "udp_rtt", "udp_pps":
			la, ra := fullAddr(netip.AddrPortFrom(prefix.Addr(), uint16(d.port))), fullAddr(rem)
			c, err := gonet.DialUDP(g.s, &la, &ra, ipv4.ProtocolNumber)
			if err != nil {
				return err
			}
			res, runErr = udpClient(c, cfg)
			c.Close()
		default:
			res, runErr = tcpWorkload(*workload, dial, *n, *warmup, *size, *duration, *bytes)
		}
	case "libos":
		prefix, err := parsePrefix(d.addr)
		if err != nil {
			return err
		}
		lib, err := libos.New(libos.Config{Interface: d.iface, Addr: prefix, Mode: libos.Dedicated, Spin: d.spin})
		if err != nil {
			return err
		}
		defer lib.Close()
		stopProf, err := startProfile(d.cpuprofile)
		if err != nil {
			return err
		}
		defer stopProf()
		switch *workload {
		case "udp_rtt", "udp_pps":
			res, runErr = libosUDPClient(lib, netip.AddrPortFrom(prefix.Addr(), uint16(d.port)), rem, cfg)
		case "tcp_rtt":
			res, runErr = libosTCPRTT(lib, remPort(tcpEcho), *n, *warmup, *size, *duration)
		case "tcp_bulk":
			res, runErr = libosTCPBulk(lib, remPort(tcpSink), *bytes, *duration, *inflight)
		case "tcp_connect":
			if *duration <= 0 {
				*duration = time.Second
			}
			res, runErr = libosTCPConnect(lib, remPort(tcpAcceptClose), *duration)
		default:
			return fmt.Errorf("unknown workload %q", *workload)
		}
	default:
		return fmt.Errorf("-stack %q: want kernel, gvisor or libos (the bare client is cmd/xdp-client)", d.stack)
	}
	if runErr != nil {
		return runErr
	}
	if *samples != "" {
		if err := writeSamples(*samples, res.samples); err != nil {
			return err
		}
	}
	s := slices.Clone(res.samples)
	slices.Sort(s)
	fmt.Printf("result workload=%s stack=%s rate=%.4f received=%d lost=%d p50_us=%.2f p99_us=%.2f p999_us=%.2f samples=%d elapsed_s=%.3f",
		*workload, d.stack, res.rate, res.received, res.lost, usOf(pct(s, 0.5)), usOf(pct(s, 0.99)), usOf(pct(s, 0.999)),
		len(s), res.elapsed.Seconds())
	if *workload == "tcp_loss" {
		fmt.Printf(" dropped=%d frames=%d", loss.Dropped, loss.Dropped+loss.Passed)
	}
	fmt.Println()
	return nil
}

func tcpWorkload(w string, dial func(int) dialer, n, warmup, size int, duration time.Duration, bytes int64) (runResult, error) {
	switch w {
	case "tcp_rtt":
		return tcpRTT(dial(tcpEcho), n, warmup, size, duration)
	case "tcp_bulk":
		return tcpBulk(dial(tcpSink), bytes, duration)
	case "tcp_connect":
		if duration <= 0 {
			duration = time.Second
		}
		return tcpConnect(dial(tcpAcceptClose), duration)
	}
	return runResult{}, fmt.Errorf("unknown workload %q", w)
}

func usOf(ns int64) float64 { return float64(ns) / 1e3 }

// pct is the nearest-rank q-quantile of sorted.
func pct(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func writeSamples(path string, s []int64) error {
	b := make([]byte, 8*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return os.WriteFile(path, b, 0o644)
}
