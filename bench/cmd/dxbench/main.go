// Command dxbench is demixdp's benchmark harness (`make bench`): it builds a
// veth lab, runs every workload against the Linux kernel, gVisor's netstack
// on AF_XDP, the asavie/xdp reflector, the bare AF_XDP pair
// (cmd/xdp-reflect + cmd/xdp-client) and the demixdp libOS, interleaved in
// rounds, and writes bench/results/latest.{json,md} and a latency CDF
// (latest-cdf.svg). The http workloads (http_c1, http_c64) run
// cmd/http-hello on dxnet and on the kernel under wrk; -only
// http_c1,http_c64 runs them alone.
//
//	dxbench run [-rounds 3] [-out results] [-pin=true] [-server-cpu 0] [-client-cpu 1] [-only W,W..] [-http-time 5s]
//	dxbench udp-echo -stack kernel|gvisor|asavie -addr IP/P [-iface IF] [-port P]
//	dxbench tcp-server -stack kernel|gvisor -addr IP/P [-iface IF] [-port P]
//	dxbench client -stack kernel|gvisor|libos -workload W -remote IP:PORT [...]
//	dxbench wakeup [-cpus 0,1] [-n 20000]
//
// The drivers are what run inside the lab's namespaces; run starts them.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dxbench run|udp-echo|tcp-server|client|wakeup [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "udp-echo":
		err = serverMain(false, os.Args[2:])
	case "tcp-server":
		err = serverMain(true, os.Args[2:])
	case "client":
		err = clientMain(os.Args[2:])
	case "wakeup":
		err = wakeupMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dxbench:", err)
		os.Exit(1)
	}
}
