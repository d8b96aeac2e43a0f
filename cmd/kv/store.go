package main

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"

	"golang.org/x/sys/cpu"
)

// The store: binary-safe string keys and values, each with an optional
// expiry, shared by every loop of the server (-api queue: one per NIC
// queue) and every connection (-api net: one goroutine each), so that a
// client sees the same keys whichever queue RSS put its connection on.
//
// It is split into storeShards shards by a seeded hash of the key, each a
// map under its own mutex. A command locks the shard of its key for the
// read-modify-write it does (INCR, APPEND, SET NX|GET, EXPIRE...), so it is
// atomic as in Redis, and unlocks it before it writes its reply: no lock
// is held while a reply is encoded or pushed, and loops working on
// different shards never wait for each other. A command on several keys
// (MGET, MSET, DEL, EXISTS) locks their shards in ascending order, the one
// order every path uses, so it is atomic too and cannot deadlock.
//
// Expiry is lazy (a key found past its time on access is deleted then)
// plus a periodic sweep that samples the keys with an expiry, as Redis's
// active expiry does: no goroutine and no timer per key. Every shard has
// one sweeper (a Sweeper; each queue loop owns an equal part of the
// shards, the net server one Sweeper for all), which holds the shard's
// lock for one round of at most sweepSample keys at a time.
//
// Values never change in place once stored: SET, INCR and the others store
// a new slice, APPEND appends past the old length only. A reply that refers
// to a value (the queue server sends it later, in pieces, lock released)
// therefore always sees the bytes it was given.

// storeShards is the number of shards: a power of two, at most 64 (a
// multi-key command's shards are a bit mask), and many more than the
// loops that share them, so two loops rarely want the same one.
const storeShards = 64

// entry is one key's value and expiry (Unix milliseconds, 0: none).
type entry struct {
	val []byte
	exp int64
}

// storeCounters are what the store counts (summed over the shards).
type storeCounters struct {
	Keys          uint64 // keys now (expired ones not yet found included, as DBSIZE)
	ExpiredLazy   uint64 // keys deleted on access, past their expiry
	ExpiredSweep  uint64 // keys deleted by the periodic sweep
	Sweeps        uint64 // shard sweeps run (a shard with keys with an expiry, once per SweepEvery)
	SweepSampled  uint64 // keys the sweeps looked at
	ValueBytes    uint64 // bytes of the values stored now
	AdoptedValues uint64 // large values stored without a copy (the parser's own buffer; counted by the sessions)
}

// shard is one part of the key space. Its fields are used only with mu
// held.
type shard struct {
	mu  sync.Mutex
	m   map[string]entry
	vol map[string]struct{} // the keys that have an expiry
	ctr storeCounters
	_   cpu.CacheLinePad // a shard's lock and counters share no cache line with the next shard's
}

// Store is the key space. It is safe for concurrent use.
type Store struct {
	seed   maphash.Seed
	shards [storeShards]shard
	// now returns the time in Unix milliseconds (tests set it before use).
	now func() int64
}

// NewStore returns an empty store on the wall clock.
func NewStore() *Store {
	s := &Store{seed: maphash.MakeSeed(), now: func() int64 { return time.Now().UnixMilli() }}
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry)
		s.shards[i].vol = make(map[string]struct{})
	}
	return s
}

// shardOf returns the index of key's shard. The seed is random per store,
// so a client cannot aim many keys at one shard on purpose.
func (s *Store) shardOf(key []byte) int {
	return int(maphash.Bytes(s.seed, key) & (storeShards - 1))
}

// lock locks key's shard and returns it.
func (s *Store) lock(key []byte) *shard {
	sh := &s.shards[s.shardOf(key)]
	sh.mu.Lock()
	return sh
}

// maskOf returns the set of the shards of keys, as bits.
func (s *Store) maskOf(keys [][]byte) uint64 {
	var m uint64
	for _, k := range keys {
		m |= 1 << s.shardOf(k)
	}
	return m
}

// lockMask locks the shards of mask in ascending order.
func (s *Store) lockMask(mask uint64) {
	for m := mask; m != 0; m &= m - 1 {
		s.shards[bits.TrailingZeros64(m)].mu.Lock()
	}
}

// unlockMask unlocks the shards of mask.
func (s *Store) unlockMask(mask uint64) {
	for m := mask; m != 0; m &= m - 1 {
		s.shards[bits.TrailingZeros64(m)].mu.Unlock()
	}
}

// allShards is the mask of every shard.
const allShards = ^uint64(0) >> (64 - storeShards)

// shardFor returns key's shard, which the caller has locked (through
// lockMask).
func (s *Store) shardFor(key []byte) *shard { return &s.shards[s.shardOf(key)] }

// Len returns the number of keys, expired ones not yet deleted included
// (Redis's DBSIZE), counting one shard at a time.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Counters returns the store's counters summed over the shards (each read
// under its lock; AdoptedValues is the sessions' and stays 0 here), and
// the number of keys with an expiry.
func (s *Store) Counters() (c storeCounters, volatile int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sc := sh.ctr
		volatile += len(sh.vol)
		sh.mu.Unlock()
		c.Keys += sc.Keys
		c.ExpiredLazy += sc.ExpiredLazy
		c.ExpiredSweep += sc.ExpiredSweep
		c.Sweeps += sc.Sweeps
		c.SweepSampled += sc.SweepSampled
		c.ValueBytes += sc.ValueBytes
	}
	return c, volatile
}

// Flush deletes every key, all shards locked at once (FLUSHALL is atomic).
func (s *Store) Flush() {
	s.lockMask(allShards)
	for i := range s.shards {
		sh := &s.shards[i]
		clear(sh.m)
		clear(sh.vol)
		sh.ctr.ValueBytes = 0
		sh.ctr.Keys = 0
	}
	s.unlockMask(allShards)
}

// lookup returns key's entry, deleting it first if it has expired.
func (sh *shard) lookup(key []byte, now int64) (entry, bool) {
	e, ok := sh.m[string(key)]
	if !ok {
		return entry{}, false
	}
	if e.exp != 0 && e.exp <= now {
		sh.remove(string(key), e)
		sh.ctr.ExpiredLazy++
		return entry{}, false
	}
	return e, true
}

func (sh *shard) remove(key string, e entry) {
	delete(sh.m, key)
	if e.exp != 0 {
		delete(sh.vol, key)
	}
	sh.ctr.ValueBytes -= uint64(len(e.val))
	sh.ctr.Keys = uint64(len(sh.m))
}

// put stores val (which the store now owns) under key with expiry exp.
func (sh *shard) put(key []byte, val []byte, exp int64) {
	old, had := sh.m[string(key)]
	if had {
		sh.ctr.ValueBytes -= uint64(len(old.val))
		sh.m[string(key)] = entry{val: val, exp: exp}
		switch {
		case exp != 0 && old.exp == 0:
			sh.vol[string(key)] = struct{}{}
		case exp == 0 && old.exp != 0:
			delete(sh.vol, string(key))
		}
	} else {
		k := string(key)
		sh.m[k] = entry{val: val, exp: exp}
		if exp != 0 {
			sh.vol[k] = struct{}{}
		}
	}
	sh.ctr.ValueBytes += uint64(len(val))
	sh.ctr.Keys = uint64(len(sh.m))
}

// setExp changes an existing key's expiry.
func (sh *shard) setExp(key []byte, e entry, exp int64) {
	switch {
	case exp != 0 && e.exp == 0:
		sh.vol[string(key)] = struct{}{}
	case exp == 0 && e.exp != 0:
		delete(sh.vol, string(key))
	}
	e.exp = exp
	sh.m[string(key)] = e
}

// del deletes key and reports whether it was there (not expired).
func (sh *shard) del(key []byte, now int64) bool {
	e, ok := sh.lookup(key, now)
	if ok {
		sh.remove(string(key), e)
	}
	return ok
}

// sweepRound samples up to sweepSample keys with an expiry and deletes
// those past it; it returns how many it sampled and deleted.
func (sh *shard) sweepRound(now int64) (sampled, expired int) {
	for k := range sh.vol { // map iteration starts at a random key
		if sampled == sweepSample {
			break
		}
		sampled++
		if e := sh.m[k]; e.exp <= now {
			sh.remove(k, e)
			expired++
		}
	}
	sh.ctr.SweepSampled += uint64(sampled)
	sh.ctr.ExpiredSweep += uint64(expired)
	return sampled, expired
}

// Sweeper runs the active expiry of a set of shards. Every shard must have
// exactly one Sweeper (NewSweeper's owner/owners split does that), driven
// by one goroutine: two sweepers of a shard would be correct (both work
// under its lock) but do its work twice.
type Sweeper struct {
	s      *Store
	shards []int // the shards this sweeper owns
	next   int   // where the last sweep stopped (its budget ran out)
}

// NewSweeper returns the sweeper of owner's part of the shards, owner in
// [0, owners): the shards whose index is owner modulo owners. With more
// owners than shards, some own none.
func NewSweeper(s *Store, owner, owners int) *Sweeper {
	w := &Sweeper{s: s}
	for i := owner; i < storeShards; i += owners {
		w.shards = append(w.shards, i)
	}
	return w
}

// Sweep samples the keys with an expiry of the sweeper's shards and
// deletes those past it, Redis's active expiry per shard: rounds of up to
// sweepSample keys, another round while more than a quarter of a sample
// had expired, for at most budget in all. A sweep cut short by its budget
// resumes where it stopped, so every shard is swept in turn. The shard's
// lock is held for one round at a time.
func (w *Sweeper) Sweep(budget time.Duration) {
	start := time.Now()
	now := w.s.now()
	for n := 0; n < len(w.shards); n++ {
		sh := &w.s.shards[w.shards[w.next]]
		w.next = (w.next + 1) % len(w.shards)
		for round := 0; ; round++ {
			sh.mu.Lock()
			if len(sh.vol) == 0 {
				sh.mu.Unlock()
				break
			}
			if round == 0 {
				sh.ctr.Sweeps++
			}
			_, expired := sh.sweepRound(now)
			sh.mu.Unlock()
			if expired*4 <= sweepSample {
				break
			}
			if time.Since(start) > budget {
				return
			}
		}
		if time.Since(start) > budget {
			return
		}
	}
}

// sweepSample is how many keys one round of the sweep looks at (Redis: 20).
const sweepSample = 20

// SweepEvery is the period of the expiry sweep (Redis's hz 10), and
// SweepBudget the most one sweep may take.
const (
	SweepEvery  = 100 * time.Millisecond
	SweepBudget = time.Millisecond
)
