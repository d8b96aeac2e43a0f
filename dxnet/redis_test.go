package dxnet_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
)

// TestRedis: github.com/redis/go-redis/v9, a client library nobody here
// wrote, dialing with Stack.DialContext, against Debian's redis-server
// (installed by `make deps`) on the kernel in B: 10,000 keys set and read
// back (pipelined and one by one) and a 1 MiB value.
func TestRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if priv.Strict() {
			t.Fatal("redis-server is not installed (make deps installs it)")
		}
		t.Skip("redis-server is not installed (make deps installs it)")
	}
	lab := newLab(t)
	addr := lab.AddrB.Addr().String() + ":6379"
	labtest.Start(t, lab.CommandB("redis-server", "--bind", lab.AddrB.Addr().String(), "--port", "6379",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", t.TempDir(), "--logfile", ""),
		"Ready to accept connections")
	st := openStack(t, lab, labtest.A, nil)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: st.DialContext, DisableIdentity: true, PoolSize: 4})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}

	const keys = 10000
	val := func(i int) string { return fmt.Sprintf("value-%d-%x", i, pattern(16+i%64, uint64(i))) }
	// Half pipelined in batches, half one command at a time.
	for start := 0; start < keys/2; start += 500 {
		pipe := rdb.Pipeline()
		for i := start; i < start+500; i++ {
			pipe.Set(ctx, fmt.Sprintf("key:%d", i), val(i), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("pipelined SET: %v", err)
		}
	}
	for i := keys / 2; i < keys; i++ {
		if err := rdb.Set(ctx, fmt.Sprintf("key:%d", i), val(i), 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != keys {
		t.Fatalf("DBSIZE: %d %v, want %d", n, err, keys)
	}
	for start := 0; start < keys; start += 1000 {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.StringCmd, 0, 1000)
		for i := start; i < start+1000; i++ {
			cmds = append(cmds, pipe.Get(ctx, fmt.Sprintf("key:%d", i)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("pipelined GET: %v", err)
		}
		for j, c := range cmds {
			if got := c.Val(); got != val(start+j) {
				t.Fatalf("GET key:%d = %q, want %q", start+j, got, val(start+j))
			}
		}
	}
	for i := 0; i < keys; i += 7 {
		if got, err := rdb.Get(ctx, fmt.Sprintf("key:%d", i)).Result(); err != nil || got != val(i) {
			t.Fatalf("GET key:%d: %q %v", i, got, err)
		}
	}

	big := pattern(1<<20, 11)
	if err := rdb.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatalf("SET of 1 MiB: %v", err)
	}
	got, err := rdb.Get(ctx, "big").Bytes()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("GET of 1 MiB: %d bytes, %v", len(got), err)
	}
	if n, err := rdb.StrLen(ctx, "big").Result(); err != nil || n != 1<<20 {
		t.Fatalf("STRLEN big: %d %v", n, err)
	}
}
