package main

import (
	"bytes"
	"io"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

// printCounters writes the echo loops' and the libOS's counters, one group
// per line: "group: key=value key=value ...", summed over the NIC queues.
// Keys are the field names in snake case; nested structs get their own
// group (libos.stack, libos.tcp, ...). Then one line per NIC queue,
// "queue N: ...", with that queue's echo counters. It runs once, at exit.
func printCounters(w io.Writer, libs []*libos.LibOS, ss []*server) {
	var sum echoCounters
	extra := make([]any, len(ss))
	for i, s := range ss {
		cli.Add(&sum, s.ctr)
		extra[i] = s.ctr
	}
	cli.WriteGroup(w, "echo", sum)
	cli.PrintCountersQueues(w, libs, nil, extra)
}

// printInfo answers SIGUSR1 from the server's own loop: with one queue
// every counter, with several this queue's line, written at once so that
// the loops' lines do not interleave.
func (s *server) printInfo() {
	if !s.multi {
		cli.WriteGroup(s.out, "echo", s.ctr)
		cli.PrintCounters(s.out, s.lib)
		return
	}
	var b bytes.Buffer
	cli.PrintQueueLines(&b, []*libos.LibOS{s.lib}, []any{s.ctr})
	s.out.Write(b.Bytes())
}
