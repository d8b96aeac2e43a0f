package tcp

import (
	"io"
	"net/netip"
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// State is a connection state of RFC 9293 §3.3.2.
type State uint8

// Connection states.
const (
	StateClosed State = iota
	StateListen
	StateSynSent
	StateSynRcvd
	StateEstablished
	StateFinWait1
	StateFinWait2
	StateCloseWait
	StateClosing
	StateLastAck
	StateTimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

// String returns the RFC's name of the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "?"
}

// synchronized reports whether the state is past the handshake.
func (s State) synchronized() bool { return s >= StateEstablished }

// EndpointCounters count one connection's traffic.
type EndpointCounters struct {
	BytesSent, BytesAcked uint64 // payload handed to the link (first transmissions) and acknowledged
	BytesRcvd             uint64 // in-order payload queued for the application
	SegsSent, SegsRcvd    uint64
	Retransmits           uint64
	RTOs                  uint64
	FastRecoveries        uint64
	DupACKs               uint64
}

// txSeg is one segment of the send queue: a view of the payload in a frame
// the endpoint holds one reference on.
type txSeg struct {
	b   nic.Buf // the payload (Off at its first byte)
	seq Seq
	tag uint64 // non-zero on the last segment of a push: completed when acked
	// rexmit is set once the segment was sent more than once (Karn).
	rexmit bool
	sentAt int64  // time of the latest transmission
	xmitN  uint64 // order of the latest transmission (rackState.xmits)
	// RACK (rack.go): fully SACKed; deemed lost and awaiting
	// retransmission; a retransmission of it is in flight.
	sacked, lost, rxOut bool
}

func (s *txSeg) end() Seq { return s.seq.Add(uint32(s.b.Len)) }

// Endpoint is one TCP socket: a listener or a connection. It is created by
// Proto.NewEndpoint (or by a listener for an incoming connection) and used
// from the stack's goroutine only.
type Endpoint struct {
	// Cookie identifies the endpoint in Notifier.Event.
	Cookie uint64

	p       *Proto
	state   State
	t       Tuple
	bound   bool // owns t.LocalPort in p.ports
	inTable bool // in p.conns
	orphan  bool // closed by the application: no more events
	err     error

	// The timer wheel (timer.go): the time the endpoint is armed for,
	// its list links and its bucket.
	deadline     int64
	wNext, wPrev *Endpoint
	wLvl         int8
	wIdx         uint8

	// Listener.
	backlog int
	acceptQ []*Endpoint
	synRcvd int       // half-open children
	parent  *Endpoint // listener of a child not yet accepted
	queued  bool      // child sits in its parent's accept queue

	// Options.
	noDelay   bool
	keepAlive bool
	keepIdle  time.Duration // 0: Config.KeepIdle
	keepIntvl time.Duration // 0: Config.KeepInterval

	// Negotiated.
	sndMSS    uint32 // payload bytes per segment (timestamps deducted)
	rcvMSS    uint32 // what we announced
	sndWScale uint8
	wsOK      bool
	rcvWScale uint8
	tsOK      bool
	sackOK    bool
	tsRecent  uint32
	tsRecentT int64

	// Send side (RFC 9293 §3.3.1 names).
	iss     Seq
	sndUna  Seq
	sndNxt  Seq
	sndMax  Seq // highest sequence number sent + 1
	sndSml  Seq // end of the last small segment sent (Nagle, Minshall)
	rack    rackState
	sndWnd  uint32
	sndWl1  Seq
	sndWl2  Seq
	maxWnd  uint32
	sq      []txSeg // ring
	sqHead  int
	sqN     int
	sqBytes int
	finQ    bool // a FIN is queued after the data
	finSeq  Seq  // valid when finQ
	wantWr  bool // Send returned EAGAIN
	sb      Scoreboard
	cc      CongestionControl
	cubic   Cubic // cc's storage when it is CUBIC (the default)
	rto     RTO
	dupAcks int
	retries int
	// Undoing a spurious fast recovery (RFC 2883 §4.3; Linux's
	// undo_retrans): the segments it retransmitted (their first octets;
	// an episode with more than undoMax is not undone) and how many of
	// them no D-SACK has shown needless yet.
	undoSeq     [undoMax]Seq
	undoN       int8
	undoRetrans int8
	undoOn      bool
	// After a retransmission timeout that kept the SACK information:
	// recovering until lossPoint (SND.MAX then) is acknowledged.
	lossAfterRTO bool
	lossPoint    Seq
	rttSeq       Seq
	rttT         int64
	rttOn        bool
	lastSnd      int64
	probes       int
	txStuck      bool // a send failed with EAGAIN: retry on the next tick
	rtoAt        int64
	persist      bool // rtoAt is the persist timer
	delackAt     int64
	stateAt      int64 // TIME_WAIT, FIN_WAIT_2 orphan, SYN-RECEIVED expiry
	keepAt       int64

	// Receive side.
	irs     Seq
	rcvNxt  Seq
	rcvAdv  Seq       // right edge of the window we advertised
	rq      []nic.Buf // ring of in-order payload for the application
	rqHead  int
	rqN     int
	rqBytes int
	// reasm is the out-of-order queue; each piece's handle is a view of
	// its segment's payload (Off at the segment's first octet) and owns
	// one reference on the frame.
	reasm     Reassembler[nic.Buf]
	finRcvd   bool // the peer's FIN was received in order
	finPend   bool // a FIN arrived out of order, at finAt
	finAt     Seq
	ackNow    bool
	ackQueued bool      // in Proto.ackList: an ACK goes at the end of the receive batch
	dsack     SACKBlock // a duplicate to report in the next ACK (RFC 2883), if Start != End
	sackOwed  bool      // a data segment went without the SACK blocks it should carry
	unacked   int       // payload bytes received since the last ACK
	lastRcv   int64
	eofSeen   bool
	lastAckTx Seq // RCV.NXT in the last ACK sent (RFC 7323 TS.Recent rule)

	// Frame budget (budget.go): frames held by the send queue and by the
	// receive and out-of-order queues; the holder list.
	sndFrames, rcvFrames   int
	sndSpilled, rcvSpilled int // queued segments whose bytes were spilled out of frames
	holding                bool
	hNext, hPrev           *Endpoint
	rcvStuck               bool // Recv found spilled data and no frame to copy it into
	spillWait              bool // a spilled segment waits for a frame to be sent from

	scratch [MaxOptionsLen]byte
	ctr     EndpointCounters
}

const (
	maxSQ    = 1 << 16 // send queue segments
	maxRQ    = 1 << 14 // receive queue segments
	initialQ = 16
)

// NewEndpoint returns a closed, unbound endpoint.
func (p *Proto) NewEndpoint(cookie uint64) *Endpoint {
	e := &Endpoint{Cookie: cookie, p: p}
	e.reasm.pool = &p.rpool
	e.t.LocalAddr = p.net.LocalAddr()
	return e
}

// State returns the connection state.
func (e *Endpoint) State() State { return e.state }

// Err returns the error that ended the connection (ECONNREFUSED,
// ECONNRESET, ETIMEDOUT), or nil.
func (e *Endpoint) Err() error { return e.err }

// Counters returns the endpoint's counters.
func (e *Endpoint) Counters() EndpointCounters { return e.ctr }

// EndpointInfo is a connection's state, what Linux's TCP_INFO reports of
// it.
type EndpointInfo struct {
	State          State
	CWND, SSThresh uint32        // congestion window and slow-start threshold, bytes
	SRTT, RTO      time.Duration // smoothed RTT and retransmission timeout
	Backoffs       int           // consecutive RTO backoffs
	InRecovery     bool          // in fast recovery
	SndMSS         int           // payload bytes of a full segment
	SndWnd         uint32        // the peer's window
	InFlight       uint32        // bytes sent and not acknowledged
	Unsent         int           // bytes queued and not sent yet
	RcvWnd         uint32        // what is left of the window advertised to the peer
	Readable       int           // in-order bytes queued for Recv
	OutOfOrder     int           // bytes held out of order
	SndFrames      int           // frames held by the send queue
	RcvFrames      int           // frames held by the receive and out-of-order queues
}

// Info returns the connection's state.
func (e *Endpoint) Info() EndpointInfo {
	i := EndpointInfo{State: e.state, SRTT: e.rto.SRTT(), RTO: e.rto.Current(), Backoffs: e.rto.Backoffs(),
		InRecovery: e.sb.InRecovery(), SndMSS: int(e.sndMSS), SndWnd: e.sndWnd,
		InFlight: e.sndUna.Size(e.sndMax), RcvWnd: e.rcvWnd(), Readable: e.rqBytes,
		OutOfOrder: int(e.reasm.Bytes()), SndFrames: e.sndFrames, RcvFrames: e.rcvFrames}
	i.Unsent = max(e.sqBytes-int(i.InFlight), 0)
	if e.cc != nil {
		i.CWND, i.SSThresh = e.cc.CWND(), e.cc.SSThresh()
	}
	return i
}

// LocalAddr returns the bound address (invalid if unbound).
func (e *Endpoint) LocalAddr() netip.AddrPort {
	if !e.bound && !e.inTable {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(e.t.LocalAddr), e.t.LocalPort)
}

// RemoteAddr returns the peer (invalid before Connect or Accept).
func (e *Endpoint) RemoteAddr() netip.AddrPort {
	if e.t.RemotePort == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(e.t.RemoteAddr), e.t.RemotePort)
}

// SetNoDelay turns Nagle's algorithm off (true) or on (false, the default).
func (e *Endpoint) SetNoDelay(on bool) {
	e.noDelay = on
	if on {
		e.output()
	}
}

// NoDelay reports whether Nagle's algorithm is off.
func (e *Endpoint) NoDelay() bool { return e.noDelay }

// SetKeepAlive turns keepalive probes on or off (Config.KeepIdle,
// KeepInterval, KeepCount, unless SetKeepAlivePeriod changed the first
// two for this endpoint).
func (e *Endpoint) SetKeepAlive(on bool) {
	e.keepAlive = on
	e.keepAt = 0
	if on && e.state.synchronized() {
		e.keepAt = e.p.now() + int64(e.idle())
		e.schedule()
	}
}

// KeepAlive reports whether keepalive probes are on.
func (e *Endpoint) KeepAlive() bool { return e.keepAlive }

// SetKeepAlivePeriod sets this endpoint's keepalive idle time and the
// interval between probes to d, as Go's net.TCPConn.SetKeepAlivePeriod
// does (TCP_KEEPIDLE and TCP_KEEPINTVL); d <= 0 restores the engine's
// Config. Connections accepted by a listener inherit it.
func (e *Endpoint) SetKeepAlivePeriod(d time.Duration) {
	e.keepIdle, e.keepIntvl = max(d, 0), max(d, 0)
	if e.keepAlive {
		e.SetKeepAlive(true)
	}
}

func (e *Endpoint) idle() time.Duration {
	if e.keepIdle > 0 {
		return e.keepIdle
	}
	return e.p.cfg.KeepIdle
}

func (e *Endpoint) interval() time.Duration {
	if e.keepIntvl > 0 {
		return e.keepIntvl
	}
	return e.p.cfg.KeepInterval
}

// SndMSS returns the payload bytes of a full segment on this connection
// (0 before the handshake). A pushed buffer longer than this is split, the
// excess copied.
func (e *Endpoint) SndMSS() int { return int(e.sndMSS) }

// Bind gives the endpoint a local address: the stack's own or unspecified,
// port 0 for an ephemeral one. Errors: EINVAL (already bound, not closed,
// not IPv4 or not our address), EADDRINUSE, EADDRNOTAVAIL.
func (e *Endpoint) Bind(a netip.AddrPort) error {
	if e.bound || e.state != StateClosed || e.err != nil || e.orphan {
		return unix.EINVAL
	}
	ip := a.Addr().Unmap()
	if !ip.Is4() || (!ip.IsUnspecified() && ip.As4() != e.p.net.LocalAddr()) {
		return unix.EINVAL
	}
	port := a.Port()
	if port == 0 {
		if port = e.p.ephemeral(); port == 0 {
			return unix.EADDRNOTAVAIL
		}
	} else if e.p.ports[port] != nil || e.p.listeners[port] != nil {
		return unix.EADDRINUSE
	}
	e.t.LocalPort, e.bound = port, true
	e.p.ports[port] = e
	return nil
}

// Listen makes a bound endpoint accept connections, with at most backlog
// (1..4096; 0 means 1) established connections waiting for Accept. Errors:
// EDESTADDRREQ (not bound), EINVAL (bad backlog or not closed).
func (e *Endpoint) Listen(backlog int) error {
	if backlog < 0 || e.state != StateClosed || e.orphan || e.err != nil {
		return unix.EINVAL
	}
	if !e.bound {
		return unix.EDESTADDRREQ
	}
	e.backlog = min(max(backlog, 1), 4096)
	e.state = StateListen
	delete(e.p.ports, e.t.LocalPort)
	e.p.listeners[e.t.LocalPort] = e
	return nil
}

// Accept takes an established connection from a listener's queue and gives
// it cookie. A connection reports no events before it is accepted: data
// (or a FIN, or a reset) may already be waiting, so the caller polls Recv
// once after Accept. Errors: EINVAL (not listening), EAGAIN (none
// waiting).
func (e *Endpoint) Accept(cookie uint64) (*Endpoint, error) {
	if e.state != StateListen {
		return nil, unix.EINVAL
	}
	if len(e.acceptQ) == 0 {
		return nil, unix.EAGAIN
	}
	c := e.acceptQ[0]
	copy(e.acceptQ, e.acceptQ[1:])
	e.acceptQ[len(e.acceptQ)-1] = nil
	e.acceptQ = e.acceptQ[:len(e.acceptQ)-1]
	c.parent, c.queued, c.Cookie = nil, false, cookie
	return c, nil
}

// Connect starts an active open to remote, binding an ephemeral port first
// if needed; EventEstablished (or EventError with ECONNREFUSED or
// ETIMEDOUT) follows. Errors: EISCONN (connected), EALREADY (connecting),
// EINVAL (listening, closed, failed, bad address), EADDRNOTAVAIL (no port
// free for this peer), and the network's (ENETUNREACH).
func (e *Endpoint) Connect(remote netip.AddrPort) error {
	switch {
	case e.state == StateSynSent:
		return unix.EALREADY
	case e.state != StateClosed:
		if e.state == StateListen {
			return unix.EINVAL
		}
		return unix.EISCONN
	case e.orphan || e.err != nil:
		return unix.EINVAL
	}
	ip := remote.Addr().Unmap()
	if !ip.Is4() || ip.IsUnspecified() || remote.Port() == 0 {
		return unix.EINVAL
	}
	p := e.p
	t := Tuple{LocalAddr: p.net.LocalAddr(), LocalPort: e.t.LocalPort, RemoteAddr: ip.As4(), RemotePort: remote.Port()}
	if !e.bound {
		port := p.ephemeral()
		for i := 0; port != 0 && i < 64; i++ {
			t.LocalPort = port
			if p.conns[t] == nil && p.tw.m[t] == nil {
				break
			}
			port = p.ephemeral()
		}
		if port == 0 || p.conns[t] != nil || p.tw.m[t] != nil {
			return unix.EADDRNOTAVAIL
		}
		e.t.LocalPort, e.bound = port, true
		p.ports[port] = e
	} else if p.conns[t] != nil || p.tw.m[t] != nil {
		return unix.EADDRNOTAVAIL
	}
	e.t = t
	now := p.now()
	e.initConn(p.cfg.ISN.ISN(t, time.Duration(now)))
	e.state = StateSynSent
	e.sndNxt = e.iss.Add(1)
	e.sndMax = e.sndNxt
	p.conns[t] = e
	e.inTable = true
	if err := e.sendSyn(false); err != nil && err != unix.EAGAIN {
		delete(p.conns, t)
		e.inTable = false
		e.state = StateClosed
		return err
	}
	e.rtoAt = now + int64(e.rto.Current())
	e.schedule()
	return nil
}

// initConn prepares the per-connection state common to both opens.
func (e *Endpoint) initConn(iss Seq) {
	cfg := &e.p.cfg
	e.iss, e.sndUna, e.sndNxt, e.sndMax, e.sndSml = iss, iss, iss, iss, iss
	e.rto = NewRTO(cfg.RTO)
	e.rcvMSS = uint32(e.p.net.MTU() - 40)
	// Room in the out-of-order queue for a full window of segments that
	// carry the most options a header holds (40 bytes: timestamps and
	// three SACK blocks, as a peer sending data while it holds ours out of
	// order does), and an eighth more for shorter ones (the tails of
	// writes, split retransmissions): a sender that fills the window is
	// refused for want of a piece only if its segments are smaller still.
	full := cfg.RcvBuf / max(int(e.rcvMSS)-MaxOptionsLen, 1) // an MTU of 80 leaves no room beside the options
	e.reasm.SetLimit(max(ReasmCapacity, full+full/8+2))
	for e.rcvWScale < MaxWindowScale && cfg.RcvBuf>>e.rcvWScale > 0xffff {
		e.rcvWScale++
	}
	e.lastRcv = e.p.now()
}

// negotiate applies the options of the peer's SYN (o) given what we
// offered (all of them, unless cookie).
func (e *Endpoint) negotiate(o *Options, cookie bool) {
	mss := uint32(536)
	if o.HasMSS {
		mss = uint32(o.MSS)
	}
	mss = min(max(mss, 64), e.rcvMSS)
	e.sackOK = o.SACKPermitted && !cookie
	e.tsOK = o.HasTS && !cookie
	e.wsOK = o.HasWScale && !cookie
	if e.wsOK {
		e.sndWScale = o.WScale
	} else {
		e.sndWScale, e.rcvWScale = 0, 0
	}
	if e.tsOK {
		e.tsRecent, e.tsRecentT = o.TSVal, e.p.now()
		mss -= 12
	}
	e.sndMSS = mss
	co := CCOptions{MSS: mss}
	if e.p.cfg.CC == CCNewReno {
		e.cc = NewNewReno(co)
	} else {
		e.cubic.init(CubicOptions{CCOptions: co})
		e.cc = &e.cubic
	}
	e.sb.init(ScoreboardOptions{SMSS: mss}, e.iss.Add(1))
}

// Send queues bufs (each the payload of one frame, with at least Headroom
// bytes in front of it) for transmission as consecutive TCP segments, and
// completes tag through Notifier.Done once every byte is acknowledged (tag
// 0: no completion). The endpoint takes its own reference on each frame
// and holds it until the frame's bytes are acknowledged, since a
// retransmission re-reads the frame: no payload byte is copied, except
// that a buffer longer than SndMSS is split and its excess copied into
// frames from the link. Nothing is queued on error.
//
// Errors: EINVAL (no buffer, an empty one, too little headroom), ENOTCONN
// (not established), EPIPE (after Shutdown or Close, or the connection
// failed: Err says why), EAGAIN (the send buffer, in bytes or in its share
// of frames, is full: EventWritable follows), ENOBUFS (no frame for the
// excess of a long buffer).
//
//demixdp:hotpath — allocates nothing in steady state.
func (e *Endpoint) Send(bufs []nic.Buf, tag uint64) error {
	if len(bufs) == 0 {
		return unix.EINVAL
	}
	switch e.state {
	case StateEstablished, StateCloseWait:
		if e.finQ || e.orphan {
			return unix.EPIPE
		}
	case StateSynSent, StateSynRcvd, StateListen:
		return unix.ENOTCONN
	default:
		if e.err != nil || e.finQ || e.orphan {
			return unix.EPIPE
		}
		return unix.ENOTCONN
	}
	total, segs := 0, 0
	mss := int(e.sndMSS)
	for i := range bufs {
		b := &bufs[i]
		if b.Len <= 0 || b.Off < Headroom || b.Off+b.Len > len(b.Data) {
			return unix.EINVAL
		}
		total += b.Len
		segs += (b.Len + mss - 1) / mss
	}
	if (e.sqBytes > 0 && e.sqBytes+total > e.p.cfg.SndBuf) || e.sqN+segs > maxSQ {
		e.wantWr = true
		return unix.EAGAIN
	}
	if e.sndFull(segs) {
		e.p.ctr.SndShareFull++
		e.wantWr = true
		return unix.EAGAIN
	}
	e.growSQ(e.sqN + segs)
	start := e.sqN
	seq := e.sndUna
	if e.sqN > 0 {
		seq = e.sqAt(e.sqN - 1).end()
	}
	link := e.p.link
	for i := range bufs {
		b := bufs[i]
		link.Ref(b.Frame)
		first := b
		first.Len = min(b.Len, mss)
		e.pushSQ(txSeg{b: first, seq: seq})
		seq = seq.Add(uint32(first.Len))
		for rest := b.Bytes()[first.Len:]; len(rest) > 0; {
			nb, err := link.Alloc()
			if err != nil || nb.Off < Headroom || len(nb.Data)-nb.Off <= 0 {
				if err == nil {
					link.Release(nb.Frame)
				}
				e.p.ctr.NoBufs++
				e.unwindSQ(start)
				return unix.ENOBUFS
			}
			nb.Len = copy(nb.Data[nb.Off:nb.Off+min(mss, len(nb.Data)-nb.Off)], rest)
			rest = rest[nb.Len:]
			e.p.ctr.SendCopies += uint64(nb.Len)
			e.pushSQ(txSeg{b: nb, seq: seq})
			seq = seq.Add(uint32(nb.Len))
		}
	}
	e.sqAt(e.sqN - 1).tag = tag
	e.output()
	e.p.pressure()
	return nil
}

func (e *Endpoint) sqAt(i int) *txSeg {
	i += e.sqHead
	if i >= len(e.sq) {
		i -= len(e.sq)
	}
	return &e.sq[i]
}

func (e *Endpoint) growSQ(n int) {
	if n <= len(e.sq) {
		return
	}
	c := max(len(e.sq)*2, initialQ)
	for c < n {
		c *= 2
	}
	q := e.p.sqPool.get(c)
	for i := 0; i < e.sqN; i++ {
		q[i] = *e.sqAt(i)
	}
	e.p.sqPool.put(e.sq)
	e.sq, e.sqHead = q, 0
}

// sqEmptied gives an empty send queue's array back to the pool: an idle
// connection holds no queue memory.
func (e *Endpoint) sqEmptied() {
	if e.sqN == 0 && e.sq != nil {
		e.p.sqPool.putZeroed(e.sq) // popSQ and unwindSQ zero each slot
		e.sq, e.sqHead = nil, 0
	}
}

func (e *Endpoint) pushSQ(s txSeg) {
	*e.sqAt(e.sqN) = s
	e.sqN++
	e.sqBytes += s.b.Len
	e.hold(1, true)
}

// dropSQ releases segment s's frame (if it still has one).
func (e *Endpoint) dropSQ(s *txSeg) {
	if s.sacked {
		e.rack.sackedBytes -= min(e.rack.sackedBytes, uint32(s.b.Len))
	}
	if s.b.Frame != noFrame {
		e.p.link.Release(s.b.Frame)
		e.hold(-1, true)
	} else {
		e.sndSpilled--
	}
	e.sqBytes -= s.b.Len
}

// unwindSQ drops the segments from index start on (a failed Send).
func (e *Endpoint) unwindSQ(start int) {
	for e.sqN > start {
		s := e.sqAt(e.sqN - 1)
		e.dropSQ(s)
		*s = txSeg{}
		e.sqN--
	}
	e.sqEmptied()
}

// popSQ releases the head segment (fully acknowledged or dropped).
func (e *Endpoint) popSQ(err error, notify bool) {
	s := e.sqAt(0)
	e.dropSQ(s)
	tag := s.tag
	*s = txSeg{}
	e.sqHead++
	if e.sqHead == len(e.sq) {
		e.sqHead = 0
	}
	e.sqN--
	e.sqEmptied()
	if tag != 0 && notify {
		e.p.note.Done(tag, err)
	}
}

// Recv takes the next in-order bytes: a view of a received frame whose
// reference now belongs to the caller (release it through the link). It
// returns io.EOF once the peer's FIN has been reached, EAGAIN when nothing
// is queued yet, ENOTCONN before the connection is established, and the
// connection's error (ECONNRESET, ETIMEDOUT) once it failed and the queue
// is empty.
//
// Data that was spilled out of its frames under frame pressure (budget.go)
// is copied back into a fresh frame here; while frames are scarce that
// waits, Recv returns EAGAIN with data still queued, and EventReadable
// follows once it can go on.
//
//demixdp:hotpath — allocates nothing.
func (e *Endpoint) Recv() (nic.Buf, error) {
	if e.rqN == 0 {
		switch {
		case e.err != nil:
			return nic.Buf{}, e.err
		case e.finRcvd:
			e.eofSeen = true
			return nic.Buf{}, io.EOF
		case e.state == StateClosed || e.state == StateListen || e.state == StateSynSent:
			return nic.Buf{}, unix.ENOTCONN
		}
		return nic.Buf{}, unix.EAGAIN
	}
	b := e.rq[e.rqHead]
	if b.Frame == noFrame {
		nb, ok := e.p.unspill(&b)
		if !ok {
			e.rcvStuck = true
			e.schedule()
			return nic.Buf{}, unix.EAGAIN
		}
		b = nb
		e.rcvSpilled--
	} else {
		e.hold(-1, false)
	}
	e.popRQ()
	e.windowUpdate()
	return b, nil
}

// rqAt returns receive-queue entry i (0 is the next for Recv).
func (e *Endpoint) rqAt(i int) *nic.Buf {
	i += e.rqHead
	if i >= len(e.rq) {
		i -= len(e.rq)
	}
	return &e.rq[i]
}

// popRQ removes the head of the receive queue; the caller took or dropped
// its frame.
func (e *Endpoint) popRQ() {
	e.rqBytes -= e.rq[e.rqHead].Len
	e.rq[e.rqHead] = nic.Buf{}
	e.rqHead++
	if e.rqHead == len(e.rq) {
		e.rqHead = 0
	}
	e.rqN--
	if e.rqN == 0 {
		// An idle connection holds no queue memory (pool.go); popRQ
		// zeroed each slot.
		e.p.rqPool.putZeroed(e.rq)
		e.rq, e.rqHead = nil, 0
	}
}

// Readable returns the number of in-order bytes queued for Recv.
func (e *Endpoint) Readable() int { return e.rqBytes }

// Unacked returns the bytes queued by Send and not yet acknowledged.
func (e *Endpoint) Unacked() int { return e.sqBytes }

// Shutdown closes the sending direction: a FIN follows the queued data.
// Errors: ENOTCONN (not connected).
func (e *Endpoint) Shutdown() error {
	switch e.state {
	case StateEstablished:
		e.state = StateFinWait1
	case StateCloseWait:
		e.state = StateLastAck
	case StateFinWait1, StateFinWait2, StateClosing, StateLastAck, StateTimeWait:
		return nil
	default:
		return unix.ENOTCONN
	}
	e.queueFin()
	e.output()
	return nil
}

func (e *Endpoint) queueFin() {
	e.finQ = true
	e.finSeq = e.sndUna
	if e.sqN > 0 {
		e.finSeq = e.sqAt(e.sqN - 1).end()
	}
}

// cancelPushes completes every queued push with err, keeping the data
// queued (a graceful Close still delivers it).
func (e *Endpoint) cancelPushes(err error) {
	for i := 0; i < e.sqN; i++ {
		s := e.sqAt(i)
		if s.tag != 0 {
			tag := s.tag
			s.tag = 0
			e.p.note.Done(tag, err)
		}
	}
}

// Close ends the application's use of the endpoint. As on Linux, a
// connection with unread received data is reset; otherwise a FIN follows
// the queued data, which is still delivered, while the pushes not yet
// acknowledged complete at once with ECANCELED. The engine keeps the
// connection (FIN-WAIT, TIME-WAIT) until it ends; no event is reported for
// it after Close. A listener resets its queued connections.
func (e *Endpoint) Close() {
	if e.orphan {
		return
	}
	e.orphan = true
	e.cancelPushes(unix.ECANCELED)
	switch e.state {
	case StateListen, StateClosed, StateSynSent:
		e.destroy()
		return
	}
	if e.rqN > 0 || e.reasm.Len() > 0 {
		e.reset()
		return
	}
	e.releaseRQ()
	switch e.state {
	case StateTimeWait:
		e.toTimeWait()
		return
	case StateSynRcvd, StateEstablished:
		e.state = StateFinWait1
		e.queueFin()
	case StateCloseWait:
		e.state = StateLastAck
		e.queueFin()
	case StateFinWait2:
		e.stateAt = e.p.now() + int64(e.p.cfg.FinTimeout)
	}
	e.output()
	e.schedule()
}

// Abort resets the connection at once (RST if it was synchronized), drops
// everything queued and completes pending pushes with ECANCELED.
func (e *Endpoint) Abort() {
	e.orphan = true
	e.cancelPushes(unix.ECANCELED)
	if e.state.synchronized() || e.state == StateSynRcvd {
		e.reset()
		return
	}
	e.destroy()
}

// reset sends a RST and destroys the connection.
func (e *Endpoint) reset() {
	if e.state != StateTimeWait {
		e.p.sendRaw(&e.t, e.sndNxt, e.rcvNxt, FlagRST|FlagACK, 0, nil)
	}
	e.destroy()
}

func (e *Endpoint) releaseRQ() {
	for e.rqN > 0 {
		if b := &e.rq[e.rqHead]; b.Frame != noFrame {
			e.p.link.Release(b.Frame)
			e.hold(-1, false)
		} else {
			e.rcvSpilled--
		}
		e.popRQ()
	}
}

// pruneOOO drops the out-of-order queue and releases its frames. Data we
// SACKed is thereby reneged on (RFC 2018 §8 allows it): the peer resends
// it after its retransmission timeout.
func (e *Endpoint) pruneOOO() {
	n := e.reasm.Len()
	for i := 0; i < n; i++ {
		e.p.link.Release(e.reasm.At(i).Handle.Frame)
	}
	if n > 0 {
		e.hold(-n, false)
	}
	e.reasm.Reset(e.rcvNxt)
}

// destroy frees every resource of the endpoint and takes it out of every
// table. The application may still hold the pointer: it sees CLOSED.
func (e *Endpoint) destroy() {
	p := e.p
	st := e.state
	e.state = StateClosed // first: releasing the queues must not send a window update
	for _, c := range e.acceptQ {
		c.parent = nil
		c.orphan = true
		c.reset()
	}
	e.acceptQ = nil
	for e.sqN > 0 {
		e.popSQ(nil, false)
	}
	e.pruneOOO()
	if e.orphan || e.err == nil {
		e.releaseRQ()
	}
	if e.inTable && p.conns[e.t] == e {
		delete(p.conns, e.t)
	}
	e.inTable = false
	if st == StateListen && p.listeners[e.t.LocalPort] == e {
		delete(p.listeners, e.t.LocalPort)
	}
	if e.bound && e.orphan && p.ports[e.t.LocalPort] == e {
		delete(p.ports, e.t.LocalPort)
		e.bound = false
	}
	if e.parent != nil {
		if st == StateSynRcvd {
			e.parent.synRcvd--
		}
		e.parent = nil
	}
	p.timers.remove(e)
}

// fail ends the connection with err, reporting it unless orphaned.
func (e *Endpoint) fail(err error) {
	e.err = err
	for e.sqN > 0 {
		e.popSQ(err, !e.orphan)
	}
	notify := !e.orphan && e.parent == nil
	e.destroy()
	if notify {
		e.p.note.Event(e.Cookie, EventError, err)
		e.p.note.Event(e.Cookie, EventReadable, err)
	}
}

// notify reports ev unless the application cannot see the endpoint.
func (e *Endpoint) notify(ev Event) {
	if !e.orphan && e.parent == nil {
		e.p.note.Event(e.Cookie, ev, nil)
	}
}
