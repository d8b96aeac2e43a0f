package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Pinning: every server runs on one CPU and every client on another, so
// the two ends of a pair never share a CPU and never migrate; the kernel's
// softirq work for the veth runs on the CPU of the process that sends.
// `taskset -c N` sets the mask before the program starts, so every thread
// the Go runtime (or gVisor) creates later inherits it; Go also derives
// GOMAXPROCS from the mask, so a pinned Go program runs with GOMAXPROCS=1.

// pinning is `dxbench run`'s CPU placement (-pin, -server-cpu, -client-cpu).
type pinning struct {
	on             bool
	server, client int
}

// check validates the CPUs and turns pinning off, with the reason, when
// the machine cannot do it.
func (p *pinning) check() (note string, err error) {
	if !p.on {
		return "", nil
	}
	if p.server < 0 || p.client < 0 || p.server == p.client {
		return "", fmt.Errorf("-server-cpu %d and -client-cpu %d: want two different CPUs", p.server, p.client)
	}
	if n := runtime.NumCPU(); p.server >= n || p.client >= n {
		return "", fmt.Errorf("-server-cpu %d, -client-cpu %d: this machine has %d CPUs (use -pin=false)", p.server, p.client, n)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		p.on = false
		return "taskset (util-linux) not found: pinning is off", nil
	}
	return "", nil
}

// wrap returns argv run under `taskset -c cpu` when pinning is on.
func (p pinning) wrap(cpu int, argv []string) []string {
	if !p.on {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// describe says where the ends run, for latest.json and latest.md.
func (p pinning) describe() string {
	if !p.on {
		return "not pinned (-pin=false): the scheduler places both ends"
	}
	return fmt.Sprintf("pinned: every server on CPU %d, every client on CPU %d (taskset -c, all threads)", p.server, p.client)
}

// Workloads outside the workloads table that -only also selects.
var extraSelectable = []string{"wakeup", "idle_cpu", "micro", "cabi", "resp"}

// parseOnly checks -only, a comma-separated list of workload names (empty:
// all of them).
func parseOnly(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	valid := slices.Clone(extraSelectable)
	for _, w := range workloads {
		valid = append(valid, w.name)
	}
	var only []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(valid, name) {
			return nil, fmt.Errorf("-only: unknown workload %q (want some of %s)", name, strings.Join(valid, ","))
		}
		only = append(only, name)
	}
	return only, nil
}

// want reports whether the run measures the workload.
func (h *harness) want(name string) bool {
	if strings.HasPrefix(name, "resp_") && slices.Contains(h.o.only, "resp") {
		return true // -only resp: both pipeline depths
	}
	return len(h.o.only) == 0 || slices.Contains(h.o.only, name)
}

// wanted returns those of names the run measures.
func (h *harness) wanted(names []string) []string {
	var out []string
	for _, n := range names {
		if h.want(n) {
			out = append(out, n)
		}
	}
	return out
}
