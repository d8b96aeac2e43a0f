package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/demixdp/demixdp/bpf"
	"github.com/vishvananda/netlink"
)

// statOptions are stat's flags.
type statOptions struct {
	iface    string
	pinDir   string
	interval time.Duration
	count    int
}

func runStat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o statOptions
	fs.StringVar(&o.iface, "iface", "", "interface whose libOS to watch (required)")
	fs.StringVar(&o.pinDir, "pin-dir", bpf.DefaultPinRoot, "where the libOS pins its maps (its -pin-dir, or libos.Config.PinDir)")
	fs.DurationVar(&o.interval, "interval", time.Second, "time between reports")
	fs.IntVar(&o.count, "count", 0, "stop after this many reports (0: until interrupted or the libOS exits)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.iface == "" || o.interval <= 0 || o.count < 0 {
		fmt.Fprintln(stderr, "demixdp stat: need -iface IF, -interval > 0 and -count >= 0")
		return 2
	}
	dir := bpf.PinDir(o.pinDir, o.iface)
	p, err := bpf.OpenPinned(dir)
	if err != nil {
		if errors.Is(err, bpf.ErrNoPins) {
			fmt.Fprintf(stderr, "demixdp stat: no libOS pins in %s: is a libOS running on %s with this -pin-dir, on a bpf file system? (%v)\n",
				dir, o.iface, err)
		} else {
			fmt.Fprintf(stderr, "demixdp stat: %v\n", err)
		}
		return 1
	}
	defer p.Close()
	if stale, why := staleness(p, o.iface); stale {
		fmt.Fprintf(stderr, "demixdp stat: the pins in %s are stale: %s; a process that died left them, and the next libOS on %s replaces them\n",
			dir, why, o.iface)
		return 1
	}

	addrs, _ := p.Addrs()
	ports, _ := p.Ports()
	var as, ps []string
	for _, a := range addrs {
		as = append(as, a.String())
	}
	for _, x := range ports {
		ps = append(ps, x.String())
	}
	fmt.Fprintf(stdout, "demixdp stat %s: maps in %s, addresses %s, ports %s, every %v\n",
		o.iface, dir, orNone(as), orNone(ps), o.interval)
	fmt.Fprintf(stdout, "%5s %13s %10s %12s %14s %12s %12s\n", "queue", "redirected/s", "passed/s", "malformed/s", "redirected", "passed", "malformed")

	prev, err := p.QueueCounters()
	if err != nil {
		fmt.Fprintf(stderr, "demixdp stat: %v\n", err)
		return 1
	}
	last := time.Now()
	for n := 0; o.count == 0 || n < o.count; n++ {
		time.Sleep(o.interval)
		if _, err := os.Stat(filepath.Join(dir, "counters")); err != nil {
			fmt.Fprintf(stdout, "the libOS on %s has closed (its pins are gone)\n", o.iface)
			return 0
		}
		cur, err := p.QueueCounters()
		if err != nil {
			fmt.Fprintf(stderr, "demixdp stat: %v\n", err)
			return 1
		}
		now := time.Now()
		printRates(stdout, prev, cur, now.Sub(last))
		prev, last = cur, now
	}
	return 0
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// printRates prints one line per queue that has counted anything, and a
// total line when there are several.
func printRates(w io.Writer, prev, cur []bpf.QueueCounters, dt time.Duration) {
	before := map[int]bpf.Counters{}
	for _, q := range prev {
		before[q.Queue] = q.Counters
	}
	var total, totalPrev bpf.Counters
	for _, q := range cur {
		b := before[q.Queue]
		printLine(w, queueName(q.Queue), b, q.Counters, dt)
		total.Redirected += q.Redirected
		total.Passed += q.Passed
		total.Malformed += q.Malformed
		totalPrev.Redirected += b.Redirected
		totalPrev.Passed += b.Passed
		totalPrev.Malformed += b.Malformed
	}
	if len(cur) != 1 { // several queues, or none that counted a frame yet
		printLine(w, "all", totalPrev, total, dt)
	}
}

func queueName(q int) string {
	if q < 0 {
		return "other"
	}
	return fmt.Sprint(q)
}

func printLine(w io.Writer, name string, a, b bpf.Counters, dt time.Duration) {
	rate := func(x, y uint64) float64 { return float64(y-x) / dt.Seconds() }
	fmt.Fprintf(w, "%5s %13.0f %10.0f %12.0f %14d %12d %12d\n", name,
		rate(a.Redirected, b.Redirected), rate(a.Passed, b.Passed), rate(a.Malformed, b.Malformed),
		b.Redirected, b.Passed, b.Malformed)
}

// staleness tells pins whose program is gone: when the interface is in
// this network namespace, the program attached to it must use the pinned
// counters map. (From another namespace the check is skipped.)
func staleness(p *bpf.Pinned, iface string) (bool, string) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return false, ""
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId == 0 {
		return true, "no XDP program is attached to " + iface
	}
	used, err := p.UsedBy(ebpf.ProgramID(x.ProgId))
	if err != nil || used {
		return false, ""
	}
	return true, fmt.Sprintf("the program on %s (id %d) uses other maps", iface, x.ProgId)
}
