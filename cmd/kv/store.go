package main

import (
	"time"
)

// The store: binary-safe string keys and values, each with an optional
// expiry. Expiry is lazy (a key found past its time on access is deleted
// then) plus a periodic sweep (Sweep, which the server's loop calls from
// its timer) that samples the keys with an expiry, as Redis's active expiry
// does: no goroutine and no timer per key.
//
// A Store is not safe for concurrent use: the queue server drives it from
// its one loop; the net server (many goroutines) holds a lock around it.
//
// Values never change in place once stored: SET, INCR and the others store
// a new slice, APPEND appends past the old length only. A reply that refers
// to a value (the queue server sends it later, in pieces) therefore always
// sees the bytes it was given.

// entry is one key's value and expiry (Unix milliseconds, 0: none).
type entry struct {
	val []byte
	exp int64
}

// storeCounters are what the store counts.
type storeCounters struct {
	Keys          uint64 // keys now (expired ones not yet found included, as DBSIZE)
	ExpiredLazy   uint64 // keys deleted on access, past their expiry
	ExpiredSweep  uint64 // keys deleted by the periodic sweep
	Sweeps        uint64 // sweeps run
	SweepSampled  uint64 // keys the sweeps looked at
	ValueBytes    uint64 // bytes of the values stored now
	AdoptedValues uint64 // large values stored without a copy (the parser's own buffer)
}

// Store is the key space.
type Store struct {
	m   map[string]entry
	vol map[string]struct{} // the keys that have an expiry
	// now returns the time in Unix milliseconds (tests set it).
	now func() int64
	ctr storeCounters
}

// NewStore returns an empty store on the wall clock.
func NewStore() *Store {
	return &Store{
		m:   make(map[string]entry),
		vol: make(map[string]struct{}),
		now: func() int64 { return time.Now().UnixMilli() },
	}
}

// lookup returns key's entry, deleting it first if it has expired.
func (s *Store) lookup(key []byte, now int64) (entry, bool) {
	e, ok := s.m[string(key)]
	if !ok {
		return entry{}, false
	}
	if e.exp != 0 && e.exp <= now {
		s.remove(string(key), e)
		s.ctr.ExpiredLazy++
		return entry{}, false
	}
	return e, true
}

func (s *Store) remove(key string, e entry) {
	delete(s.m, key)
	if e.exp != 0 {
		delete(s.vol, key)
	}
	s.ctr.ValueBytes -= uint64(len(e.val))
	s.ctr.Keys = uint64(len(s.m))
}

// put stores val (which the store now owns) under key with expiry exp.
func (s *Store) put(key []byte, val []byte, exp int64) {
	old, had := s.m[string(key)]
	if had {
		s.ctr.ValueBytes -= uint64(len(old.val))
		s.m[string(key)] = entry{val: val, exp: exp}
		switch {
		case exp != 0 && old.exp == 0:
			s.vol[string(key)] = struct{}{}
		case exp == 0 && old.exp != 0:
			delete(s.vol, string(key))
		}
	} else {
		k := string(key)
		s.m[k] = entry{val: val, exp: exp}
		if exp != 0 {
			s.vol[k] = struct{}{}
		}
	}
	s.ctr.ValueBytes += uint64(len(val))
	s.ctr.Keys = uint64(len(s.m))
}

// setExp changes an existing key's expiry.
func (s *Store) setExp(key []byte, e entry, exp int64) {
	switch {
	case exp != 0 && e.exp == 0:
		s.vol[string(key)] = struct{}{}
	case exp == 0 && e.exp != 0:
		delete(s.vol, string(key))
	}
	e.exp = exp
	s.m[string(key)] = e
}

// del deletes key and reports whether it was there (not expired).
func (s *Store) del(key []byte, now int64) bool {
	e, ok := s.lookup(key, now)
	if ok {
		s.remove(string(key), e)
	}
	return ok
}

// flush deletes every key.
func (s *Store) flush() {
	clear(s.m)
	clear(s.vol)
	s.ctr.ValueBytes = 0
	s.ctr.Keys = 0
}

// Sweep samples keys with an expiry and deletes those past it, Redis's
// active expiry: rounds of up to sweepSample keys, another round while more
// than a quarter of a sample had expired, for at most budget.
func (s *Store) Sweep(budget time.Duration) {
	if len(s.vol) == 0 {
		return
	}
	s.ctr.Sweeps++
	start := time.Now()
	now := s.now()
	for {
		n, expired := 0, 0
		for k := range s.vol { // map iteration starts at a random key
			if n == sweepSample {
				break
			}
			n++
			if e := s.m[k]; e.exp <= now {
				s.remove(k, e)
				expired++
			}
		}
		s.ctr.SweepSampled += uint64(n)
		s.ctr.ExpiredSweep += uint64(expired)
		if expired*4 <= sweepSample || time.Since(start) > budget {
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
