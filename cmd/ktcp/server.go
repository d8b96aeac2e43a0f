package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
)

// listen opens a kernel TCP listener and closes it on SIGINT/SIGTERM.
func listen(name, addr string) (*net.TCPListener, error) {
	if addr == "" {
		return nil, errors.New("-addr is required")
	}
	la, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp4", la)
	if err != nil {
		return nil, err
	}
	cli.OnSignal(func() { ln.Close() })
	fmt.Printf("%s: listening addr=%s\n", name, ln.Addr())
	return ln, nil
}

// accept loops until the listener is closed, running serve for each
// connection on its own goroutine, and waits for them all.
func accept(ln *net.TCPListener, serve func(*net.TCPConn)) {
	var wg sync.WaitGroup
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			serve(c)
		}()
	}
	wg.Wait()
}

func echoMain(args []string) int {
	fs := flag.NewFlagSet("ktcp echo", flag.ExitOnError)
	addr := fs.String("addr", "", "IP:PORT to listen on (required)")
	fs.Parse(args)
	ln, err := listen("ktcp echo", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ktcp echo:", err)
		return 2
	}
	var conns, bytes, errs atomic.Uint64
	accept(ln, func(c *net.TCPConn) {
		conns.Add(1)
		n, err := io.Copy(c, c)
		bytes.Add(uint64(n))
		if err != nil {
			errs.Add(1)
			return
		}
		c.CloseWrite()
		// Wait for the client's close so ours is not a reset.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
	})
	fmt.Printf("conns=%d bytes=%d errors=%d\n", conns.Load(), bytes.Load(), errs.Load())
	return 0
}

func sinkMain(args []string) int {
	fs := flag.NewFlagSet("ktcp sink", flag.ExitOnError)
	addr := fs.String("addr", "", "IP:PORT to listen on (required)")
	once := fs.Bool("once", false, "exit after the first connection")
	fs.Parse(args)
	ln, err := listen("ktcp sink", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ktcp sink:", err)
		return 2
	}
	var mu sync.Mutex
	accept(ln, func(c *net.TCPConn) {
		if *once {
			ln.Close()
		}
		h := sha256.New()
		start := time.Now()
		n, err := io.CopyBuffer(h, c, make([]byte, 256<<10))
		el := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fmt.Printf("error=%q bytes=%d\n", err.Error(), n)
			return
		}
		fmt.Printf("sha256=%x bytes=%d gbps=%.3f elapsed_s=%.3f\n", h.Sum(nil), n, gbps(n, el), el.Seconds())
	})
	return 0
}

// gbps is n bytes in d as Gbit/s.
func gbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds() / 1e9
}
