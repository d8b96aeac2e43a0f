package main

import (
	"math"
	"testing"
)

// A report of wrk 4.1 with --latency, as Debian's wrk prints it.
const wrkOut = `Running 5s test @ http://198.51.100.21:8081/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.99ms    1.17ms  22.81ms   84.77%
    Req/Sec    21.65k     1.62k   24.16k    78.00%
  Latency Distribution
     50%    2.53ms
     75%    3.18ms
     90%    4.12ms
     99%    7.05ms
  107747 requests in 5.00s, 12.54MB read
Requests/sec:  21540.55
Transfer/sec:      2.51MB
`

func TestParseWrk(t *testing.T) {
	w, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	if w.rps != 21540.55 || w.p50 != 2530 || math.Abs(w.p99-7050) > 1e-9 {
		t.Fatalf("parsed %+v", *w)
	}
	for _, bad := range []string{
		wrkOut + "  Socket errors: connect 0, read 3, write 0, timeout 0\n",
		wrkOut + "  Non-2xx or 3xx responses: 12\n",
		"Requests/sec: 10\n",
		"     50%    2.53zz\n     99%    3ms\nRequests/sec: 1\n",
	} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk accepted %q", bad)
		}
	}
	for in, want := range map[string]float64{"58.00us": 58, "2.53ms": 2530, "1.20s": 1.2e6, "1.00m": 60e6} {
		if got, err := wrkDuration(in); err != nil || math.Abs(got-want) > 1e-6 {
			t.Errorf("wrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
