package dxnet

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/demixdp/demixdp/libos"
)

// A request is one application call handed to the loop goroutine: the
// application fills it, queues an item naming it, and waits on done; the
// loop serves it (at once, or later when data or room arrives) and
// signals done. Each connection owns one request per direction, reused
// call after call, so the datapath allocates nothing.
//
// Ownership moves through state, a generation (one per call) and a phase:
//
//	pending   queued or held by the loop; the application may cancel it
//	busy      the loop is touching the caller's buffer; no cancelling
//	done      the loop has finished; done has been signalled
//	cancelled the application gave up (deadline, Close); the loop drops it
//
// The application (a deadline, Close) moves pending to cancelled, the loop pending to busy and
// busy to pending or done, all by compare-and-swap on the generation and
// phase together, so a stale item (from a call that was cancelled, its
// request since reused) can never touch a newer call's buffer.
type request struct {
	state  atomic.Uint64
	active atomic.Uint64 // the generation of the call in progress, 0 between calls
	done   chan struct{} // capacity 1: one signal per call, from the loop or an interrupt
	gen    uint64        // the application's count of calls (application side only)
	why    error         // why an interrupt cancelled the call

	// Filled by the application before it queues the call.
	buf  []byte
	addr netip.AddrPort // UDP: WriteTo's destination; Dial: the remote
	size int            // AllocSGA
	fn   func() error   // call
	net  string         // Dial

	// Filled by the loop (busy), read by the application after done.
	n    int
	err  error
	from netip.AddrPort // UDP ReadFrom: the sender
	sga  *libos.SGA     // ReadSGA, AllocSGA
	tcp  *TCPConn       // Accept, Dial
	udp  *UDPConn       // Dial

	k *sock // Dial: the connecting socket (loop side only)
}

const (
	phasePending uint64 = iota + 1
	phaseBusy
	phaseDone
	phaseCancelled
	phaseBits = 3
)

func newRequest() request { return request{done: make(chan struct{}, 1)} }

// start begins a new call on r (application side) and returns its
// generation.
func (r *request) start() uint64 {
	r.gen++
	r.n, r.err, r.from, r.sga, r.tcp, r.udp = 0, nil, netip.AddrPort{}, nil, nil, nil
	r.state.Store(r.gen<<phaseBits | phasePending)
	return r.gen
}

// cancel gives up call gen (application side); false means the loop is
// busy with it or has finished it, and done will be (or has been)
// signalled.
func (r *request) cancel(gen uint64) bool {
	return r.state.CompareAndSwap(gen<<phaseBits|phasePending, gen<<phaseBits|phaseCancelled)
}

// acquire takes call gen for the loop; false means it was cancelled (or is
// stale) and must be dropped.
func (r *request) acquire(gen uint64) bool {
	return r.state.CompareAndSwap(gen<<phaseBits|phasePending, gen<<phaseBits|phaseBusy)
}

// release hands an acquired call back, still pending (loop side): it waits
// for data or room and may be cancelled meanwhile.
func (r *request) release(gen uint64) { r.state.Store(gen<<phaseBits | phasePending) }

// finish completes an acquired call (loop side) and wakes its caller.
func (r *request) finish(gen uint64) {
	r.state.Store(gen<<phaseBits | phaseDone)
	select {
	case r.done <- struct{}{}:
	default:
	}
}

// reqKind says what an item asks of the loop.
type reqKind uint8

const (
	kFree     reqKind = iota + 1 // give sga back (no request)
	kRead                        // TCP Read, UDP Read/ReadFrom
	kReadSGA                     // TCP ReadSGA
	kWrite                       // TCP Write, UDP Write/WriteTo
	kWriteSGA                    // TCP WriteSGA (sga in the item)
	kAccept                      // Listener Accept
	kDial                        // Dial (TCP or UDP)
	kAbort                       // a cancelled Dial: close its socket
	kClose                       // close k
	kCall                        // run fn on the loop
	kAlloc                       // SGAAlloc(size)
)

// item is one entry of the loop's queue: a call of a request, by value.
type item struct {
	r    *request
	gen  uint64
	kind reqKind
	k    *sock
	sga  *libos.SGA // kFree, kWriteSGA
}

// submit queues it for the loop and wakes the loop. It reports false if
// the stack is closed (the loop has exited and will never see it).
//
//demixdp:hotpath — allocates nothing once the queue has grown.
func (s *Stack) submit(it item) bool {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, it)
	s.queued.Store(1)
	s.mu.Unlock()
	s.lib.Wake()
	return true
}

// rpc runs a call with no datapath role (Listen, socket options, Dial's
// setup, AllocSGA) on a request from a pool and waits for it.
var reqPool = sync.Pool{New: func() any { r := newRequest(); return &r }}

func (s *Stack) rpc(kind reqKind, prepare func(*request)) (*request, uint64, error) {
	r := reqPool.Get().(*request)
	r.buf, r.fn, r.net, r.addr, r.size, r.k = nil, nil, "", netip.AddrPort{}, 0, nil
	gen := r.start()
	if prepare != nil {
		prepare(r)
	}
	if !s.submit(item{r: r, gen: gen, kind: kind}) {
		reqPool.Put(r)
		return nil, 0, net.ErrClosed
	}
	<-r.done // the loop finishes every queued item, also when it exits
	return r, gen, nil
}

// call runs fn on the loop goroutine and returns its error.
func (s *Stack) call(fn func() error) error {
	r, _, err := s.rpc(kCall, func(r *request) { r.fn = fn })
	if err != nil {
		return err
	}
	err = r.err
	r.fn = nil
	reqPool.Put(r)
	return err
}
