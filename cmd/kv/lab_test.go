package main

// Privileged integration tests: the real kv binary in namespace A of a
// shared-address veth lab (the libOS on the kernel's address, its own
// port), real clients in namespace B: redis-cli, redis-benchmark, go-redis
// and raw kernel sockets. Debian's redis-server, in A on the same address,
// is the reference the replies are compared with.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// The servers' ports on AddrA.
const (
	portRedis  = 6379 // redis-server, the reference
	portQueue  = 7001 // kv -api queue
	portNet    = 7002 // kv -api net
	portKernel = 7003 // kv -kernel
)

// api is one way of running kv.
type api struct {
	name string
	port uint16
	args []string
}

var apis = []api{
	{"queue", portQueue, []string{"-api", "queue", "-mode", "shared"}},
	{"net", portNet, []string{"-api", "net", "-mode", "shared"}},
	{"kernel", portKernel, []string{"-kernel"}},
}

func newLab(t *testing.T, name string) *vethlab.Lab {
	t.Helper()
	priv.Require(t, "kv on a veth lab")
	for _, tool := range []string{"redis-server", "redis-cli", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps installs redis-server and redis-tools): %v", tool, err)
		}
	}
	return vethlab.ForTest(t, vethlab.Config{Name: name, KernelAddrA: true})
}

// startKV runs kv in namespace A with a's flags and extra, waits for
// "listening" and returns the process and its address.
func startKV(t *testing.T, lab *vethlab.Lab, a api, extra ...string) (*labtest.Proc, netip.AddrPort) {
	t.Helper()
	addr := netip.AddrPortFrom(lab.AddrA.Addr(), a.port)
	args := append([]string{"-iface", lab.IfA, "-addr", addr.String()}, a.args...)
	return labtest.Start(t, lab.CommandA(labtest.Build(t, "."), append(args, extra...)...), "listening"), addr
}

// stopKV signals kv, checks a clean exit (status 0, "stopped", no XDP
// program left) and returns its counters.
func stopKV(t *testing.T, lab *vethlab.Lab, p *labtest.Proc) map[string]uint64 {
	t.Helper()
	if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	if !strings.Contains(p.Output(), "kv: stopped") {
		t.Errorf("output lacks \"stopped\"")
	}
	if labtest.XDPAttached(t, lab, labtest.A) {
		t.Error("XDP program still attached after a clean exit")
	}
	k := labtest.Counters(p.Output())
	for _, key := range []string{"libos.ownership_errors", "libos.pool.double_frees", "kv.failed"} {
		if k[key] != 0 {
			t.Errorf("%s = %d, want 0", key, k[key])
		}
	}
	return k
}

// startRedis runs Debian's redis-server in namespace A on AddrA:6379 with
// persistence off, one database (so SELECT 1 fails as in kv) and the
// given bulk limit.
func startRedis(t *testing.T, lab *vethlab.Lab, extra ...string) netip.AddrPort {
	t.Helper()
	dir := t.TempDir()
	addr := netip.AddrPortFrom(lab.AddrA.Addr(), portRedis)
	args := append([]string{"--port", strconv.Itoa(portRedis), "--bind", addr.Addr().String(), "--save", "", "--appendonly", "no",
		"--databases", "1", "--dir", dir, "--protected-mode", "no"}, extra...)
	labtest.Start(t, lab.CommandA("redis-server", args...), "Ready to accept connections")
	return addr
}

// rcli runs redis-cli in namespace B against addr with args and stdin, and
// returns its output; it fails t if redis-cli fails.
func rcli(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := lab.CommandB("redis-cli", append([]string{"-h", addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port()))}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, errs, code := labtest.Run(t, cmd)
	if code != 0 {
		t.Fatalf("redis-cli %v: exit %d: %s", args, code, errs)
	}
	return out
}

// dial opens a kernel TCP connection from namespace B.
func dial(t *testing.T, lab *vethlab.Lab, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c *net.TCPConn
	err := lab.RunInB(func() (err error) {
		c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// scriptRun is the whole redis-cli session the comparison runs: the
// script, an expiry pause, the second script, and values of 1 MiB (text in
// the script, random bytes through redis-cli -x) read back.
func scriptRun(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort, bigText, bigBin []byte) []byte {
	t.Helper()
	s1, err := os.ReadFile("testdata/script.redis")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := os.ReadFile("testdata/script2.redis")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(rcli(t, lab, addr, s1, "--no-raw"))
	time.Sleep(200 * time.Millisecond) // past the keys' 1 and 20 ms expiry times
	out.Write(rcli(t, lab, addr, s2, "--no-raw"))
	big := append(append([]byte("SET bigtext "), bigText...), "\nSTRLEN bigtext\nAPPEND bigtext tail\nSTRLEN bigtext\n"...)
	out.Write(rcli(t, lab, addr, big, "--no-raw"))
	got := rcli(t, lab, addr, nil, "--raw", "GET", "bigtext")
	if !bytes.Equal(got, append(append(bytes.Clone(bigText), "tail"...), '\n')) {
		t.Errorf("GET of the 1 MiB text value: %d bytes back, not the value", len(got))
	}
	out.Write(rcli(t, lab, addr, bigBin, "-x", "SET", "bigbin"))
	out.Write(rcli(t, lab, addr, nil, "--no-raw", "STRLEN", "bigbin"))
	got = rcli(t, lab, addr, nil, "--raw", "GET", "bigbin")
	if !bytes.Equal(got, append(bytes.Clone(bigBin), '\n')) {
		t.Errorf("GET of the 1 MiB binary value: %d bytes back, not the value", len(got))
	}
	return out.Bytes()
}

// TestScriptSameAsRedis: one redis-cli session (every command, binary
// keys and values, errors, expiry, 1 MiB values) against kv -api queue,
// -api net and -kernel gives byte for byte the replies that redis-server
// gives to the same session.
func TestScriptSameAsRedis(t *testing.T) {
	lab := newLab(t, "kvs")
	bigText := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	bigBin := make([]byte, 1<<20)
	rand.Read(bigBin)
	bigBin[len(bigBin)-1] = 'x' // redis-cli -x drops one trailing newline
	want := scriptRun(t, lab, startRedis(t, lab), bigText, bigBin)
	if !bytes.Contains(want, []byte("(integer) 1048576")) || !bytes.Contains(want, []byte("(error) ERR syntax error")) {
		t.Fatalf("the reference run looks wrong:\n%s", want)
	}
	for _, a := range apis {
		t.Run(a.name, func(t *testing.T) {
			p, addr := startKV(t, lab, a)
			got := scriptRun(t, lab, addr, bigText, bigBin)
			if !bytes.Equal(got, want) {
				t.Errorf("replies differ from redis-server's:\n%s", lineDiff(string(want), string(got)))
			}
			k := stopKV(t, lab, p)
			if a.name == "queue" && k["store.adopted_values"] == 0 {
				t.Errorf("no large value was adopted from the parser: the 1 MiB SETs were copied twice")
			}
		})
	}
}

// lineDiff shows the first lines where two outputs differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d: redis %q, kv %q\n", i+1, trunc(wl), trunc(gl))
			shown++
		}
	}
	return b.String()
}

func trunc(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// TestRedisBenchmark: redis-benchmark -t ping,set,get,incr,mset -n 100000
// -c 50 -P 16 completes against kv -api queue and -api net with no error;
// afterwards the key every SET and MSET wrote holds their 100-byte value
// and the INCR counter is exactly 100000 (every INCR applied once).
func TestRedisBenchmark(t *testing.T) {
	lab := newLab(t, "kvb")
	for _, a := range apis[:2] {
		t.Run(a.name, func(t *testing.T) {
			p, addr := startKV(t, lab, a)
			benchmark(t, lab, addr)
			k := stopKV(t, lab, p)
			if k["db.commands"] < 600000 {
				t.Errorf("%d commands executed, want the benchmark's 600000 at least", k["db.commands"])
			}
		})
	}
}

// benchmark runs redis-benchmark -t ping,set,get,incr,mset -n 100000 -c
// 50 -P 16 against addr from namespace B and checks that it completes with
// no error, that the key every SET and MSET wrote holds their 100-byte
// value and that the INCR counter is exactly 100000 (every INCR applied
// once).
func benchmark(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort) {
	t.Helper()
	rcli(t, lab, addr, nil, "SET", "key:__rand_int__", "before")
	cmd := lab.CommandB("redis-benchmark", "-h", addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())),
		"-t", "ping,set,get,incr,mset", "-n", "100000", "-c", "50", "-P", "16", "-d", "100", "--csv")
	out, errs, code := labtest.Run(t, cmd)
	t.Logf("redis-benchmark:\n%s", out)
	if code != 0 || strings.Contains(strings.ToLower(string(out)+errs), "error") {
		t.Fatalf("redis-benchmark exit %d:\n%s\n%s", code, out, errs)
	}
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET"} {
		if !strings.Contains(string(out), "\""+test) {
			t.Errorf("no %s line in the report", test)
		}
	}
	// redis-benchmark fills its one 100-byte value with random
	// characters: what SET and MSET stored replaced "before".
	if got := rcli(t, lab, addr, nil, "--raw", "STRLEN", "key:__rand_int__"); string(got) != "100\n" {
		t.Errorf("STRLEN key:__rand_int__ = %q, want the 100 bytes SET and MSET stored", got)
	}
	if got := rcli(t, lab, addr, nil, "--raw", "GET", "counter:__rand_int__"); string(got) != "100000\n" {
		t.Errorf("GET counter:__rand_int__ = %q, want 100000 (every INCR)", got)
	}
}

// TestGoRedisPipelined: go-redis, from the kernel side, pipelines 10,000
// SET/GET pairs of distinct binary values through kv and checks every
// reply.
func TestGoRedisPipelined(t *testing.T) {
	lab := newLab(t, "kvg")
	for _, a := range apis[:2] {
		t.Run(a.name, func(t *testing.T) {
			p, addr := startKV(t, lab, a)
			rc := redis.NewClient(&redis.Options{
				Addr: addr.String(),
				Dialer: func(ctx context.Context, network, address string) (net.Conn, error) {
					var c net.Conn
					err := lab.RunInB(func() (err error) {
						var d net.Dialer
						c, err = d.DialContext(ctx, network, address)
						return err
					})
					return c, err
				},
				ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
			})
			defer rc.Close()
			ctx := context.Background()
			const n = 10000
			value := func(i int) string { return fmt.Sprintf("v%d\x00\xff\r\n%s", i, strings.Repeat("*", i%300)) }
			pipe := rc.Pipeline()
			sets := make([]*redis.StatusCmd, n)
			gets := make([]*redis.StringCmd, n)
			for i := 0; i < n; i++ {
				key := "gr:" + strconv.Itoa(i)
				sets[i] = pipe.Set(ctx, key, value(i), 0)
				gets[i] = pipe.Get(ctx, key)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			for i := 0; i < n; i++ {
				if s, err := sets[i].Result(); err != nil || s != "OK" {
					t.Fatalf("SET %d: %q %v", i, s, err)
				}
				if v, err := gets[i].Result(); err != nil || v != value(i) {
					t.Fatalf("GET %d: %q %v, want %q", i, v, err, value(i))
				}
			}
			if got, err := rc.DBSize(ctx).Result(); err != nil || got != n {
				t.Errorf("DBSIZE = %d %v, want %d", got, err, n)
			}
			if _, err := rc.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("GET missing: %v, want redis.Nil", err)
			}
			rc.Close()
			stopKV(t, lab, p)
		})
	}
}

// hostile is one bad request and what redis-server answers (the same for
// kv unless own is set, for the limits where kv is stricter).
type hostile struct {
	name string
	in   string
	own  string // kv's reply where it differs from Redis's
}

var hostiles = []hostile{
	{"inline too long", strings.Repeat("a", 70000), ""},
	{"inline unbalanced quotes", "SET \"a b\r\n", ""},
	{"multibulk count not a number", "*x\r\n", ""},
	{"multibulk count negative bulk", "*1\r\n$-1\r\n", ""},
	{"bulk over the limit", "*2\r\n$3\r\nSET\r\n$1048577\r\n", ""},
	{"no dollar", "*1\r\n+GET\r\n", ""},
	{"count that never ends", "*" + strings.Repeat("1", 100), "-ERR Protocol error: invalid multibulk length\r\n"},
	{"bulk without CRLF", "*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after bulk data\r\n"},
}

// exchange sends a PING, then the bad request, on a new connection and
// reads until the server closes it.
func exchange(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort, bad string) string {
	t.Helper()
	c := dial(t, lab, addr)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(multibulk("PING") + bad)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading to the close: %v (got %q)", err, got)
	}
	return string(got)
}

// TestHostileInput: every kind of bad request gets, after the reply to the
// PING before it, the "-ERR Protocol error: ..." that redis-server sends
// (redis-server runs with kv's bulk limit, 1 MiB), and the connection is
// closed; a client connected meanwhile is served throughout.
func TestHostileInput(t *testing.T) {
	lab := newLab(t, "kvh")
	ref := startRedis(t, lab, "--proto-max-bulk-len", "1mb")
	want := map[string]string{}
	for _, h := range hostiles {
		if h.own != "" {
			// Redis waits for more here (it reads lengths to the CR, and
			// skips the two bytes after a bulk unread): kv is stricter.
			want[h.name] = "+PONG\r\n" + h.own
			continue
		}
		want[h.name] = exchange(t, lab, ref, h.in)
		if !strings.HasPrefix(want[h.name], "+PONG\r\n-ERR Protocol error: ") {
			t.Fatalf("%s: redis-server answered %q", h.name, want[h.name])
		}
	}
	for _, a := range apis[:2] {
		t.Run(a.name, func(t *testing.T) {
			p, addr := startKV(t, lab, a, "-maxvalue", "1048576")
			bystander := dial(t, lab, addr)
			bystander.SetDeadline(time.Now().Add(30 * time.Second))
			for _, h := range hostiles {
				if got := exchange(t, lab, addr, h.in); got != want[h.name] {
					t.Errorf("%s: kv answered %q, want %q", h.name, got, want[h.name])
				}
				if _, err := bystander.Write([]byte(multibulk("ECHO", h.name))); err != nil {
					t.Fatal(err)
				}
				exp := fmt.Sprintf("$%d\r\n%s\r\n", len(h.name), h.name)
				buf := make([]byte, len(exp))
				if _, err := io.ReadFull(bystander, buf); err != nil || string(buf) != exp {
					t.Fatalf("bystander after %s: %q %v", h.name, buf, err)
				}
			}
			k := stopKV(t, lab, p)
			if a.name == "queue" && k["kv.protocol_errors"] != uint64(len(hostiles)) {
				t.Errorf("protocol_errors = %d, want %d", k["kv.protocol_errors"], len(hostiles))
			}
			if a.name == "net" && k["net.protocol_errors"] != uint64(len(hostiles)) {
				t.Errorf("protocol_errors = %d, want %d", k["net.protocol_errors"], len(hostiles))
			}
		})
	}
}

// readUntilClosed reads c until the server closes or resets it, failing
// the test if that takes more than a minute (a hang).
func readUntilClosed(t *testing.T, c *net.TCPConn) (int64, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was never closed (%d bytes read)", n)
	}
	return n, err
}

// TestSlowClients: a client whose one reply would exceed -max-unsent is
// reset at once; a client that pipelines GETs of a large value and never
// reads is reset after -stall-timeout; meanwhile another client is served,
// and its 256 KiB values come back whole.
func TestSlowClients(t *testing.T) {
	lab := newLab(t, "kvl")
	for _, a := range apis[:2] {
		t.Run(a.name, func(t *testing.T) {
			p, addr := startKV(t, lab, a, "-max-unsent", "1048576", "-stall-timeout", "1s")
			val := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
			setup := dial(t, lab, addr)
			setup.SetDeadline(time.Now().Add(30 * time.Second))
			setup.Write([]byte(multibulk("SET", "big", string(val))))
			if buf := make([]byte, 5); func() bool { _, err := io.ReadFull(setup, buf); return err != nil || string(buf) != "+OK\r\n" }() {
				t.Fatal("SET big failed")
			}

			// A reply of 2 MiB over a 1 MiB bound: reset. -api queue
			// refuses to build it and sends nothing; -api net (redcon)
			// writes it all to this client, which reads, before its
			// guard resets the connection.
			greedy := dial(t, lab, addr)
			greedy.Write([]byte(multibulk("MGET", "big", "big", "big", "big", "big", "big", "big", "big")))
			if n, err := readUntilClosed(t, greedy); !errors.Is(err, syscall.ECONNRESET) || (a.name == "queue" && n != 0) {
				t.Errorf("the MGET over -max-unsent ended with %v after %d bytes, want a reset (and nothing, with -api queue)", err, n)
			}

			// A client that never reads: 200 GETs of 256 KiB, 50 MB.
			stuck := dial(t, lab, addr)
			stuck.SetReadBuffer(4096)
			wdone := make(chan error, 1)
			go func() {
				var err error
				for i := 0; i < 200 && err == nil; i++ {
					_, err = stuck.Write([]byte(multibulk("GET", "big")))
				}
				wdone <- err
			}()
			// Meanwhile, a client that reads is served, value for value.
			for i := 0; i < 20; i++ {
				setup.Write([]byte(multibulk("GET", "big")))
				hdr := fmt.Sprintf("$%d\r\n", len(val))
				got := make([]byte, len(hdr)+len(val)+2)
				if _, err := io.ReadFull(setup, got); err != nil || !bytes.Equal(got, []byte(hdr+string(val)+"\r\n")) {
					t.Fatalf("GET %d beside the stuck client: %v", i, err)
				}
			}
			// Reading now would unstick it: wait (without reading) until
			// its socket has been reset, then read.
			waitReset(t, stuck)
			if _, err := readUntilClosed(t, stuck); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the client that never read ended with %v, want a reset", err)
			}
			<-wdone
			k := stopKV(t, lab, p)
			prefix := "kv."
			if a.name == "net" {
				prefix = "net."
			}
			if k[prefix+"slow_closed"] != 1 || k[prefix+"stall_closed"] != 1 {
				t.Errorf("slow_closed %d stall_closed %d, want 1 and 1", k[prefix+"slow_closed"], k[prefix+"stall_closed"])
			}
		})
	}
}

// TestExpirySweep: keys with an expiry that nobody touches again are
// deleted by the periodic sweep; keys without one stay.
func TestExpirySweep(t *testing.T) {
	lab := newLab(t, "kve")
	for _, a := range apis[:2] {
		t.Run(a.name, func(t *testing.T) {
			p, addr := startKV(t, lab, a)
			var script strings.Builder
			for i := 0; i < 2000; i++ {
				fmt.Fprintf(&script, "SET vol:%d x PX 100\n", i)
			}
			script.WriteString("SET stays x\n")
			out := rcli(t, lab, addr, []byte(script.String()))
			if n := strings.Count(string(out), "OK\n"); n != 2001 {
				t.Fatalf("%d SETs answered OK, want 2001", n)
			}
			deadline := time.Now().Add(time.Minute) // against a hang only
			for {
				n := strings.TrimSpace(string(rcli(t, lab, addr, nil, "DBSIZE")))
				if n == "1" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("DBSIZE still %s a minute after the keys expired: no sweep", n)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got := rcli(t, lab, addr, nil, "GET", "stays"); string(got) != "x\n" {
				t.Errorf("GET stays = %q", got)
			}
			k := stopKV(t, lab, p)
			if k["store.expired_sweep"] != 2000 || k["store.expired_lazy"] != 0 {
				t.Errorf("expired by the sweep %d, lazily %d; want 2000 and 0", k["store.expired_sweep"], k["store.expired_lazy"])
			}
		})
	}
}

// waitReset waits, without reading, until the kernel has closed c (a RST
// arrived), failing the test after a minute (a hang).
func waitReset(t *testing.T, c *net.TCPConn) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var state uint8
		raw.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				state = info.State
			}
		})
		if state == tcpClose {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection is still in TCP state %d a minute on", state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tcpClose is TCP_CLOSE in TCP_INFO's state.
const tcpClose = 7
