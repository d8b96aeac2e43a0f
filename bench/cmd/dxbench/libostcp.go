package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/libos"
)

// libosConn is one accepted connection of the libOS TCP server.
type libosConn struct {
	open   bool
	kind   int        // tcpEcho, tcpSink
	pushes int        // pushes not yet completed
	held   *libos.SGA // an echo refused with EAGAIN, pushed again later
	eof    bool       // the peer has closed its side
	count  uint64     // sink: bytes read
}

// libosTCPServer serves the three TCP services (echo, sink, accept-close)
// on ports base, base+1 and base+2 of the libOS until stop is set. It calls
// ready once the listeners are up. One goroutine drives everything through
// WaitAny; the echo pushes back the very SGA it popped (zero copy) and,
// when the send buffer or the UMEM is full (EAGAIN), holds it and stops
// popping that connection until a push completes, so the receive window
// closes instead of frames running out.
func libosTCPServer(lib *libos.LibOS, base netip.AddrPort, ready func(), stop *atomic.Bool) error {
	var lqd [3]libos.QD
	toks := make([]libos.QToken, 0, 256)
	for k := tcpEcho; k <= tcpAcceptClose; k++ {
		qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		ap := netip.AddrPortFrom(base.Addr(), base.Port()+uint16(k))
		if err := lib.Bind(qd, ap); err != nil {
			return fmt.Errorf("bind %v: %w", ap, err)
		}
		if err := lib.Listen(qd, 1024); err != nil {
			return fmt.Errorf("listen %v: %w", ap, err)
		}
		qt, err := lib.Accept(qd)
		if err != nil {
			return err
		}
		lqd[k] = qd
		toks = append(toks, qt)
	}
	ready()
	var conns []libosConn // indexed by QD
	conn := func(qd libos.QD) *libosConn {
		if int(qd) < len(conns) && conns[qd].open {
			return &conns[qd]
		}
		return nil
	}
	closeConn := func(qd libos.QD) {
		c := &conns[qd]
		if c.held != nil {
			lib.SGAFree(c.held)
		}
		*c = libosConn{}
		lib.CloseQueue(qd) // its pending tokens complete with ECANCELED
	}
	// held counts refused pushes since the last retry sweep (an upper
	// bound on the connections holding one).
	held := 0
	// push sends sga on qd and asks for the next data; EAGAIN holds it.
	push := func(qd libos.QD, c *libosConn, sga *libos.SGA, popNext bool) error {
		qt, err := lib.Push(qd, sga)
		if errors.Is(err, unix.EAGAIN) {
			c.held = sga
			held++
			return nil
		}
		lib.SGAFree(sga)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		c.pushes++
		toks = append(toks, qt)
		if popNext {
			pop, err := lib.Pop(qd)
			if err != nil {
				return err
			}
			toks = append(toks, pop)
		}
		return nil
	}
	// retryHeld pushes c's held SGA again.
	retryHeld := func(qd libos.QD, c *libosConn) error {
		if c.held == nil {
			return nil
		}
		sga := c.held
		c.held = nil
		return push(qd, c, sga, c.kind == tcpEcho)
	}
	defer func() {
		for qd := range conns {
			if conns[qd].open {
				closeConn(libos.QD(qd))
			}
		}
		for _, qd := range lqd {
			lib.CloseQueue(qd)
		}
	}()
	for !stop.Load() {
		// Poll for held pushes often; otherwise wake only to check stop
		// (an idle server must cost next to nothing).
		timeout := 100 * time.Millisecond
		if held > 0 {
			timeout = time.Millisecond
		}
		i, r, err := lib.WaitAny(toks, timeout)
		if errors.Is(err, unix.ETIMEDOUT) {
			if held == 0 {
				continue
			}
			// Pushes refused for lack of frames may go now.
			held = 0
			for qd := range conns {
				if c := &conns[qd]; c.open {
					if err := retryHeld(libos.QD(qd), c); err != nil {
						return err
					}
					if c.held != nil {
						held++
					}
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		toks = append(toks[:i], toks[i+1:]...)
		switch r.Opcode {
		case libos.OpAccept:
			kind := -1
			for k, qd := range lqd {
				if qd == r.QD {
					kind = k
				}
			}
			next, err := lib.Accept(r.QD)
			if err != nil {
				return err
			}
			toks = append(toks, next)
			if kind == tcpAcceptClose {
				lib.CloseQueue(r.NewQD)
				continue
			}
			for int(r.NewQD) >= len(conns) {
				conns = append(conns, libosConn{})
			}
			conns[r.NewQD] = libosConn{open: true, kind: kind}
			if kind == tcpEcho {
				lib.SetNoDelay(r.NewQD, true)
			}
			pop, err := lib.Pop(r.NewQD)
			if err != nil {
				return err
			}
			toks = append(toks, pop)
		case libos.OpPop:
			c := conn(r.QD)
			if c == nil {
				lib.SGAFree(r.SGA)
				continue
			}
			if len(r.SGA.Segs) == 0 { // end of stream
				lib.SGAFree(r.SGA)
				c.eof = true
				switch {
				case c.kind == tcpSink:
					// Answer the byte count; close once it is acknowledged.
					sga, err := lib.SGAAlloc(8)
					if err != nil {
						return err
					}
					binary.LittleEndian.PutUint64(sga.Segs[0], c.count)
					if err := push(r.QD, c, sga, false); err != nil {
						return err
					}
				case c.pushes == 0 && c.held == nil:
					closeConn(r.QD)
				}
				continue
			}
			if c.kind == tcpEcho {
				if err := push(r.QD, c, r.SGA, true); err != nil {
					return err
				}
				continue
			}
			for _, s := range r.SGA.Segs {
				c.count += uint64(len(s))
			}
			lib.SGAFree(r.SGA)
			pop, err := lib.Pop(r.QD)
			if err != nil {
				return err
			}
			toks = append(toks, pop)
		case libos.OpPush:
			c := conn(r.QD)
			if c == nil {
				continue
			}
			c.pushes--
			if err := retryHeld(r.QD, c); err != nil {
				return err
			}
			if c.eof && c.pushes == 0 && c.held == nil {
				closeConn(r.QD)
			}
		case libos.OpFailed:
			if c := conn(r.QD); c != nil && !errors.Is(r.Err, unix.ECANCELED) {
				closeConn(r.QD)
			}
		}
	}
	return nil
}

// libosDial connects a new TCP queue to remote and waits for the handshake.
func libosDial(lib *libos.LibOS, remote netip.AddrPort) (libos.QD, error) {
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err != nil {
		return 0, err
	}
	ct, err := lib.Connect(qd, remote)
	if err != nil {
		lib.CloseQueue(qd)
		return 0, fmt.Errorf("connect %v: %w", remote, err)
	}
	r, err := lib.Wait(ct, 5*time.Second)
	if err == nil && r.Opcode != libos.OpConnect {
		err = r.Err
	}
	if err != nil {
		lib.CloseQueue(qd)
		return 0, fmt.Errorf("connect %v: %w", remote, err)
	}
	return qd, nil
}

// errTimeout marks a libOS client that waited too long for the server.
var errTimeout = errors.New("no progress for 5 s")

// libosTCPRTT runs n+warmup request/response exchanges of size bytes on one
// libOS connection (Nagle off); an RTT runs from the push to the last byte
// of the echo.
func libosTCPRTT(lib *libos.LibOS, remote netip.AddrPort, n, warmup, size int, duration time.Duration) (runResult, error) {
	qd, err := libosDial(lib, remote)
	if err != nil {
		return runResult{}, err
	}
	defer lib.CloseQueue(qd)
	lib.SetNoDelay(qd, true)
	pop, err := lib.Pop(qd)
	if err != nil {
		return runResult{}, err
	}
	toks := make([]libos.QToken, 1, 64)
	toks[0] = pop
	resp := make([]byte, size)
	res := runResult{samples: make([]int64, 0, n)}
	start := time.Now()
	for i := 0; i < n+warmup; i++ {
		if duration > 0 && time.Since(start) > duration {
			break
		}
		sga, err := lib.SGAAlloc(size)
		if err != nil {
			return res, err
		}
		b := sga.Segs[0]
		binary.LittleEndian.PutUint64(b, uint64(i))
		for j := 8; j < len(b); j++ {
			b[j] = byte(j)
		}
		t0 := time.Now()
		qt, err := lib.Push(qd, sga)
		lib.SGAFree(sga)
		if err != nil {
			return res, fmt.Errorf("tcp_rtt: push: %w", err)
		}
		toks = append(toks, qt)
		got := 0
		for got < size {
			k, r, err := lib.WaitAny(toks, 5*time.Second)
			if errors.Is(err, unix.ETIMEDOUT) {
				return res, fmt.Errorf("tcp_rtt: exchange %d: %w", i, errTimeout)
			}
			if err != nil {
				return res, err
			}
			toks = append(toks[:k], toks[k+1:]...)
			switch r.Opcode {
			case libos.OpPush:
			case libos.OpPop:
				if len(r.SGA.Segs) == 0 {
					lib.SGAFree(r.SGA)
					return res, errors.New("tcp_rtt: the server closed the connection")
				}
				for _, s := range r.SGA.Segs {
					got += copy(resp[min(got, size):], s)
				}
				lib.SGAFree(r.SGA)
				pop, err := lib.Pop(qd)
				if err != nil {
					return res, err
				}
				toks = append(toks, pop)
			default:
				return res, fmt.Errorf("tcp_rtt: %w", r.Err)
			}
		}
		el := time.Since(t0)
		if got != size || binary.LittleEndian.Uint64(resp) != uint64(i) {
			return res, fmt.Errorf("tcp_rtt: reply %d: %d bytes, out of order or corrupt", i, got)
		}
		if i >= warmup {
			res.samples = append(res.samples, int64(el))
		}
		res.received++
	}
	res.elapsed = time.Since(start)
	res.rate = float64(res.received) / res.elapsed.Seconds()
	return res, nil
}

// libosTCPBulk streams total bytes (stopping early after limit) to the sink
// in pushes of up to 16 segments, keeping up to inflight pushes
// unacknowledged, then shuts its side down and reads the sink's count. The
// payload is not written: the frames go out as SGAAlloc returns them, as
// the kernel client sends one untouched buffer. The rate is in Gbit/s of
// bytes the sink confirmed, over the time until its answer.
func libosTCPBulk(lib *libos.LibOS, remote netip.AddrPort, total int64, limit time.Duration, inflight int) (runResult, error) {
	qd, err := libosDial(lib, remote)
	if err != nil {
		return runResult{}, err
	}
	defer lib.CloseQueue(qd)
	pop, err := lib.Pop(qd)
	if err != nil {
		return runResult{}, err
	}
	toks := make([]libos.QToken, 1, inflight+2)
	toks[0] = pop
	chunk := int64(16 * lib.SegmentSize())
	var sent int64
	var answer [8]byte
	got, pushes, eof, shut := 0, 0, false, false
	start := time.Now()
	for !eof || pushes > 0 {
		for !shut && pushes < inflight && sent < total && (limit <= 0 || time.Since(start) < limit) {
			size := min(chunk, total-sent)
			sga, err := lib.SGAAlloc(int(size))
			if errors.Is(err, unix.ENOBUFS) {
				break // wait for completions
			}
			if err != nil {
				return runResult{}, err
			}
			qt, err := lib.Push(qd, sga)
			lib.SGAFree(sga)
			if errors.Is(err, unix.EAGAIN) {
				break // send buffer or frames full: wait for completions
			}
			if err != nil {
				return runResult{}, fmt.Errorf("tcp_bulk: push: %w", err)
			}
			toks = append(toks, qt)
			pushes++
			sent += size
		}
		if !shut && (sent >= total || (limit > 0 && time.Since(start) >= limit)) {
			if err := lib.Shutdown(qd); err != nil {
				return runResult{}, fmt.Errorf("tcp_bulk: shutdown: %w", err)
			}
			shut = true
		}
		k, r, err := lib.WaitAny(toks, 5*time.Second)
		if errors.Is(err, unix.ETIMEDOUT) {
			return runResult{}, fmt.Errorf("tcp_bulk: %d bytes sent, %d pushes pending: %w", sent, pushes, errTimeout)
		}
		if err != nil {
			return runResult{}, err
		}
		toks = append(toks[:k], toks[k+1:]...)
		switch r.Opcode {
		case libos.OpPush:
			pushes--
		case libos.OpPop:
			if len(r.SGA.Segs) == 0 {
				eof = true
			}
			for _, s := range r.SGA.Segs {
				got += copy(answer[min(got, 8):], s)
			}
			lib.SGAFree(r.SGA)
			if !eof {
				pop, err := lib.Pop(qd)
				if err != nil {
					return runResult{}, err
				}
				toks = append(toks, pop)
			}
		default:
			return runResult{}, fmt.Errorf("tcp_bulk: %w", r.Err)
		}
	}
	el := time.Since(start)
	if got != 8 {
		return runResult{}, fmt.Errorf("tcp_bulk: the sink answered %d bytes, want 8", got)
	}
	n := int64(binary.LittleEndian.Uint64(answer[:]))
	if n != sent {
		return runResult{}, fmt.Errorf("tcp_bulk: sent %d bytes, sink read %d", sent, n)
	}
	return runResult{received: int(n), elapsed: el, rate: float64(n) * 8 / el.Seconds() / 1e9}, nil
}

// libosTCPConnect opens libOS connections for d: the server accepts and
// closes each, the client reads the end of stream and closes, so
// TIME_WAIT stays on the server. The rate is connections per second.
func libosTCPConnect(lib *libos.LibOS, remote netip.AddrPort, d time.Duration) (runResult, error) {
	res := runResult{}
	start := time.Now()
	for time.Since(start) < d {
		qd, err := libosDial(lib, remote)
		if err != nil {
			return res, fmt.Errorf("tcp_connect after %d: %w", res.received, err)
		}
		pop, err := lib.Pop(qd)
		if err != nil {
			lib.CloseQueue(qd)
			return res, err
		}
		r, err := lib.Wait(pop, 5*time.Second)
		if err == nil && r.Opcode != libos.OpPop {
			err = r.Err
		}
		if err == nil {
			eof := len(r.SGA.Segs) == 0
			lib.SGAFree(r.SGA)
			if !eof {
				err = errors.New("data instead of the end of stream")
			}
		}
		lib.CloseQueue(qd)
		if err != nil {
			return res, fmt.Errorf("tcp_connect: want the end of stream: %w", err)
		}
		res.received++
	}
	res.elapsed = time.Since(start)
	res.rate = float64(res.received) / res.elapsed.Seconds()
	return res, nil
}
