package libos

import (
	"io"
	"net/netip"
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

func isEOF(err error) bool { return err == io.EOF }

// eofSGA is the zero-length SGA a TCP Pop returns once the peer has closed.
func (l *LibOS) eofSGA(from netip.AddrPort) *SGA {
	s := l.sgas.get(l)
	s.Segs = s.segs[:0:0]
	s.Addr = from
	return s
}

// Listen makes a bound TCP queue accept connections, with at most backlog
// established connections waiting for Accept (1..4096). Errors: EBADF,
// EDESTADDRREQ (not bound), EINVAL (bad backlog, not a fresh TCP queue),
// EOPNOTSUPP (a UDP queue).
func (l *LibOS) Listen(qd QD, backlog int) error {
	q, err := l.queue(qd)
	if err != nil {
		return err
	}
	if !q.stream {
		return unix.EOPNOTSUPP
	}
	if backlog <= 0 || backlog > 4096 {
		return unix.EINVAL
	}
	if err := q.tcp.Listen(backlog); err != nil {
		return err
	}
	return l.register(q)
}

// Accept asks for the next connection of a listening queue. The token
// completes with OpAccept when a connection is established: Result.NewQD is
// its queue and Result.Addr the peer. Errors: EBADF, EINVAL (not a
// listening TCP queue).
func (l *LibOS) Accept(qd QD) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	if !q.stream || q.tcp.State() != tcp.StateListen {
		return 0, unix.EINVAL
	}
	qt, i := l.newOp(OpAccept, qd)
	l.pushOp(&q.accepts, i)
	l.drainAccepts(qd, q)
	return qt, nil
}

// drainAccepts gives waiting connections to pending accepts.
func (l *LibOS) drainAccepts(qd QD, q *queue) {
	for !q.accepts.empty() {
		nqd := l.newQD()
		q = &l.queues[qd] // newQD may have moved the queue table
		c, err := q.tcp.Accept(uint64(nqd))
		if err != nil {
			l.freeQD = append(l.freeQD, nqd)
			return
		}
		nq := emptyQueue()
		nq.stream, nq.tcp = true, c
		l.queues[nqd] = nq
		o := &l.ops.ops[l.popOp(&q.accepts)]
		o.res.NewQD, o.res.Addr = nqd, c.RemoteAddr()
		l.finish(o, nil)
		// Data may have arrived before the accept: nothing is pending on
		// the new queue yet, so there is nothing more to do.
	}
}

func (l *LibOS) connectStream(qd QD, q *queue, remote netip.AddrPort) (QToken, error) {
	if q.connect != -1 {
		return 0, unix.EINPROGRESS
	}
	if l.unboundInGroup(q) && q.tcp.State() == tcp.StateClosed && validRemote(remote) {
		if err := l.bindEphemeral(q, remote); err != nil {
			return 0, err
		}
	}
	err := q.tcp.Connect(remote)
	if err == unix.EALREADY {
		err = unix.EINPROGRESS
	}
	if err != nil {
		return 0, err
	}
	if err := l.register(q); err != nil {
		q.tcp.Abort()
		return 0, err
	}
	qt, i := l.newOp(OpConnect, qd)
	switch q.tcp.State() {
	case tcp.StateEstablished:
		l.finish(&l.ops.ops[i], nil)
	default:
		q.connect = i
	}
	return qt, nil
}

//demixdp:hotpath — allocates nothing.
func (l *LibOS) pushStream(qd QD, q *queue, bufs []nic.Buf) (QToken, error) {
	qt, i := l.newOp(OpPush, qd)
	if err := q.tcp.Send(bufs, uint64(qt)); err != nil {
		l.dropOp(i)
		q.ctr.PushErrors++
		return 0, err
	}
	for _, b := range bufs {
		q.ctr.PushBytes += uint64(b.Len)
	}
	q.ctr.Pushes++
	return qt, nil
}

// TCPEvent implements stack.TCPNotifier.
func (l *LibOS) TCPEvent(cookie uint64, ev tcp.Event, err error) {
	qd := QD(cookie)
	if int(qd) >= len(l.queues) || !l.queues[qd].open || !l.queues[qd].stream {
		return
	}
	q := &l.queues[qd]
	switch ev {
	case tcp.EventEstablished:
		l.finishConnect(q, nil)
	case tcp.EventAcceptable:
		l.drainAccepts(qd, q)
	case tcp.EventReadable:
		l.drainPops(qd, q)
	case tcp.EventError:
		l.finishConnect(q, err)
		l.drainPops(qd, q)
	}
}

func (l *LibOS) finishConnect(q *queue, err error) {
	if q.connect == -1 {
		return
	}
	o := &l.ops.ops[q.connect]
	q.connect = -1
	if o.state == opPending {
		l.finish(o, err)
	}
}

// steerKey identifies a (protocol, port) pair in the steering map.
type steerKey uint32

func keyOf(proto uint8, port uint16) steerKey { return steerKey(proto)<<16 | steerKey(port) }

// register adds the queue's port to the steering program in Shared mode (in
// Dedicated mode every packet to the address is ours already). Ports are
// reference-counted: accepted connections and reuse share them.
func (l *LibOS) register(q *queue) error {
	if (l.cfg.Mode != Shared && l.grp == nil) || q.steered != 0 {
		return nil
	}
	la := q.localAddr()
	if !la.IsValid() || la.Port() == 0 {
		return nil
	}
	proto := uint8(unix.IPPROTO_UDP)
	if q.stream {
		proto = unix.IPPROTO_TCP
	}
	k := keyOf(proto, la.Port())
	if l.steerRefs[k] == 0 {
		if err := l.claimPort(proto, la.Port()); err != nil { // ports.go: the steering map, a group's port table
			return err
		}
	}
	l.steerRefs[k]++
	q.steered = la.Port()
	return nil
}

// unregister drops the queue's reference on its port. A TCP port stays
// steered for 2*MSL + FIN timeout after the close, since the engine keeps
// the connection (FIN-WAIT, TIME-WAIT) and the kernel must not answer its
// segments with resets in the meantime.
func (l *LibOS) unregister(q *queue, proto uint8) {
	if q.steered == 0 || l.steer == nil {
		return
	}
	k := keyOf(proto, q.steered)
	if proto == unix.IPPROTO_TCP && !l.closed {
		l.unsteer = append(l.unsteer, delayedUnsteer{key: k, at: l.link.Now() + l.lingerNS()})
		return
	}
	l.release(k)
}

func (l *LibOS) release(k steerKey) {
	if l.steerRefs[k]--; l.steerRefs[k] > 0 {
		return
	}
	delete(l.steerRefs, k)
	l.unclaimPort(uint8(k>>16), uint16(k))
}

type delayedUnsteer struct {
	key steerKey
	at  int64
}

func (l *LibOS) lingerNS() int64 {
	c := l.cfg.TCP
	msl, fin := c.MSL, c.FinTimeout
	if msl <= 0 {
		msl = 30 * time.Second
	}
	if fin <= 0 {
		fin = 60 * time.Second
	}
	return int64(2*msl + fin)
}

// sweepUnsteer releases the lingering TCP ports whose time has come.
func (l *LibOS) sweepUnsteer() {
	now := l.link.Now()
	n := 0
	for n < len(l.unsteer) && l.unsteer[n].at <= now {
		l.release(l.unsteer[n].key)
		n++
	}
	if n > 0 {
		l.unsteer = append(l.unsteer[:0], l.unsteer[n:]...)
	}
}

// RemoteAddr returns a connected queue's peer (invalid if not connected).
func (l *LibOS) RemoteAddr(qd QD) (netip.AddrPort, error) {
	q, err := l.queue(qd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if q.stream {
		return q.tcp.RemoteAddr(), nil
	}
	return q.udp.RemoteAddr(), nil
}

// Shutdown closes the sending side of a TCP queue (shutdown(2) with
// SHUT_WR): a FIN follows the data already pushed, which is still
// delivered and acknowledged; receiving goes on until the peer closes.
// Errors: EBADF, EINVAL (not TCP), ENOTCONN (not connected).
func (l *LibOS) Shutdown(qd QD) error {
	q, err := l.streamQueue(qd)
	if err != nil {
		return err
	}
	return q.tcp.Shutdown()
}
