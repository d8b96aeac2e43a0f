// Package tcp holds the self-contained building blocks of demixdp's TCP:
// pure code with no system calls, no goroutines and no clock of its own
// (time is always passed in), which the connection state machine is built
// on. Methods meant for the per-segment path allocate nothing.
//
//   - header.go: the Header view of a segment (RFC 9293 §3.1), Parse,
//     Encode, the IPv4 pseudo-header checksum, and option parsing and
//     encoding (RFC 9293 §3.2 MSS, RFC 7323 window scale and timestamps,
//     RFC 2018 SACK-permitted and SACK blocks).
//   - seqnum.go: Seq, modular sequence-number arithmetic (RFC 9293 §3.4).
package tcp
