package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// maxPops bounds -pops.
const maxPops = 64

// stopCheck is the longest WaitAny blocks, so a stop request is noticed
// within about this long even when no packet arrives.
const stopCheck = 50 * time.Millisecond

// echoCounters are what the echo loop itself counts, beside the libOS's
// counters.
type echoCounters struct {
	Echoed      uint64 // datagrams pushed back to their sender
	PushRefused uint64 // datagrams dropped: PushTo returned an error (EAGAIN, EMSGSIZE...)
	PushFailed  uint64 // pushes that completed as failed (EHOSTUNREACH: the sender did not answer ARP)
	Completed   uint64 // pushes whose transmission completed
	MaxPushes   uint64 // most push tokens outstanding at once
}

// echoer is the zero-copy echo loop of one queue. It keeps `pops` pops
// outstanding; every popped SGA is pushed back to its sender and freed at
// once (free-protection keeps the frame until the TX completion).
type echoer struct {
	lib    *libos.LibOS
	qd     libos.QD
	pops   []libos.QToken // outstanding pops
	pushes []libos.QToken // outstanding pushes
	ws     []libos.QToken // the wait set: pushes, then pops
	ctr    echoCounters
	ops    *cli.Ops // metrics snapshots (nil-safe)
}

func newEchoer(lib *libos.LibOS, qd libos.QD, pops int) *echoer {
	return &echoer{
		lib:    lib,
		qd:     qd,
		pops:   make([]libos.QToken, pops),
		pushes: make([]libos.QToken, 0, 4096),
		ws:     make([]libos.QToken, 0, 4096+pops),
	}
}

// serve echoes until stop is set (checked after every completion and at
// least every stopCheck) and returns nil then, or an error if the queue
// breaks (a pop fails, which only a closed queue does). Once the token
// slices have grown to their working size it allocates nothing.
//
//demixdp:hotpath — allocates nothing.
func (e *echoer) serve(stop *atomic.Bool) error {
	for i := range e.pops {
		qt, err := e.lib.Pop(e.qd)
		if err != nil {
			return fmt.Errorf("pop: %w", err)
		}
		e.pops[i] = qt
	}
	for !stop.Load() {
		e.ops.Poll(e.lib)
		// Pushes come first: WaitAny prefers the lowest index, and a
		// completed push must not wait behind a stream of pops.
		e.ws = append(append(e.ws[:0], e.pushes...), e.pops...)
		i, r, err := e.lib.WaitAny(e.ws, stopCheck)
		if err == unix.ETIMEDOUT {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		if i < len(e.pushes) {
			e.pushDone(i, r)
			continue
		}
		if err := e.popDone(i-len(e.pushes), r); err != nil {
			return err
		}
	}
	return nil
}

// pushDone retires push token i.
func (e *echoer) pushDone(i int, r libos.Result) {
	last := len(e.pushes) - 1
	e.pushes[i] = e.pushes[last]
	e.pushes = e.pushes[:last]
	if r.Opcode == libos.OpFailed {
		e.ctr.PushFailed++
		return
	}
	e.ctr.Completed++
}

// popDone echoes the datagram pop j delivered and posts the next pop in its
// place.
func (e *echoer) popDone(j int, r libos.Result) error {
	if r.Opcode != libos.OpPop {
		return fmt.Errorf("pop failed: %w", errOr(r.Err))
	}
	sga := r.SGA
	qt, err := e.lib.PushTo(e.qd, sga, sga.Addr)
	// Free at once: the frame stays reserved until the transmission ends.
	e.lib.SGAFree(sga)
	if err != nil {
		e.ctr.PushRefused++
	} else {
		e.ctr.Echoed++
		e.pushes = append(e.pushes, qt)
		if n := uint64(len(e.pushes)); n > e.ctr.MaxPushes {
			e.ctr.MaxPushes = n
		}
	}
	if e.pops[j], err = e.lib.Pop(e.qd); err != nil {
		return fmt.Errorf("pop: %w", err)
	}
	return nil
}

func errOr(err error) error {
	if err == nil {
		return errors.New("no reason given")
	}
	return err
}
