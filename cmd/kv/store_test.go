package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The store shared by several loops: these tests drive one DB from
// several goroutines, each with its own Session, as the -api queue loops
// and the -api net connections do. Run them with -race.

// run1 runs one command on x and returns its encoded reply.
func run1(x *Session, args ...string) string {
	var c Client
	var w BufReply
	v := make([][]byte, len(args))
	for i, a := range args {
		v[i] = []byte(a)
	}
	x.Exec(&c, &Args{V: v}, &w)
	return string(w.B)
}

// checkStore checks what every shard's counters and maps must agree on.
func checkStore(t *testing.T, st *Store) {
	t.Helper()
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		var bytes uint64
		for k, e := range sh.m {
			bytes += uint64(len(e.val))
			if _, vol := sh.vol[k]; vol != (e.exp != 0) {
				t.Errorf("shard %d: key %q expiry %d, in the expiry set: %v", i, k, e.exp, vol)
			}
			if st.shardOf([]byte(k)) != i {
				t.Errorf("key %q in shard %d, hashes to %d", k, i, st.shardOf([]byte(k)))
			}
		}
		if len(sh.vol) > len(sh.m) {
			t.Errorf("shard %d: %d keys with an expiry, %d keys", i, len(sh.vol), len(sh.m))
		}
		if sh.ctr.Keys != uint64(len(sh.m)) || sh.ctr.ValueBytes != bytes {
			t.Errorf("shard %d: counts %d keys %d bytes, holds %d keys %d bytes", i, sh.ctr.Keys, sh.ctr.ValueBytes, len(sh.m), bytes)
		}
		sh.mu.Unlock()
	}
}

// keysOnDistinctShards returns n keys of st, each on a shard of its own.
func keysOnDistinctShards(st *Store, n int) []string {
	var keys []string
	used := map[int]bool{}
	for i := 0; len(keys) < n; i++ {
		k := "k" + strconv.Itoa(i)
		if s := st.shardOf([]byte(k)); !used[s] {
			used[s] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// TestConcurrentIncr: INCR, INCRBY and APPEND from 8 sessions at once on
// one key and on keys of their own lose no update: each is one
// read-modify-write under its shard's lock.
func TestConcurrentIncr(t *testing.T) {
	db := NewDB(NewStore(), 1<<20)
	const loops, each = 8, 2000
	var wg sync.WaitGroup
	for g := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := db.NewSession(g)
			defer x.Close()
			own := "own:" + strconv.Itoa(g)
			for i := range each {
				if r := run1(x, "INCR", "shared"); !strings.HasPrefix(r, ":") {
					t.Errorf("INCR: %q", r)
					return
				}
				run1(x, "INCRBY", own, "2")
				run1(x, "APPEND", "log", "x")
				if i%100 == 0 {
					run1(x, "GET", "shared")
				}
			}
		}()
	}
	wg.Wait()
	x := db.NewSession(0)
	if got := run1(x, "GET", "shared"); got != fmt.Sprintf("$%d\r\n%d\r\n", len(strconv.Itoa(loops*each)), loops*each) {
		t.Errorf("GET shared = %q, want %d", got, loops*each)
	}
	for g := range loops {
		if got := run1(x, "GET", "own:"+strconv.Itoa(g)); got != fmt.Sprintf("$4\r\n%d\r\n", 2*each) {
			t.Errorf("GET own:%d = %q", g, got)
		}
	}
	if got := run1(x, "STRLEN", "log"); got != fmt.Sprintf(":%d\r\n", loops*each) {
		t.Errorf("STRLEN log = %q, want %d", got, loops*each)
	}
	if tot := db.Totals(-1); tot.Commands != loops*(3*each+each/100)+1+loops+1 {
		t.Errorf("%d commands counted", tot.Commands)
	}
	checkStore(t, db.Store)
}

// TestMultiKeyAtomic: MSET of keys on distinct shards is seen whole by
// MGET (every value from the same MSET) while 4 sessions write and 4 read,
// DEL and EXISTS run beside them and FLUSHALL now and then, all at once:
// the shards of a multi-key command are locked together, in one order, so
// nothing tears and nothing deadlocks.
func TestMultiKeyAtomic(t *testing.T) {
	db := NewDB(NewStore(), 1<<20)
	keys := keysOnDistinctShards(db.Store, 6)
	const rounds = 3000
	var wg sync.WaitGroup
	var torn atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := db.NewSession(g)
			defer x.Close()
			for i := range rounds {
				switch {
				case g < 4:
					args := []string{"MSET"}
					v := strconv.Itoa(g*rounds + i)
					for _, k := range keys {
						args = append(args, k, v)
					}
					run1(x, args...)
				case g == 7 && i%500 == 0:
					run1(x, "FLUSHALL")
				case g == 6:
					run1(x, append([]string{"DEL"}, keys[3:]...)...)
					run1(x, append([]string{"EXISTS"}, keys...)...)
				default:
					r := run1(x, append([]string{"MGET"}, keys...)...)
					lines := strings.Split(r, "\r\n")
					// *6, then $n and the value, or $-1, for every key:
					// the values all the same, or all missing, or (DEL
					// removed keys[3:]) the first three the same.
					var vals []string
					for j := 1; j < len(lines)-1; j++ {
						if lines[j] == "$-1" {
							vals = append(vals, "")
						} else {
							j++
							vals = append(vals, lines[j])
						}
					}
					if len(vals) != len(keys) {
						t.Errorf("MGET: %q", r)
						return
					}
					for j := 1; j < len(vals); j++ {
						if vals[j] != vals[0] && !(j >= 3 && vals[j] == "") {
							torn.Add(1)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := torn.Load(); n > 0 {
		t.Errorf("%d MGET replies mixed the values of different MSETs", n)
	}
	checkStore(t, db.Store)
}

// TestSweepersOwnShards: the sweepers of n loops own every shard once;
// together they delete every expired key and none that has not expired,
// each holding a shard's lock one round at a time, while sessions read
// and write the keys.
func TestSweepersOwnShards(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 64, 100} {
		owned := make([]int, storeShards)
		for o := range n {
			for _, s := range NewSweeper(NewStore(), o, n).shards {
				owned[s]++
			}
		}
		for s, c := range owned {
			if c != 1 {
				t.Fatalf("%d loops: shard %d has %d sweepers", n, s, c)
			}
		}
	}

	st := NewStore()
	var clock atomic.Int64
	clock.Store(1_000_000)
	st.now = clock.Load
	db := NewDB(st, 1<<20)
	x := db.NewSession(0)
	const short, long = 3000, 500
	for i := range short {
		run1(x, "SET", "short:"+strconv.Itoa(i), "v", "PX", "10")
	}
	for i := range long {
		run1(x, "SET", "long:"+strconv.Itoa(i), "v", "PX", "100000")
	}
	run1(x, "SET", "plain", "v")
	clock.Add(50) // the short keys have expired, the long ones not

	const loops = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for o := range loops { // the loops' sweepers, each on its goroutine
		wg.Add(1)
		go func() {
			defer wg.Done()
			sw := NewSweeper(st, o, loops)
			for {
				select {
				case <-stop:
					return
				default:
				}
				sw.Sweep(SweepBudget)
			}
		}()
	}
	for g := range 2 { // and sessions using the keys meanwhile
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := db.NewSession(g)
			defer x.Close()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := "long:" + strconv.Itoa(rng.IntN(long))
				if r := run1(x, "GET", k); r != "$1\r\nv\r\n" {
					t.Errorf("GET %s = %q", k, r)
					return
				}
				run1(x, "SET", "other:"+strconv.Itoa(rng.IntN(100)), "w")
			}
		}()
	}
	deadline := time.Now().Add(time.Minute) // against a hang only
	for {
		if c, _ := st.Counters(); c.ExpiredSweep+c.ExpiredLazy == short {
			break
		}
		if time.Now().After(deadline) {
			c, _ := st.Counters()
			t.Fatalf("a minute on, %d of %d expired keys deleted", c.ExpiredSweep+c.ExpiredLazy, short)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	c, vol := st.Counters()
	if c.ExpiredLazy != 0 || c.ExpiredSweep != short {
		t.Errorf("expired lazily %d, by the sweep %d; want 0 and %d", c.ExpiredLazy, c.ExpiredSweep, short)
	}
	if vol != long {
		t.Errorf("%d keys with an expiry left, want the %d long ones", vol, long)
	}
	if r := run1(x, "GET", "plain"); r != "$1\r\nv\r\n" {
		t.Errorf("GET plain = %q", r)
	}
	checkStore(t, st)
}

// TestSweepBudgetResumes: a sweep cut short by its budget resumes at the
// next shard, so a sweeper with no budget at all still reaches every
// shard, one round a call.
func TestSweepBudgetResumes(t *testing.T) {
	st := NewStore()
	var clock atomic.Int64
	st.now = clock.Load
	x := NewDB(st, 1<<20).NewSession(0)
	clock.Store(1000)
	for i := range 640 {
		run1(x, "SET", "k"+strconv.Itoa(i), "v", "PX", "1")
	}
	clock.Add(10)
	sw := NewSweeper(st, 0, 1)
	calls := 0
	for ; calls < 10*storeShards; calls++ {
		if c, _ := st.Counters(); c.Keys == 0 {
			break
		}
		sw.Sweep(0)
	}
	if c, _ := st.Counters(); c.Keys != 0 || c.ExpiredSweep != 640 {
		t.Fatalf("after %d sweeps with no budget: %d keys left, %d swept", calls, c.Keys, c.ExpiredSweep)
	}
	// One round (up to 20 keys) of one shard a call: more calls than shards.
	if calls < storeShards {
		t.Errorf("%d calls swept 640 keys on %d shards: the budget was not kept", calls, storeShards)
	}
	checkStore(t, st)
}

// TestExecAllocations: GET, MGET and PING allocate nothing once the
// session's scratch is grown, and SET of an existing key only what it
// stores: the copy of its value and the key string of the map assignment
// (Go converts it for every assignment). No lock or reply allocates.
func TestExecAllocations(t *testing.T) {
	x := NewDB(NewStore(), 1<<20).NewSession(0)
	var c Client
	w := BufReply{B: make([]byte, 0, 4096)}
	args := func(s ...string) *Args {
		v := make([][]byte, len(s))
		for i := range s {
			v[i] = []byte(s[i])
		}
		return &Args{V: v}
	}
	set, get := args("SET", "key:1", "value"), args("GET", "key:1")
	mget, ping := args("MGET", "key:1", "key:2", "key:3"), args("PING")
	x.Exec(&c, set, &w)
	x.Exec(&c, mget, &w)
	for _, tc := range []struct {
		name string
		a    *Args
		want float64
	}{{"GET", get, 0}, {"MGET", mget, 0}, {"PING", ping, 0}, {"SET", set, 2}} {
		n := testing.AllocsPerRun(200, func() {
			w.B = w.B[:0]
			x.Exec(&c, tc.a, &w)
		})
		if n != tc.want {
			t.Errorf("%s: %v allocations, want %v", tc.name, n, tc.want)
		}
	}
}

// BenchmarkExecParallel: GET (9 in 10) and SET on 10,000 keys from
// GOMAXPROCS sessions at once (-cpu 1,2,...): the sharded store, and for
// comparison the same commands under one global lock (what -api net did
// before the store was sharded).
func BenchmarkExecParallel(b *testing.B) {
	for _, global := range []bool{false, true} {
		name := "sharded"
		if global {
			name = "global-lock"
		}
		b.Run(name, func(b *testing.B) {
			db := NewDB(NewStore(), 1<<20)
			x := db.NewSession(0)
			const keys = 10000
			for i := range keys {
				run1(x, "SET", "key:"+strconv.Itoa(i), strings.Repeat("v", 100))
			}
			var mu sync.Mutex
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				x := db.NewSession(int(next.Add(1)))
				rng := rand.New(rand.NewPCG(uint64(next.Load()), 7))
				var c Client
				w := BufReply{B: make([]byte, 0, 4096)}
				get := &Args{V: [][]byte{[]byte("GET"), nil}}
				set := &Args{V: [][]byte{[]byte("SET"), nil, []byte(strings.Repeat("w", 100))}}
				names := make([][]byte, keys)
				for i := range names {
					names[i] = []byte("key:" + strconv.Itoa(i))
				}
				for i := 0; pb.Next(); i++ {
					a := get
					if i%10 == 0 {
						a = set
					}
					a.V[1] = names[rng.IntN(keys)]
					w.B = w.B[:0]
					if global {
						mu.Lock()
					}
					x.Exec(&c, a, &w)
					if global {
						mu.Unlock()
					}
				}
			})
		})
	}
}
