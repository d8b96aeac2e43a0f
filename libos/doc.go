// Package libos is demixdp's public API: the Demikernel queue interface
// (Socket, Bind, Connect, Push, PushTo, Pop, Wait, WaitAny, CloseQueue and
// scatter-gather arrays; CloseQueue is demi_close, named so because Close
// closes the LibOS itself) over one queue of a network interface taken over
// with AF_XDP.
//
// # Shape
//
// A LibOS owns one NIC queue: a UMEM shared with the kernel, an AF_XDP
// socket on the queue, the eBPF program that steers the libOS's traffic into
// that socket, and a netstack. Nothing runs in the background: every bit of
// progress (receiving, transmitting, timers) happens inside LibOS calls,
// above all Wait and WaitAny. A LibOS is not safe for concurrent use; drive
// it from one goroutine, as Demikernel does. Several queues mean several
// LibOS values.
//
// # Zero copy
//
// SGAAlloc carves scatter-gather arrays out of UMEM frames, leaving headroom
// in front of each segment. Push writes the Ethernet, IPv4 and UDP headers
// into that headroom and posts the very same frame to the TX ring. Pop
// returns an SGA whose segment is a view of the received frame itself;
// SGAFree gives it back to the kernel's fill ring. A segment may be shortened
// (resliced) but must stay inside the frame it came from; memory the libOS
// did not allocate is not a valid SGA (EINVAL).
//
// Free-protection: the application may free an SGA right after pushing it.
// Its frames return to the pool only when the kernel has finished
// transmitting them.
//
// # Operations and tokens
//
// Push, PushTo, Pop and Connect start an operation and return a QToken.
// Wait and WaitAny run the event loop until an operation completes and
// return its Result; a failed operation has Opcode OpFailed and the reason
// in Result.Err. A token is consumed by the Wait that returns its result;
// waiting on it again is EINVAL. A Wait that times out (ETIMEDOUT) leaves the
// operation pending and its token valid. CloseQueue completes the queue's pending
// operations with ECANCELED.
//
// UDP Push completes when the kernel's TX completion returns the frame. A
// datagram is one SGA; an SGA of several segments is gathered into its first
// segment's frame (a copy, the UDP path's only one) and must fit there and
// in the MTU, otherwise EMSGSIZE.
//
// # TCP
//
// A SOCK_STREAM queue adds Listen, Accept (completes with OpAccept and the
// new connection's queue in Result.NewQD), Connect (completes with OpConnect
// once established, or fails with ECONNREFUSED or ETIMEDOUT) and Shutdown
// (half-close). Each SGA segment becomes one TCP segment, its header written
// into the segment's headroom; SGAAlloc sizes segments so that they fit the
// MSS, and a longer one is split with its excess copied. A TCP Push
// completes when the peer has acknowledged every byte of it: until then its
// frames stay referenced, since a retransmission sends them again, so the
// SGA may still be freed at once. EAGAIN from Push means the connection's
// send buffer is full: retry once some of its pushes have completed. A Pop
// returns the next in-order bytes as a view of the frame they arrived in;
// an SGA with no segments means the peer has closed its side. CloseQueue
// closes like close(2): a FIN after the data already pushed, or a reset if
// received data was left unread.
//
// Frames are shared by everything: send queues waiting for ACKs, received
// data waiting for the application, the fill ring. TCP buffers default to a
// share of the UMEM, and when free frames run short the stack drops
// received payload (the peer resends it) rather than let the fill ring run
// dry. docs/DECISIONS.md in the repository explains these choices.
//
// # Errors
//
// Every error satisfies errors.Is with a golang.org/x/sys/unix errno, as
// listed on each method (EBADF, EINVAL, EAGAIN, ENOBUFS, ETIMEDOUT,
// ECANCELED, EMSGSIZE, EDESTADDRREQ, EADDRINUSE, EHOSTUNREACH, ENOTSUP...).
// On the datapath they are the bare errno values, which allocate nothing.
//
// # Operating it
//
// Config.Logger receives lifecycle events (attach, with the copy or
// zero-copy mode obtained and why; detach) and rate-limited warnings;
// Config.Capture receives every frame, with the reason of each drop
// (package dxcapture writes pcapng); the steering maps are pinned under
// /sys/fs/bpf/demixdp/IF for `demixdp stat`; package dxmetrics exports
// Counters to Prometheus. All of it is off the datapath unless asked
// for. New's errors say what to do and name a section of
// docs/troubleshooting.md; `demixdp doctor` checks a machine first.
//
// # Several queues
//
// OpenQueues takes over several queues of a NIC (by default all of them)
// on one UMEM shared with XDP_SHARED_UMEM and returns one LibOS per
// queue, each with its own AF_XDP socket, rings, share of the frames,
// netstack and TCP engine; RunQueues drives each from its own goroutine
// on its own OS thread, optionally pinned to a CPU. The queues share the
// address: a port bound on every queue is served by every queue, and a
// connection lives on the queue its first packet arrived on. Outbound
// connections choose ports whose replies the NIC's RSS brings back to
// their queue where the RSS key and table can be read; elsewhere a queue
// that receives a frame for another hands it to that queue's loop through
// a lock-free ring, without copying it. Every queue's loop must keep
// running while the others have traffic.
//
// # Waiting without burning a core
//
// Wait busy-polls the rings for Config.Spin after the last sign of activity,
// then blocks in poll(2) on the AF_XDP socket until a packet arrives or the
// next timer is due, so an idle server costs almost no CPU while a busy one
// never sleeps.
package libos
