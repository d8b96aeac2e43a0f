package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// The -api net and -kernel server: github.com/tidwall/redcon, unchanged,
// serving the same DB on a net.Listener, dxnet's (AF_XDP and the libOS's
// TCP) or the kernel's. The listener is the one thing the two differ in.
//
// redcon reads requests into a buffer and parses them itself; in front of
// it each connection gets a guard (guardConn) that runs kv's own parser
// over the bytes in Discard mode, so that both APIs refuse the same input
// the same way: a protocol error (inline commands, a malformed header, a
// bulk longer than -maxvalue, a request over -max-request) reaches redcon
// only after the requests before it, then the guard answers "-ERR Protocol
// error: ..." and the connection closes. redcon therefore never buffers
// more than one bounded request. On the reply side the handler flushes
// redcon's buffer once it holds parkAt bytes, resets a connection whose
// reply would exceed -max-unsent, and every write has a deadline of
// -stall-timeout: a client that stops reading is reset when it passes.

// netCounters are the net server's counters (atomic: redcon runs a
// goroutine per connection).
type netCounters struct {
	Accepted       atomic.Uint64
	Closed         atomic.Uint64
	MaxActive      atomic.Uint64
	Active         atomic.Int64
	ProtocolErrors atomic.Uint64
	SlowClosed     atomic.Uint64
	StallClosed    atomic.Uint64
}

type netServer struct {
	db     *DB
	ctr    netCounters
	queues []netQueue // one per listener: per NIC queue (dxnet), or the kernel's one

	maxValue, maxRequest, maxUnsent int
	stall                           time.Duration
}

// netQueue is one listener's: a NIC queue's with dxnet (-queues), the
// kernel's with -kernel.
type netQueue struct {
	id       int // the NIC queue id (-1: the kernel's listener)
	accepted atomic.Uint64
}

// serve runs one redcon server per listener of lns (lns[i] is NIC queue
// ids[i]'s, or the kernel's with id -1), all on the one DB, until every
// listener is closed; it then closes every connection and returns. The
// expiry sweep is one goroutine for every shard, not one per key.
func (s *netServer) serve(lns []net.Listener, ids []int) error {
	s.queues = make([]netQueue, len(lns))
	stop := make(chan struct{})
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		sw := NewSweeper(s.db.Store, 0, 1)
		t := time.NewTicker(SweepEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sw.Sweep(SweepBudget)
			case <-stop:
				return
			}
		}
	}()
	errs := make([]error, len(lns))
	var wg sync.WaitGroup
	for i, ln := range lns {
		s.queues[i].id = ids[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			accept := func(conn redcon.Conn) bool { return s.accept(conn, i) }
			errs[i] = redcon.Serve(guardListener{ln, s}, s.handle, accept, s.closed)
		}()
	}
	wg.Wait()
	close(stop)
	<-sweepDone
	return errors.Join(errs...)
}

// accept sets up a connection of listener qi: its session on the DB (the
// commands run on the connection's goroutine, on the shared store).
func (s *netServer) accept(conn redcon.Conn, qi int) bool {
	id := s.ctr.Accepted.Add(1)
	s.queues[qi].accepted.Add(1)
	n := s.ctr.Active.Add(1)
	for {
		m := s.ctr.MaxActive.Load()
		if uint64(n) <= m || s.ctr.MaxActive.CompareAndSwap(m, uint64(n)) {
			break
		}
	}
	nc := &netClient{Client: Client{ID: int64(id), Queue: s.queues[qi].id}, x: s.db.NewSession(qi)}
	if nconn := conn.NetConn(); nconn != nil {
		nc.Remote, nc.Local = addrPort(nconn.RemoteAddr()), addrPort(nconn.LocalAddr())
	}
	conn.SetContext(nc)
	return true
}

func (s *netServer) closed(conn redcon.Conn, err error) {
	if nc, ok := conn.Context().(*netClient); ok {
		nc.x.Close()
	}
	s.ctr.Active.Add(-1)
	s.ctr.Closed.Add(1)
}

// addrPort returns a's address and port, or the zero value.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// netClient is a connection's state: the commands' Client, its session
// and the reply adapter, kept together so a request allocates none of
// them.
type netClient struct {
	Client
	x    *Session
	r    redconReply
	args Args
}

// handle runs one request. No lock of the server's is taken: the store
// locks the shard of the request's key for the command alone, and the
// reply goes into redcon's buffer after that.
func (s *netServer) handle(conn redcon.Conn, cmd redcon.Command) {
	nc := conn.Context().(*netClient)
	nc.r.c = conn
	nc.args.V = cmd.Args
	nc.args.Own = nc.own
	nc.x.Exec(&nc.Client, &nc.args, &nc.r)
	nc.args.V = nil
	w := redcon.BaseWriter(conn)
	if pending := len(w.Buffer()); pending > s.maxUnsent {
		s.ctr.SlowClosed.Add(1)
		reset(conn.NetConn())
		conn.Close()
		return
	} else if pending >= parkAt || nc.Quit {
		if err := w.Flush(); err != nil {
			conn.Close()
			return
		}
	}
	if nc.Quit {
		conn.Close()
	}
}

// own lets SET adopt a large value: redcon gives every request its own copy
// of the bytes (Command.Raw), which it never reuses.
func (nc *netClient) own(i int) bool { return len(nc.args.V[i]) >= bigBulk }

// reset makes the close of c a reset (SO_LINGER 0), for a client that does
// not read: its unsent replies are dropped at once.
func reset(c net.Conn) {
	if g, ok := c.(*guardConn); ok {
		c = g.Conn
	}
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
}

// redconReply is the Reply of the net server: redcon's writer.
type redconReply struct{ c redcon.Conn }

func (r *redconReply) Status(s string)     { r.c.WriteString(s) }
func (r *redconReply) Error(s string)      { r.c.WriteError(s) }
func (r *redconReply) Int(n int64)         { r.c.WriteInt64(n) }
func (r *redconReply) Bulk(b []byte)       { r.c.WriteBulk(b) }
func (r *redconReply) Value(v []byte)      { r.c.WriteBulk(v) }
func (r *redconReply) BulkString(s string) { r.c.WriteBulkString(s) }
func (r *redconReply) Null()               { r.c.WriteNull() }
func (r *redconReply) Array(n int)         { r.c.WriteArray(n) }

// guardListener wraps every accepted connection in a guardConn.
type guardListener struct {
	net.Listener
	s *netServer
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(interface{ SetNoDelay(bool) error }); ok {
		tc.SetNoDelay(true)
	}
	p := NewParser(l.s.maxValue, l.s.maxRequest)
	p.Discard = true
	return &guardConn{Conn: c, p: p, s: l.s}, nil
}

// guardConn checks the request stream before redcon sees it and puts a
// deadline on every write.
type guardConn struct {
	net.Conn
	s   *netServer
	p   *Parser
	bad error // the protocol error found, answered at the next Read
}

var errGuardClosed = errors.New("kv: closed after a protocol error")

func (g *guardConn) Read(b []byte) (int, error) {
	if g.bad != nil {
		// redcon has run and flushed the requests before the bad one:
		// answer it as Redis does, and end the connection.
		g.s.ctr.ProtocolErrors.Add(1)
		g.write([]byte("-ERR " + g.bad.Error() + "\r\n"))
		return 0, errGuardClosed
	}
	n, err := g.Conn.Read(b)
	end, off := 0, 0 // end: after the last whole request
	for off < n {
		k, done, perr := g.p.Parse(b[off:n])
		if perr != nil {
			g.bad = perr
			if end == 0 {
				return g.Read(b) // nothing to run first: answer now
			}
			return end, nil
		}
		off += k
		if done {
			end = off
		}
	}
	return n, err
}

func (g *guardConn) Write(b []byte) (int, error) {
	n, err := g.write(b)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			g.s.ctr.StallClosed.Add(1)
			reset(g.Conn)
		}
	}
	return n, err
}

func (g *guardConn) write(b []byte) (int, error) {
	if g.s.stall > 0 {
		g.Conn.SetWriteDeadline(time.Now().Add(g.s.stall))
	}
	return g.Conn.Write(b)
}

func (s *netServer) counterLine() string {
	return fmt.Sprintf("net: accepted=%d closed=%d max_active=%d protocol_errors=%d slow_closed=%d stall_closed=%d",
		s.ctr.Accepted.Load(), s.ctr.Closed.Load(), s.ctr.MaxActive.Load(), s.ctr.ProtocolErrors.Load(),
		s.ctr.SlowClosed.Load(), s.ctr.StallClosed.Load())
}
