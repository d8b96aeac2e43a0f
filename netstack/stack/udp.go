package stack

import (
	"net/netip"

	"github.com/demixdp/demixdp/netstack/checksum"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/udp"
	"golang.org/x/sys/unix"
)

// UDPOverhead is what a UDP datagram adds in front of its payload on the
// wire: Ethernet, IPv4 (no options) and UDP headers.
const UDPOverhead = IPv4Overhead + udp.HeaderLen

// UDPCounters count one endpoint's traffic.
type UDPCounters struct {
	RxDatagrams, RxBytes uint64 // queued for the application
	TxDatagrams, TxBytes uint64 // handed to the link (or to ARP resolution)
	RxQueueFull          uint64 // dropped: the receive queue was full
	RxNotPeer            uint64 // dropped: a connected endpoint got a datagram from elsewhere
}

type udpDgram struct {
	b     nic.Buf
	src   [4]byte
	sport uint16
}

// UDPEndpoint is one UDP socket of the stack. It is bound to a port when
// Bind, Connect or the first Send needs one.
type UDPEndpoint struct {
	// Cookie is given back through Notifier.Readable.
	Cookie uint64

	s         *Stack
	addr      [4]byte // local address: ours, or zero for any
	port      uint16
	bound     bool
	closed    bool
	peer      [4]byte
	peerPort  uint16
	connected bool

	q    []udpDgram // receive ring
	head int
	n    int
	ctr  UDPCounters
}

type udpTable struct {
	s       *Stack
	ports   map[uint16]*UDPEndpoint
	last    *UDPEndpoint // the endpoint lookup found last (nil after a close): most traffic goes to one port
	nextEph uint16
}

func (t *udpTable) init(s *Stack) {
	t.s = s
	t.ports = make(map[uint16]*UDPEndpoint)
	t.nextEph = s.cfg.EphemeralFirst
}

func (t *udpTable) lookup(port uint16) *UDPEndpoint {
	if e := t.last; e != nil && e.port == port {
		return e
	}
	e := t.ports[port]
	if e != nil {
		t.last = e
	}
	return e
}

// ephemeral returns a free port from the ephemeral range, or 0.
func (t *udpTable) ephemeral() uint16 {
	first, last := t.s.cfg.EphemeralFirst, t.s.cfg.EphemeralLast
	n := int(last-first) + 1
	for i := 0; i < n; i++ {
		p := t.nextEph
		if t.nextEph == last {
			t.nextEph = first
		} else {
			t.nextEph++
		}
		if t.ports[p] == nil {
			return p
		}
	}
	return 0
}

// NewUDP returns an unbound UDP endpoint. cookie identifies it in
// Notifier.Readable.
func (s *Stack) NewUDP(cookie uint64) *UDPEndpoint {
	return &UDPEndpoint{Cookie: cookie, s: s, q: make([]udpDgram, s.cfg.UDPQueueLen)}
}

// Bind gives the endpoint a local address. The address must be the stack's
// own or unspecified (0.0.0.0); port 0 picks an ephemeral port. Errors:
// EINVAL (already bound, closed, not IPv4, or an address that is not ours),
// EADDRINUSE (the port is taken), EADDRNOTAVAIL (no ephemeral port left).
func (e *UDPEndpoint) Bind(a netip.AddrPort) error {
	if e.closed || e.bound {
		return unix.EINVAL
	}
	ip := a.Addr().Unmap()
	if !ip.Is4() || (!ip.IsUnspecified() && ip.As4() != e.s.addr) {
		return unix.EINVAL
	}
	port := a.Port()
	t := &e.s.udp
	if port == 0 {
		if port = t.ephemeral(); port == 0 {
			return unix.EADDRNOTAVAIL
		}
	} else if t.ports[port] != nil {
		return unix.EADDRINUSE
	}
	e.addr, e.port, e.bound = ip.As4(), port, true
	t.ports[port] = e
	return nil
}

func (e *UDPEndpoint) autobind() error {
	if e.bound {
		return nil
	}
	return e.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
}

// Connect sets the default destination of Send and, as on Linux, accepts
// only datagrams from that peer afterwards. It binds an ephemeral port if
// the endpoint is unbound. Errors: EINVAL (closed, not IPv4, port 0),
// ENETUNREACH (no route), and Bind's.
func (e *UDPEndpoint) Connect(remote netip.AddrPort) error {
	ip := remote.Addr().Unmap()
	if e.closed || !ip.Is4() || remote.Port() == 0 || ip.IsUnspecified() {
		return unix.EINVAL
	}
	if _, err := e.s.nextHop(ip.As4()); err != nil {
		return err
	}
	if err := e.autobind(); err != nil {
		return err
	}
	e.peer, e.peerPort, e.connected = ip.As4(), remote.Port(), true
	return nil
}

// LocalAddr returns the bound address (invalid if unbound).
func (e *UDPEndpoint) LocalAddr() netip.AddrPort {
	if !e.bound {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(e.addr), e.port)
}

// RemoteAddr returns the connected peer (invalid if not connected).
func (e *UDPEndpoint) RemoteAddr() netip.AddrPort {
	if !e.connected {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(e.peer), e.peerPort)
}

// MaxPayload is the largest datagram payload the link's MTU allows.
func (s *Stack) MaxPayload() int { return s.mtu - ipv4.MinHeaderLen - udp.HeaderLen }

// Send sends the payload b.Bytes() as one datagram to to (or, if to is the
// zero AddrPort, to the connected peer). The UDP, IPv4 and Ethernet headers
// are written into b's headroom: no byte of the payload is copied. tag is
// what the link reports when the frame's transmission completes; if the
// next hop must be resolved first and resolution fails, Notifier.Done gets
// tag with EHOSTUNREACH instead.
//
// Errors (nothing was sent): EDESTADDRREQ (no destination), EINVAL (closed,
// bad destination, too little headroom), EMSGSIZE (larger than the MTU
// allows), ENETUNREACH (no route), EAGAIN (link or resolution queue full),
// and Bind's for the implicit bind.
//
//demixdp:hotpath — allocates nothing.
func (e *UDPEndpoint) Send(b nic.Buf, to netip.AddrPort, tag uint64) error {
	if e.closed {
		return unix.EINVAL
	}
	var dst [4]byte
	var dport uint16
	if to.IsValid() {
		ip := to.Addr().Unmap()
		if !ip.Is4() || ip.IsUnspecified() || to.Port() == 0 {
			return unix.EINVAL
		}
		dst, dport = ip.As4(), to.Port()
	} else if e.connected {
		dst, dport = e.peer, e.peerPort
	} else {
		return unix.EDESTADDRREQ
	}
	if b.Len > e.s.MaxPayload() {
		return unix.EMSGSIZE
	}
	if b.Off < UDPOverhead {
		return unix.EINVAL
	}
	if err := e.autobind(); err != nil {
		return err
	}
	n := b.Len
	b.Prepend(udp.HeaderLen) // cannot fail: Off >= UDPOverhead
	h := udp.Header(b.Bytes())
	h.Encode(e.port, dport, uint16(b.Len))
	if e.s.cfg.TxChecksumOffload {
		// The link completes it (nic.L4Checksum).
		h.SetChecksum(checksum.Fold(checksum.PseudoIPv4(e.s.addr, dst, ipv4.ProtoUDP, uint16(b.Len))))
	} else {
		h.SetChecksum(h.ComputeChecksum(e.s.addr, dst))
	}
	if err := e.s.outputIPv4(&b, ipv4.ProtoUDP, dst, tag); err != nil {
		return err
	}
	e.ctr.TxDatagrams++
	e.ctr.TxBytes += uint64(n)
	return nil
}

// enqueue takes a received datagram (b is its payload); it returns false if
// the datagram was dropped, leaving the reference with the caller.
func (e *UDPEndpoint) enqueue(b nic.Buf, src [4]byte, sport uint16) bool {
	if e.connected && (src != e.peer || sport != e.peerPort) {
		e.ctr.RxNotPeer++
		e.s.ctr.UDPNoPort++
		return false
	}
	if e.n == len(e.q) {
		e.ctr.RxQueueFull++
		e.s.ctr.UDPQueueFull++
		return false
	}
	i := e.head + e.n
	if i >= len(e.q) {
		i -= len(e.q)
	}
	e.q[i] = udpDgram{b: b, src: src, sport: sport}
	e.n++
	e.ctr.RxDatagrams++
	e.ctr.RxBytes += uint64(b.Len)
	e.s.ctr.UDPDelivered++
	if e.n == 1 {
		e.s.note.Readable(e.Cookie)
	}
	return true
}

// Recv takes the oldest queued datagram: its payload and its source. The
// caller now owns the frame reference and releases it through the link.
func (e *UDPEndpoint) Recv() (nic.Buf, netip.AddrPort, bool) {
	if e.n == 0 {
		return nic.Buf{}, netip.AddrPort{}, false
	}
	// Field by field: the datagram was usually queued a moment ago, and
	// copying the struct whole would read it in wider pieces than it was
	// written in, which stalls until those stores drain.
	d := &e.q[e.head]
	var b nic.Buf
	nic.CopyBuf(&b, &d.b)
	from := netip.AddrPortFrom(netip.AddrFrom4(d.src), d.sport)
	*d = udpDgram{}
	e.head++
	if e.head == len(e.q) {
		e.head = 0
	}
	e.n--
	return b, from, true
}

// Queued returns the number of datagrams waiting in the receive queue.
func (e *UDPEndpoint) Queued() int { return e.n }

// Counters returns the endpoint's counters.
func (e *UDPEndpoint) Counters() UDPCounters { return e.ctr }

// Close unbinds the endpoint and releases every queued datagram.
func (e *UDPEndpoint) Close() {
	if e.closed {
		return
	}
	e.closed = true
	for {
		b, _, ok := e.Recv()
		if !ok {
			break
		}
		e.s.link.Release(b.Frame)
	}
	if e.s.udp.last == e {
		e.s.udp.last = nil
	}
	if e.bound && e.s.udp.ports[e.port] == e {
		delete(e.s.udp.ports, e.port)
	}
}
