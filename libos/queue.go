package libos

import (
	"net/netip"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

// QD is a queue descriptor: one socket of the LibOS.
type QD int

// Socket domains and types, as in the socket(2) API.
const (
	AF_INET     = unix.AF_INET
	SOCK_DGRAM  = unix.SOCK_DGRAM
	SOCK_STREAM = unix.SOCK_STREAM
)

// opList is a FIFO of pending operations threaded through op.next.
type opList struct{ head, tail int32 }

func (f *opList) empty() bool { return f.head == -1 }

func (l *LibOS) pushOp(f *opList, i int32) {
	l.ops.ops[i].next = -1
	if f.tail == -1 {
		f.head = i
	} else {
		l.ops.ops[f.tail].next = i
	}
	f.tail = i
}

func (l *LibOS) popOp(f *opList) int32 {
	i := f.head
	f.head = l.ops.ops[i].next
	if f.head == -1 {
		f.tail = -1
	}
	return i
}

type queue struct {
	open    bool
	stream  bool
	udp     *stack.UDPEndpoint // SOCK_DGRAM
	tcp     *tcp.Endpoint      // SOCK_STREAM
	pops    opList             // pending pops
	accepts opList             // pending accepts (listening stream)
	connect int32              // pending connect (stream), -1 if none
	steered uint16             // port this queue registered with the steering program (Shared mode)
	pend    int32              // first of the queue's pending operations (op.qnext), -1 if none
	linger  int32              // SO_LINGER seconds, -1 off (SetLinger)
	ctr     QueueCounters
}

func (l *LibOS) queue(qd QD) (*queue, error) {
	if l.closed || qd < 0 || int(qd) >= len(l.queues) || !l.queues[qd].open {
		return nil, unix.EBADF
	}
	return &l.queues[qd], nil
}

func (l *LibOS) newQD() QD {
	if n := len(l.freeQD); n > 0 {
		qd := l.freeQD[n-1]
		l.freeQD = l.freeQD[:n-1]
		return qd
	}
	l.queues = append(l.queues, queue{})
	return QD(len(l.queues) - 1)
}

func emptyQueue() queue {
	return queue{open: true, pops: opList{-1, -1}, accepts: opList{-1, -1}, connect: -1, linger: -1, pend: -1}
}

// Socket opens a queue: domain AF_INET with type SOCK_DGRAM (UDP; proto 0
// or IPPROTO_UDP) or SOCK_STREAM (TCP; proto 0 or IPPROTO_TCP). Anything
// else is ENOTSUP; EBADF if the LibOS is closed.
func (l *LibOS) Socket(domain, typ, proto int) (QD, error) {
	if l.closed {
		return -1, unix.EBADF
	}
	if domain != AF_INET {
		return -1, unix.ENOTSUP
	}
	q := emptyQueue()
	switch {
	case typ == SOCK_DGRAM && (proto == 0 || proto == unix.IPPROTO_UDP):
	case typ == SOCK_STREAM && (proto == 0 || proto == unix.IPPROTO_TCP):
		q.stream = true
	default:
		return -1, unix.ENOTSUP
	}
	qd := l.newQD()
	if q.stream {
		q.tcp = l.stack.NewTCP(uint64(qd))
	} else {
		q.udp = l.stack.NewUDP(uint64(qd))
	}
	l.queues[qd] = q
	return qd, nil
}

// Bind gives the queue a local address: the libOS's own address or the
// unspecified address 0.0.0.0, and a port (0 picks an ephemeral one).
// Errors: EBADF (bad qd), EINVAL (already bound, or not an address of this
// libOS), EADDRINUSE (port taken).
func (l *LibOS) Bind(qd QD, addr netip.AddrPort) error {
	q, err := l.queue(qd)
	if err != nil {
		return err
	}
	if addr.Port() == 0 && l.unboundInGroup(q) && (addr.Addr().IsUnspecified() || addr.Addr() == l.cfg.Addr.Addr()) {
		return l.bindEphemeral(q, netip.AddrPort{}) // ports.go: queues of a group share the address
	}
	if q.stream {
		err = q.tcp.Bind(addr)
	} else {
		err = q.udp.Bind(addr)
	}
	if err != nil {
		return err
	}
	return l.register(q)
}

func (q *queue) localAddr() netip.AddrPort {
	if q.stream {
		return q.tcp.LocalAddr()
	}
	return q.udp.LocalAddr()
}

// LocalAddr returns the queue's bound address (invalid if unbound).
func (l *LibOS) LocalAddr(qd QD) (netip.AddrPort, error) {
	q, err := l.queue(qd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return q.localAddr(), nil
}

// Connect connects the queue to remote. For UDP it sets the default peer
// (Push sends there and only datagrams from it are received) and the token
// completes at once. For TCP it starts the handshake and the token
// completes with OpConnect when the connection is established, or with
// OpFailed and ECONNREFUSED (reset, or no answer to the SYNs) or
// ETIMEDOUT. An unbound queue gets an ephemeral port.
//
// Errors (no token): EBADF, EINVAL (bad address, or a listening or closed
// stream), EISCONN (already connected), EINPROGRESS (a TCP connect is in
// progress), ENETUNREACH (no route), EADDRNOTAVAIL (no ephemeral port).
func (l *LibOS) Connect(qd QD, remote netip.AddrPort) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	if q.stream {
		return l.connectStream(qd, q, remote)
	}
	if l.unboundInGroup(q) && validRemote(remote) {
		if err := l.bindEphemeral(q, remote); err != nil {
			return 0, err
		}
	}
	if err := q.udp.Connect(remote); err != nil {
		return 0, err
	}
	if err := l.register(q); err != nil {
		return 0, err
	}
	qt, i := l.newOp(OpConnect, qd)
	l.finish(&l.ops.ops[i], nil)
	return qt, nil
}

// Push sends the SGA: on a UDP queue as one datagram to the connected peer
// (see PushTo), on a TCP queue as the next bytes of the stream.
//
// TCP: each segment of the SGA becomes one TCP segment, its header written
// into the segment's headroom (a segment longer than the connection's MSS
// is split and its excess copied). The token completes when every byte has
// been acknowledged by the peer; the frames stay referenced until then,
// since a retransmission reads them again, so the SGA may be freed at once.
// Errors: those of PushTo, and for TCP ENOTCONN (not established), EPIPE
// (after Shutdown or a failed connection) and EAGAIN (the connection's send
// buffer is full: retry after some of its pushes complete).
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) Push(qd QD, s *SGA) (QToken, error) {
	return l.PushTo(qd, s, netip.AddrPort{})
}

// PushTo sends the SGA as one datagram to "to" (the zero AddrPort means the
// connected peer). Headers go into the headroom of the SGA's first frame and
// that frame is posted to the TX ring: the payload is not copied. An SGA of
// several segments is gathered into its first segment's frame, which it
// must fit. The token completes when the kernel's TX completion returns the
// frame (or fails with EHOSTUNREACH if the next hop does not answer ARP).
// The SGA may be freed at once: its frame is kept until the transmission
// ends. On a TCP queue "to" must be the zero AddrPort (else EISCONN) and
// PushTo is Push.
//
// Errors (nothing was sent, no token): EBADF (bad qd), EINVAL (nil, freed or
// foreign SGA, a zero-length segment, a segment outside its frame, a bad
// destination), EDESTADDRREQ (no destination and not connected), EMSGSIZE
// (more than MaxDatagram bytes, or a gather that does not fit one frame),
// ENETUNREACH (no route), EAGAIN (the TX ring or the ARP queue is full, or
// the SGA is still being transmitted by an earlier push).
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) PushTo(qd QD, s *SGA, to netip.AddrPort) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	// The stack reads the clock several times a TCP push (send time,
	// timers, the neighbour): one read serves the whole call, as in a
	// loop turn. It was 4 reads and about 200 ns a request in the
	// tcp_rtt server's profile.
	if !l.inTurn {
		l.inTurn = true
		defer l.endCall()
	}
	if s == nil || len(s.Segs) != 1 {
		return l.pushSegments(qd, q, s, to)
	}
	// One segment, the common case: no array of 16 buffers.
	if !l.pushable(s) {
		return 0, unix.EINVAL
	}
	b, err := l.buffer(s, 0)
	if err != nil {
		return 0, err
	}
	if q.stream {
		if to.IsValid() {
			return 0, unix.EISCONN
		}
		one := [1]nic.Buf{b}
		return l.pushStream(qd, q, one[:])
	}
	return l.pushDatagram(qd, q, b, to)
}

// pushSegments is PushTo of several segments: a stream's, or a
// datagram's (gathered into the first one's frame).
func (l *LibOS) pushSegments(qd QD, q *queue, s *SGA, to netip.AddrPort) (QToken, error) {
	var bufs [MaxSegments]nic.Buf
	n, err := l.buffers(s, &bufs)
	if err != nil {
		return 0, err
	}
	if q.stream {
		if to.IsValid() {
			return 0, unix.EISCONN
		}
		return l.pushStream(qd, q, bufs[:n])
	}
	b := bufs[0]
	if n > 1 {
		if b, err = l.gather(&bufs, n); err != nil {
			return 0, err
		}
	}
	return l.pushDatagram(qd, q, b, to)
}

// pushDatagram sends b, a datagram in one frame, to "to" on UDP queue q.
func (l *LibOS) pushDatagram(qd QD, q *queue, b nic.Buf, to netip.AddrPort) (QToken, error) {
	if q.steered == 0 && l.unboundInGroup(q) {
		dst := to
		if !dst.IsValid() {
			dst = q.udp.RemoteAddr()
		}
		if validRemote(dst) {
			if err := l.bindEphemeral(q, dst); err != nil {
				return 0, err
			}
		}
	}
	qt, i := l.newOp(OpPush, qd)
	if err := q.udp.Send(b, to, uint64(qt)); err != nil {
		l.dropOp(i)
		q.ctr.PushErrors++
		return 0, err
	}
	if q.steered == 0 {
		if err := l.register(q); err != nil {
			q.ctr.PushErrors++
		}
	}
	q.ctr.Pushes++
	q.ctr.PushBytes += uint64(b.Len)
	return qt, nil
}

// gather copies segments 1..n-1 behind segment 0 in its frame.
func (l *LibOS) gather(bufs *[MaxSegments]nic.Buf, n int) (nic.Buf, error) {
	b := bufs[0]
	total := 0
	for i := 0; i < n; i++ {
		total += bufs[i].Len
	}
	if total > l.stack.MaxPayload() || b.Off+total > len(b.Data) {
		return b, unix.EMSGSIZE
	}
	for i := 1; i < n; i++ {
		copy(b.Data[b.Off+b.Len:], bufs[i].Bytes())
		b.Len += bufs[i].Len
	}
	return b, nil
}

// Pop asks for the queue's next data. On a UDP queue the token completes
// with OpPop and one datagram; on a TCP queue with the next in-order bytes
// (one received segment's worth), or with a zero-length SGA (no segments)
// once the peer has closed its side, or with OpFailed and ECONNRESET or
// ETIMEDOUT if the connection failed. The SGA views the received frame
// (no copy); Result.SGA.Addr is the sender. Errors: EBADF, and for TCP
// EINVAL on a listening queue.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) Pop(qd QD) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	if q.stream && q.tcp.State() == tcp.StateListen {
		return 0, unix.EINVAL
	}
	if !l.inTurn { // one clock read for the call (PushTo)
		l.inTurn = true
		defer l.endCall()
	}
	qt, i := l.newOp(OpPop, qd)
	l.pushOp(&q.pops, i)
	l.drainPops(qd, q)
	return qt, nil
}

// drainPops completes pending pops while the queue has data (or, for TCP,
// an end of stream or an error to report).
func (l *LibOS) drainPops(qd QD, q *queue) {
	for !q.pops.empty() {
		if q.stream {
			b, err := q.tcp.Recv()
			if err == unix.EAGAIN {
				return
			}
			l.completePop(q, l.popOp(&q.pops), b, q.tcp.RemoteAddr(), err)
			continue
		}
		if q.udp.Queued() == 0 {
			return
		}
		b, from, _ := q.udp.Recv()
		l.completePop(q, l.popOp(&q.pops), b, from, nil)
	}
}

// completePop finishes pop slot i with b (err == io.EOF: end of stream, a
// zero-length SGA; any other error: OpFailed).
func (l *LibOS) completePop(q *queue, i int32, b nic.Buf, from netip.AddrPort, err error) {
	o := &l.ops.ops[i]
	switch {
	case err == nil:
		o.res.SGA = l.popSGA(b, from)
		q.ctr.Pops++
		q.ctr.PopBytes += uint64(b.Len)
	case isEOF(err):
		o.res.SGA = l.eofSGA(from)
		err = nil
	}
	o.res.Addr = from
	l.finish(o, err)
}

// Readable implements stack.Notifier: complete pending pops.
func (l *LibOS) Readable(cookie uint64) {
	qd := QD(cookie)
	l.drainPops(qd, &l.queues[qd])
}

// Done implements stack.Notifier: a push completed late (TCP: acknowledged)
// or failed (UDP: ARP gave up; TCP: reset, timeout, cancelled).
func (l *LibOS) Done(tag uint64, err error) { l.completeOp(QToken(tag), err) }

// CloseQueue closes the queue (Demikernel's demi_close; Go cannot overload
// Close, which closes the whole LibOS): its pending operations complete with
// ECANCELED, queued data is dropped and its port released. A TCP connection
// is closed as Linux closes a socket: a FIN after the data already pushed
// (which is still delivered), or a RST if received data was left unread; a
// listener resets the connections not yet accepted. Errors: EBADF.
func (l *LibOS) CloseQueue(qd QD) error {
	if _, err := l.queue(qd); err != nil {
		return err
	}
	l.closeQueue(qd)
	return nil
}

func (l *LibOS) closeQueue(qd QD) {
	q := &l.queues[qd]
	for q.pend != -1 {
		l.finish(&l.ops.ops[q.pend], unix.ECANCELED) // takes it off the list
	}
	if q.stream {
		if q.linger == 0 {
			q.tcp.Abort()
		} else {
			q.tcp.Close()
		}
		l.unregister(q, unix.IPPROTO_TCP)
	} else {
		q.udp.Close()
		l.unregister(q, unix.IPPROTO_UDP)
	}
	*q = queue{}
	l.freeQD = append(l.freeQD, qd)
}
