package main

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// maxPops bounds -pops.
const maxPops = 64

// stopCheck is the longest WaitNext blocks, so a stop request is noticed
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
// once (free-protection keeps the frame until the TX completion). It takes
// completions with WaitNext, oldest first and many per call, rather than
// WaitAny over every token: the loop then runs one turn for a batch of
// datagrams, and no completion waits behind another.
type echoer struct {
	lib    *libos.LibOS
	qd     libos.QD
	pops   []libos.QToken // outstanding pops (to tell a failed pop from a failed push)
	pushes uint64         // outstanding pushes
	res    []libos.Result // WaitNext's results
	ctr    echoCounters
	ops    *cli.Ops // metrics snapshots (nil-safe)
}

func newEchoer(lib *libos.LibOS, qd libos.QD, pops int) *echoer {
	return &echoer{lib: lib, qd: qd, pops: make([]libos.QToken, pops), res: make([]libos.Result, 64)}
}

// serve echoes until stop is set (checked after every batch of completions
// and at least every stopCheck) and returns nil then, or an error if the
// queue breaks (a pop fails, which only a closed queue does). It allocates
// nothing.
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
		n, err := e.lib.WaitNext(e.res, stopCheck)
		if err == unix.ETIMEDOUT {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		for i := range e.res[:n] {
			if err := e.done(&e.res[i]); err != nil {
				return err
			}
			e.res[i] = libos.Result{} // drop the SGA reference
		}
	}
	return nil
}

// done handles one completion: a push retires, a pop is echoed and posted
// again in its place.
func (e *echoer) done(r *libos.Result) error {
	if r.Opcode == libos.OpPush {
		e.pushes--
		e.ctr.Completed++
		return nil
	}
	// A pop, or a failed operation: only the pop tokens tell which.
	j := slices.Index(e.pops, r.QT)
	if j < 0 { // a failed push
		e.pushes--
		e.ctr.PushFailed++
		return nil
	}
	if r.Opcode != libos.OpPop {
		return fmt.Errorf("pop failed: %w", errOr(r.Err))
	}
	sga := r.SGA
	_, err := e.lib.PushTo(e.qd, sga, sga.Addr) // its token comes back through WaitNext
	// Free at once: the frame stays reserved until the transmission ends.
	e.lib.SGAFree(sga)
	if err != nil {
		e.ctr.PushRefused++
	} else {
		e.ctr.Echoed++
		if e.pushes++; e.pushes > e.ctr.MaxPushes {
			e.ctr.MaxPushes = e.pushes
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
