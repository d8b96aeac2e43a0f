// Command demixdp is the operator's tool for the demixdp libOS.
//
//	demixdp doctor -iface IF [-queue Q] [-frames N] [-frame-size 2048|4096] [-json] [-no-probe]
//	demixdp stat -iface IF [-pin-dir DIR] [-interval 1s] [-count N]
//
// doctor checks, one line each with ok, warn or fail and the fix, whether
// this machine and interface can run the libOS: kernel, AF_XDP,
// capabilities and RLIMIT_MEMLOCK, BPF JIT, the driver and what it is
// known to do, queue counts and RSS, MTU against the frame size, offloads, an XDP
// program already attached (and which process holds it), native XDP (it
// attaches a test program and detaches it), AF_XDP zero-copy or copy mode,
// need_wakeup and shared UMEM (it binds test sockets on the queue and
// closes them), huge pages and the bpf file system. It changes nothing it
// does not undo before it exits (-no-probe skips the attach and binds).
// It exits 0 when the interface can run the libOS and 1 when it cannot;
// -json prints the same report for machines. Run it inside the network
// namespace that holds the interface.
//
// stat reads the counters of the steering program of a libOS running on
// IF (frames redirected to the libOS, passed to the kernel, malformed; per
// receive queue) from the maps the libOS pins under DIR/IF, and prints
// them every interval, as vmstat does. It exits 1 when there are no pins
// or they are stale (left by a process that died), 0 after -count reports
// or when the libOS closes.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "doctor":
		return runDoctor(args[1:], stdout, stderr)
	case "stat":
		return runStat(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "demixdp: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  demixdp doctor -iface IF [-queue Q] [-json] [-no-probe]   can IF run the libOS? (exit 0 yes, 1 no)
  demixdp stat -iface IF [-pin-dir DIR] [-interval 1s] [-count N]   a running libOS's steering counters
`)
}
