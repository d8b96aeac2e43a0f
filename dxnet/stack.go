package dxnet

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// Stack is one libOS (one NIC queue) driven by a goroutine of its own,
// with net-style Listen, Dial and ListenPacket on top. Its methods and those of the connections it makes are safe for
// concurrent use.
type Stack struct {
	lib         *libos.LibOS
	ip          netip.Addr
	segSize     int // libos SegmentSize
	maxChunk    int // the most one SGA carries
	maxDatagram int
	spin        time.Duration // how long the loop polls after the last sign of work before it sleeps
	queueID     int           // the libOS's NIC queue

	mu     sync.Mutex
	queue  []item // calls for the loop, oldest first
	dead   bool   // the loop has exited: submit refuses
	queued atomic.Uint32

	quit      atomic.Bool
	closeOnce sync.Once
	exited    chan struct{} // closed when the loop has exited
	closeErr  error

	// The loop goroutine's own state.
	socks     []*sock // by queue descriptor
	spare     []item
	dirty     []*sock // sockets to serve after this batch
	later     []*sock // sockets to close after this batch
	retry     []*sock // writers that wait for frames with nothing in flight to wake them
	allocs    []item  // AllocSGA calls waiting for frames
	iterating bool    // a batch of results is being processed
	stray     uint64  // results for no socket (should stay 0)
	woken     int     // calls finished since the last yield
	out, tmp  [64]libos.Result
}

// popAhead is how many pops each connection keeps posted, or completed and
// not yet read: received data waiting for a Read, beyond what the TCP
// engine queues itself. Frames are the scarce resource (docs/DECISIONS.md),
// so it is small; it lets one Read take several segments that arrived
// together.
const popAhead = 4

// backlog is the Listen backlog of a dxnet listener.
const backlog = 1024

// defaultSpin is how long the loop polls after the last sign of work
// before it sleeps in poll(2) when libos.Config.Spin is 0: the libOS's own
// default.
const defaultSpin = 200 * time.Microsecond

// retryEvery is how often a writer that found no frame (ENOBUFS), or a
// full send buffer with nothing of its own in flight, tries again.
const retryEvery = time.Millisecond

// Open takes over cfg.Interface's queue with libos.New (so it must run in
// the network namespace that holds the interface) and starts the loop
// goroutine. cfg.Spin keeps its meaning (how long the loop polls after
// the last sign of work before it sleeps in poll(2); 0: 200 µs, negative:
// never), but the loop does the spinning itself and yields the processor
// between polls, so other goroutines run meanwhile even with
// GOMAXPROCS=1. Errors are libos.New's.
func Open(cfg libos.Config) (*Stack, error) {
	spin := loopSpin(&cfg)
	lib, err := libos.New(cfg)
	if err != nil {
		return nil, err
	}
	return start(lib, spin), nil
}

// loopSpin takes the spin out of cfg for the loop to do: the loop spins
// itself, yielding the processor between polls (see loop); the libOS must
// not spin inside WaitNext, which cannot yield.
func loopSpin(cfg *libos.Config) time.Duration {
	spin := cfg.Spin
	switch {
	case spin == 0:
		spin = defaultSpin
	case spin < 0:
		spin = 0
	}
	cfg.Spin = -1
	return spin
}

// start makes the Stack of lib and starts its loop goroutine.
func start(lib *libos.LibOS, spin time.Duration) *Stack {
	s := &Stack{
		lib:         lib,
		queueID:     lib.QueueID(),
		ip:          lib.Addr(),
		segSize:     lib.SegmentSize(),
		maxChunk:    libos.MaxSegments * lib.SegmentSize(),
		maxDatagram: lib.MaxDatagram(),
		spin:        spin,
		exited:      make(chan struct{}),
		queue:       make([]item, 0, 64),
		spare:       make([]item, 0, 64),
	}
	go s.loop()
	return s
}

// Addr returns the stack's IPv4 address.
func (s *Stack) Addr() netip.Addr { return s.ip }

// Close closes every listener and connection of the stack (their blocked
// calls return net.ErrClosed; TCP connections get their FIN, after the
// data already written), stops the loop goroutine and closes the libOS,
// which detaches the XDP program. SGAs obtained from ReadSGA or AllocSGA
// are invalid afterwards. Close is idempotent; every call returns the
// libOS's Close error.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.quit.Store(true)
		s.lib.Wake()
	})
	<-s.exited
	return s.closeErr
}

// Counters returns the libOS's counters (see libos.Counters), read on the
// loop goroutine.
func (s *Stack) Counters() (libos.Counters, error) {
	var c libos.Counters
	err := s.call(func() (err error) {
		c, err = s.lib.Counters()
		return err
	})
	return c, err
}

// sockKind says what a socket is.
type sockKind uint8

const (
	sockConnecting sockKind = iota + 1 // a TCP Dial in progress
	sockTCP                            // an established TCP connection
	sockListener                       // a TCP listener
	sockUDP                            // a UDP socket
)

// sock is the loop's view of one libOS queue. Only the loop goroutine
// touches it; the application's objects carry a pointer only to name it
// in their requests.
type sock struct {
	qd     libos.QD
	kind   sockKind
	closed bool
	dirty  bool
	ops    int // operations posted to the libOS whose results have not come back

	// Receive side: pops posted (FIFO) and popped data not yet read.
	pops          [popAhead]libos.QToken
	popHead, npop int
	rx            [popAhead]*libos.SGA
	rxHead, rxN   int
	seg, off      int // how far Read has consumed rx's head
	eof           bool
	rerr          error // the connection failed (ECONNRESET, ETIMEDOUT)
	reader        item

	// Send side.
	writer   item
	wsga     *libos.SGA // the writer's next SGA, filled, waiting for room
	wlen     int
	pushes   int   // pushes in flight
	werr     error // a push failed (TCP: the connection failed)
	asyncErr error // UDP: a datagram was dropped after Write returned (reported once)
	retrying bool  // on Stack.retry

	// TCP dial and listener.
	connQT   libos.QToken
	dial     item
	acceptQT libos.QToken
	acceptor item
	ready    []*sock // accepted by the libOS, not yet by the application

	tcp *TCPConn
	udp *UDPConn
}

func (k *sock) rxPush(s *libos.SGA) {
	k.rx[(k.rxHead+k.rxN)%popAhead] = s
	k.rxN++
}

func (k *sock) rxPop() *libos.SGA {
	s := k.rx[k.rxHead]
	k.rx[k.rxHead] = nil
	k.rxHead = (k.rxHead + 1) % popAhead
	k.rxN--
	k.seg, k.off = 0, 0
	return s
}

// takePop removes qt from the posted pops, reporting whether it was one.
func (k *sock) takePop(qt libos.QToken) bool {
	for i := 0; i < k.npop; i++ {
		j := (k.popHead + i) % popAhead
		if k.pops[j] != qt {
			continue
		}
		// Pops complete in order: i is almost always 0.
		for ; i > 0; i-- {
			a, b := (k.popHead+i)%popAhead, (k.popHead+i-1)%popAhead
			k.pops[a] = k.pops[b]
		}
		k.pops[k.popHead] = 0
		k.popHead = (k.popHead + 1) % popAhead
		k.npop--
		return true
	}
	return false
}

// readErr is what a Read gets once the buffered data is gone.
func (k *sock) readErr() error {
	switch {
	case k.closed:
		return net.ErrClosed
	case k.rerr != nil:
		return k.rerr
	case k.eof:
		return io.EOF
	}
	return nil
}

// writeErr is what a Write gets before it can push anything.
func (k *sock) writeErr() error {
	switch {
	case k.closed:
		return net.ErrClosed
	case k.kind == sockUDP:
		err := k.asyncErr
		k.asyncErr = nil
		return err
	case k.werr != nil:
		return k.werr
	case k.rerr != nil:
		return k.rerr
	}
	return nil
}

func (s *Stack) newSock(qd libos.QD, kind sockKind) *sock {
	for int(qd) >= len(s.socks) {
		s.socks = append(s.socks, nil)
	}
	k := &sock{qd: qd, kind: kind}
	s.socks[qd] = k
	return k
}

// mark schedules k to be served once the current batch is processed.
func (s *Stack) mark(k *sock) {
	if !k.dirty {
		k.dirty = true
		s.dirty = append(s.dirty, k)
	}
}

// loop is the loop goroutine: it takes the application's calls from the
// queue, runs the libOS until something completes or a call arrives
// (Wake), hands completed operations to the sockets, and serves the
// sockets that changed.
//
//demixdp:hotpath — allocates nothing in steady state.
func (s *Stack) loop() {
	defer close(s.exited)
	now := time.Now() // read once per turn, after the wait
	active := now     // the last sign of work
	lastRetry := now
	for !s.quit.Load() {
		busy := s.drain()
		s.settle()
		timeout := time.Duration(-1)
		switch {
		case s.woken > 0:
			// Calls finished (a Write pushed its bytes, say): one turn
			// of the loop sends what they pushed before their goroutines
			// run (yield, below) and queue more.
			timeout = 0
		case now.Sub(active) < s.spin: // as of the end of the last turn
			timeout = 0 // spinning: poll, and let other goroutines run in between
		case len(s.retry) > 0 || len(s.allocs) > 0:
			timeout = retryEvery
		}
		n, err := s.lib.WaitNext(s.out[:], timeout)
		s.iterating = true
		for i := 0; i < n; i++ {
			s.complete(&s.out[i])
			s.out[i] = libos.Result{}
		}
		s.iterating = false
		now = time.Now()
		if n > 0 || busy || s.woken > 0 {
			active = now
		}
		if (len(s.retry) > 0 || len(s.allocs) > 0) && (n > 0 || now.Sub(lastRetry) >= retryEvery) {
			s.retryWaiting()
			lastRetry = now
		}
		s.settle()
		if s.woken > 0 {
			s.yield()
		} else if timeout == 0 {
			// Spinning holds a processor: give it to any goroutine that
			// is waiting for one (with GOMAXPROCS=1 nothing else would
			// run, not even the garbage collector, until the spin ends).
			runtime.Gosched()
		}
		if err == unix.EBADF {
			break // cannot happen: only the loop closes the libOS
		}
	}
	s.shutdown()
}

// drain handles the calls queued since the last turn.
func (s *Stack) drain() bool {
	if s.queued.Load() == 0 {
		return false
	}
	s.mu.Lock()
	batch := s.queue
	s.queue = s.spare[:0]
	s.queued.Store(0)
	s.mu.Unlock()
	for i := range batch {
		s.handle(batch[i])
		batch[i] = item{}
	}
	s.spare = batch[:0]
	return true
}

// finish completes call gen of r and counts the goroutine it wakes.
func (s *Stack) finish(r *request, gen uint64) {
	s.woken++
	r.finish(gen)
}

// yield lets the goroutines the loop has just woken run at once. Go
// queues a woken goroutine on the waker's processor as the next to run;
// a loop that went on polling would keep it there until another processor
// stole it, which the scheduler delays on purpose (3 µs asked, 50-80 µs
// granted on the lab VM): every hand-off cost 80 µs (BenchmarkHandoff).
// Yielding puts the loop behind them on the same processor: 1.5 µs. The
// loop is not locked to an OS thread for the same reason: a locked
// goroutine that yields hands its processor to another thread and must be
// woken back by a futex, 30 µs a hand-off. (docs/DECISIONS.md)
func (s *Stack) yield() {
	s.woken = 0
	runtime.Gosched()
}

// settle serves the sockets that changed and closes those whose close had
// to wait for the end of a batch.
func (s *Stack) settle() {
	for len(s.dirty) > 0 || len(s.later) > 0 {
		for i := 0; i < len(s.dirty); i++ {
			k := s.dirty[i]
			s.dirty[i] = nil
			k.dirty = false
			s.serve(k)
		}
		s.dirty = s.dirty[:0]
		for len(s.later) > 0 {
			k := s.later[len(s.later)-1]
			s.later = s.later[:len(s.later)-1]
			s.closeSock(k)
		}
	}
}

func (s *Stack) serve(k *sock) {
	if k.closed {
		return
	}
	switch k.kind {
	case sockListener:
		s.serveAccept(k)
	case sockTCP, sockUDP:
		s.serveRead(k)
		s.serveWrite(k)
		s.refill(k)
	}
}

// handle carries out one queued call.
func (s *Stack) handle(it item) {
	k := it.k
	switch it.kind {
	case kFree:
		s.lib.SGAFree(it.sga)
	case kRead, kReadSGA:
		if k.closed {
			s.refuse(it, net.ErrClosed)
			return
		}
		// The previous read of this connection has ended (Reads are
		// serialized), so whatever the socket still holds is stale.
		k.reader = it
		s.serveRead(k)
		s.refill(k)
	case kWrite, kWriteSGA:
		if k.closed {
			s.refuse(it, net.ErrClosed)
			return
		}
		if k.writer.r != nil {
			// A cancelled write: its unsent chunk must not go out.
			s.dropWrite(k)
		}
		k.writer = it
		s.serveWrite(k)
	case kAccept:
		if k.closed {
			s.refuse(it, net.ErrClosed)
			return
		}
		k.acceptor = it
		s.serveAccept(k)
	case kDial:
		s.dial(it)
	case kAbort:
		if k := it.r.k; k != nil && !k.closed && k.dial.r == it.r {
			s.closeSock(k)
		}
	case kClose:
		s.closeSock(k)
		if it.r.acquire(it.gen) {
			s.finish(it.r, it.gen)
		}
	case kCall:
		if it.r.acquire(it.gen) {
			it.r.err = it.r.fn()
			s.finish(it.r, it.gen)
		}
	case kAlloc:
		s.alloc(it)
	}
}

// refuse finishes a call with err (unless it was cancelled) and frees
// the SGA it carried.
func (s *Stack) refuse(it item, err error) {
	if it.sga != nil && it.kind == kWriteSGA {
		s.lib.SGAFree(it.sga) // EBADF, harmlessly, once the libOS is closed
	}
	if it.r != nil && it.r.acquire(it.gen) {
		it.r.err = err
		s.finish(it.r, it.gen)
	}
}

// complete hands one completed operation to its socket.
func (s *Stack) complete(r *libos.Result) {
	var k *sock
	if int(r.QD) >= 0 && int(r.QD) < len(s.socks) {
		k = s.socks[r.QD]
	}
	if k == nil {
		// Every result of a closed socket is collected when it closes
		// (flushClosed), so this does not happen; free what it holds.
		s.stray++
		s.discard(r)
		return
	}
	k.ops--
	switch {
	case k.closed:
		s.discard(r)
	case k.kind == sockListener:
		s.accepted(k, r)
	case r.QT == k.connQT:
		s.connected(k, r)
	case k.takePop(r.QT):
		s.popped(k, r)
	default:
		s.pushed(k, r)
	}
}

// discard drops a result nobody wants: a popped SGA goes back, an accepted
// connection is closed (reset, as a listener's close resets those not yet
// accepted).
func (s *Stack) discard(r *libos.Result) {
	switch r.Opcode {
	case libos.OpPop:
		s.lib.SGAFree(r.SGA)
	case libos.OpAccept:
		s.lib.SetLinger(r.NewQD, 0)
		s.lib.CloseQueue(r.NewQD)
	}
}

func (s *Stack) popped(k *sock, r *libos.Result) {
	if r.Opcode == libos.OpFailed {
		if k.rerr == nil && r.Err != unix.ECANCELED {
			k.rerr = r.Err
		}
		s.mark(k)
		return
	}
	if k.kind == sockTCP && len(r.SGA.Segs) == 0 {
		k.eof = true // the peer's FIN
		s.lib.SGAFree(r.SGA)
		s.mark(k)
		return
	}
	if k.eof || k.rerr != nil {
		s.lib.SGAFree(r.SGA)
		return
	}
	k.rxPush(r.SGA)
	if k.reader.r != nil {
		s.mark(k)
	}
}

func (s *Stack) pushed(k *sock, r *libos.Result) {
	k.pushes--
	if r.Opcode == libos.OpFailed && r.Err != unix.ECANCELED {
		if k.kind == sockUDP {
			k.asyncErr = r.Err
		} else if k.werr == nil {
			k.werr = r.Err
		}
	}
	if k.writer.r != nil {
		s.mark(k)
	}
}

// refill keeps popAhead pops posted or popped-and-unread.
func (s *Stack) refill(k *sock) {
	if k.closed || (k.kind != sockTCP && k.kind != sockUDP) {
		return
	}
	for !k.eof && k.rerr == nil && k.npop+k.rxN < popAhead {
		qt, err := s.lib.Pop(k.qd)
		if err != nil {
			return
		}
		k.pops[(k.popHead+k.npop)%popAhead] = qt
		k.npop++
		k.ops++
	}
}

// serveRead gives the waiting reader what has arrived: a TCP Read takes
// as many bytes as fit (from several segments if they are there), a UDP
// one a datagram, a ReadSGA the next SGA itself.
//
//demixdp:hotpath — allocates nothing.
func (s *Stack) serveRead(k *sock) {
	it := k.reader
	if it.r == nil || (k.rxN == 0 && !k.eof && k.rerr == nil) {
		return
	}
	k.reader = item{}
	r := it.r
	if !r.acquire(it.gen) {
		return
	}
	switch {
	case k.rxN == 0:
		r.err = k.readErr()
	case it.kind == kReadSGA:
		r.sga = k.rx[k.rxHead]
		if k.seg > 0 || k.off > 0 { // what a Read left of it
			r.sga.Segs = r.sga.Segs[k.seg:]
			r.sga.Segs[0] = r.sga.Segs[0][k.off:]
		}
		k.rxPop()
	case k.kind == sockUDP:
		d := k.rxPop()
		for _, seg := range d.Segs {
			r.n += copy(r.buf[r.n:], seg)
		}
		r.from = d.Addr
		s.lib.SGAFree(d)
	default:
		for r.n < len(r.buf) && k.rxN > 0 {
			sga := k.rx[k.rxHead]
			seg := sga.Segs[k.seg]
			c := copy(r.buf[r.n:], seg[k.off:])
			r.n += c
			k.off += c
			if k.off == len(seg) {
				k.seg, k.off = k.seg+1, 0
				if k.seg == len(sga.Segs) {
					s.lib.SGAFree(k.rxPop())
				}
			}
		}
	}
	s.finish(r, it.gen)
}

// chunk is how many of rem bytes the writer's next SGA carries.
func (s *Stack) chunk(k *sock, rem int) int {
	if k.kind == sockUDP {
		return rem // one datagram
	}
	c := min(rem, s.maxChunk)
	if c > s.segSize && c <= s.maxDatagram {
		// SGAAlloc would make this one segment longer than a TCP
		// segment, which the engine would split by copying.
		c = s.segSize
	}
	return c
}

// serveWrite pushes the waiting writer's bytes, one SGA at a time, until
// they are all queued or the libOS has no room (EAGAIN: a push completion
// brings it back; ENOBUFS: it retries after a while). The write's next
// SGA, once filled, is kept until it can go.
//
//demixdp:hotpath — allocates nothing.
func (s *Stack) serveWrite(k *sock) {
	for k.writer.r != nil {
		it := k.writer
		r := it.r
		if !r.acquire(it.gen) {
			s.dropWrite(k)
			return
		}
		if err := k.writeErr(); err != nil {
			s.endWrite(k, err)
			return
		}
		if k.wsga == nil {
			if it.kind == kWriteSGA {
				k.wsga, k.wlen = it.sga, it.sga.Len()
				k.writer.sga = nil
			} else {
				c := s.chunk(k, len(r.buf)-r.n)
				sga, err := s.lib.SGAAlloc(c)
				if err == unix.ENOBUFS {
					r.release(it.gen)
					s.waitRetry(k)
					return
				}
				if err != nil {
					s.endWrite(k, err)
					return
				}
				src := r.buf[r.n : r.n+c]
				for _, seg := range sga.Segs {
					src = src[copy(seg, src):]
				}
				k.wsga, k.wlen = sga, c
			}
		}
		var err error
		if k.kind == sockUDP {
			_, err = s.lib.PushTo(k.qd, k.wsga, r.addr)
		} else {
			_, err = s.lib.Push(k.qd, k.wsga)
		}
		if err == unix.EAGAIN {
			r.release(it.gen)
			if k.pushes == 0 {
				s.waitRetry(k) // no completion of ours will come to wake us
			}
			return
		}
		s.lib.SGAFree(k.wsga) // free-protection keeps the frames until sent (TCP: acknowledged)
		k.wsga = nil
		if err != nil {
			s.endWrite(k, err)
			return
		}
		k.ops++
		k.pushes++
		r.n += k.wlen
		if it.kind == kWriteSGA || k.kind == sockUDP || r.n == len(r.buf) {
			s.endWrite(k, nil)
			return
		}
		r.release(it.gen)
	}
}

// endWrite finishes the (acquired) writer with err.
func (s *Stack) endWrite(k *sock, err error) {
	it := k.writer
	s.dropWrite(k)
	it.r.err = err
	s.finish(it.r, it.gen)
}

// dropWrite forgets a cancelled writer and the chunk it had filled: the
// application was told those bytes were not written.
func (s *Stack) dropWrite(k *sock) {
	if k.wsga != nil {
		s.lib.SGAFree(k.wsga)
		k.wsga = nil
	}
	if k.writer.sga != nil {
		s.lib.SGAFree(k.writer.sga)
	}
	k.writer = item{}
}

// alloc serves AllocSGA; with the UMEM exhausted it waits (as a Write
// does), retried every retryEvery and after completions.
func (s *Stack) alloc(it item) {
	if !it.r.acquire(it.gen) {
		return
	}
	it.r.sga, it.r.err = s.lib.SGAAlloc(it.r.size)
	if it.r.err == unix.ENOBUFS {
		it.r.err = nil
		it.r.release(it.gen)
		s.allocs = append(s.allocs, it)
		return
	}
	s.finish(it.r, it.gen)
}

// retryWaiting gives the writers and AllocSGA calls that wait for frames
// another try.
func (s *Stack) retryWaiting() {
	for _, k := range s.retry {
		k.retrying = false
		s.mark(k)
	}
	clear(s.retry)
	s.retry = s.retry[:0]
	if len(s.allocs) > 0 {
		waiting := s.allocs
		s.allocs = nil
		for _, it := range waiting {
			s.alloc(it)
		}
	}
}

func (s *Stack) waitRetry(k *sock) {
	if !k.retrying {
		k.retrying = true
		s.retry = append(s.retry, k)
	}
}

// serveAccept hands an accepted connection to the waiting Accept and keeps
// one libOS Accept posted while none is waiting to be taken.
func (s *Stack) serveAccept(k *sock) {
	if it := k.acceptor; it.r != nil && (len(k.ready) > 0 || k.rerr != nil) {
		k.acceptor = item{}
		if it.r.acquire(it.gen) {
			if len(k.ready) > 0 {
				c := k.ready[0]
				k.ready = append(k.ready[:0], k.ready[1:]...)
				it.r.tcp = c.tcp
			} else {
				it.r.err = k.rerr
			}
			s.finish(it.r, it.gen)
		}
	}
	if k.acceptQT == 0 && len(k.ready) == 0 && k.rerr == nil {
		qt, err := s.lib.Accept(k.qd)
		if err != nil {
			k.rerr = err
			return
		}
		k.acceptQT = qt
		k.ops++
	}
}

func (s *Stack) accepted(k *sock, r *libos.Result) {
	k.acceptQT = 0
	if r.Opcode == libos.OpFailed {
		if r.Err != unix.ECANCELED {
			k.rerr = r.Err
		}
		s.mark(k)
		return
	}
	c := s.newSock(r.NewQD, sockTCP)
	la, _ := s.lib.LocalAddr(r.NewQD)
	c.tcp = newTCPConn(s, c, la, r.Addr)
	s.refill(c)
	k.ready = append(k.ready, c)
	s.mark(k)
}

// dial starts a Dial: UDP connects at once; TCP sends its SYN and the call
// waits, cancellable, for connected.
func (s *Stack) dial(it item) {
	r := it.r
	if !r.acquire(it.gen) {
		return
	}
	typ := libos.SOCK_STREAM
	if r.net == "udp" {
		typ = libos.SOCK_DGRAM
	}
	qd, err := s.lib.Socket(libos.AF_INET, typ, 0)
	if err != nil {
		r.err = err
		s.finish(r, it.gen)
		return
	}
	if typ == libos.SOCK_STREAM {
		s.lib.SetNoDelay(qd, true) // as the net package does
	}
	qt, err := s.lib.Connect(qd, r.addr)
	if err != nil {
		s.lib.CloseQueue(qd)
		r.err = err
		s.finish(r, it.gen)
		return
	}
	la, _ := s.lib.LocalAddr(qd)
	if typ == libos.SOCK_DGRAM {
		s.lib.Wait(qt, 0) // a UDP connect has completed already
		k := s.newSock(qd, sockUDP)
		k.udp = newUDPConn(s, k, la, r.addr)
		s.refill(k)
		r.udp = k.udp
		s.finish(r, it.gen)
		return
	}
	k := s.newSock(qd, sockConnecting)
	k.connQT, k.dial = qt, it
	k.ops++
	r.k = k
	r.release(it.gen)
}

func (s *Stack) connected(k *sock, r *libos.Result) {
	k.connQT = 0
	it := k.dial
	k.dial = item{}
	if !it.r.acquire(it.gen) {
		s.closeSock(k) // cancelled meanwhile (no operation left: closes at once)
		return
	}
	if r.Opcode == libos.OpFailed {
		it.r.err = r.Err
		s.finish(it.r, it.gen)
		s.closeSock(k)
		return
	}
	k.kind = sockTCP
	la, _ := s.lib.LocalAddr(k.qd)
	ra, _ := s.lib.RemoteAddr(k.qd)
	k.tcp = newTCPConn(s, k, la, ra)
	s.refill(k)
	it.r.tcp = k.tcp
	s.finish(it.r, it.gen)
}

// failHeld finishes every call k holds with err.
func (s *Stack) failHeld(k *sock, err error) {
	for _, it := range [...]item{k.reader, k.acceptor, k.dial} {
		if it.r != nil {
			s.refuse(it, err)
		}
	}
	k.reader, k.acceptor, k.dial = item{}, item{}, item{}
	if it := k.writer; it.r != nil {
		if it.r.acquire(it.gen) {
			s.endWrite(k, err)
		} else {
			s.dropWrite(k)
		}
	}
}

// closeSock closes k's queue: its held calls fail with net.ErrClosed, its
// unread data goes back (a TCP connection closed with unread data is
// reset, as Linux does), connections a listener accepted but nobody took
// are reset, and every result the libOS still had for the queue is
// collected, so that no result of it can be mistaken for one of a later
// queue that reuses its descriptor. A socket with results outstanding is
// closed after the batch being processed, if there is one.
func (s *Stack) closeSock(k *sock) {
	if k.closed {
		return
	}
	if k.ops > 0 && s.iterating {
		s.later = append(s.later, k)
		return
	}
	k.closed = true
	s.failHeld(k, net.ErrClosed)
	unread := k.rxN > 0
	for k.rxN > 0 {
		s.lib.SGAFree(k.rxPop())
	}
	for _, c := range k.ready {
		s.lib.SetLinger(c.qd, 0)
		s.closeSock(c)
	}
	k.ready = nil
	if unread && k.kind == sockTCP {
		s.lib.SetLinger(k.qd, 0)
	}
	s.lib.CloseQueue(k.qd)
	s.flushClosed(k)
	if int(k.qd) < len(s.socks) && s.socks[k.qd] == k {
		s.socks[k.qd] = nil
	}
}

// flushClosed collects the results of a queue just closed: CloseQueue has
// completed all its operations, so they are on the libOS's done list, and
// WaitNext with timeout 0 returns them without a turn of the loop. Other
// sockets' results that come out with them are handled as usual.
func (s *Stack) flushClosed(k *sock) {
	was := s.iterating
	s.iterating = true
	for k.ops > 0 {
		n, _ := s.lib.WaitNext(s.tmp[:], 0)
		if n == 0 {
			s.stray++ // k counted an operation the libOS no longer has
			break
		}
		for i := 0; i < n; i++ {
			s.complete(&s.tmp[i])
			s.tmp[i] = libos.Result{}
		}
	}
	s.iterating = was
}

// shutdown runs when the loop stops: every held and queued call fails with
// net.ErrClosed and the libOS closes.
func (s *Stack) shutdown() {
	for _, k := range s.socks {
		if k != nil {
			s.failHeld(k, net.ErrClosed)
			k.closed = true
		}
	}
	for _, it := range s.allocs {
		s.refuse(it, net.ErrClosed)
	}
	s.allocs = nil
	s.closeErr = s.lib.Close()
	s.mu.Lock()
	s.dead = true
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, it := range q {
		s.refuse(it, net.ErrClosed)
	}
}
