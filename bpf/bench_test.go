package bpf

import (
	"testing"
)

// BenchmarkProgram measures the program in the kernel (BPF_PROG_TEST_RUN
// with repeat), per frame: "ns/pkt" is the kernel's own per-run time, which
// excludes the syscall. The Go side makes one syscall per benchmark
// iteration batch and allocates nothing per packet (there is no Go code on
// the datapath).
func BenchmarkProgram(b *testing.B) {
	cases := []struct {
		name  string
		mode  Mode
		frame []byte
	}{
		{"dedicated/udp-ours", Dedicated, udpTo(ourAddr, 7)},
		{"dedicated/udp-other", Dedicated, udpTo(otherAddr, 7)},
		{"dedicated/arp-ours", Dedicated, ether(0x0806, arpBody(ourAddr))},
		{"shared/udp-bound", Shared, udpTo(ourAddr, 7)},
		{"shared/udp-unbound", Shared, udpTo(ourAddr, 9)},
		{"shared/icmp", Shared, ipFrame(ipOpts{proto: 1, dst: ourAddr}, icmpEcho())},
		{"shared/ipv6", Shared, ether(0x86dd, make([]byte, 48))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := loadForTest(b, c.mode)
			setupAddrPorts(b, s)
			b.ReportAllocs()
			b.ResetTimer()
			ret, per, err := s.Program().Benchmark(c.frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			if ret != xdpPass {
				b.Fatalf("return %d", ret)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
		})
	}
}
