package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/demixdp/demixdp/dxmetrics"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// registerQueues defines -queues and -cpus.
func (f *LibOSFlags) registerQueues(fs *flag.FlagSet) {
	fs.IntVar(&f.Queues, "queues", 1, "NIC queues to serve, one loop each on its own thread, queues 0..N-1 (0: every receive queue the interface has)")
	fs.StringVar(&f.CPUs, "cpus", "", "pin the queues' loops to these CPUs, one per queue, comma separated (e.g. 0,1)")
}

// queuesConfig applies -queues and -cpus to cfg.
func (f *LibOSFlags) queuesConfig(cfg *libos.Config) error {
	if f.Queues < 0 || f.Queues > libos.MaxQueues {
		return fmt.Errorf("-queues %d: want 0-%d", f.Queues, libos.MaxQueues)
	}
	cfg.Queues = f.Queues
	if f.CPUs == "" {
		return nil
	}
	for _, s := range strings.Split(f.CPUs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 0 {
			return fmt.Errorf("-cpus %q: want CPU numbers separated by commas", f.CPUs)
		}
		cfg.CPUs = append(cfg.CPUs, c)
	}
	if f.Queues > 0 && len(cfg.CPUs) != f.Queues {
		return fmt.Errorf("-cpus %q: %d CPUs for %d queues: give one per queue", f.CPUs, len(cfg.CPUs), f.Queues)
	}
	return nil
}

// OpenQueues is Open for every queue cfg names (libos.OpenQueues): it
// retries EBUSY for up to BusyRetry.
func OpenQueues(cfg libos.Config) ([]*libos.LibOS, error) {
	deadline := time.Now().Add(BusyRetry)
	for {
		libs, err := libos.OpenQueues(cfg)
		if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return libs, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RunLoops runs serve(i) for the i-th queue's LibOS of libs until each
// returns: a single queue with no CPU to pin it to on the calling
// goroutine, anything else through libos.RunQueues (a locked thread per
// queue, pinned to cpus[i], the -cpus of the command).
func RunLoops(libs []*libos.LibOS, cpus []int, serve func(i int) error) error {
	if len(libs) == 1 && len(cpus) == 0 {
		return serve(0)
	}
	return libos.RunQueues(libs, func(l *libos.LibOS) error { return serve(slices.Index(libs, l)) })
}

// CloseAll closes every LibOS of libs and joins their errors.
func CloseAll(libs []*libos.LibOS) error {
	var errs []error
	for _, l := range libs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// PrintQueueLines writes one line per NIC queue, "queue N: rx_descs=...
// tx_descs=... ...": the queue's own datapath and hand-off counters, then
// the integer fields of extra[i] if there is one (a command's own
// per-queue counters). It reads each LibOS's counters itself: call it from
// the goroutine that drove them, once their loops have stopped.
func PrintQueueLines(w io.Writer, libs []*libos.LibOS, extra []any) {
	ids := make([]int, len(libs))
	cs := make([]libos.Counters, len(libs))
	errs := make([]error, len(libs))
	for i, l := range libs {
		ids[i] = l.QueueID()
		cs[i], errs[i] = l.Counters()
	}
	PrintQueueCounters(w, ids, cs, errs, extra)
}

// PrintQueueCounters is PrintQueueLines from counters already read (by
// the loop that owns each LibOS, as dxnet reads them): queue ids[i] has
// counters cs[i], or the error errs[i] (errs may be nil).
func PrintQueueCounters(w io.Writer, ids []int, cs []libos.Counters, errs []error, extra []any) {
	for i, c := range cs {
		if i < len(errs) && errs[i] != nil {
			fmt.Fprintf(w, "queue %d: error=%q\n", ids[i], errs[i].Error())
			continue
		}
		fmt.Fprintf(w, "queue %d: rx_descs=%d tx_descs=%d completions=%d kicks=%d sleeps=%d fill_starved=%d "+
			"handoffs=%d handoffs_in=%d handoffs_dropped=%d arp_copies=%d rss_ports=%d redirected=%d",
			ids[i], c.RxDescs, c.TxDescs, c.Completions, c.Kicks, c.Sleeps, c.FillStarved,
			c.Handoffs.Out, c.Handoffs.In, c.Handoffs.Dropped, c.Handoffs.ARPCopies, c.Handoffs.RSSPorts, c.Steering.Redirected)
		if i < len(extra) && extra[i] != nil {
			writeFields(w, reflect.ValueOf(extra[i]))
		}
		fmt.Fprintln(w)
	}
}

func writeFields(w io.Writer, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		switch fv := v.Field(i); fv.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			fmt.Fprintf(w, " %s=%d", Snake(f.Name), fv.Uint())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			fmt.Fprintf(w, " %s=%d", Snake(f.Name), fv.Int())
		}
	}
}

// PrintCountersQueues is PrintCounters for the LibOS values of
// OpenQueues: the counters of the queue descriptors (qds[i] are queue i's,
// in the same order on every queue) and of the libOS, each summed over
// the queues (fields named Max... take the largest), under "queue" and
// "libos"; then PrintQueueLines. With one LibOS the first part is exactly
// PrintCounters.
func PrintCountersQueues(w io.Writer, libs []*libos.LibOS, qds [][]libos.QD, extra []any) {
	if len(libs) == 1 {
		var q []libos.QD
		if len(qds) > 0 {
			q = qds[0]
		}
		PrintCounters(w, libs[0], q...)
		PrintQueueLines(w, libs, extra)
		return
	}
	for j := 0; len(qds) > 0 && j < len(qds[0]); j++ {
		var sum libos.QueueCounters
		for i, l := range libs {
			if j >= len(qds[i]) {
				continue
			}
			qc, err := l.QueueCounters(qds[i][j])
			if err != nil {
				fmt.Fprintf(w, "queue: error=%q\n", err.Error())
				continue
			}
			Add(&sum, qc)
		}
		WriteGroup(w, "queue", sum)
	}
	var sum libos.Counters
	for _, l := range libs {
		c, err := l.Counters()
		if err != nil {
			fmt.Fprintf(w, "libos: error=%q\n", err.Error())
		}
		Add(&sum, c)
	}
	WriteGroup(w, "libos", sum)
	PrintQueueLines(w, libs, extra)
}

// Add adds the integer fields of src, a struct of the type dst points
// to, into *dst, nested structs included; fields whose name starts with
// "Max" keep the larger value instead.
func Add(dst any, src any) {
	add(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src), false)
}

func add(d, s reflect.Value, keepMax bool) {
	switch d.Kind() {
	case reflect.Struct:
		t := d.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				add(d.Field(i), s.Field(i), strings.HasPrefix(t.Field(i).Name, "Max"))
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if keepMax {
			d.SetUint(max(d.Uint(), s.Uint()))
		} else {
			d.SetUint(d.Uint() + s.Uint())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if keepMax {
			d.SetInt(max(d.Int(), s.Int()))
		} else {
			d.SetInt(d.Int() + s.Int())
		}
	}
}

// ServeQueues is Serve for the LibOS values of OpenQueues: one metrics
// source per queue, labelled with its queue id, qs(i) naming the queue
// descriptors of queue i. Each queue's loop must call Queue(i).Poll.
func (o *Ops) ServeQueues(f *OpsFlags, libs []*libos.LibOS, out io.Writer, qs func(i int) []dxmetrics.Queue) error {
	if o == nil || o.src == nil {
		return nil
	}
	if len(libs) == 1 {
		return o.Serve(f, libs[0], out, qs(0)...)
	}
	o.queues = make([]*Ops, len(libs))
	srcs := make([]*dxmetrics.Source, len(libs))
	for i, l := range libs {
		s := dxmetrics.NewSource(o.iface, l.QueueID())
		s.SetQueues(qs(i)...)
		s.Publish(l)
		srcs[i] = s
		o.queues[i] = &Ops{Logger: o.Logger, src: s}
	}
	return o.listen(f, out, dxmetrics.NewCollector(srcs...))
}

// Queue returns the Ops whose Poll serves queue i's metrics source (o
// itself with one queue, or before ServeQueues). Nil-safe.
func (o *Ops) Queue(i int) *Ops {
	if o == nil || i >= len(o.queues) {
		return o
	}
	return o.queues[i]
}
