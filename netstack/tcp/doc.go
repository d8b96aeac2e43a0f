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
package tcp
