package main

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestParseOnly(t *testing.T) {
	if only, err := parseOnly(""); err != nil || only != nil {
		t.Fatalf(`parseOnly("") = %v, %v; want all`, only, err)
	}
	only, err := parseOnly("bulk_ceiling, wakeup,tcp_bulk")
	if err != nil || !slices.Equal(only, []string{"bulk_ceiling", "wakeup", "tcp_bulk"}) {
		t.Fatalf("parseOnly = %v, %v", only, err)
	}
	if _, err := parseOnly("tcp_bulk,tcp_blk"); err == nil {
		t.Fatal("a misspelt workload was accepted")
	}
	h := &harness{o: runOpts{only: only}}
	if !h.want("wakeup") || h.want("udp_rtt") || !slices.Equal(h.wanted([]string{"tcp_rtt", "tcp_bulk"}), []string{"tcp_bulk"}) {
		t.Fatal("want/wanted do not follow -only")
	}
	if all := (&harness{}); !all.want("udp_rtt") || !all.want("micro") {
		t.Fatal("without -only every workload runs")
	}
}

func TestPinningWrap(t *testing.T) {
	p := pinning{on: true, server: 0, client: 1}
	if got := p.wrap(1, []string{"prog", "-x"}); !slices.Equal(got, []string{"taskset", "-c", "1", "prog", "-x"}) {
		t.Fatalf("wrap = %v", got)
	}
	p.on = false
	if got := p.wrap(1, []string{"prog"}); !slices.Equal(got, []string{"prog"}) {
		t.Fatalf("wrap with pinning off = %v", got)
	}
	for _, bad := range []pinning{{on: true, server: 1, client: 1}, {on: true, server: -1, client: 0}, {on: true, server: 0, client: 4096}} {
		if _, err := bad.check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := (&pinning{on: false, server: 1, client: 1}).check(); err != nil {
		t.Errorf("pinning off: the CPUs do not matter, got %v", err)
	}
}

func TestParseCounters(t *testing.T) {
	m := parseCounters("listening iface=x\nrx=5 tx=0\nsink: frames=10 bytes=14720 corrupt=0\nxdp: rx_dropped=3\nnot a group: x=1\n")
	if m["sink.frames"] != "10" || m["sink.bytes"] != "14720" || m["xdp.rx_dropped"] != "3" || len(m) != 4 {
		t.Fatalf("parseCounters = %v", m)
	}
}

// TestWakeupPingPongs: every variant of the calibration completes its
// round trips and times each of them.
func TestWakeupPingPongs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("the calibration needs two CPUs")
	}
	for name, f := range map[string]func(n, a, b int) ([]float64, error){
		"pipe cross": func(n, a, b int) ([]float64, error) { return durs(pipePingPong(n, a, b)) },
		"pipe same":  func(n, a, _ int) ([]float64, error) { return durs(pipePingPong(n, a, a)) },
		"spin cross": func(n, a, b int) ([]float64, error) { return durs(spinPingPong(n, a, b)) },
	} {
		d, err := f(300, 0, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d) != 300 || slices.Min(d) <= 0 {
			t.Errorf("%s: %d samples, min %v", name, len(d), slices.Min(d))
		}
	}
	if _, err := pipePingPong(10, 0, 1000); err == nil {
		t.Error("a CPU that does not exist was accepted")
	}
}

func durs(d []time.Duration, err error) ([]float64, error) {
	f := make([]float64, len(d))
	for i, v := range d {
		f[i] = float64(v)
	}
	return f, err
}
