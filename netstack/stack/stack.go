// Package stack wires the protocol layers of the netstack together: it
// demultiplexes received frames (Ethernet, ARP, IPv4, ICMP, UDP), answers ARP
// and ICMP echo, resolves neighbours, routes, and builds outgoing frames in
// the headroom of the caller's own buffers.
//
// A Stack is driven by exactly one goroutine and never blocks, sleeps or
// makes a system call: frames come in through Input, time comes from a
// nic.Clock, frames go out through a nic.Link, and the owner learns about
// progress through a Notifier. The same code runs over the AF_XDP datapath
// (package libos) and over an in-memory link with a virtual clock in tests.
//
// Ownership: Input consumes the caller's reference on the frame. A datagram
// queued on an endpoint keeps that reference until the application takes it
// with Recv; everything else is released before Input returns.
package stack

import (
	"errors"
	"net/netip"
	"time"

	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
)

// Mode says whether the stack owns its IPv4 address or shares it with the
// host kernel.
type Mode int

const (
	// Dedicated: the address is the stack's alone; it answers ARP and ICMP
	// echo for it and announces it with a gratuitous ARP.
	Dedicated Mode = iota
	// Shared: the address is also the kernel's. ARP and ICMP stay with the
	// kernel; neighbours come from the kernel's table (Config.Neighbors).
	Shared
)

// Neighbors is the host kernel's neighbour table, consulted in Shared mode.
type Neighbors interface {
	// Lookup returns the link address of ip if the kernel knows it.
	Lookup(ip [4]byte) ([6]byte, bool)
	// Resolve asks the kernel to resolve ip (it must not block).
	Resolve(ip [4]byte)
}

// Notifier is how the stack tells its owner about progress. Both methods are
// called from inside Input, Tick or a send call, on the owner's goroutine.
type Notifier interface {
	// Readable reports that the endpoint whose cookie is given has data.
	Readable(cookie uint64)
	// Done completes an operation tag the stack accepted but could not
	// hand to the link at once (a datagram waiting for ARP): err is nil if
	// the frame was finally queued for transmission, otherwise the reason
	// it was dropped (EHOSTUNREACH when resolution failed).
	Done(tag uint64, err error)
}

// ARPConfig tunes neighbour resolution.
type ARPConfig struct {
	Retries       int           // requests sent before giving up; 0 means 3
	RetryInterval time.Duration // between requests; 0 means 1s (Shared: the kernel table is re-read every RetryInterval/100)
	CacheTTL      time.Duration // lifetime of a resolved entry; 0 means 60s
	MaxPending    int           // datagrams waiting for resolution, in all; 0 means 64
	MaxEntries    int           // neighbour cache size; 0 means 1024
}

// Config describes a Stack.
type Config struct {
	Addr      netip.Prefix // the stack's IPv4 address and its on-link prefix
	Gateway   netip.Addr   // next hop for off-link destinations; invalid means none
	Mode      Mode
	ARP       ARPConfig
	Neighbors Neighbors // Shared mode: the kernel's neighbour table (optional)
	// UDPQueueLen bounds each UDP endpoint's receive queue; 0 means 256.
	UDPQueueLen int
	// EphemeralFirst..EphemeralLast is the port range for unbound sends
	// and port 0; zero means 61000..65535, which lies outside Linux's
	// default ip_local_port_range (32768..60999), so a shared-address
	// libOS and the kernel do not pick the same port.
	EphemeralFirst, EphemeralLast uint16
	// TCP tunes the TCP engine (zero: defaults; its ephemeral range
	// defaults to the one above).
	TCP tcp.Config
	// TxChecksumOffload leaves the UDP and TCP checksums of outgoing
	// packets partial, the pseudo-header's folded sum in the field, for
	// the link to complete (every one: nic.L4Checksum finds them): set it
	// only over a link that does (the libOS's, when the device or the
	// kernel computes them). It overrides TCP.TxChecksumOffload.
	TxChecksumOffload bool
}

// Errors returned by New.
var (
	ErrConfig = errors.New("stack: invalid configuration")
)

// Stack is one IPv4 host on one link. See the package comment.
type Stack struct {
	link  nic.Link
	clock nic.Clock
	note  Notifier
	cfg   Config

	mac     ethernet.Addr
	addr    [4]byte
	prefix  netip.Prefix
	gateway [4]byte
	hasGW   bool
	mtu     int
	ipID    uint16

	neigh neighTable
	udp   udpTable
	tcp   *tcp.Proto

	ctr Counters
}

// New returns a stack on link l. The caller then calls Start.
func New(l nic.Link, c nic.Clock, n Notifier, cfg Config) (*Stack, error) {
	if !cfg.Addr.IsValid() || !cfg.Addr.Addr().Is4() {
		return nil, errorsJoin(ErrConfig, "Addr must be an IPv4 prefix")
	}
	if cfg.Gateway.IsValid() && (!cfg.Gateway.Is4() || !cfg.Addr.Masked().Contains(cfg.Gateway)) {
		return nil, errorsJoin(ErrConfig, "Gateway must be an IPv4 address inside Addr's prefix")
	}
	if cfg.Mode != Dedicated && cfg.Mode != Shared {
		return nil, errorsJoin(ErrConfig, "unknown Mode")
	}
	a := &cfg.ARP
	if a.Retries <= 0 {
		a.Retries = 3
	}
	if a.RetryInterval <= 0 {
		a.RetryInterval = time.Second
	}
	if a.CacheTTL <= 0 {
		a.CacheTTL = 60 * time.Second
	}
	if a.MaxPending <= 0 {
		a.MaxPending = 64
	}
	if a.MaxEntries <= 0 {
		a.MaxEntries = 1024
	}
	if cfg.UDPQueueLen <= 0 {
		cfg.UDPQueueLen = 256
	}
	if cfg.EphemeralFirst == 0 && cfg.EphemeralLast == 0 {
		cfg.EphemeralFirst, cfg.EphemeralLast = 61000, 65535
	}
	if cfg.EphemeralFirst == 0 || cfg.EphemeralFirst > cfg.EphemeralLast {
		return nil, errorsJoin(ErrConfig, "bad ephemeral port range")
	}
	s := &Stack{
		link:   l,
		clock:  c,
		note:   n,
		cfg:    cfg,
		mac:    l.HardwareAddr(),
		addr:   cfg.Addr.Addr().As4(),
		prefix: cfg.Addr.Masked(),
		mtu:    l.MTU(),
	}
	if cfg.Gateway.IsValid() {
		s.gateway, s.hasGW = cfg.Gateway.As4(), true
	}
	s.neigh.init(s, a)
	s.udp.init(s)
	s.initTCP(cfg.TCP)
	return s, nil
}

func errorsJoin(err error, msg string) error { return &wrapped{err, msg} }

type wrapped struct {
	err error
	msg string
}

func (w *wrapped) Error() string { return w.err.Error() + ": " + w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Start announces the address (a gratuitous ARP in Dedicated mode).
func (s *Stack) Start() {
	if s.cfg.Mode == Dedicated {
		s.neigh.sendRequest(s.addr, ethernet.Broadcast)
	}
}

// Addr returns the stack's IPv4 address.
func (s *Stack) Addr() netip.Addr { return netip.AddrFrom4(s.addr) }

// MTU returns the link MTU the stack uses.
func (s *Stack) MTU() int { return s.mtu }

// Counters returns a snapshot of the stack's counters.
func (s *Stack) Counters() Counters { return s.ctr }

// EndBatch tells the stack that the frames received in this turn of the
// event loop have all been handed to Input: TCP sends the ACKs it
// deferred to the end of the batch (one per connection, for everything the
// batch brought). Call it after each batch of Input calls.
func (s *Stack) EndBatch() { s.tcp.EndBatch() }

// Tick runs the timers that are due (ARP retries and expiry). It is cheap
// when nothing is due; call it from the event loop whenever the clock may
// have passed NextDeadline.
func (s *Stack) Tick() {
	s.neigh.tick(s.clock.Now())
	s.tcp.Tick()
}

// NextDeadline returns the clock time of the earliest pending timer, or 0
// if there is none.
func (s *Stack) NextDeadline() int64 {
	d, t := s.neigh.nextDeadline(), s.tcp.NextDeadline()
	if d == 0 || (t != 0 && t < d) {
		return t
	}
	return d
}

// Close drops every datagram still waiting for neighbour resolution,
// releasing its frame, and aborts every TCP connection silently (the
// engine owns closed-but-lingering ones). Endpoints are closed by their
// owners.
func (s *Stack) Close() {
	s.tcp.Close()
	s.neigh.drop()
}
