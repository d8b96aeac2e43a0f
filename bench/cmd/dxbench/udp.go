package main

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"time"
)

// udpClientConfig describes one closed-loop UDP run.
type udpClientConfig struct {
	n, warmup   int           // round trips measured, and before measuring
	size        int           // payload bytes (>= 12)
	outstanding int           // datagrams in flight
	duration    time.Duration // stop early after this long (0: no limit)
	timeout     time.Duration // a lost datagram is declared after this
}

// maxLost is how many lost datagrams end a run as failed.
const maxLost = 200

var errTooManyLost = errors.New("too many datagrams lost: is the server up?")

// runResult is what every client reports.
type runResult struct {
	samples  []int64 // RTTs in ns (UDP/TCP rtt workloads)
	received int
	lost     int
	elapsed  time.Duration
	rate     float64 // requests/s (udp_pps), connections/s, or Gbit/s
}

// udpClient runs a closed loop over a connected datagram conn (Go's net or
// gVisor's gonet): every reply's slot gets the next request at once.
func udpClient(c net.Conn, cfg udpClientConfig) (runResult, error) {
	k := cfg.outstanding
	sent := make([]time.Time, k)
	seqs := make([]uint64, k)
	active := make([]bool, k)
	inflight := 0
	buf := make([]byte, cfg.size)
	rbuf := make([]byte, 2048)
	for i := 12; i < len(buf); i++ {
		buf[i] = byte(i)
	}
	var next uint64
	send := func(slot int) error {
		seqs[slot] = next
		next++
		if !active[slot] {
			active[slot] = true
			inflight++
		}
		binary.LittleEndian.PutUint64(buf[0:8], seqs[slot])
		binary.LittleEndian.PutUint32(buf[8:12], uint32(slot))
		sent[slot] = time.Now()
		_, err := c.Write(buf)
		return err
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
		c.SetReadDeadline(time.Now().Add(cfg.timeout))
		n, err := c.Read(rbuf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
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
			return res, err
		}
		now := time.Now()
		if n != cfg.size {
			continue
		}
		seq := binary.LittleEndian.Uint64(rbuf[0:8])
		slot := int(binary.LittleEndian.Uint32(rbuf[8:12]))
		if slot >= k || !active[slot] || seqs[slot] != seq {
			continue // stale
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
	res.elapsed = time.Since(start)
	res.rate = float64(res.received) / res.elapsed.Seconds()
	return res, nil
}

// udpEchoKernel answers every datagram on a kernel socket until the
// process is signalled. It allocates nothing per datagram.
func udpEchoKernel(c *net.UDPConn) error {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// udpEchoPacket answers every datagram on a net.PacketConn (gVisor's gonet).
func udpEchoPacket(c net.PacketConn) error {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		c.WriteTo(buf[:n], from)
	}
}
