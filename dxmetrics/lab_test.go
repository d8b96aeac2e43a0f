package dxmetrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxmetrics"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
)

// echoLoop runs a UDP echo on lib from its own goroutine, publishing the
// source's snapshots as a server's loop does, until stop is closed.
func echoLoop(lib *libos.LibOS, qd libos.QD, src *dxmetrics.Source, stop <-chan struct{}) error {
	pop, err := lib.Pop(qd)
	if err != nil {
		return err
	}
	toks := []libos.QToken{pop}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		src.Poll(lib)
		i, r, err := lib.WaitAny(toks, 10*time.Millisecond)
		if errors.Is(err, unix.ETIMEDOUT) {
			continue
		}
		if err != nil {
			return err
		}
		switch r.Opcode {
		case libos.OpPop:
			qt, err := lib.PushTo(qd, r.SGA, r.SGA.Addr)
			lib.SGAFree(r.SGA)
			if err != nil {
				return err
			}
			if toks[0], err = lib.Pop(qd); err != nil {
				return err
			}
			toks = append(toks, qt)
		default:
			toks = append(toks[:i], toks[i+1:]...)
		}
	}
}

func get(t *testing.T, h http.Handler, path string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body.String())
	}
	return rec.Body.Bytes()
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	for _, m := range f.Metric {
		match := true
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if match {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s has no series with %v", name, labels)
	return 0
}

// A running LibOS's counters, scraped while its loop echoes datagrams
// from the kernel: the exposition parses with the client library's own
// parser and passes promtool, every demixdp family is a documented
// counter named _total with the iface and queue labels, the values are
// the LibOS's, and /debug/vars and /debug/pprof/ answer.
func TestScrapeRunningLibOS(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "met"})
	var lib *libos.LibOS
	if err := lab.RunInA(func() (err error) {
		lib, err = libos.New(libos.Config{Interface: lab.IfA, Addr: lab.AddrA})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err := lib.Bind(qd, srv); err != nil {
		t.Fatal(err)
	}
	src := dxmetrics.NewSource(lab.IfA, 0)
	src.SetQueues(dxmetrics.Queue{QD: qd, Name: "echo"})
	mux := dxmetrics.NewServeMux(dxmetrics.NewCollector(src))

	stop, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- echoLoop(lib, qd, src, stop) }()
	var once sync.Once
	halt := func() {
		once.Do(func() {
			close(stop)
			if err := <-done; err != nil {
				t.Errorf("echo loop: %v", err)
			}
		})
	}
	defer halt()

	const n = 500
	var c net.Conn
	if err := lab.RunInB(func() (err error) {
		c, err = net.Dial("udp4", srv.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := range n {
		c.Write([]byte{byte(i)})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
	}

	body := get(t, mux, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	var ours int
	for name, f := range fams {
		if !strings.HasPrefix(name, "demixdp_") || name == "demixdp_info" || name == "demixdp_snapshot_age_seconds" {
			continue
		}
		ours++
		undocumented := strings.Contains(f.GetHelp(), "no description") && !strings.HasPrefix(name, "demixdp_tcp_conns_") &&
			!strings.HasPrefix(name, "demixdp_queue_tcp_")
		if f.GetHelp() == "" || undocumented {
			t.Errorf("%s: help %q", name, f.GetHelp())
		}
		// The gauges tcp.Counters and libos.HandoffCounters document as
		// such; every other field is a counter named _total.
		switch name {
		case "demixdp_tcp_frames_held", "demixdp_tcp_holders", "demixdp_tcp_share_frames", "demixdp_tcp_max_conn_frames",
			"demixdp_tcp_conns", "demixdp_tcp_time_wait_conns", "demixdp_handoffs_held", "demixdp_handoffs_lent":
			if f.GetType() != dto.MetricType_GAUGE {
				t.Errorf("%s: type %v, want a gauge", name, f.GetType())
			}
		default:
			if f.GetType() != dto.MetricType_COUNTER || !strings.HasSuffix(name, "_total") {
				t.Errorf("%s: type %v, want a counter named _total", name, f.GetType())
			}
		}
	}
	if _, ok := fams["demixdp_tcp_frames_held"]; !ok {
		t.Error("no demixdp_tcp_frames_held gauge")
	}
	if ours < 80 {
		t.Errorf("only %d demixdp counter families", ours)
	}
	l := map[string]string{"iface": lab.IfA, "queue": "0"}
	if v := value(t, fams, "demixdp_stack_udp_delivered_total", l); v != n {
		t.Errorf("demixdp_stack_udp_delivered_total = %v, want %d", v, n)
	}
	if v := value(t, fams, "demixdp_rx_descs_total", l); v < n {
		t.Errorf("demixdp_rx_descs_total = %v, want >= %d", v, n)
	}
	if v := value(t, fams, "demixdp_steering_redirected_total", l); v < n {
		t.Errorf("demixdp_steering_redirected_total = %v, want >= %d", v, n)
	}
	ql := map[string]string{"iface": lab.IfA, "queue": "0", "qd": "0", "name": "echo"}
	if v := value(t, fams, "demixdp_queue_pops_total", ql); v != n {
		t.Errorf("demixdp_queue_pops_total = %v, want %d", v, n)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if promtool, err := exec.LookPath("promtool"); err != nil {
		priv.Unavailable(t, "promtool not installed (make deps installs Debian's prometheus)")
	} else {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}

	var vars map[string]json.RawMessage
	if err := json.Unmarshal(get(t, mux, "/debug/vars"), &vars); err != nil {
		t.Fatalf("/debug/vars: %v", err)
	}
	var snaps map[string]dxmetrics.Snapshot
	if err := json.Unmarshal(vars["demixdp"], &snaps); err != nil {
		t.Fatalf("/debug/vars demixdp: %v", err)
	}
	if s, ok := snaps[lab.IfA+"/0"]; !ok || s.LibOS.Stack.UDPDelivered != n || vars["memstats"] == nil {
		t.Errorf("/debug/vars: %v", snaps)
	}
	if !bytes.Contains(get(t, mux, "/debug/pprof/"), []byte("goroutine")) {
		t.Error("/debug/pprof/ lists no goroutine profile")
	}
}

// Without a loop polling, a scrape falls back to the latest snapshot
// after the wait, and to none before the first.
func TestSnapshotWithoutLoop(t *testing.T) {
	src := dxmetrics.NewSource("dxnone0", 0)
	c := dxmetrics.NewCollector(src)
	c.SetWait(10 * time.Millisecond)
	body := get(t, dxmetrics.NewServeMux(c), "/metrics")
	if !bytes.Contains(body, []byte(`demixdp_info{iface="dxnone0",queue="0"} 1`)) ||
		bytes.Contains(body, []byte("demixdp_rx_descs_total")) {
		t.Errorf("scrape without snapshot:\n%s", body)
	}
	if _, ok := src.Snapshot(time.Millisecond); ok {
		t.Error("Snapshot reported one before any publish")
	}
}
