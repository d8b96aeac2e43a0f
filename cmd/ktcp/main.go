// Command ktcp is a TCP tool on the kernel's own sockets: the peer and the
// baseline for the libOS's TCP examples (tcp-echo, tcp-pingpong, tcp-bulk)
// in tests and in `make demo`.
//
//	ktcp echo -addr IP:PORT
//	ktcp sink -addr IP:PORT [-once]
//	ktcp pingpong -remote IP:PORT [-n N] [-size B] [-conns C] [-warmup W]
//	ktcp bulk -remote IP:PORT -bytes N
//	ktcp hold -remote IP:PORT [-src IP,IP..] [-conns N] [-parallel P] [-size B]
//
// echo sends every byte of every connection back and closes a connection
// once its client has closed its side and everything is echoed. sink reads
// each connection to its end and prints "sha256=.. bytes=.. gbps=.." for
// it (-once: exit after the first). Both print a line containing
// "listening" when ready, and exit 0 on SIGINT/SIGTERM after printing their
// counters.
//
// pingpong and bulk are the kernel twins of tcp-pingpong and tcp-bulk and
// print the same summary lines:
//
//	rtt_p50_us=.. rtt_p99_us=.. rtt_p999_us=.. rps=.. sent=.. received=.. bad=.. conns=.. elapsed_s=..
//	gbps=.. bytes=.. sha256=.. elapsed_s=..
//
// hold opens N connections (from the given source addresses in turn),
// prints "established conns=..", then echoes -size checked bytes on every
// connection for each "echo" line on stdin and closes them all on "close"
// or end of input (see holdMain): the kernel peer of the scale tests.
//
// pingpong exits 1 if a reply differs from its request; every command
// exits 2 on a usage or socket error.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: ktcp echo -addr IP:PORT
       ktcp sink -addr IP:PORT [-once]
       ktcp pingpong -remote IP:PORT [-n N] [-size B] [-conns C] [-warmup W]
       ktcp bulk -remote IP:PORT -bytes N
       ktcp hold -remote IP:PORT [-src IP,IP..] [-conns N] [-parallel P] [-size B]`)
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
	case "sink":
		code = sinkMain(os.Args[2:])
	case "pingpong":
		code = pingpongMain(os.Args[2:])
	case "bulk":
		code = bulkMain(os.Args[2:])
	case "hold":
		code = holdMain(os.Args[2:])
	default:
		usage()
	}
	os.Exit(code)
}
