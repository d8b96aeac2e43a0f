package libos

import (
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/tcp"
)

// Direction says whether a captured frame came from the socket's RX ring
// or went to its TX ring.
type Direction uint8

// The directions of a captured frame.
const (
	Inbound  Direction = 1 // received from the interface
	Outbound Direction = 2 // sent to the interface
)

// String returns "in" or "out".
func (d Direction) String() string {
	switch d {
	case Inbound:
		return "in"
	case Outbound:
		return "out"
	}
	return "unknown"
}

// CapturedFrame is one frame handed to a CaptureSink.
type CapturedFrame struct {
	Time      time.Time
	Dir       Direction
	Interface string // Config.Interface
	Queue     int    // Config.Queue
	// Data is the whole Ethernet frame as it was on the ring. It is only
	// valid during the CaptureFrame call: copy what must outlive it.
	Data []byte
	// Drop is empty for a frame the stack accepted. For a received frame
	// the stack dropped, it names the counter that counted the drop, as
	// the commands print it: "stack.udp_no_port", "tcp.bad_checksum"...
	Drop string
}

// CaptureSink receives every frame a LibOS takes from its RX ring and puts
// on its TX ring (Config.Capture). It is called synchronously on the
// goroutine that drives the LibOS, so a slow sink slows the datapath.
// Package dxcapture writes the frames as pcapng.
type CaptureSink interface {
	// CaptureFrame records f. An error is counted (Counters.CaptureErrors)
	// and logged; capture goes on with the next frame.
	CaptureFrame(f *CapturedFrame) error
}

// capturer feeds the sink. Received frames are copied once, before the
// stack sees them (it may answer ARP or ping in the same frame, or free
// it for reuse), and the drop counters before and after Input name the
// reason of a drop. Nothing of this runs while capture is off: the
// datapath only tests l.mon.cap for nil.
type capturer struct {
	sink CaptureSink
	f    CapturedFrame
	buf  []byte
	st   stack.Counters
	tc   tcp.Counters

	// Frames the stack sends while it handles a received one (an ACK, an
	// ARP reply) are held until that frame is recorded, so that a capture
	// never shows an answer before its question.
	input   bool
	pending [][]byte // copies, pending[:npend] valid
	out     []byte   // an outgoing frame's copy, its checksum completed
	pendAt  []time.Time
	npend   int
}

func newCapturer(sink CaptureSink, cfg *Config) *capturer {
	return &capturer{
		sink: sink,
		f:    CapturedFrame{Interface: cfg.Interface, Queue: cfg.Queue},
		buf:  make([]byte, cfg.FrameSize),
	}
}

// captureInput hands the received frame b to the sink and to the stack.
func (l *LibOS) captureInput(b nic.Buf) {
	c := l.mon.cap
	c.buf = append(c.buf[:0], b.Bytes()...)
	c.st = l.stack.Counters()
	c.tc = l.stack.TCP().Counters()
	at := time.Now()
	c.input = true
	l.stack.Input(b)
	c.input = false
	st, tc := l.stack.Counters(), l.stack.TCP().Counters()
	c.f.Drop = dropReason(&c.st, &st, &c.tc, &tc)
	l.emit(at, Inbound, c.buf)
	c.f.Drop = ""
	for i := range c.npend {
		l.emit(c.pendAt[i], Outbound, c.pending[i])
	}
	c.npend = 0
}

// captureOutput hands a frame just posted to the TX ring to the sink, or
// keeps a copy of it for after the received frame being handled.
//
// A frame whose checksum the NIC or the kernel completes (txcsum.go) is
// recorded with the checksum completed, as it leaves the host, unlike
// tcpdump on a device with checksum offload.
func (l *LibOS) captureOutput(b nic.Buf) {
	c := l.mon.cap
	if !c.input {
		c.f.Drop = ""
		data := b.Bytes()
		if l.link.csumOffload {
			c.out = l.completed(c.out, b)
			data = c.out
		}
		l.emit(time.Now(), Outbound, data)
		return
	}
	if c.npend == len(c.pending) {
		c.pending = append(c.pending, make([]byte, 0, len(c.buf)))
		c.pendAt = append(c.pendAt, time.Time{})
	}
	c.pending[c.npend] = l.completed(c.pending[c.npend], b)
	c.pendAt[c.npend] = time.Now()
	c.npend++
}

// completed copies b's packet into dst's storage, its partial checksum (if
// the NIC or the kernel completes them) completed in the copy.
func (l *LibOS) completed(dst []byte, b nic.Buf) []byte {
	dst = append(dst[:0], b.Bytes()...)
	if l.link.csumOffload {
		if start, off, ok := nic.L4Checksum(dst); ok {
			nic.CompleteChecksum(dst[start:], off)
		}
	}
	return dst
}

func (l *LibOS) emit(at time.Time, dir Direction, data []byte) {
	c := l.mon.cap
	c.f.Time, c.f.Dir, c.f.Data = at, dir, data
	if err := c.sink.CaptureFrame(&c.f); err != nil {
		l.ctr.CaptureErrors++
		l.mon.lastCaptureErr = err
	} else {
		l.ctr.Captured++
	}
	c.f.Data = nil
}

// stackDrops and tcpDrops are the counters that count a received frame
// the stack did not use, named as the commands print them.
var stackDrops = [...]struct {
	name string
	get  func(*stack.Counters) uint64
}{
	{"stack.eth_truncated", func(c *stack.Counters) uint64 { return c.EthTruncated }},
	{"stack.eth_not_ours", func(c *stack.Counters) uint64 { return c.EthNotOurs }},
	{"stack.eth_unsupported", func(c *stack.Counters) uint64 { return c.EthUnsupported }},
	{"stack.arp_malformed", func(c *stack.Counters) uint64 { return c.ARPMalformed }},
	{"stack.arp_not_ours", func(c *stack.Counters) uint64 { return c.ARPNotOurs }},
	{"stack.ip_malformed", func(c *stack.Counters) uint64 { return c.IPMalformed }},
	{"stack.ip_checksum", func(c *stack.Counters) uint64 { return c.IPChecksum }},
	{"stack.ip_options", func(c *stack.Counters) uint64 { return c.IPOptions }},
	{"stack.ip_fragments", func(c *stack.Counters) uint64 { return c.IPFragments }},
	{"stack.ip_ttl_expired", func(c *stack.Counters) uint64 { return c.IPTTLExpired }},
	{"stack.ip_not_ours", func(c *stack.Counters) uint64 { return c.IPNotOurs }},
	{"stack.ip_unknown_proto", func(c *stack.Counters) uint64 { return c.IPUnknownProto }},
	{"stack.icmp_malformed", func(c *stack.Counters) uint64 { return c.ICMPMalformed }},
	{"stack.icmp_ignored", func(c *stack.Counters) uint64 { return c.ICMPIgnored }},
	{"stack.udp_malformed", func(c *stack.Counters) uint64 { return c.UDPMalformed }},
	{"stack.udp_checksum", func(c *stack.Counters) uint64 { return c.UDPChecksum }},
	{"stack.udp_no_port", func(c *stack.Counters) uint64 { return c.UDPNoPort }},
	{"stack.udp_queue_full", func(c *stack.Counters) uint64 { return c.UDPQueueFull }},
}

var tcpDrops = [...]struct {
	name string
	get  func(*tcp.Counters) uint64
}{
	{"tcp.malformed", func(c *tcp.Counters) uint64 { return c.Malformed }},
	{"tcp.bad_checksum", func(c *tcp.Counters) uint64 { return c.BadChecksum }},
	{"tcp.no_ack", func(c *tcp.Counters) uint64 { return c.NoACK }},
	{"tcp.no_port", func(c *tcp.Counters) uint64 { return c.NoPort }},
	{"tcp.out_of_window", func(c *tcp.Counters) uint64 { return c.OutOfWindow }},
	{"tcp.paws_dropped", func(c *tcp.Counters) uint64 { return c.PAWSDropped }},
	{"tcp.bad_ack", func(c *tcp.Counters) uint64 { return c.BadACK }},
	{"tcp.ooo_dropped", func(c *tcp.Counters) uint64 { return c.OOODropped }},
	{"tcp.rcv_queue_full", func(c *tcp.Counters) uint64 { return c.RcvQueueFull }},
	{"tcp.rcv_pressure_drops", func(c *tcp.Counters) uint64 { return c.RcvPressureDrops }},
	{"tcp.syn_cookies_bad", func(c *tcp.Counters) uint64 { return c.SynCookiesBad }},
}

// dropReason names the first drop counter that moved between the
// snapshots, or returns "".
func dropReason(st0, st1 *stack.Counters, tc0, tc1 *tcp.Counters) string {
	for _, d := range stackDrops {
		if d.get(st1) != d.get(st0) {
			return d.name
		}
	}
	for _, d := range tcpDrops {
		if d.get(tc1) != d.get(tc0) {
			return d.name
		}
	}
	return ""
}
