package dxmetrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/libos"
)

// Snapshot is a LibOS's counters at one moment.
type Snapshot struct {
	Time   time.Time
	LibOS  libos.Counters
	Queues []QueueSnapshot
	Err    string `json:",omitempty"` // the last counter read that failed, if any
}

// QueueSnapshot is one queue descriptor's counters.
type QueueSnapshot struct {
	QD       libos.QD
	Name     string // what the command calls it ("listener", "echo"...)
	Counters libos.QueueCounters
}

// Queue names a queue descriptor whose counters a Source publishes.
type Queue struct {
	QD   libos.QD
	Name string
}

// Source is one LibOS seen from other goroutines. A LibOS is not safe for
// concurrent use, so readers never touch it: they ask for a snapshot, and
// the goroutine that drives the LibOS publishes one from its loop (Poll),
// which costs it one atomic load when nobody asked.
type Source struct {
	iface string
	queue int

	want atomic.Bool

	mu     sync.Mutex
	snap   Snapshot
	have   bool
	notify chan struct{} // closed by the next publish
	queues []Queue
}

// NewSource returns the Source of the LibOS on queue of iface (the labels
// of its metrics).
func NewSource(iface string, queue int) *Source {
	return &Source{iface: iface, queue: queue, notify: make(chan struct{})}
}

// SetQueues sets the queue descriptors whose counters are published
// beside the LibOS's. Call it from the goroutine that drives the LibOS.
func (s *Source) SetQueues(qs ...Queue) {
	s.mu.Lock()
	s.queues = append(s.queues[:0], qs...)
	s.mu.Unlock()
}

// Poll publishes a snapshot of lib if a reader asked for one since the
// last. Call it on every turn of the loop that drives lib; it allocates
// nothing unless it publishes.
//
//demixdp:hotpath — one atomic load when no reader waits.
func (s *Source) Poll(lib *libos.LibOS) {
	if s.want.Load() {
		s.Publish(lib)
	}
}

// Publish reads lib's counters and those of the queues, and makes them the
// Source's snapshot. Call it from the goroutine that drives lib. A failed
// read is recorded in Snapshot.Err, keeping what could be read.
func (s *Source) Publish(lib *libos.LibOS) {
	s.want.Store(false)
	snap := Snapshot{Time: time.Now()}
	var err error
	if snap.LibOS, err = lib.Counters(); err != nil {
		snap.Err = err.Error()
	}
	s.mu.Lock()
	qs := s.queues
	s.mu.Unlock()
	for _, q := range qs {
		qc, err := lib.QueueCounters(q.QD)
		if err != nil {
			continue // closed since: no counters to show
		}
		snap.Queues = append(snap.Queues, QueueSnapshot{QD: q.QD, Name: q.Name, Counters: qc})
	}
	s.mu.Lock()
	s.snap, s.have = snap, true
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// Snapshot asks the loop for a fresh snapshot and waits up to wait for it.
// If none comes in time (the loop is busy elsewhere, or gone), it returns
// the latest one; ok is false if there has never been one.
func (s *Source) Snapshot(wait time.Duration) (snap Snapshot, ok bool) {
	s.mu.Lock()
	ch := s.notify
	s.mu.Unlock()
	s.want.Store(true)
	t := time.NewTimer(wait)
	select {
	case <-ch:
	case <-t.C:
	}
	t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.have
}
