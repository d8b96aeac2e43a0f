// Package umem provides the UMEM: the memory region that a process shares
// with the kernel's AF_XDP sockets, cut into fixed-size frames, and the Pool
// that tracks who owns each frame.
//
// # The region
//
// New maps one anonymous, page-aligned, pre-faulted region of
// NumFrames*FrameSize bytes (optionally on huge pages). Bytes hands the whole
// region to XDP_UMEM_REG; Frame, Addr, FrameOf and FrameOfSlice translate
// between frame indices, UMEM offsets (what ring descriptors carry) and Go
// slices. A frame slice is capped at the frame's end, so an append that
// outgrows it reallocates instead of writing into the neighbouring frame.
// Frames that the application allocates reserve Headroom bytes in front of
// the payload for the Ethernet, IPv4 and TCP headers, so a push never copies.
//
// # Ownership
//
// Every frame of a Pool is in exactly one State and has a reference count:
//
//	Free ──AllocFill──▶ Fill ──Received──▶ RX ─┐
//	  │                  │                     ├─SubmitTX─▶ TX ──Completed──▶ App
//	  └──────Alloc──────────────────────▶ App ─┘             │
//	                     │                                    └─Unref to 0─▶ AwaitCompletion ──Completed──▶ Free
//	                     └──Reclaim (teardown)──▶ Free
//
// Free frames belong to the pool, Fill frames to the kernel (posted for
// receive), RX and App frames to the stack and the application (one reference
// per holder, Ref/Unref), TX frames to the kernel and to their holders at
// once: the kernel reads them until the completion ring returns them.
//
// # Free-protection
//
// An application may free a buffer it has pushed before the transmit
// completes. Unref of the last reference of a TX frame does not free it: the
// frame moves to AwaitCompletion and reaches the free list only when
// Completed reports the completion. Until then Alloc cannot hand it out, so
// the kernel never transmits bytes that a new owner is overwriting. (TCP keeps
// its own reference until the data is acknowledged, since a retransmission
// reads the same frame.)
//
// # Misuse
//
// Every misuse (a double free, an index outside the pool, an impossible
// transition) returns an error wrapping ErrDoubleFree, ErrNotFrame or
// ErrBadTransition, increments the matching Stats counter and leaves the pool
// unchanged; nothing panics and the free list is never corrupted.
//
// # Concurrency
//
// A Pool is not safe for concurrent use: the one goroutine that runs a
// LibOS queue owns it. Several queues that share one UMEM (XDP_SHARED_UMEM)
// each get their own Pool over a disjoint range of frames; the UMEM itself is
// read-only after New and may be shared, except that Close must not run while
// anything still uses the region.
package umem
