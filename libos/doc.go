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
// segment's frame (the only copy the API ever makes) and must fit there and
// in the MTU, otherwise EMSGSIZE.
//
// # Errors
//
// Every error satisfies errors.Is with a golang.org/x/sys/unix errno, as
// listed on each method (EBADF, EINVAL, EAGAIN, ENOBUFS, ETIMEDOUT,
// ECANCELED, EMSGSIZE, EDESTADDRREQ, EADDRINUSE, EHOSTUNREACH, ENOTSUP...).
// On the datapath they are the bare errno values, which allocate nothing.
//
// # Waiting without burning a core
//
// Wait busy-polls the rings for Config.Spin after the last sign of activity,
// then blocks in poll(2) on the AF_XDP socket until a packet arrives or the
// next timer is due, so an idle server costs almost no CPU while a busy one
// never sleeps.
package libos
