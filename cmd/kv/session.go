package main

import (
	"sync"
	"sync/atomic"
)

// DB is what every session of one server shares: the store (safe for
// concurrent use), the limits, and the sessions' counters, which INFO and
// the exit lines sum.
type DB struct {
	Store    *Store
	MaxValue int // the largest value APPEND may make (-maxvalue)

	mu   sync.Mutex // guards live and gone: taken when a session opens or closes, and to sum
	live map[*Session]struct{}
	gone map[int]sessionTotals // the closed sessions' counters, by group
}

// NewDB returns the DB of store with the given value limit.
func NewDB(store *Store, maxValue int) *DB {
	return &DB{Store: store, MaxValue: maxValue, live: make(map[*Session]struct{}), gone: make(map[int]sessionTotals)}
}

// Session runs commands on a DB for one goroutine: a queue loop of -api
// queue (one per NIC queue), a connection of -api net. Its counters and
// scratch space are its own, so executing a command touches no memory
// another loop writes but the store's shards. A Session is not safe for
// concurrent use.
type Session struct {
	db    *DB
	group int // the NIC queue (by index) its counters count for

	// Counters: written by the session's goroutine alone (load and store,
	// no read-modify-write on a shared line), read by others for INFO.
	commands, errors, unknown, adopted atomic.Uint64

	got  []lookup // MGET's scratch
	vals [][]byte // MSET's scratch
}

// lookup is one key's value as MGET found it.
type lookup struct {
	val   []byte
	found bool
}

// sessionTotals are the counters of sessions, summed.
type sessionTotals struct {
	Commands uint64 // commands executed
	Errors   uint64 // error replies (unknown command, arity, syntax, integer...)
	Unknown  uint64 // unknown commands
	Adopted  uint64 // large values stored without a copy
}

// bump adds one to a counter only its session's goroutine writes.
func bump(c *atomic.Uint64) { c.Store(c.Load() + 1) }

// NewSession opens a session whose counters count for group (the index
// of its NIC queue; 0 with one).
func (db *DB) NewSession(group int) *Session {
	x := &Session{db: db, group: group}
	db.mu.Lock()
	db.live[x] = struct{}{}
	db.mu.Unlock()
	return x
}

// Close adds the session's counters to its group's totals and forgets
// it. It must not be used afterwards.
func (x *Session) Close() {
	db := x.db
	db.mu.Lock()
	if _, ok := db.live[x]; ok {
		delete(db.live, x)
		t := db.gone[x.group]
		t.add(x.totals())
		db.gone[x.group] = t
	}
	db.mu.Unlock()
}

func (x *Session) totals() sessionTotals {
	return sessionTotals{Commands: x.commands.Load(), Errors: x.errors.Load(), Unknown: x.unknown.Load(), Adopted: x.adopted.Load()}
}

func (t *sessionTotals) add(u sessionTotals) {
	t.Commands += u.Commands
	t.Errors += u.Errors
	t.Unknown += u.Unknown
	t.Adopted += u.Adopted
}

// Totals returns the counters of the sessions of group, open and closed;
// group -1: of every group.
func (db *DB) Totals(group int) sessionTotals {
	db.mu.Lock()
	defer db.mu.Unlock()
	var t sessionTotals
	for g, u := range db.gone {
		if group < 0 || g == group {
			t.add(u)
		}
	}
	for x := range db.live {
		if group < 0 || x.group == group {
			t.add(x.totals())
		}
	}
	return t
}
