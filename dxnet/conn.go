package dxnet

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/libos"
)

// conn is what TCPConn and UDPConn share: the application's side of one
// socket of the loop, its read, write and close calls, deadlines and
// addresses. Reads are serialized among themselves by rmu, writes by wmu,
// so a read and a write run at the same time.
type conn struct {
	s            *Stack
	k            *sock // the loop's side; only named in requests
	laddr, raddr net.Addr

	rmu, wmu   sync.Mutex
	rd, wr, cl request
	rdl, wdl   deadline
	closed     atomic.Bool
}

func (c *conn) init(s *Stack, k *sock, laddr, raddr net.Addr) {
	c.s, c.k, c.laddr, c.raddr = s, k, laddr, raddr
	c.rd, c.wr, c.cl = newRequest(), newRequest(), newRequest()
	c.rdl.r, c.wdl.r = &c.rd, &c.wr
}

// run makes one call of kind on r under deadline d (Stack.do): it starts
// the call, unless the deadline has passed, which fails it before it is
// queued and frees sga, which the stack takes in every case. Inputs of r
// beyond buf (a UDP write's address) are set by the caller before; start
// leaves them alone.
func (c *conn) run(r *request, d *deadline, kind reqKind, b []byte, sga *libos.SGA) error {
	if d.expired() {
		r.n = 0
		if sga != nil {
			c.s.FreeSGA(sga) // never queued
		}
		return errTimeout
	}
	gen := r.start()
	r.buf = b
	err := c.s.do(item{r: r, gen: gen, kind: kind, k: c.k, sga: sga}, d, &c.closed)
	r.buf = nil
	return err
}

// close interrupts the blocked calls and closes the loop's socket; false
// if it was closed already.
func (c *conn) close() bool {
	if !c.closed.CompareAndSwap(false, true) {
		return false
	}
	c.rd.interrupt(net.ErrClosed)
	c.wr.interrupt(net.ErrClosed)
	c.rdl.stop()
	c.wdl.stop()
	r := &c.cl
	gen := r.start()
	if c.s.submit(item{r: r, gen: gen, kind: kClose, k: c.k}) {
		<-r.done // the loop finishes every queued call, also when it stops
	}
	return true
}

// LocalAddr returns the local address: a *net.TCPAddr or *net.UDPAddr.
func (c *conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address (a *net.TCPAddr or *net.UDPAddr),
// or nil for a UDP socket that is not connected.
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of reads (Read, ReadFrom, ReadSGA...):
// absolute, changeable at any time (also while a read waits, which then
// obeys the new one); the zero time means none.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of writes, as SetReadDeadline does for
// reads.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

var (
	_ net.Conn       = (*TCPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
	_ net.PacketConn = (*UDPConn)(nil)
)
