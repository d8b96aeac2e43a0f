package dxmetrics

import (
	"encoding/json"
	"expvar"
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding c and the Go runtime's and the
// process's collectors.
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewServeMux returns a mux that serves
//
//   - /metrics: NewRegistry(c) in the Prometheus text format,
//   - /debug/vars: expvar's variables (cmdline, memstats and any the
//     program published) and "demixdp", the sources' latest snapshots,
//   - /debug/pprof/: net/http/pprof's profiles.
//
// It registers nothing in http.DefaultServeMux or expvar.
func NewServeMux(c *Collector) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(NewRegistry(c), promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/vars", func(w http.ResponseWriter, r *http.Request) { writeVars(w, c) })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// writeVars writes what expvar.Handler writes, plus "demixdp".
func writeVars(w http.ResponseWriter, c *Collector) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprintf(w, "{\n")
	expvar.Do(func(kv expvar.KeyValue) {
		fmt.Fprintf(w, "%q: %s,\n", kv.Key, kv.Value)
	})
	b, err := json.Marshal(c.Snapshots())
	if err != nil {
		b, _ = json.Marshal(err.Error())
	}
	fmt.Fprintf(w, "%q: %s\n}\n", "demixdp", b)
}
