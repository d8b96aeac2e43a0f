// Command kudp is a UDP tool on the kernel's own sockets, the peer and the
// baseline for demixdp's tests, demo and benchmarks.
//
//	kudp echo -addr IP:PORT
//	kudp client -remote IP:PORT [-n N] [-size B | -sizes MIN-MAX] [-outstanding K]
//	    [-verify=true] [-timeout 200ms] [-retries 3] [-allow-loss L]
//
// echo answers every datagram with its own bytes; it prints a line
// containing "listening" when ready and its counters on SIGINT/SIGTERM.
//
// client runs N closed-loop round trips with at most K datagrams in flight.
// Datagram i carries i (little endian, as much as fits) followed by bytes
// derived from i and a random per-run seed, so every byte of every reply can
// be checked. Sizes cycle through MIN..MAX. A request unanswered after
// -timeout is sent again, at most -retries times, then counted lost. It
// prints one line:
//
//	rtt_p50_us=.. rtt_p99_us=.. rtt_p999_us=.. rtt_max_us=.. pps=.. sent=.. received=.. lost=.. bad=.. dup=.. retransmits=.. elapsed_s=..
//
// and exits 1 if any reply was corrupt (bad > 0) or more than -allow-loss
// requests were lost, 2 on a usage or socket error.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kudp echo -addr IP:PORT\n       kudp client -remote IP:PORT [-n N] [-size B | -sizes MIN-MAX] [-outstanding K] [-verify] [-timeout D] [-retries R] [-allow-loss L]")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var code int
	switch os.Args[1] {
	case "echo":
		code = echoMain(os.Args[2:])
	case "client":
		code = clientMain(os.Args[2:])
	default:
		usage()
	}
	os.Exit(code)
}
