package main

import (
	"io"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// printCounters writes the echo loops', the queues' and the libOS's
// counters, one group per line: "group: key=value key=value ...", summed
// over the NIC queues. Keys are the field names in snake case; nested
// structs get their own group (libos.stack, libos.xdp, ...). Then one line
// per NIC queue, "queue N: ...", with that queue's echo counters. It runs
// once, at exit.
func printCounters(w io.Writer, libs []*libos.LibOS, qds []libos.QD, es []*echoer) {
	var sum echoCounters
	extra := make([]any, len(es))
	perQueue := make([][]libos.QD, len(libs))
	for i, e := range es {
		cli.Add(&sum, e.ctr)
		extra[i] = e.ctr
		perQueue[i] = []libos.QD{qds[i]}
	}
	cli.WriteGroup(w, "echo", sum)
	cli.PrintCountersQueues(w, libs, perQueue, extra)
}
