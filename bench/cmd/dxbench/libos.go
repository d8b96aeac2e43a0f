package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/libos"
)

// libosUDPClient is udpClient on the demixdp libOS: requests are SGAs
// pushed with PushTo and freed at once (free-protection), replies come from
// one pending Pop; WaitNext drives everything, taking every completion the
// loop's last turn produced in one call.
func libosUDPClient(lib *libos.LibOS, local, remote netip.AddrPort, cfg udpClientConfig) (runResult, error) {
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		return runResult{}, err
	}
	// Every operation on qd is accounted for, so that none of its
	// completions is left for the next user of the libOS: pushes until
	// WaitNext reports them, the one pending pop (pop).
	var pop libos.QToken
	pushes := 0
	results := make([]libos.Result, 2*cfg.outstanding+1)
	defer func() {
		lib.CloseQueue(qd) // cancels the pop
		for deadline := time.Now().Add(2 * time.Second); (pop != 0 || pushes > 0) && time.Now().Before(deadline); {
			n, _ := lib.WaitNext(results, 100*time.Millisecond)
			for _, r := range results[:n] {
				if r.QT == pop {
					pop = 0
				} else {
					pushes--
				}
				if r.SGA != nil {
					lib.SGAFree(r.SGA)
				}
			}
		}
	}()
	if err := lib.Bind(qd, local); err != nil {
		return runResult{}, err
	}
	k := cfg.outstanding
	sent := make([]time.Time, k)
	seqs := make([]uint64, k)
	active := make([]bool, k)
	inflight := 0
	var next uint64
	send := func(slot int) error {
		sga, err := lib.SGAAlloc(cfg.size)
		if err != nil {
			return err
		}
		b := sga.Segs[0]
		seqs[slot] = next
		next++
		if !active[slot] {
			active[slot] = true
			inflight++
		}
		binary.LittleEndian.PutUint64(b[0:8], seqs[slot])
		binary.LittleEndian.PutUint32(b[8:12], uint32(slot))
		for i := 12; i < len(b); i++ {
			b[i] = byte(i)
		}
		sent[slot] = time.Now()
		_, err = lib.PushTo(qd, sga, remote) // its completion comes back through WaitNext
		lib.SGAFree(sga)
		if err == nil {
			pushes++
		}
		return err
	}
	if pop, err = lib.Pop(qd); err != nil { // one Pop pending; each reply posts the next
		return runResult{}, err
	}
	res := runResult{samples: make([]int64, 0, cfg.n)}
	total := cfg.n + cfg.warmup
	start := time.Now()
	for s := 0; s < k && s < total; s++ {
		if err := send(s); err != nil {
			return res, err
		}
	}
	done := 0
	for done < total {
		if cfg.duration > 0 && time.Since(start) > cfg.duration {
			break
		}
		n, err := lib.WaitNext(results, cfg.timeout)
		if errors.Is(err, unix.ETIMEDOUT) {
			if res.lost > maxLost {
				return res, errTooManyLost
			}
			// Everything in flight is declared lost and sent again.
			for s := 0; s < k; s++ {
				if active[s] {
					res.lost++
					if err := send(s); err != nil {
						return res, err
					}
				}
			}
			continue
		}
		if err != nil {
			return res, err
		}
		now := time.Now()
		for i := range results[:n] {
			r := &results[i]
			if r.QT != pop {
				pushes--
				if r.Opcode != libos.OpPush {
					return res, fmt.Errorf("libos: push failed: %w", r.Err)
				}
				continue
			}
			pop = 0 // completed: nothing of it is left to collect
			if r.Opcode != libos.OpPop {
				return res, fmt.Errorf("libos: pop failed: %w", r.Err)
			}
			b := r.SGA.Segs[0]
			ok := len(b) == cfg.size
			var seq uint64
			var slot int
			if ok {
				seq, slot = binary.LittleEndian.Uint64(b[0:8]), int(binary.LittleEndian.Uint32(b[8:12]))
				ok = slot < k && active[slot] && seqs[slot] == seq
			}
			lib.SGAFree(r.SGA)
			*r = libos.Result{}
			if pop, err = lib.Pop(qd); err != nil {
				return res, err
			}
			if !ok {
				continue
			}
			if done >= cfg.warmup && len(res.samples) < cfg.n {
				res.samples = append(res.samples, int64(now.Sub(sent[slot])))
			}
			done++
			res.received++
			active[slot] = false
			inflight--
			if done+inflight < total {
				if err := send(slot); err != nil {
					return res, err
				}
			}
		}
	}
	res.elapsed = time.Since(start)
	res.rate = float64(res.received) / res.elapsed.Seconds()
	return res, nil
}
