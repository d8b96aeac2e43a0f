package main

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/internal/cli"
)

// streamDrain bounds the wait for the last transmit completions of a
// stream: the kernel completes a copy-mode frame as soon as the sendto
// that carried it returns, so this only matters if it stopped doing so.
const streamDrain = time.Second

// stream is the tx-only mode (-stream): it posts frames of the stream
// format (internal/cli) to the TX ring as fast as the ring and the
// completions allow, until want frames are sent, stop reports true or the
// deadline passes; nothing is received. Every transmit frame gets a copy of
// the template once; a frame sent again only has its sequence number and
// checksum rewritten (stampHead). It returns the time from the first post
// to the last completion. One goroutine only; it allocates nothing.
func (c *client) stream(stop func() bool, deadline time.Duration) time.Duration {
	for _, f := range c.txFree {
		copy(c.u.Frame(f), c.t.frame)
	}
	c.start = time.Now()
	for turn := uint64(0); c.st.sent < c.want; turn++ {
		c.reap()
		c.streamSend()
		if turn&1023 == 0 && (stop() || (deadline > 0 && time.Duration(c.now()) > deadline)) {
			break
		}
	}
	end := time.Now()
	for c.inflightTX() && time.Since(end) < streamDrain {
		c.kick()
		c.reap()
	}
	return time.Since(c.start)
}

// streamSend posts up to one batch of stream frames and kicks.
func (c *client) streamSend() {
	n := min(uint64(len(c.txFree)), c.want-c.st.sent, uint64(c.batch))
	if n > 0 {
		idx, got := c.txr.Reserve(uint32(n))
		if got == 0 {
			c.st.txFull++
		}
		for i := uint32(0); i < got; i++ {
			f := c.txFree[len(c.txFree)-1]
			c.txFree = c.txFree[:len(c.txFree)-1]
			c.t.stampHead(c.u.Frame(f), c.st.sent, cli.StreamMark)
			c.txr.Set(idx+i, unix.XDPDesc{Addr: c.u.Addr(f), Len: uint32(len(c.t.frame))})
			c.st.sent++
		}
		c.txr.Submit(got)
	}
	if c.inflightTX() {
		c.kick()
	}
}
