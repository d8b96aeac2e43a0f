package libos

import (
	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/tcp"
	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
	"golang.org/x/sys/unix"
)

// Counters are a LibOS's counters: its own datapath counters plus snapshots
// of the netstack's, the frame pool's, the kernel's socket statistics and
// the steering program's.
type Counters struct {
	RxDescs         uint64 // frames taken from the RX ring
	TxDescs         uint64 // frames posted to the TX ring
	Completions     uint64 // frames returned by the completion ring
	Kicks           uint64 // sendto calls that started transmission
	KickErrors      uint64 // kicks that failed with a non-transient error
	Sleeps          uint64 // times Wait blocked in poll(2)
	PollErrors      uint64 // poll(2) failures
	TxRingFull      uint64 // transmissions refused: the TX ring was full
	TxCsumOffloads  uint64 // frames sent with their L4 checksum left to the NIC or the kernel
	FillStarved     uint64 // fill-ring refills skipped: no free frame
	SGANoBufs       uint64 // SGAAlloc calls that failed with ENOBUFS
	BadDescs        uint64 // descriptors from the kernel that name no frame
	OwnershipErrors uint64 // frame state errors (double free etc.); should stay 0
	Captured        uint64 // frames handed to Config.Capture
	CaptureErrors   uint64 // frames Config.Capture failed to record

	// Handoffs are the frames a queue opened with OpenQueues passed to and
	// took from the other queues' loops (handoff.go); zero for New.
	Handoffs HandoffCounters

	Stack    stack.Counters
	TCP      tcp.Counters
	Pool     umem.Stats
	XDP      xdp.Stats
	Steering bpf.Counters
}

// QueueCounters are one queue's counters.
type QueueCounters struct {
	Pushes, PushBytes uint64               // pushes accepted
	PushErrors        uint64               // pushes refused with an error
	Pops, PopBytes    uint64               // pops completed
	UDP               stack.UDPCounters    // a UDP queue's endpoint
	TCP               tcp.EndpointCounters // a TCP queue's connection
}

// Counters returns the LibOS's counters. It makes system calls (socket and
// eBPF map statistics): do not call it per packet. For a queue opened with
// OpenQueues they are that queue's, Steering included (its row of the
// steering program the queues share).
func (l *LibOS) Counters() (Counters, error) {
	if l.closed {
		return Counters{}, unix.EBADF
	}
	c := l.ctr
	c.Stack = l.stack.Counters()
	c.TCP = l.stack.TCP().Counters()
	c.Pool = l.pool.Stats()
	var err error
	if c.XDP, err = l.sock.Stats(); err != nil {
		return c, err
	}
	if l.grp != nil {
		l.groupCounters(&c)
		return c, nil
	}
	c.Steering, err = l.steer.Counters()
	return c, err
}

// QueueCounters returns qd's counters. Errors: EBADF.
func (l *LibOS) QueueCounters(qd QD) (QueueCounters, error) {
	q, err := l.queue(qd)
	if err != nil {
		return QueueCounters{}, err
	}
	c := q.ctr
	if q.stream {
		c.TCP = q.tcp.Counters()
	} else {
		c.UDP = q.udp.Counters()
	}
	return c, nil
}
