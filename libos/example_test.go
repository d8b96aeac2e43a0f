package libos_test

import (
	"log"
	"net/netip"
	"time"

	"github.com/demixdp/demixdp/libos"
)

// A UDP echo server: every datagram is popped as a view of the received
// frame and pushed back from that same frame, with no copy. Run it in the
// network namespace that holds the interface, as root.
func Example_udpEcho() {
	lib, err := libos.New(libos.Config{
		Interface: "veth0",
		Addr:      netip.MustParsePrefix("198.51.100.1/24"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lib.Close()

	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err := lib.Bind(qd, netip.MustParseAddrPort("198.51.100.1:7")); err != nil {
		log.Fatal(err)
	}
	for {
		pop, _ := lib.Pop(qd)
		r, err := lib.Wait(pop, -1)
		if err != nil || r.Opcode != libos.OpPop {
			log.Fatal(err, r.Err)
		}
		push, err := lib.PushTo(qd, r.SGA, r.SGA.Addr) // same frame back out
		lib.SGAFree(r.SGA)                             // safe: freed after the send completes
		if err != nil {
			continue
		}
		lib.Wait(push, time.Second)
	}
}

// A client: allocate an SGA in the UMEM, fill it, push it, wait for the
// reply.
func Example_udpClient() {
	lib, err := libos.New(libos.Config{
		Interface: "veth0",
		Addr:      netip.MustParsePrefix("198.51.100.1/24"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lib.Close()

	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if _, err := lib.Connect(qd, netip.MustParseAddrPort("198.51.100.2:7")); err != nil {
		log.Fatal(err)
	}
	sga, _ := lib.SGAAlloc(5)
	copy(sga.Segs[0], "hello")
	push, _ := lib.Push(qd, sga)
	pop, _ := lib.Pop(qd)
	for _, qt := range []libos.QToken{push, pop} {
		r, err := lib.Wait(qt, time.Second)
		if err != nil {
			log.Fatal(err) // ETIMEDOUT: qt is still valid
		}
		if r.Opcode == libos.OpFailed {
			log.Fatal(r.Err) // EHOSTUNREACH, ECANCELED...
		}
		if r.Opcode == libos.OpPop {
			log.Printf("%q from %v", r.SGA.Segs[0], r.SGA.Addr)
			lib.SGAFree(r.SGA)
		}
	}
	lib.SGAFree(sga)
}
