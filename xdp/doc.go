// Package xdp is an AF_XDP socket on golang.org/x/sys/unix: it registers a
// UMEM the caller mapped, maps the four rings, binds to one device queue and
// exposes the rings as allocation-free batch views.
//
// The package does not own packet memory: Config.Umem is a region the caller
// mapped (package umem manages frames in it), and every ring entry is an
// offset into that region. No eBPF program is loaded here; a program on the
// interface must redirect frames into the socket (through an XSKMAP keyed by
// queue, with FD as the value) before the RX ring sees anything.
//
// # Rings
//
// FillRing and TXRing are produced by the application, CompRing and RXRing by
// the kernel. A batch goes: Reserve (or Peek) up to n slots, Set (or Get) each
// slot by index, Submit (or Release) them. Indices are free-running uint32
// counters that wrap past 2^32; slot i lives at i&(Size-1). Our own index is
// kept privately and published with an atomic store after the entries are
// written; the kernel's index is read with an atomic load, and only when the
// cached copy cannot satisfy the request. None of the ring methods allocate
// or make system calls. Counts are clamped (a Submit of more than was
// reserved publishes only what was reserved), so a wrong count cannot hand
// the kernel stale slots.
//
// # Copy and zero-copy
//
// In zero-copy mode the driver DMAs straight into UMEM frames; in copy mode
// (generic XDP, veth, drivers without AF_XDP support) the kernel copies
// between its own buffers and the UMEM. The ring protocol is the same.
// ModeAuto asks for zero-copy and, if the bind is refused, opens a fresh
// socket in copy mode. ZeroCopy reports what the kernel granted, read with
// getsockopt(XDP_OPTIONS) after bind, not what was asked for. A veth is
// always copy mode.
//
// # need_wakeup
//
// By default the socket is bound with XDP_USE_NEED_WAKEUP: the kernel stops
// polling a ring on its own and sets that ring's XDP_RING_NEED_WAKEUP flag
// when it wants a system call.
//
//   - TX: after Submit, call Kick when TX().NeedWakeup() is true. In copy
//     mode the flag is always set and every transmit needs the sendto: the
//     copy-mode transmit path runs only inside that system call, and each
//     call sends a bounded batch (32 frames by default), so keep kicking
//     while the completion ring lags the TX ring.
//   - RX: call WakeFill after refilling; it makes the recvfrom only when the
//     fill ring's flag is set. In copy mode receive needs no system call: the
//     redirect copies the frame into the socket in the sender's (or the
//     driver's) context.
//   - To sleep until a frame arrives, Poll.
//
// With Config.NoNeedWakeup the flags stay clear, the driver polls the rings
// itself (costing CPU in zero-copy mode), WakeFill does nothing and Kick is
// still needed to start copy-mode TX.
//
// Kick and WakeFill treat EAGAIN, EBUSY, ENOBUFS, ENETDOWN and EINTR as
// transient and return nil: the descriptors stay in the ring, and the next
// call retries.
//
// # Threading
//
// Each ring is single-producer/single-consumer: the kernel is one side, and
// exactly one goroutine may be the other. Socket methods take no locks. Use
// one socket from one goroutine (the libOS event loop), or hand a ring to
// one other goroutine and never touch it from anywhere else. Sockets that
// share a UMEM on the same device queue share its fill and completion rings
// (Fill and Completion return the owner's), so they need that same
// discipline across sockets.
//
// # Lifetime
//
// Close unmaps the rings and closes the descriptor; views obtained earlier
// then report full/empty instead of touching unmapped memory. The UMEM must
// stay mapped until every socket that uses it is closed, and sockets sharing
// an owner's rings must close before the owner.
package xdp
