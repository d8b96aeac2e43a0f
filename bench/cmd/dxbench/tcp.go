package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// TCP service ports, offset from the base port: echo (tcp_rtt), sink
// (tcp_bulk: counts bytes, answers the total when the client half-closes)
// and accept-close (tcp_connect).
const (
	tcpEcho = iota
	tcpSink
	tcpAcceptClose
)

// serveTCP runs one of the three services on l until l fails.
func serveTCP(l net.Listener, kind int) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		switch kind {
		case tcpAcceptClose:
			c.Close()
		case tcpEcho:
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		case tcpSink:
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], uint64(n))
				c.Write(b[:])
			}()
		}
	}
}

// dialer opens a TCP connection to the service (kernel or gVisor).
type dialer func() (net.Conn, error)

// tcpRTT runs n+warmup request/response exchanges of size bytes on one
// connection.
func tcpRTT(dial dialer, n, warmup, size int, duration time.Duration) (runResult, error) {
	c, err := dial()
	if err != nil {
		return runResult{}, err
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return tcpRTTOn(c, n, warmup, size, duration)
}

// tcpRTTOn is tcpRTT on an open connection (which it leaves open).
func tcpRTTOn(c net.Conn, n, warmup, size int, duration time.Duration) (runResult, error) {
	req, resp := make([]byte, size), make([]byte, size)
	res := runResult{samples: make([]int64, 0, n)}
	start := time.Now()
	for i := 0; i < n+warmup; i++ {
		if duration > 0 && time.Since(start) > duration {
			break
		}
		binary.LittleEndian.PutUint64(req, uint64(i))
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return res, err
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return res, err
		}
		if binary.LittleEndian.Uint64(resp) != uint64(i) {
			return res, fmt.Errorf("tcp_rtt: reply %d out of order", i)
		}
		if i >= warmup {
			res.samples = append(res.samples, int64(time.Since(t0)))
		}
		res.received++
	}
	res.elapsed = time.Since(start)
	res.rate = float64(res.received) / res.elapsed.Seconds()
	return res, nil
}

// closeWriter is a connection that can half-close (net.TCPConn, gonet.TCPConn).
type closeWriter interface{ CloseWrite() error }

// tcpBulk streams total bytes (stopping early after limit) and waits for the
// sink to confirm how many it read; the rate is in Gbit/s of confirmed bytes.
func tcpBulk(dial dialer, total int64, limit time.Duration) (runResult, error) {
	c, err := dial()
	if err != nil {
		return runResult{}, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	var sent int64
	for sent < total && (limit <= 0 || time.Since(start) < limit) {
		n := int64(len(buf))
		if total-sent < n {
			n = total - sent
		}
		w, err := c.Write(buf[:n])
		sent += int64(w)
		if err != nil {
			return runResult{}, err
		}
	}
	cw, ok := c.(closeWriter)
	if !ok {
		return runResult{}, errors.New("tcp_bulk: connection cannot half-close")
	}
	if err := cw.CloseWrite(); err != nil {
		return runResult{}, err
	}
	var b [8]byte
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return runResult{}, fmt.Errorf("tcp_bulk: sink total: %w", err)
	}
	got := int64(binary.LittleEndian.Uint64(b[:]))
	el := time.Since(start)
	if got != sent {
		return runResult{}, fmt.Errorf("tcp_bulk: sent %d bytes, sink read %d", sent, got)
	}
	return runResult{received: int(got), elapsed: el, rate: float64(got) * 8 / el.Seconds() / 1e9}, nil
}

// tcpConnect opens connections for d: each is accepted and closed by the
// server; the client reads the EOF and closes (so TIME_WAIT stays on the
// server). The rate is connections per second.
func tcpConnect(dial dialer, d time.Duration) (runResult, error) {
	var b [1]byte
	start := time.Now()
	res := runResult{}
	for time.Since(start) < d {
		c, err := dial()
		if err != nil {
			return res, err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(b[:]); err != io.EOF {
			c.Close()
			return res, fmt.Errorf("tcp_connect: want EOF, got %v", err)
		}
		c.Close()
		res.received++
	}
	res.elapsed = time.Since(start)
	res.rate = float64(res.received) / res.elapsed.Seconds()
	return res, nil
}
