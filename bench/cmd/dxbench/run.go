package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/demixdp/demixdp/bench/report"
	"github.com/demixdp/demixdp/internal/lossy"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// runOpts are the settings of `dxbench run`.
type runOpts struct {
	rounds            int
	root, out, work   string
	rttN              int
	ppsTime, bulkTime time.Duration
	connTime          time.Duration
	idle              time.Duration
	micro             bool
	benchtime         string
	pin               pinning
	only              []string // -only: the workloads to measure (nil: all)
	httpTime          time.Duration
}

// lab is one vethlab lab's variables.
type lab map[string]string

// harness owns the labs, the servers it started and the collected figures.
type harness struct {
	o       runOpts
	labs    []string // names to take down
	server  *exec.Cmd
	bin     map[string]string
	figures map[string]map[string]map[string][]float64 // workload -> stack -> metric -> rounds
	samples map[string][]int64                         // udp_rtt pair stacks -> all RTT samples
	notes   []string
	load0   string // /proc/loadavg when the run started
}

// loadavg is the first three fields of /proc/loadavg: other work on this
// shared machine shows up here and in the spread of the rounds.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func runMain(args []string) error {
	var o runOpts
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 3, "rounds (each runs every stack once)")
	fs.StringVar(&o.root, "root", "..", "the demixdp main module")
	fs.StringVar(&o.out, "out", "results", "where latest.json, latest.md and latest-cdf.svg go")
	fs.IntVar(&o.rttN, "n", 20000, "round trips per rtt measurement")
	fs.DurationVar(&o.ppsTime, "pps-time", time.Second, "length of a udp_pps measurement")
	fs.DurationVar(&o.bulkTime, "bulk-time", 8*time.Second, "tcp_bulk stops after this long even before 1 GiB")
	fs.DurationVar(&o.connTime, "connect-time", time.Second, "length of a tcp_connect measurement")
	fs.DurationVar(&o.idle, "idle", 5*time.Second, "idle_cpu window")
	fs.BoolVar(&o.micro, "micro", true, "run the Go micro-benchmarks")
	fs.StringVar(&o.benchtime, "benchtime", "200ms", "-benchtime of the micro-benchmarks")
	fs.BoolVar(&o.pin.on, "pin", true, "pin every server to -server-cpu and every client to -client-cpu (false: let the scheduler place them)")
	fs.IntVar(&o.pin.server, "server-cpu", 0, "the CPU of the servers (and of one end of the wakeup calibration)")
	fs.IntVar(&o.pin.client, "client-cpu", 1, "the CPU of the clients (and of the other end of the wakeup calibration)")
	fs.DurationVar(&o.httpTime, "http-time", 5*time.Second, "length of one wrk run of the http workloads")
	only := fs.String("only", "", "measure only these workloads, comma separated (e.g. bulk_ceiling,wakeup; default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.only, err = parseOnly(*only); err != nil {
		return err
	}
	pinNote, err := o.pin.check()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("run needs root (network namespaces, eBPF, AF_XDP)")
	}
	work, err := os.MkdirTemp("", "dxbench.")
	if err != nil {
		return err
	}
	o.work = work
	h := &harness{o: o, bin: map[string]string{}, figures: map[string]map[string]map[string][]float64{}, samples: map[string][]int64{}}
	if pinNote != "" {
		h.note("%s", pinNote)
	}
	// Whatever happens, the labs and the server go away.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "dxbench: %v: cleaning up\n", s)
		h.cleanup()
		os.Exit(130)
	}()
	defer h.cleanup()
	return h.run()
}

func (h *harness) cleanup() {
	h.stopServer()
	for _, name := range h.labs {
		if out, err := exec.Command(h.bin["vethlab"], "down", "-name", name).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "dxbench: vethlab down %s: %v %s\n", name, err, out)
		}
	}
	h.labs = nil
	os.RemoveAll(h.o.work)
}

func (h *harness) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func (h *harness) build() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	h.bin["dxbench"] = self
	cmd := exec.Command("go", "build", "-o", h.o.work+"/", "./cmd/vethlab", "./cmd/xdp-reflect", "./cmd/xdp-client", "./cmd/udp-echo", "./cmd/http-hello", "./cmd/kv")
	cmd.Dir = h.o.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	for _, b := range []string{"vethlab", "xdp-reflect", "xdp-client", "udp-echo", "http-hello", "kv"} {
		h.bin[b] = filepath.Join(h.o.work, b)
	}
	return nil
}

func (h *harness) labUp(name string, offloads bool, extra ...string) (lab, error) {
	args := append([]string{"up", "-shared", "-name", name}, extra...)
	if offloads {
		args = append(args, "-offloads")
	}
	h.labs = append(h.labs, name)
	out, err := exec.Command(h.bin["vethlab"], args...).Output()
	if err != nil {
		return nil, fmt.Errorf("vethlab up: %w", err)
	}
	l := lab{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			l[k] = v
		}
	}
	l["A"] = strings.Split(l["ADDRA"], "/")[0]
	l["B"] = strings.Split(l["ADDRB"], "/")[0]
	return l, nil
}

// startServer runs argv in namespace ns, on the server CPU, and waits for
// "listening".
func (h *harness) startServer(ns string, argv ...string) error {
	return h.startServerOpts(ns, "listening", true, argv...)
}

// startServerReady is startServer waiting for a line with ready instead
// (redis-server says "Ready to accept connections").
func (h *harness) startServerReady(ns, ready string, argv ...string) error {
	return h.startServerOpts(ns, ready, true, argv...)
}

// startServerPinned is startServer; whole false leaves the server off the
// server CPU's taskset (it pins its own threads).
func (h *harness) startServerPinned(ns string, whole bool, argv ...string) error {
	return h.startServerOpts(ns, "listening", whole, argv...)
}

// startServerOpts runs argv in namespace ns, pinned to the server CPU
// unless whole is false, and waits for a line containing ready.
func (h *harness) startServerOpts(ns, ready string, whole bool, argv ...string) error {
	h.stopServer()
	log := filepath.Join(h.o.work, "server.log")
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	if whole {
		argv = h.o.pin.wrap(h.o.pin.server, argv)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	h.server = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), ready) {
			return nil
		}
		select {
		case <-exited:
			h.server = nil
			return fmt.Errorf("server %s exited: %s", argv[0], b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("server %s never said %q", argv[0], ready)
}

// stopServer interrupts the server it started (by its pid) and waits.
func (h *harness) stopServer() {
	if h.server == nil || h.server.Process == nil {
		return
	}
	p := h.server.Process
	p.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 40; i++ {
			if p.Signal(syscall.Signal(0)) != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(done)
	}()
	<-done
	p.Kill()
	h.server = nil
	time.Sleep(100 * time.Millisecond) // the kernel frees the AF_XDP queue from deferred work
}

// client runs argv in ns and returns its last line's key=value pairs.
func (h *harness) client(ns string, limit time.Duration, argv ...string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, h.o.pin.wrap(h.o.pin.client, argv)...)...)
	out, err := cmd.Output()
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
	}
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return kv, fmt.Errorf("%s: %v %s", filepath.Base(argv[0]), err, strings.TrimSpace(stderr))
	}
	return kv, nil
}

func num(kv map[string]string, keys ...string) float64 {
	for _, k := range keys {
		if v, ok := kv[k]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return math.NaN()
}

// record appends one round's figure; a failed measurement records NaN so
// the rounds stay aligned for the ratios.
func (h *harness) record(workload, stack, metric string, v float64) {
	if h.figures[workload] == nil {
		h.figures[workload] = map[string]map[string][]float64{}
	}
	if h.figures[workload][stack] == nil {
		h.figures[workload][stack] = map[string][]float64{}
	}
	h.figures[workload][stack][metric] = append(h.figures[workload][stack][metric], v)
}

func (h *harness) note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	h.logf("NOTE %s", s)
	h.notes = append(h.notes, s)
}

func readSamples(path string) []int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := make([]int64, len(b)/8)
	for i := range s {
		s[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return s
}

// udpServer is one UDP server configuration and its clients.
type udpServer struct {
	name   string
	server []string
	pair   func(workload, samples string) []string // the same stack's client (nil: none)
	remote string
}

func (h *harness) udpServers(l lab) []udpServer {
	d, w := h.bin["dxbench"], h.o.work
	A, B := l["A"], l["B"]
	xdpClient := func(dst string) func(string, string) []string {
		return func(workload, samples string) []string {
			a := []string{h.bin["xdp-client"], "-iface", l["IFB"], "-src", B + ":9000", "-dst", dst, "-dstmac", l["MACA"],
				"-n", strconv.Itoa(h.o.rttN), "-samples", samples}
			if workload == "udp_pps" {
				a = append(a, "-outstanding", "32", "-n", "100000000", "-duration", h.o.ppsTime.String())
			}
			return a
		}
	}
	dx := func(stack, iface, addr string, remote string) func(string, string) []string {
		return func(workload, samples string) []string {
			a := []string{d, "client", "-stack", stack, "-workload", workload, "-remote", remote,
				"-n", strconv.Itoa(h.o.rttN), "-samples", samples}
			if iface != "" {
				a = append(a, "-iface", iface, "-addr", addr, "-port", "9000")
			}
			if workload == "udp_pps" {
				a = append(a, "-outstanding", "32", "-n", "100000000", "-duration", h.o.ppsTime.String())
			}
			if stack == "libos" && workload == "udp_pps" {
				a = append(a, "-cpuprofile", filepath.Join(w, "libos-client-pps.pprof"))
			}
			return a
		}
	}
	return []udpServer{
		{"kernel", []string{d, "udp-echo", "-stack", "kernel", "-addr", l["ADDRA"]}, dx("kernel", "", "", A+":7777"), A + ":7777"},
		{"libos", []string{h.bin["udp-echo"], "-iface", l["IFA"], "-addr", "198.51.100.21:7777", "-cpuprofile", filepath.Join(w, "libos-echo.pprof")},
			dx("libos", l["IFB"], "198.51.100.22/24", "198.51.100.21:7777"), "198.51.100.21:7777"},
		{"gvisor", []string{d, "udp-echo", "-stack", "gvisor", "-iface", l["IFA"], "-addr", "198.51.100.31/24"},
			dx("gvisor", l["IFB"], "198.51.100.32/24", "198.51.100.31:7777"), "198.51.100.31:7777"},
		{"reflector", []string{h.bin["xdp-reflect"], "-iface", l["IFA"], "-port", "7777", "-addr", A, "-busy"}, xdpClient(A + ":7777"), A + ":7777"},
		{"asavie", []string{d, "udp-echo", "-stack", "asavie", "-iface", l["IFA"], "-addr", l["ADDRA"]}, xdpClient(A + ":7777"), A + ":7777"},
	}
}

// udpRound measures every UDP server once: its own client (the pair) and a
// kernel client, udp_rtt then udp_pps.
func (h *harness) udpRound(l lab, round int) {
	loads := h.wanted([]string{"udp_rtt", "udp_pps"})
	if len(loads) == 0 {
		return
	}
	for _, s := range h.udpServers(l) {
		h.logf("round %d udp %s", round, s.name)
		if err := h.startServer(l["NSA"], s.server...); err != nil {
			h.note("round %d: %s server: %v", round, s.name, err)
			for _, wl := range loads {
				for _, st := range []string{s.name, "kernel_client/" + s.name} {
					h.record(wl, st, "fail", 1)
				}
			}
			continue
		}
		type cl struct {
			stack string
			argv  func(string, string) []string
		}
		clients := []cl{{s.name, s.pair}}
		if s.name != "kernel" {
			kc := func(workload, samples string) []string {
				a := []string{h.bin["dxbench"], "client", "-stack", "kernel", "-workload", workload, "-remote", s.remote,
					"-n", strconv.Itoa(h.o.rttN), "-samples", samples}
				if workload == "udp_pps" {
					a = append(a, "-outstanding", "32", "-n", "100000000", "-duration", h.o.ppsTime.String())
				}
				return a
			}
			clients = append(clients, cl{"kernel_client/" + s.name, kc})
		}
		for _, c := range clients {
			for _, wl := range loads {
				sp := filepath.Join(h.o.work, "samples.bin")
				os.Remove(sp)
				kv, err := h.client(l["NSB"], 60*time.Second, c.argv(wl, sp)...)
				if err != nil {
					h.note("round %d: %s %s: %v", round, wl, c.stack, err)
				}
				if wl == "udp_rtt" {
					h.record(wl, c.stack, "p50_us", num(kv, "p50_us", "rtt_p50_us"))
					h.record(wl, c.stack, "p99_us", num(kv, "p99_us", "rtt_p99_us"))
					h.record(wl, c.stack, "p999_us", num(kv, "p999_us", "rtt_p999_us"))
					if !strings.Contains(c.stack, "/") && err == nil {
						h.samples[c.stack] = append(h.samples[c.stack], readSamples(sp)...)
					}
				} else {
					h.record(wl, c.stack, "pps", num(kv, "rate", "pps"))
				}
			}
		}
		h.stopServer()
	}
}

// tcpRound measures the kernel pair (offloads off and on), the libOS
// against the kernel server, the gVisor pair, a kernel client against
// gVisor, the libOS pair and a kernel client against the libOS.
func (h *harness) tcpRound(l, lo lab, round int) {
	d, w := h.bin["dxbench"], h.o.work
	type cfg struct {
		name   string
		lab    lab
		server []string // nil: the previous configuration's server
		client []string // without -workload
		loads  []string
		keep   bool // the next configuration uses this server
	}
	all := []string{"tcp_rtt", "tcp_connect", "tcp_bulk"}
	// tcp_loss5 (loss.go) between the kernel client and the two echo
	// servers it compares, the kernel's and the libOS's.
	withLoss := append(slices.Clone(all), "tcp_loss5")
	if len(h.wanted(withLoss)) == 0 {
		return
	}
	// Every round has its own service ports: a new libOS client process
	// starts its ephemeral ports and TCP timestamp clock afresh, and the
	// kernel server's TIME_WAIT from the previous round would reject (PAWS)
	// the reused 4-tuples, costing a 1 s SYN timeout per collision.
	port := strconv.Itoa(7001 + 10*(round-1))
	libosClient := func(remote string, prof string) []string {
		a := []string{d, "client", "-stack", "libos", "-iface", l["IFB"], "-addr", "198.51.100.22/24", "-port", "9000", "-remote", remote}
		if prof != "" {
			a = append(a, "-cpuprofile", filepath.Join(w, prof))
		}
		return a
	}
	cfgs := []cfg{
		{"kernel", l, []string{d, "tcp-server", "-stack", "kernel", "-addr", l["ADDRA"], "-port", port},
			[]string{d, "client", "-stack", "kernel", "-remote", l["A"] + ":" + port}, withLoss, true},
		{"libos_client/kernel", l, nil, libosClient(l["A"]+":"+port, ""), all, false},
		{"kernel_offload", lo, []string{d, "tcp-server", "-stack", "kernel", "-addr", lo["ADDRA"], "-port", port},
			[]string{d, "client", "-stack", "kernel", "-remote", lo["A"] + ":" + port}, []string{"tcp_bulk"}, false},
		{"gvisor", l, []string{d, "tcp-server", "-stack", "gvisor", "-iface", l["IFA"], "-addr", "198.51.100.31/24", "-port", port},
			[]string{d, "client", "-stack", "gvisor", "-iface", l["IFB"], "-addr", "198.51.100.32/24", "-port", "9000", "-remote", "198.51.100.31:" + port}, all, true},
		{"kernel_client/gvisor", l, nil,
			[]string{d, "client", "-stack", "kernel", "-remote", "198.51.100.31:" + port}, all, false},
		{"libos", l, []string{d, "tcp-server", "-stack", "libos", "-iface", l["IFA"], "-addr", "198.51.100.21/24", "-port", port,
			"-cpuprofile", filepath.Join(w, "libos-tcp-server.pprof")},
			libosClient("198.51.100.21:"+port, "libos-client-tcp.pprof"), all, true},
		{"kernel_client/libos", l, nil,
			[]string{d, "client", "-stack", "kernel", "-remote", "198.51.100.21:" + port}, withLoss, false},
	}
	skip := false // the server of a shared pair failed
	for _, c := range cfgs {
		c.loads = h.wanted(c.loads)
		if len(c.loads) == 0 && !c.keep {
			if c.server == nil {
				h.stopServer() // the previous configuration's, kept for this one
			}
			continue
		}
		h.logf("round %d tcp %s", round, c.name)
		if c.server != nil {
			skip = false
			if err := h.startServer(c.lab["NSA"], c.server...); err != nil {
				h.note("round %d: tcp %s server: %v", round, c.name, err)
				skip = true
			}
		}
		for _, wl := range c.loads {
			if skip {
				h.recordTCP(wl, c.name, nil)
				continue
			}
			argv := append(append([]string{}, c.client...), "-workload", wl, "-n", strconv.Itoa(h.o.rttN/2))
			switch wl {
			case "tcp_loss5":
				argv = append(c.client[:len(c.client):len(c.client)], "-workload", "tcp_loss", "-bytes", strconv.Itoa(lossBytes),
					"-loss", "0.05", "-loss-iface", c.lab["IFB"])
			case "tcp_bulk":
				argv = append(argv, "-duration", h.o.bulkTime.String())
			case "tcp_connect":
				argv = append(argv, "-duration", h.o.connTime.String())
			}
			if i := slices.Index(argv, "-cpuprofile"); i >= 0 && wl != "tcp_bulk" {
				argv = slices.Delete(argv, i, i+2) // profile the bulk transfer only
			}
			var restore func() error
			if wl == "tcp_loss5" {
				var err error
				if restore, err = limitServerGSO(c.lab); err != nil {
					h.note("round %d: %s %s: %v", round, wl, c.name, err)
					h.recordTCP(wl, c.name, nil)
					continue
				}
			}
			kv, err := h.client(c.lab["NSB"], 60*time.Second, argv...)
			if err != nil {
				h.note("round %d: %s %s: %v", round, wl, c.name, err)
			}
			if restore != nil {
				if err := restore(); err != nil {
					h.note("round %d: %s %s: restoring GSO: %v", round, wl, c.name, err)
				}
			}
			h.recordTCP(wl, c.name, kv)
		}
		if !c.keep {
			h.stopServer()
		}
	}
	h.stopServer()
}

// recordTCP records one TCP measurement (kv nil: failed).
func (h *harness) recordTCP(wl, stack string, kv map[string]string) {
	switch wl {
	case "tcp_rtt":
		h.record(wl, stack, "p50_us", num(kv, "p50_us"))
		h.record(wl, stack, "p99_us", num(kv, "p99_us"))
	case "tcp_bulk":
		h.record(wl, stack, "gbps", num(kv, "rate"))
	case "tcp_connect":
		h.record(wl, stack, "cps", num(kv, "rate"))
	case "tcp_loss5":
		h.record(wl, stack, "s", num(kv, "elapsed_s"))
		h.record(wl, stack, "dropped", num(kv, "dropped"))
		h.record(wl, stack, "frames", num(kv, "frames"))
	}
}

// limitServerGSO makes the kernel send one packet per skb through the
// server's end of lab l until the returned function restores it. A veth
// hands a kernel's GSO super-packets (up to 64 KB) to the XDP program of
// its peer as one frame, so without this the loss injector at the
// client's end would drop whole bursts of segments at once and count them
// as one frame: the kernel server would see about one loss event in 40
// and look several times faster than under the per-frame loss its peers
// get (a libOS sends no GSO). The client's end is limited by lossy.Attach.
func limitServerGSO(l lab) (func() error, error) {
	vl, err := vethlab.Open(l["NAME"])
	if err != nil {
		return nil, err
	}
	var g *lossy.GSOLimit
	if err := vl.RunInA(func() (err error) { g, err = lossy.LimitGSO(vl.IndexA); return }); err != nil {
		return nil, err
	}
	return g.Restore, nil
}

// lossBytes is what tcp_loss5 carries each way: issue 10's 100 MB.
const lossBytes = 100 << 20

// cpuTime is the CPU time pid's threads have run, from the scheduler's
// nanosecond accounting (/proc/PID/task/*/schedstat); utime+stime in
// /proc/PID/stat only counts 10 ms ticks, which is 0.2% of a 5 s window.
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no /proc/%d/task/*/schedstat: %v", pid, err)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		sum += ns
	}
	return time.Duration(sum), nil
}

// idleServer is a server measured by idle_cpu and how to reach it.
type idleServer struct {
	name     string
	server   []string
	workload string // the kernel client's: udp_rtt or tcp_rtt
	remote   string
}

// idleRound measures each echo server's CPU share while idle, then the RTT
// of its first request after the idle period. The client is a kernel
// client that has just made 2000 exchanges on the same socket (ARP, route,
// connection and both processes are warm) and waits on stdin; the harness
// samples the server's CPU time, sleeps through the window, samples again
// and tells the client to send.
func (h *harness) idleRound(l lab) map[string]map[string]float64 {
	var servers []idleServer
	for _, s := range h.udpServers(l) {
		srv := s.server
		if s.name == "reflector" { // its default: spin 50us, then sleep (not -busy)
			srv = srv[:len(srv)-1]
		}
		if i := slices.Index(srv, "-cpuprofile"); i >= 0 { // keep the loaded run's profile
			srv = slices.Delete(slices.Clone(srv), i, i+2)
		}
		servers = append(servers, idleServer{s.name, srv, "udp_rtt", s.remote})
	}
	d := h.bin["dxbench"]
	servers = append(servers,
		idleServer{"libos_tcp", []string{d, "tcp-server", "-stack", "libos", "-iface", l["IFA"], "-addr", "198.51.100.21/24", "-port", "7001"},
			"tcp_rtt", "198.51.100.21:7001"},
		idleServer{"kernel_tcp", []string{d, "tcp-server", "-stack", "kernel", "-addr", l["ADDRA"], "-port", "7001"},
			"tcp_rtt", l["A"] + ":7001"})
	res := map[string]map[string]float64{}
	for _, s := range servers {
		h.logf("idle_cpu %s", s.name)
		if err := h.startServer(l["NSA"], s.server...); err != nil {
			h.note("idle_cpu %s: %v", s.name, err)
			continue
		}
		m, err := h.idleOne(l, s)
		if err != nil {
			h.note("idle_cpu %s: %v", s.name, err)
		}
		if m != nil {
			res[s.name] = m
		}
		h.stopServer()
	}
	return res
}

// idleProbeCount is how many first requests idle_cpu times per server.
const idleProbeCount = 5

func (h *harness) idleOne(l lab, s idleServer) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.o.idle+idleProbeCount*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l["NSB"]}, h.o.pin.wrap(h.o.pin.client, []string{h.bin["dxbench"], "client", "-stack", "kernel",
		"-workload", s.workload, "-remote", s.remote, "-n", "2000", "-warmup", "100", "-idle-probe"})...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	sc := bufio.NewScanner(stdout)
	warm := false
	for !warm && sc.Scan() {
		warm = sc.Text() == "warm"
	}
	if !warm {
		cmd.Wait()
		return nil, fmt.Errorf("the client never got warm: %s", strings.TrimSpace(stderr.String()))
	}
	// probe sends one probe and returns its RTT (NaN if none came back).
	probe := func() float64 {
		if _, err := io.WriteString(stdin, "go\n"); err != nil {
			return math.NaN()
		}
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "probe us="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					return f
				}
				break
			}
		}
		return math.NaN()
	}
	// A probe after ~2 ms of silence (the client's warm-up spin): the cost
	// of a short sleep, against which the long idle window is compared.
	short := probe()
	pid := h.server.Process.Pid
	t0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	time.Sleep(h.o.idle)
	t1, err := cpuTime(pid)
	el := time.Since(start)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{"cpu_share": float64(t1-t0) / float64(el)}
	// The first probe ends the idle window; the others follow 1 s of
	// silence each, for a median that one unlucky sample cannot move.
	var probes []float64
	for i := 0; i < idleProbeCount; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		v := probe()
		if math.IsNaN(v) {
			break
		}
		probes = append(probes, v)
	}
	stdin.Close()
	kv := map[string]string{}
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
	}
	m["warm_p50_us"] = num(kv, "p50_us")
	if err := cmd.Wait(); err != nil {
		return m, fmt.Errorf("client: %v %s", err, strings.TrimSpace(stderr.String()))
	}
	if len(probes) != idleProbeCount {
		return m, fmt.Errorf("client answered %d of %d probes", len(probes), idleProbeCount)
	}
	m["short_idle_rtt_us"] = short
	m["first_rtt_us"] = probes[0]
	slices.Sort(probes)
	m["first_rtt_med_us"] = probes[len(probes)/2]
	return m, nil
}

func (h *harness) microBench() (map[string]report.Micro, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", h.o.benchtime, "-timeout", "5m",
		"./libos", "./netstack/...", "./umem", "./xdp", "./bpf", "./cabi", "./dxnet")
	cmd.Dir = h.o.root
	out, err := cmd.CombinedOutput()
	os.WriteFile(filepath.Join(h.o.work, "micro.txt"), out, 0o644)
	m := report.ParseGoBench(string(out))
	if err != nil {
		return m, fmt.Errorf("go test -bench: %v (%d results kept)", err, len(m))
	}
	return m, nil
}

func (h *harness) run() error {
	t0 := time.Now()
	h.load0 = loadavg()
	h.logf("building")
	if err := h.build(); err != nil {
		return err
	}
	if len(h.o.only) == 1 && h.o.only[0] == "cabi" {
		// The C ABI pair beside the Go libOS pair, alone, into
		// latest-cabi.{json,md}.
		return h.runCABIOnly(t0)
	}
	if h.want("cabi") {
		if err := h.buildCABI(); err != nil {
			h.note("cabi: %v", err)
		}
	}
	id := fmt.Sprintf("%04x", rand.IntN(1<<16))
	l, err := h.labUp("dxbn"+id, false)
	if err != nil {
		return err
	}
	lo, err := h.labUp("dxbo"+id, true)
	if err != nil {
		return err
	}
	var lq lab // two queues, for the queue-scaling workloads (scaling.go)
	if len(h.wanted([]string{"udp_pps_queues", "tcp_connect_queues"})) > 0 {
		if lq, err = h.labUp("dxbq"+id, false, "-queues", "2"); err != nil {
			return err
		}
	}
	for r := 1; r <= h.o.rounds; r++ {
		h.wakeupRound(r)
		h.udpRound(l, r)
		h.tcpRound(l, lo, r)
		for i := 1; i <= besidePerRound; i++ {
			h.besideRound(l, r, (r-1)*besidePerRound+i)
		}
		if h.want("cabi") {
			for i := 1; i <= cabiPerRound; i++ {
				h.cabiRound(l, r, (r-1)*cabiPerRound+i, cabiBeside)
			}
		}
		h.ceilingRound(l, r)
		if lq != nil {
			h.scalingRound(l, lq, r)
		}
		if h.want("http_c1") || h.want("http_c64") {
			h.httpRound(l, r)
		}
		if h.want("resp_p1") || h.want("resp_p16") {
			h.respRound(l, r)
		}
	}
	idle := map[string]map[string]float64{}
	if h.want("idle_cpu") {
		h.logf("idle_cpu")
		idle = h.idleRound(l)
	}
	var micro map[string]report.Micro
	if h.o.micro && h.want("micro") {
		h.logf("micro-benchmarks")
		if micro, err = h.microBench(); err != nil {
			h.note("micro: %v", err)
		}
	}
	// Keep the libOS profiles for whoever optimises it.
	os.MkdirAll(h.o.out, 0o755)
	for _, p := range []string{"libos-echo.pprof", "libos-client-pps.pprof", "libos-tcp-server.pprof", "libos-client-tcp.pprof"} {
		if b, err := os.ReadFile(filepath.Join(h.o.work, p)); err == nil {
			os.WriteFile(filepath.Join(h.o.out, p), b, 0o644)
		}
	}
	doc := h.document(idle, micro, time.Since(t0))
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.o.out, "latest.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := markdown(doc)
	if err := os.WriteFile(filepath.Join(h.o.out, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(h.o.out, "latest-cdf.svg"))
	if err != nil {
		return err
	}
	var series []report.Series
	for _, st := range []string{"reflector", "libos", "asavie", "kernel", "gvisor"} {
		series = append(series, report.Series{Label: st, Samples: h.samples[st]})
	}
	err = report.WriteCDF(f, "udp_rtt: 64-byte UDP, one outstanding, same stack both ends (veth, copy mode)", series)
	f.Close()
	if err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}
