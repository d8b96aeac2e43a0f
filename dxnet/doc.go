// Package dxnet puts Go's net interfaces over demixdp's libOS, so that
// ordinary Go servers and clients (net/http, database and cache clients,
// anything written against net.Conn) run on AF_XDP unchanged:
//
//	st, err := dxnet.Open(libos.Config{Interface: "eth1", Addr: netip.MustParsePrefix("198.51.100.1/24")})
//	if err != nil { log.Fatal(err) }
//	defer st.Close()
//	ln, err := st.Listen("tcp", ":8080")
//	if err != nil { log.Fatal(err) }
//	log.Fatal(http.Serve(ln, handler))
//
// A Stack owns one libOS (one NIC queue). Listen returns a net.Listener
// whose Accept gives *TCPConn values, Dial and DialContext give *TCPConn or
// connected *UDPConn values, ListenPacket gives a *UDPConn (a
// net.PacketConn). Their semantics are the net package's: Read returns
// io.EOF after the peer's FIN; errors are *net.OpError wrapping the errno
// (errors.Is(err, syscall.ECONNRESET) works), os.ErrDeadlineExceeded
// (deadlines are absolute, may be moved while a call waits, and the zero
// time clears them) or net.ErrClosed (Close unblocks every waiting call);
// a Read and a Write may run at the same time on one connection; a Write
// returns once all its bytes are queued, waiting for room when the send
// buffer is full. Hosts are IPv4 literals: dxnet resolves no names.
//
// # The loop goroutine
//
// A LibOS is not safe for concurrent use, so a Stack drives it from one
// goroutine of its own: the loop. Application
// goroutines never call the libOS. A call such as Read fills a request
// the connection owns (one per direction, reused call after call), puts
// it on the stack's queue and calls libos.Wake, which gets the loop out
// of its spin or its poll(2); the loop drains the whole queue each turn,
// serves each call at once if it can (data already received, room in the
// send buffer) or holds it on the socket, and when libOS operations
// complete (libos.WaitNext) it serves the calls they unblock and wakes
// their goroutines through a channel, then yields the processor so that
// they run at once (a goroutine woken by a loop that went on polling
// waited tens of microseconds for another processor to take it). The loop
// is not locked to an OS thread: a locked goroutine that yields costs a
// thread switch and a futex wake-up, 30 µs a hand-off instead of 1.5
// (BenchmarkHandoff; docs/DECISIONS.md). The loop takes the queue's lock once
// per turn in which calls arrived, never per packet; besides that, only
// the channel send that wakes a finished call's goroutine takes a lock
// (the channel's own, inside the runtime).
//
// Each connection keeps a few pops posted (popAhead), so data that
// arrives before a Read waits in its frames, and a Read takes every
// segment that is there, copying it out once and giving each frame back
// as soon as it is consumed. A Write is cut into SGAs of up to
// libos.MaxSegments full-sized segments, copied in once and pushed; a push
// the libOS refuses with EAGAIN (send buffer or frame budget full) is held
// and retried when one of the connection's pushes completes, so the
// caller waits instead of seeing the error.
//
// A call given up (its deadline passes, or Close) is cancelled by a
// compare-and-swap on its request, done by the deadline's timer or by
// Close, which then wakes the caller; the loop's own compare-and-swap
// before it touches the caller's buffer cannot cross it. A waiting call
// thus waits on one channel and nothing else. A Read that returned never
// has bytes copied into its buffer later, and a Write that returned n
// never has more than n of its bytes sent.
//
// # Allocations
//
// Read and Write allocate nothing in steady state (see the package's
// benchmarks, which report allocs/op): requests are per connection, the
// queue's slices are reused, the wake-up is an atomic flag plus, only when
// the loop sleeps, an eventfd write. What allocates: Dial, Listen,
// Accept (per connection: the connection's objects), socket options (a
// closure run on the loop), the first deadline set on a connection (its
// timer), errors (*net.OpError), and UDP's ReadFrom and ReadFromUDP (the
// address: use ReadFromUDPAddrPort, which does not).
//
// # Zero copy
//
// ReadSGA returns the received frames themselves and WriteSGA sends frames
// the caller filled (from AllocSGA) in place; FreeSGA gives an SGA back.
// The plain Read and Write copy once each way.
package dxnet
