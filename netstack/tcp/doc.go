// Package tcp holds the self-contained building blocks of demixdp's TCP:
// pure code with no system calls, no goroutines and no clock of its own
// (time is always passed in as a time.Duration since any fixed origin),
// which the connection state machine is built on. Methods meant for the
// per-segment path allocate nothing; errors for bad input are unwrapped
// sentinels (test with errors.Is) so that rejecting a packet is free.
//
//   - header.go: the Header view of a segment (RFC 9293 §3.1), Parse,
//     Encode, the IPv4 pseudo-header checksum, and option parsing and
//     encoding (RFC 9293 §3.2 MSS, RFC 7323 window scale and timestamps,
//     RFC 2018 SACK-permitted and SACK blocks).
//   - seqnum.go: Seq, modular sequence-number arithmetic (RFC 9293 §3.4).
//   - rto.go: RTO, the retransmission-timeout estimator of RFC 6298.
//   - cc.go: the CongestionControl interface and RFC 6928's initial window;
//     newreno.go: RFC 5681 with RFC 3465 byte counting; cubic.go: RFC 9438.
//   - isn.go: Tuple and RFC 6528 initial sequence numbers on SipHash-2-4.
//   - syncookie.go: stateless SYN cookies (RFC 4987 §3.6) carrying the MSS.
//   - sack.go: Scoreboard, the sender's SACK scoreboard with IsLost, Pipe
//     and NextSeg of RFC 6675.
//   - reasm.go: Reassembler, the receiver's bounded out-of-order queue,
//     which also chooses the SACK blocks to advertise (RFC 2018 §4).
//
// On these sits the connection engine, driven by package stack through
// the small Network interface this package defines (tcp never imports
// stack):
//
//   - proto.go: Proto, one stack's TCP: Config, Counters, the connection
//     table (a map by 4-tuple: one lookup per segment), listeners, ports,
//     RSTs for closed ports, RFC 5961 challenge-ACK rate limit, Input and
//     Tick.
//   - endpoint.go: Endpoint, the socket: Bind, Listen, Accept, Connect,
//     Send, Recv, Shutdown, Close, Abort, options and teardown.
//   - input.go: segment arrival (RFC 9293 §3.10.7): listener and SYN
//     cookies, SYN-SENT, the synchronized states with PAWS, RST/SYN/ACK
//     checks, ACK processing with loss recovery, and the receive queues.
//   - output.go: segment building in the frame's headroom, the send loop
//     (windows, Nagle, RFC 6675 NextSeg in recovery, FIN), the persist,
//     retransmission, delayed-ACK, keepalive and state timers.
//   - timer.go: the binary heap holding each connection once, at its
//     earliest timer.
//
// Zero copy: a pushed buffer becomes one segment whose header is written in
// front of its payload, in the same frame, for every (re)transmission; the
// endpoint holds a frame reference until the frame's bytes are
// acknowledged. Only a buffer longer than the MSS is split, its excess
// copied into frames from the link (Counters.SendCopies). Received
// in-order payload is handed to the application as views of the received
// frames; out-of-order segments are held with their frames, bounded by
// as many pieces as the receive buffer holds full segments (at least
// ReasmCapacity).
//
// A retransmission rewrites the headers in the frame's headroom, so it
// waits until the link reports the frame's previous transmission complete
// (nic.Link.Busy): a zero-copy NIC may still be reading those bytes.
package tcp
