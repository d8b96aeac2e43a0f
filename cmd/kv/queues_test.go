package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// readReply reads one RESP2 reply that is not an array: a bulk string's
// bytes, "(nil)" for a null one, or a status, error or integer line with
// its type byte ("+OK", "-ERR ...", ":3").
func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return "", fmt.Errorf("bad bulk header %q", line)
	}
	if n < 0 {
		return "(nil)", nil
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(br, b); err != nil {
		return "", err
	}
	return string(b[:n]), nil
}

// qclient is one kernel connection from namespace B and the NIC queue of
// kv's that serves it, as CLIENT INFO says.
type qclient struct {
	c     *net.TCPConn
	br    *bufio.Reader
	queue int
}

// do sends the requests in one write and reads one reply per request.
func (q *qclient) do(reqs ...[]string) ([]string, error) {
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString(multibulk(r...))
	}
	if _, err := q.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	out := make([]string, len(reqs))
	for i := range reqs {
		var err error
		if out[i], err = readReply(q.br); err != nil {
			return out[:i], err
		}
	}
	return out, nil
}

// TestQueues: kv -queues 2 on a 2-queue lab, -api queue (shared mode) and
// -api net (dedicated mode). 32 kernel connections from B, from as many
// source ports, land on both queues (CLIENT INFO names each one's queue);
// a key set through every connection is read back, byte for byte,
// through every other, in particular through connections on the other
// queue (one store, not one per queue); 32 connections INCR one counter at
// once from both queues and none is lost; 2000 keys that expire are all
// deleted by the sweep, whose shards the two loops share out;
// redis-benchmark completes with no error; go-redis parses CLIENT INFO. SIGINT then exits 0 with one
// "queue N:" line per queue, each showing traffic and the connections it
// accepted, and no XDP program left.
func TestQueues(t *testing.T) {
	priv.Require(t, "kv on a multi-queue veth lab")
	for _, tool := range []string{"redis-cli", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps installs redis-tools): %v", tool, err)
		}
	}
	for _, m := range []struct {
		api, mode string
		port      uint16
	}{{"queue", "shared", portQueue}, {"net", "dedicated", portNet}} {
		a := api{m.api, m.port, []string{"-api", m.api, "-mode", m.mode}}
		t.Run(a.name, func(t *testing.T) {
			const queues, conns, incrs = 2, 32, 500
			lab := vethlab.ForTest(t, vethlab.Config{Name: "kvq", Queues: queues, KernelAddrA: m.mode == "shared"})
			p, addr := startKV(t, lab, a, "-queues", strconv.Itoa(queues))

			cs := make([]*qclient, conns)
			onQueue := make([]int, queues)
			for i := range cs {
				c := dial(t, lab, addr)
				c.SetDeadline(time.Now().Add(time.Minute)) // against a hang only
				q := &qclient{c: c, br: bufio.NewReader(c)}
				r, err := q.do([]string{"CLIENT", "INFO"})
				if err != nil {
					t.Fatalf("connection %d: CLIENT INFO: %v", i, err)
				}
				info := labtest.ParseUints(r[0])
				if !strings.Contains(r[0], "queue=") || info["queue"] >= queues {
					t.Fatalf("connection %d: CLIENT INFO = %q", i, r[0])
				}
				if want := "laddr=" + addr.String(); !strings.Contains(r[0], want) {
					t.Errorf("connection %d: CLIENT INFO = %q, want %s", i, r[0], want)
				}
				q.queue = int(info["queue"])
				onQueue[q.queue]++
				cs[i] = q
			}
			t.Logf("connections per queue: %v", onQueue)
			for qi, n := range onQueue {
				if n == 0 {
					t.Fatalf("no connection of %d on queue %d: %v", conns, qi, onQueue)
				}
			}

			// Every connection sets its key, then reads every key.
			value := func(i int) string { return fmt.Sprintf("v%d\x00\xff\r\n%s", i, strings.Repeat("q", i*37)) }
			for i, q := range cs {
				if r, err := q.do([]string{"SET", "key:" + strconv.Itoa(i), value(i)}); err != nil || r[0] != "+OK" {
					t.Fatalf("SET through connection %d: %q %v", i, r, err)
				}
			}
			cross := make(map[[2]int]int) // [set on, read on] -> keys read
			for j, q := range cs {
				reqs := make([][]string, conns)
				for i := range cs {
					reqs[i] = []string{"GET", "key:" + strconv.Itoa(i)}
				}
				r, err := q.do(reqs...)
				if err != nil {
					t.Fatalf("GETs through connection %d: %v", j, err)
				}
				for i := range cs {
					if r[i] != value(i) {
						t.Fatalf("GET key:%d (set on queue %d) through connection %d (queue %d) = %q, want %q",
							i, cs[i].queue, j, q.queue, r[i], value(i))
					}
					cross[[2]int{cs[i].queue, q.queue}]++
				}
			}
			for from := range queues {
				for to := range queues {
					if from != to && cross[[2]int{from, to}] == 0 {
						t.Errorf("no key set on queue %d was read on queue %d", from, to)
					}
				}
			}
			t.Logf("keys read [set on queue, read on queue]: %v", cross)

			// One counter, INCRed from every connection at once.
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for i, q := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reqs := make([][]string, incrs)
					for k := range reqs {
						reqs[k] = []string{"INCR", "shared"}
					}
					r, err := q.do(reqs...)
					if err == nil && !strings.HasPrefix(r[incrs-1], ":") {
						err = fmt.Errorf("INCR answered %q", r[incrs-1])
					}
					if err != nil {
						errs <- fmt.Errorf("connection %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for _, q := range cs {
				if r, err := q.do([]string{"GET", "shared"}); err != nil || r[0] != strconv.Itoa(conns*incrs) {
					t.Fatalf("GET shared on queue %d = %q %v, want %d", q.queue, r, err, conns*incrs)
				}
			}

			// Keys that expire and are never touched again: the loops'
			// sweepers, each owning half of the shards, delete them all.
			const volatile = 2000
			vol := make([][]string, volatile)
			for i := range vol {
				vol[i] = []string{"SET", "vol:" + strconv.Itoa(i), "x", "PX", "100"}
			}
			if r, err := cs[0].do(vol...); err != nil || r[volatile-1] != "+OK" {
				t.Fatalf("SET PX: %v", err)
			}
			for deadline := time.Now().Add(time.Minute); ; { // against a hang only
				r, err := cs[1].do([]string{"DBSIZE"})
				if err != nil {
					t.Fatal(err)
				}
				if r[0] == ":"+strconv.Itoa(conns+1) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("DBSIZE still %s a minute after the keys expired: not every shard is swept", r[0])
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, q := range cs {
				q.c.Close()
			}

			benchmark(t, lab, addr)
			goRedisClientInfo(t, lab, addr)

			k := stopKV(t, lab, p)
			defer func() {
				if t.Failed() {
					t.Logf("kv's output:\n%s", p.Output())
				}
			}()
			qs := labtest.QueueLines(p.Output())
			if len(qs) != queues {
				t.Fatalf("%d queue lines for %d queues:\n%s", len(qs), queues, p.Output())
			}
			var accepted, commands uint64
			for qi := range queues {
				l := qs[qi]
				t.Logf("queue %d: rx_descs=%d tx_descs=%d accepted=%d commands=%d handoffs=%d",
					qi, l["rx_descs"], l["tx_descs"], l["accepted"], l["commands"], l["handoffs"])
				if l["rx_descs"] == 0 || l["tx_descs"] == 0 || l["commands"] == 0 {
					t.Errorf("queue %d carried no traffic: %v", qi, l)
				}
				if l["accepted"] < uint64(onQueue[qi]) {
					t.Errorf("queue %d accepted %d connections, CLIENT INFO put %d on it", qi, l["accepted"], onQueue[qi])
				}
				accepted += l["accepted"]
				commands += l["commands"]
			}
			group := "kv."
			if a.name == "net" {
				group = "net."
			}
			if accepted != k[group+"accepted"] || commands != k["db.commands"] {
				t.Errorf("the queue lines accepted %d connections and ran %d commands; the totals say %d and %d",
					accepted, commands, k[group+"accepted"], k["db.commands"])
			}
			if k["store.expired_sweep"] != volatile || k["store.expired_lazy"] != 0 {
				t.Errorf("expired by the sweep %d, lazily %d; want %d and 0", k["store.expired_sweep"], k["store.expired_lazy"], volatile)
			}
			// The test's own, redis-benchmark's and go-redis's commands.
			if least := uint64(conns*(1+1+conns+incrs+1) + 600000); k["db.commands"] < least {
				t.Errorf("%d commands executed, want at least %d", k["db.commands"], least)
			}
		})
	}
}

// goRedisClientInfo checks that go-redis, from namespace B, parses kv's
// CLIENT INFO line (with its queue field) and finds kv's address in it.
func goRedisClientInfo(t *testing.T, lab *vethlab.Lab, addr netip.AddrPort) {
	t.Helper()
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
	info, err := rc.ClientInfo(context.Background()).Result()
	if err != nil {
		t.Fatalf("go-redis CLIENT INFO: %v", err)
	}
	if info.LAddr != addr.String() || info.ID == 0 {
		t.Errorf("go-redis CLIENT INFO: laddr %q id %d, want %v and an id", info.LAddr, info.ID, addr)
	}
}
