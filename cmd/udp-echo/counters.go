package main

import (
	"io"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// printCounters writes the echo loop's, the queue's and the libOS's
// counters, one group per line: "group: key=value key=value ...". Keys are
// the field names in snake case; nested structs get their own group
// (libos.stack, libos.xdp, ...). It runs once, at exit.
func printCounters(w io.Writer, lib *libos.LibOS, qd libos.QD, ec *echoCounters) {
	cli.WriteGroup(w, "echo", *ec)
	cli.PrintCounters(w, lib, qd)
}
