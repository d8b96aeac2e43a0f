// Package dxmetrics exposes demixdp LibOS counters to Prometheus: a
// prometheus.Collector over one or more Sources (one per LibOS, that is
// per NIC queue), and an http.Handler with /metrics, /debug/vars (expvar)
// and /debug/pprof/. It lives outside the core packages so that libos
// does not import client_golang.
//
// Every counter of libos.Counters becomes a Prometheus counter named
// demixdp_<group>_<field>_total after the "group: key=value" names the
// commands print (demixdp_rx_descs_total, demixdp_stack_udp_no_port_total,
// demixdp_tcp_retransmits_total, demixdp_xdp_rx_ring_full_total...), with
// the labels iface and queue; the fields a struct documents as gauges
// (after a doc comment starting "Gauges", such as tcp.Counters.FramesHeld)
// become gauges without _total; the counters of the queue descriptors a
// Source watches are demixdp_queue_<field>_total with the labels iface,
// queue, qd and name. Help texts are the fields' doc comments.
package dxmetrics

import (
	"path"
	"reflect"
	"strconv"
	"time"

	"github.com/demixdp/demixdp/internal/names"
	"github.com/demixdp/demixdp/libos"
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace starts every metric name.
const Namespace = "demixdp"

// DefaultWait is how long a scrape waits for each Source's loop to
// publish a fresh snapshot before it falls back to the latest.
const DefaultWait = time.Second

// counterDesc is one counter field: where it is in the struct and its
// descriptor.
type counterDesc struct {
	index []int
	desc  *prometheus.Desc
	kind  prometheus.ValueType
}

// Collector is a prometheus.Collector over Sources.
type Collector struct {
	sources []*Source
	wait    time.Duration
	libos   []counterDesc // fields of libos.Counters
	queue   []counterDesc // fields of libos.QueueCounters
	age     *prometheus.Desc
	info    *prometheus.Desc
}

// NewCollector returns a Collector over sources. Each scrape waits up to
// DefaultWait for every source's loop to publish (see Source.Poll).
func NewCollector(sources ...*Source) *Collector {
	c := &Collector{sources: sources, wait: DefaultWait}
	c.libos = counterDescs(reflect.TypeOf(libos.Counters{}), "", []string{"iface", "queue"})
	c.queue = counterDescs(reflect.TypeOf(libos.QueueCounters{}), "queue_", []string{"iface", "queue", "qd", "name"})
	c.age = prometheus.NewDesc(Namespace+"_snapshot_age_seconds",
		"Age of the counters reported: how long ago the LibOS's loop published them.", []string{"iface", "queue"}, nil)
	c.info = prometheus.NewDesc(Namespace+"_info",
		"Always 1; the labels say which interface queues this process runs a LibOS on.", []string{"iface", "queue"}, nil)
	return c
}

// SetWait changes how long a scrape waits for fresh snapshots.
func (c *Collector) SetWait(d time.Duration) { c.wait = d }

// counterDescs walks the struct type t and describes each unsigned integer
// field as a counter named after prefix and the field; nested structs
// extend the prefix with their field name.
func counterDescs(t reflect.Type, prefix string, labels []string) []counterDesc {
	var out []counterDesc
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			switch f.Type.Kind() {
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				name, kind := Namespace+"_"+prefix+names.Snake(f.Name), prometheus.GaugeValue
				if !gauges[fieldKey(t, f.Name)] {
					name, kind = name+"_total", prometheus.CounterValue
				}
				out = append(out, counterDesc{index: idx, desc: prometheus.NewDesc(name, helpFor(t, f.Name), labels, nil), kind: kind})
			case reflect.Struct:
				walk(f.Type, prefix+names.Snake(f.Name)+"_", idx)
			}
		}
	}
	walk(t, prefix, nil)
	return out
}

// helpFor returns the doc comment of field in struct t (help_gen.go), or a
// plain description if it has none.
func helpFor(t reflect.Type, field string) string {
	key := fieldKey(t, field)
	if h := help[key]; h != "" {
		return h
	}
	return key + " (no description)."
}

// fieldKey names field of struct t as help_gen.go does: package.Type.Field.
func fieldKey(t reflect.Type, field string) string {
	return path.Base(t.PkgPath()) + "." + t.Name() + "." + field
}

// Describe sends every descriptor (prometheus.Collector).
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.libos {
		ch <- d.desc
	}
	for _, d := range c.queue {
		ch <- d.desc
	}
	ch <- c.age
	ch <- c.info
}

// Collect sends the counters of every source's latest snapshot
// (prometheus.Collector). A source that has never published sends only
// its info metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.sources {
		q := strconv.Itoa(s.queue)
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, s.iface, q)
		snap, ok := s.Snapshot(c.wait)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, time.Since(snap.Time).Seconds(), s.iface, q)
		v := reflect.ValueOf(snap.LibOS)
		for _, d := range c.libos {
			ch <- prometheus.MustNewConstMetric(d.desc, d.kind, float64(v.FieldByIndex(d.index).Uint()), s.iface, q)
		}
		for _, qs := range snap.Queues {
			qv := reflect.ValueOf(qs.Counters)
			qd := strconv.Itoa(int(qs.QD))
			for _, d := range c.queue {
				ch <- prometheus.MustNewConstMetric(d.desc, d.kind, float64(qv.FieldByIndex(d.index).Uint()),
					s.iface, q, qd, qs.Name)
			}
		}
	}
}

// Snapshots returns the latest snapshot of every source that has one,
// keyed "IFACE/QUEUE" (what /debug/vars shows). It waits for fresh ones
// as Collect does.
func (c *Collector) Snapshots() map[string]Snapshot {
	out := make(map[string]Snapshot, len(c.sources))
	for _, s := range c.sources {
		if snap, ok := s.Snapshot(c.wait); ok {
			out[s.iface+"/"+strconv.Itoa(s.queue)] = snap
		}
	}
	return out
}
