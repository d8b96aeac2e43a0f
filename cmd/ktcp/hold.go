package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// holdTimeout bounds one dial and one echo on one connection: a safety net
// against a hang, far beyond what a healthy peer needs even after several
// SYN retransmissions (1+2+4+8 s).
const holdTimeout = 60 * time.Second

// holder is the state of `ktcp hold`: the connections it opened, in the
// order of their index (which also picks the source address).
type holder struct {
	conns    []*net.TCPConn
	parallel int
	size     int
	seed     uint64
	round    int
}

// holdMain opens -conns connections to -remote, spread round-robin over
// the source addresses of -src, and holds them. It prints
//
//	established conns=.. addrs=.. elapsed_s=..
//
// (after a first line "dialling conns=.. remote=..") and then obeys the
// commands it reads on stdin, one per line:
//
//	echo   on every connection write -size bytes (derived from the seed,
//	       the connection and the round) and read them back, checking
//	       every byte; prints "echoed conns=.. bytes=.. bad=.. elapsed_s=.."
//	close  close every connection; prints "closed conns=.. elapsed_s=.."
//	       and exits
//
// End of input closes too. A connection that cannot be opened or echoed
// is an error (exit 2); a reply that differs from its request exits 1
// after the close. It is the kernel peer of the libOS's scale tests: one
// process per source address keeps each under its file descriptor limit.
func holdMain(args []string) int {
	fs := flag.NewFlagSet("ktcp hold", flag.ExitOnError)
	remote := fs.String("remote", "", "the server, IP:PORT (required)")
	src := fs.String("src", "", "source addresses, comma separated (default: the kernel picks one)")
	n := fs.Int("conns", 1000, "connections to open and hold")
	parallel := fs.Int("parallel", 64, "connections dialled (or echoed) at a time")
	size := fs.Int("size", 16, "bytes each echo round writes per connection")
	fs.Parse(args)
	ra, err := netip.ParseAddrPort(*remote)
	if err != nil || *n < 1 || *parallel < 1 || *size < 1 {
		fmt.Fprintln(os.Stderr, "ktcp hold: need -remote IP:PORT, -conns >= 1, -parallel >= 1, -size >= 1")
		return 2
	}
	var srcs []netip.Addr
	if *src != "" {
		for _, s := range strings.Split(*src, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || !a.Is4() {
				fmt.Fprintf(os.Stderr, "ktcp hold: -src %q: not an IPv4 address\n", s)
				return 2
			}
			srcs = append(srcs, a)
		}
	}
	h := &holder{conns: make([]*net.TCPConn, *n), parallel: *parallel, size: *size, seed: rand.Uint64()}
	defer h.closeAll()
	fmt.Printf("dialling conns=%d remote=%s\n", *n, ra)
	start := time.Now()
	if err := h.dialAll(ra, srcs); err != nil {
		fmt.Fprintln(os.Stderr, "ktcp hold:", err)
		return 2
	}
	fmt.Printf("established conns=%d addrs=%d elapsed_s=%.3f\n", len(h.conns), max(len(srcs), 1), time.Since(start).Seconds())
	bad := 0
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch cmd := strings.TrimSpace(sc.Text()); cmd {
		case "echo":
			t0 := time.Now()
			nb, b, err := h.echo()
			if err != nil {
				fmt.Fprintln(os.Stderr, "ktcp hold:", err)
				return 2
			}
			bad += b
			fmt.Printf("echoed conns=%d bytes=%d bad=%d elapsed_s=%.3f\n", len(h.conns), nb, b, time.Since(t0).Seconds())
		case "close":
			t0 := time.Now()
			h.closeAll()
			fmt.Printf("closed conns=%d elapsed_s=%.3f\n", len(h.conns), time.Since(t0).Seconds())
			return exitBad(bad)
		case "":
		default:
			fmt.Fprintf(os.Stderr, "ktcp hold: unknown command %q (echo or close)\n", cmd)
		}
	}
	return exitBad(bad)
}

func exitBad(bad int) int {
	if bad > 0 {
		return 1
	}
	return 0
}

// each runs f(i) for every connection index, h.parallel at a time, and
// returns the first error.
func (h *holder) each(f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < min(h.parallel, len(h.conns)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(h.conns) {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// dialAll opens every connection; connection i binds to srcs[i%len(srcs)]
// with IP_BIND_ADDRESS_NO_PORT, so the port is chosen at connect time and
// only has to be unique per 4-tuple.
func (h *holder) dialAll(remote netip.AddrPort, srcs []netip.Addr) error {
	ra := net.TCPAddrFromAddrPort(remote)
	return h.each(func(i int) error {
		d := net.Dialer{Timeout: holdTimeout}
		if len(srcs) > 0 {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(srcs[i%len(srcs)], 0))
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
				})
				return errors.Join(err, serr)
			}
		}
		c, err := d.Dial("tcp4", ra.String())
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		h.conns[i] = c.(*net.TCPConn)
		return nil
	})
}

// fillHold writes the bytes connection i sends in round r.
func fillHold(b []byte, seed uint64, i, r int) {
	fillRequest(b, seed^uint64(r)<<52, i, r)
}

// echo runs one echo round on every connection. It returns the bytes
// echoed and how many replies differed from their request.
func (h *holder) echo() (n int64, bad int, err error) {
	h.round++
	r := h.round
	var total, mismatched atomic.Int64
	err = h.each(func(i int) error {
		c := h.conns[i]
		req, rep := make([]byte, h.size), make([]byte, h.size)
		fillHold(req, h.seed, i, r)
		c.SetDeadline(time.Now().Add(holdTimeout))
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("connection %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(c, rep); err != nil {
			return fmt.Errorf("connection %d: read: %w", i, err)
		}
		if !bytes.Equal(req, rep) {
			mismatched.Add(1)
		}
		total.Add(int64(len(rep)))
		return nil
	})
	return total.Load(), int(mismatched.Load()), err
}

// closeAll closes every open connection (a FIN each: nothing is left
// unread). Calling it again does nothing.
func (h *holder) closeAll() {
	for i, c := range h.conns {
		if c != nil {
			c.Close()
			h.conns[i] = nil
		}
	}
}
