package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// fillRequest writes request seq of connection conn: bytes derived from
// all three and the run's seed, so a reply from the wrong request or
// connection is caught too.
func fillRequest(b []byte, seed uint64, conn, seq int) {
	x := seed ^ uint64(conn)<<40 ^ uint64(seq)*0x9e3779b97f4a7c15
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
}

// rttSummary is the one-line result of a latency run.
func rttSummary(rtts []time.Duration, sent, received, bad, conns int, elapsed time.Duration) string {
	slices.Sort(rtts)
	pct := func(q float64) string {
		if len(rtts) == 0 {
			return "0"
		}
		d := rtts[min(len(rtts)-1, int(q*float64(len(rtts))))]
		return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64)
	}
	rps := 0.0
	if elapsed > 0 {
		rps = float64(len(rtts)) / elapsed.Seconds()
	}
	return fmt.Sprintf("rtt_p50_us=%s rtt_p99_us=%s rtt_p999_us=%s rps=%.0f sent=%d received=%d bad=%d conns=%d elapsed_s=%.3f",
		pct(0.50), pct(0.99), pct(0.999), rps, sent, received, bad, conns, elapsed.Seconds())
}

func pingpongMain(args []string) int {
	fs := flag.NewFlagSet("ktcp pingpong", flag.ExitOnError)
	remote := fs.String("remote", "", "the echo server, IP:PORT (required)")
	n := fs.Int("n", 10000, "measured round trips, over all connections")
	size := fs.Int("size", 64, "request bytes")
	conns := fs.Int("conns", 1, "connections, each with one request outstanding")
	warmup := fs.Int("warmup", 10, "unmeasured round trips per connection first")
	fs.Parse(args)
	if *remote == "" || *n < 1 || *size < 1 || *conns < 1 || *conns > *n || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "ktcp pingpong: need -remote, -n >= -conns >= 1, -size >= 1, -warmup >= 0")
		return 2
	}
	seed := rand.Uint64()
	type part struct {
		rtts            []time.Duration
		sent, rcvd, bad int
		err             error
	}
	parts := make([]part, *conns)
	cs := make([]*net.TCPConn, *conns)
	for i := range cs {
		c, err := net.Dial("tcp4", *remote)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ktcp pingpong:", err)
			return 2
		}
		cs[i] = c.(*net.TCPConn)
		cs[i].SetNoDelay(true)
	}
	// Warm-up runs unmeasured; the clock starts when every connection is
	// through it.
	var wg, warm, start sync.WaitGroup
	start.Add(1)
	for i, c := range cs {
		per := *n / *conns
		if i < *n%*conns {
			per++
		}
		wg.Add(1)
		warm.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			warmed := func() { once.Do(warm.Done) }
			defer warmed()
			p := &parts[i]
			req, rep := make([]byte, *size), make([]byte, *size)
			p.rtts = make([]time.Duration, 0, per)
			for seq := 0; seq < *warmup+per; seq++ {
				if seq == *warmup {
					warmed()
					start.Wait()
				}
				fillRequest(req, seed, i, seq)
				t := time.Now()
				if _, err := c.Write(req); err != nil {
					p.err = err
					return
				}
				p.sent++
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, rep); err != nil {
					p.err = err
					return
				}
				d := time.Since(t)
				p.rcvd++
				if !bytes.Equal(req, rep) {
					p.bad++
				}
				if seq >= *warmup {
					p.rtts = append(p.rtts, d)
				}
			}
			c.CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if k, err := io.Copy(io.Discard, c); err == nil && k > 0 {
				p.bad++ // bytes nobody asked for
			}
		}()
	}
	warm.Wait()
	t0 := time.Now()
	start.Done()
	wg.Wait()
	elapsed := time.Since(t0)
	var all []time.Duration
	var sent, rcvd, bad int
	var errs []error
	for _, p := range parts {
		all = append(all, p.rtts...)
		sent, rcvd, bad = sent+p.sent, rcvd+p.rcvd, bad+p.bad
		if p.err != nil {
			errs = append(errs, p.err)
		}
	}
	for _, c := range cs {
		c.Close()
	}
	fmt.Println(rttSummary(all, sent, rcvd, bad, *conns, elapsed))
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "ktcp pingpong:", err)
		return 2
	}
	if bad > 0 {
		return 1
	}
	return 0
}

// bulkBlock is the bulk stream's pattern: random bytes from the seed,
// repeated; its odd length makes a misplaced segment show in the hash.
func bulkBlock(seed uint64) []byte {
	b := make([]byte, 1<<20+4093)
	r := rand.New(rand.NewPCG(seed, 0x62756c6b))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func bulkMain(args []string) int {
	fs := flag.NewFlagSet("ktcp bulk", flag.ExitOnError)
	remote := fs.String("remote", "", "the sink, IP:PORT (required)")
	total := fs.Int64("bytes", 100<<20, "bytes to send")
	fs.Parse(args)
	if *remote == "" || *total < 1 {
		fmt.Fprintln(os.Stderr, "ktcp bulk: need -remote and -bytes >= 1")
		return 2
	}
	block := bulkBlock(rand.Uint64())
	c, err := net.Dial("tcp4", *remote)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ktcp bulk:", err)
		return 2
	}
	defer c.Close()
	h := sha256.New()
	t0 := time.Now()
	off := 0
	for left := *total; left > 0; {
		k := int(min(left, int64(256<<10), int64(len(block)-off)))
		h.Write(block[off : off+k])
		if _, err := c.Write(block[off : off+k]); err != nil {
			fmt.Fprintln(os.Stderr, "ktcp bulk:", err)
			return 2
		}
		off = (off + k) % len(block)
		left -= int64(k)
	}
	c.(*net.TCPConn).CloseWrite()
	// The sink closes once it has read everything.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		fmt.Fprintln(os.Stderr, "ktcp bulk: waiting for the sink's close:", err)
		return 2
	}
	el := time.Since(t0)
	fmt.Printf("gbps=%.3f bytes=%d sha256=%x elapsed_s=%.3f\n", gbps(*total, el), *total, h.Sum(nil), el.Seconds())
	return 0
}
