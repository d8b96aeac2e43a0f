package libos

import (
	"net/netip"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
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

type queue struct {
	open    bool
	ep      *stack.UDPEndpoint
	popHead int32 // pending pops, FIFO through op.next; -1 when empty
	popTail int32
	steered uint16 // port registered with the steering program (Shared mode)
	ctr     QueueCounters
}

func (l *LibOS) queue(qd QD) (*queue, error) {
	if l.closed || qd < 0 || int(qd) >= len(l.queues) || !l.queues[qd].open {
		return nil, unix.EBADF
	}
	return &l.queues[qd], nil
}

// Socket opens a queue. domain must be AF_INET and typ SOCK_DGRAM (proto 0
// or IPPROTO_UDP); anything else is ENOTSUP. SOCK_STREAM (TCP) is not
// available yet and is ENOTSUP too. EBADF if the LibOS is closed.
func (l *LibOS) Socket(domain, typ, proto int) (QD, error) {
	if l.closed {
		return -1, unix.EBADF
	}
	if domain != AF_INET || typ != SOCK_DGRAM || (proto != 0 && proto != unix.IPPROTO_UDP) {
		return -1, unix.ENOTSUP
	}
	var qd QD
	if n := len(l.freeQD); n > 0 {
		qd = l.freeQD[n-1]
		l.freeQD = l.freeQD[:n-1]
	} else {
		l.queues = append(l.queues, queue{})
		qd = QD(len(l.queues) - 1)
	}
	l.queues[qd] = queue{open: true, ep: l.stack.NewUDP(uint64(qd)), popHead: -1, popTail: -1}
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
	if err := q.ep.Bind(addr); err != nil {
		return err
	}
	return l.register(q)
}

// register registers the queue's port with the steering program in Shared
// mode (in Dedicated mode every packet to the address is ours already).
func (l *LibOS) register(q *queue) error {
	if l.cfg.Mode != Shared || q.steered != 0 {
		return nil
	}
	la := q.ep.LocalAddr()
	if !la.IsValid() {
		return nil
	}
	if err := l.steer.AddPort(unix.IPPROTO_UDP, la.Port()); err != nil {
		return err
	}
	q.steered = la.Port()
	return nil
}

// LocalAddr returns the queue's bound address (invalid if unbound).
func (l *LibOS) LocalAddr(qd QD) (netip.AddrPort, error) {
	q, err := l.queue(qd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return q.ep.LocalAddr(), nil
}

// Connect sets a UDP queue's default peer: Push then sends there and only
// datagrams from it are received. It binds an ephemeral port if needed. The
// token completes at once with OpConnect. Errors: EBADF, EINVAL (bad
// address), ENETUNREACH (no route to it).
func (l *LibOS) Connect(qd QD, remote netip.AddrPort) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	if err := q.ep.Connect(remote); err != nil {
		return 0, err
	}
	if err := l.register(q); err != nil {
		return 0, err
	}
	qt, i := l.ops.alloc(OpConnect, qd)
	l.finish(&l.ops.ops[i], nil)
	return qt, nil
}

// Push sends the SGA as one datagram to the queue's connected peer. See
// PushTo.
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
// ends.
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
	var bufs [MaxSegments]nic.Buf
	n, err := l.buffers(s, &bufs)
	if err != nil {
		return 0, err
	}
	b := bufs[0]
	if n > 1 {
		if b, err = l.gather(&bufs, n); err != nil {
			return 0, err
		}
	}
	qt, i := l.ops.alloc(OpPush, qd)
	err = q.ep.Send(b, to, uint64(qt))
	if err == unix.EAGAIN {
		// The TX ring may only be waiting for its completions.
		l.flush()
		l.reap()
		err = q.ep.Send(b, to, uint64(qt))
	}
	if err != nil {
		l.ops.release(i)
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

// Pop asks for the queue's next datagram. The token completes with OpPop
// and an SGA that views the received frame (no copy); Result.SGA.Addr is the
// sender. Errors: EBADF.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) Pop(qd QD) (QToken, error) {
	q, err := l.queue(qd)
	if err != nil {
		return 0, err
	}
	qt, i := l.ops.alloc(OpPop, qd)
	if q.popHead == -1 && q.ep.Queued() > 0 {
		l.deliver(q, i)
		return qt, nil
	}
	if q.popTail == -1 {
		q.popHead = i
	} else {
		l.ops.ops[q.popTail].next = i
	}
	q.popTail = i
	return qt, nil
}

// deliver completes pop slot i with the queue's oldest datagram.
func (l *LibOS) deliver(q *queue, i int32) {
	b, from, _ := q.ep.Recv()
	o := &l.ops.ops[i]
	o.res.SGA = l.popSGA(b, from)
	l.finish(o, nil)
	q.ctr.Pops++
	q.ctr.PopBytes += uint64(b.Len)
}

// Readable implements stack.Notifier: complete pending pops.
func (l *LibOS) Readable(cookie uint64) {
	q := &l.queues[cookie]
	for q.popHead != -1 && q.ep.Queued() > 0 {
		i := q.popHead
		q.popHead = l.ops.ops[i].next
		if q.popHead == -1 {
			q.popTail = -1
		}
		l.deliver(q, i)
	}
}

// Done implements stack.Notifier: a push that waited for ARP failed.
func (l *LibOS) Done(tag uint64, err error) { l.completeOp(QToken(tag), err) }

// CloseQueue closes the queue (Demikernel's demi_close; Go cannot overload
// Close, which closes the whole LibOS): its pending operations complete with
// ECANCELED, queued datagrams are dropped and its port is released.
// Errors: EBADF.
func (l *LibOS) CloseQueue(qd QD) error {
	if _, err := l.queue(qd); err != nil {
		return err
	}
	l.closeQueue(qd)
	return nil
}

func (l *LibOS) closeQueue(qd QD) {
	q := &l.queues[qd]
	for i := range l.ops.ops {
		o := &l.ops.ops[i]
		if o.state == opPending && o.res.QD == qd {
			l.finish(o, unix.ECANCELED)
		}
	}
	if q.steered != 0 && l.steer != nil {
		_ = l.steer.RemovePort(unix.IPPROTO_UDP, q.steered)
	}
	q.ep.Close()
	*q = queue{}
	l.freeQD = append(l.freeQD, qd)
}
