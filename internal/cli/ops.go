package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/demixdp/demixdp/dxcapture"
	"github.com/demixdp/demixdp/dxmetrics"
	"github.com/demixdp/demixdp/libos"
)

// OpsFlags are the operation flags of the servers: -pcap FILE (capture
// every frame as pcapng), -metrics ADDR (serve /metrics, /debug/vars and
// /debug/pprof/ on the kernel's network), -log-level, and -pin-dir (where
// `demixdp stat` finds the steering maps).
type OpsFlags struct {
	PCAP     string
	Metrics  string
	LogLevel string
	PinDir   string
}

// Register defines the flags on fs.
func (f *OpsFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.PCAP, "pcap", "", "write every frame received and sent to this pcapng file (read it with tcpdump -r or tshark -r)")
	fs.StringVar(&f.Metrics, "metrics", "", "serve /metrics (Prometheus), /debug/vars and /debug/pprof/ on this address of the kernel's network, e.g. 127.0.0.1:9400")
	fs.StringVar(&f.LogLevel, "log-level", "info", "lifecycle log on stderr: debug, info, warn, error or off")
	fs.StringVar(&f.PinDir, "pin-dir", "", "bpf file system directory to pin the steering maps under, for demixdp stat (default /sys/fs/bpf/demixdp, if mounted)")
}

// Ops is what the operation flags set up around one LibOS. Its methods
// are nil-safe, so a command without the flags can call them too.
type Ops struct {
	// Logger is the logger given to the LibOS (nil with -log-level off).
	Logger  *slog.Logger
	capture *dxcapture.Writer
	src     *dxmetrics.Source
	queues  []*Ops // ServeQueues: one per queue, each with its own source
	iface   string
	srv     *http.Server
	served  chan error
}

// Start checks the flags and applies them to cfg before the LibOS is
// opened: a text logger on stderr (cfg.Logger) and the capture file
// (cfg.Capture), and the pin directory (cfg.PinDir). Close the returned
// Ops after the LibOS.
func (f *OpsFlags) Start(cfg *libos.Config, stderr io.Writer) (*Ops, error) {
	o := &Ops{}
	cfg.PinDir = f.PinDir
	if !strings.EqualFold(f.LogLevel, "off") {
		var level slog.Level
		if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
			return nil, fmt.Errorf("-log-level %q: want debug, info, warn, error or off", f.LogLevel)
		}
		o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
		cfg.Logger = o.Logger
	}
	if f.Metrics != "" {
		if _, _, err := net.SplitHostPort(f.Metrics); err != nil {
			return nil, fmt.Errorf("-metrics %q: want HOST:PORT", f.Metrics)
		}
		o.src = dxmetrics.NewSource(cfg.Interface, cfg.Queue)
		o.iface = cfg.Interface
	}
	if f.PCAP != "" {
		w, err := dxcapture.Create(f.PCAP)
		if err != nil {
			return nil, fmt.Errorf("-pcap: %w", err)
		}
		o.capture = w
		cfg.Capture = w
	}
	return o, nil
}

// Serve starts the metrics endpoint, if -metrics asked for one, for lib
// and the queues qs, on the address of the flag, and prints "metrics on
// http://ADDR/metrics" to out. The loop that drives lib must call Poll.
func (o *Ops) Serve(f *OpsFlags, lib *libos.LibOS, out io.Writer, qs ...dxmetrics.Queue) error {
	if o == nil || o.src == nil {
		return nil
	}
	o.src.SetQueues(qs...)
	o.src.Publish(lib) // a first snapshot, for a scrape that comes before the loop runs
	return o.listen(f, out, dxmetrics.NewCollector(o.src))
}

// listen serves the collector's endpoints on the -metrics address.
func (o *Ops) listen(f *OpsFlags, out io.Writer, c *dxmetrics.Collector) error {
	ln, err := net.Listen("tcp", f.Metrics)
	if err != nil {
		return fmt.Errorf("-metrics: %w", err)
	}
	o.srv = &http.Server{Handler: dxmetrics.NewServeMux(c), ReadHeaderTimeout: 10 * time.Second}
	o.served = make(chan error, 1)
	go func() { o.served <- o.srv.Serve(ln) }()
	fmt.Fprintf(out, "metrics on http://%s/metrics\n", ln.Addr())
	return nil
}

// Poll lets a metrics scrape in: call it on every turn of the loop that
// drives the LibOS (see dxmetrics.Source.Poll). It costs an atomic load.
func (o *Ops) Poll(lib *libos.LibOS) {
	if o != nil && o.src != nil {
		o.src.Poll(lib)
	}
}

// Close stops the metrics server and flushes and closes the capture file.
// Call it after closing the LibOS, so the capture holds its last frames.
func (o *Ops) Close() error {
	if o == nil {
		return nil
	}
	var errs []error
	if o.srv != nil {
		errs = append(errs, o.srv.Close())
		if err := <-o.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		o.srv = nil
	}
	if o.capture != nil {
		errs = append(errs, o.capture.Close())
		o.capture = nil
	}
	return errors.Join(errs...)
}
