package tcp

import (
	"math/rand/v2"
	"time"

	"github.com/demixdp/demixdp/netstack/checksum"
	"github.com/demixdp/demixdp/netstack/nic"
)

// Headroom is the least headroom a buffer passed to Endpoint.Send must have
// in front of its payload: Ethernet (14), IPv4 without options (20) and the
// largest TCP header (60).
const Headroom = 14 + 20 + MaxHeaderLen

// Network is what the TCP engine needs from the layer below it (package
// stack implements it). All calls happen on the stack's goroutine.
type Network interface {
	// Output sends the TCP segment b.Bytes() to dst: it prepends the IPv4
	// and Ethernet headers in b's headroom and hands the frame to the link
	// (or holds it, with a reference of its own, while the next hop is
	// resolved). It does not consume the caller's reference. On error
	// nothing was sent; a frame still in flight gives EAGAIN.
	Output(b *nic.Buf, dst [4]byte) error
	// Link is the link whose frames the engine allocates and references.
	Link() nic.Link
	// Now is the current time in nanoseconds (nic.Clock).
	Now() int64
	// LocalAddr is the stack's IPv4 address.
	LocalAddr() [4]byte
	// MTU is the largest IPv4 packet the link carries.
	MTU() int
}

// Event is what Notifier.Event reports about an endpoint.
type Event uint8

// Events. Each is reported once per occurrence; after any of them the owner
// polls the endpoint (Recv until EAGAIN, Accept until EAGAIN, State, Err).
const (
	// EventEstablished: Connect completed (the handshake finished).
	EventEstablished Event = iota + 1
	// EventAcceptable: a listener has a connection for Accept.
	EventAcceptable
	// EventReadable: Recv has something new: data after an empty queue,
	// the end of stream, or the error that ended the connection.
	EventReadable
	// EventWritable: Send returned EAGAIN earlier and there is room now.
	EventWritable
	// EventError: the connection failed; err is ECONNREFUSED (refused or
	// SYN retries exhausted), ECONNRESET or ETIMEDOUT. Pending pushes have
	// been completed with the same error through Done.
	EventError
)

// Notifier receives the engine's reports, on the stack's goroutine, from
// inside Input, Tick or an Endpoint call.
type Notifier interface {
	// Event reports ev on the endpoint whose cookie is given (see Event).
	Event(cookie uint64, ev Event, err error)
	// Done completes a push (the tag given to Endpoint.Send): err is nil
	// once every byte of it is acknowledged, otherwise ECONNRESET,
	// ETIMEDOUT or ECANCELED (Close or Abort before it was acknowledged).
	Done(tag uint64, err error)
}

// CCAlgorithm selects the congestion controller.
type CCAlgorithm uint8

// Congestion controllers.
const (
	CCCubic   CCAlgorithm = iota // RFC 9438 (default)
	CCNewReno                    // RFC 5681 / RFC 6582
)

// Config tunes the engine. Zero fields take the defaults given.
type Config struct {
	RcvBuf        int           // receive buffer per connection in bytes; 1 MiB
	SndBuf        int           // bytes queued and unacknowledged per connection; 4 MiB
	MSL           time.Duration // TIME_WAIT lasts 2*MSL; 30s
	FinTimeout    time.Duration // an orphaned FIN_WAIT_2 is dropped after it; 60s
	DelayedACK    time.Duration // bound on delaying an ACK; 40ms
	SynRetries    int           // SYN retransmissions before ECONNREFUSED; 6
	SynAckRetries int           // SYN-ACK retransmissions before a half-open connection is dropped; 5
	Retries       int           // consecutive data RTOs before ETIMEDOUT; 15
	RTO           RTOOptions
	CC            CCAlgorithm
	MaxSynBacklog int // half-open connections per listener before SYN cookies; 256
	MaxTimeWait   int // closed connections kept in TIME-WAIT (timewait.go); past it they skip it; 262144
	KeepIdle      time.Duration
	KeepInterval  time.Duration
	KeepCount     int           // keepalive: 2h idle, 75s interval, 9 probes
	ChallengeACKs int           // RFC 5961 challenge ACKs per second, in all; 1000
	ISN           *ISNGenerator // nil: randomly keyed
	Cookies       *SYNCookies   // nil: randomly keyed
	// EphemeralFirst..EphemeralLast is the port range for Connect without
	// Bind and for Bind to port 0; zero means 61000..65535.
	EphemeralFirst, EphemeralLast uint16
	// TxChecksumOffload leaves segments' checksums partial for the link to
	// complete (nic.L4Checksum); the stack sets it.
	TxChecksumOffload bool
	// Frames turns on frame budgets (budget.go): the link frames that the
	// connections' send, receive and out-of-order queues may hold in all,
	// shared fairly between the connections holding any. 0 (the default
	// of the engine alone; the libOS sets it from its UMEM) leaves only
	// the byte limits RcvBuf and SndBuf.
	Frames int
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.RcvBuf, 1<<20)
	def(&c.SndBuf, 4<<20)
	defd(&c.MSL, 30*time.Second)
	defd(&c.FinTimeout, 60*time.Second)
	defd(&c.DelayedACK, 40*time.Millisecond)
	def(&c.SynRetries, 6)
	def(&c.SynAckRetries, 5)
	def(&c.Retries, 15)
	def(&c.MaxSynBacklog, 256)
	def(&c.MaxTimeWait, 262144)
	defd(&c.KeepIdle, 2*time.Hour)
	defd(&c.KeepInterval, 75*time.Second)
	def(&c.KeepCount, 9)
	def(&c.ChallengeACKs, 1000)
	c.RcvBuf = min(c.RcvBuf, 1<<30)
	if c.ISN == nil {
		c.ISN = NewISNGenerator()
	}
	if c.Cookies == nil {
		c.Cookies = NewSYNCookies()
	}
	if c.EphemeralFirst == 0 || c.EphemeralFirst > c.EphemeralLast {
		c.EphemeralFirst, c.EphemeralLast = 61000, 65535
	}
}

// Counters count the engine's work and, above all, what it dropped and why.
type Counters struct {
	SegsIn, SegsOut    uint64 // segments received (valid header) and sent
	Retransmits        uint64 // data/FIN segments sent again (RTO, fast and SACK recovery)
	RTOs               uint64 // retransmission timer expiries
	RTOsInRecovery     uint64 // of which during fast recovery
	LossProbes         uint64 // tail loss probes sent (RFC 8985 TLP)
	SACKReneging       uint64 // ACKs showing that the peer dropped data it had SACKed
	FastRecoveries     uint64 // entries into fast recovery
	SpuriousRecoveries uint64 // fast recoveries undone: D-SACKs showed every retransmission needless
	Malformed          uint64 // dropped: truncated, bad data offset or options
	NoACK              uint64 // dropped: no ACK, SYN or RST flag where one is required
	RcvPressureDrops   uint64 // payload not queued because the link's frames ran low
	OOOPruned          uint64 // out-of-order queues dropped because the link's frames ran low
	BadChecksum        uint64 // dropped: bad checksum
	NoPort             uint64 // segments for no connection or listener (answered by RST unless RST)
	RSTsOut            uint64 // resets sent
	RSTsIn             uint64 // acceptable resets received (connection reset)
	ChallengeACKs      uint64 // RFC 5961 challenge ACKs sent
	ChallengeLimited   uint64 // challenge ACKs suppressed by the rate limit
	OutOfWindow        uint64 // dropped: sequence number outside the window (answered by ACK)
	PAWSDropped        uint64 // dropped: old timestamp (RFC 7323 PAWS)
	BadACK             uint64 // dropped: acknowledges unsent data or far too old
	OOOQueued          uint64 // out-of-order segments held
	DSACKsOut          uint64 // ACKs that reported duplicate data received (RFC 2883 D-SACK)
	OOODropped         uint64 // out-of-order segments dropped (queue full)
	RcvQueueFull       uint64 // in-order segments dropped: receive queue full
	SynCookiesSent     uint64 // SYN-ACKs carrying a cookie (backlog full)
	SynCookiesOK       uint64 // connections completed from a valid cookie
	SynCookiesBad      uint64 // ACKs to a listener with an invalid cookie
	AcceptQueueFull    uint64 // handshakes that found the accept queue full
	SendCopies         uint64 // bytes copied because a pushed segment exceeded the MSS
	NoBufs             uint64 // frames the engine wanted and the link did not have
	SndShareFull       uint64 // pushes refused with EAGAIN because the send queue had its share of frames
	RcvShareLimited    uint64 // windows advertised smaller than RcvBuf allows because of the frame share
	Reclaims           uint64 // reclaim passes run because frames were scarce (budget.go)
	SpilledFrames      uint64 // frames given back by copying queued data out of them
	UnspillBytes       uint64 // spilled bytes copied back into frames (to send, or for Recv)
	ConnsEstablished   uint64
	ConnsReset         uint64
	ConnsTimedOut      uint64
	TimeWaitOverflow   uint64 // closed connections that skipped TIME-WAIT: MaxTimeWait were in it

	// Gauges, as of the snapshot.
	Conns         uint64 // connections in the table, TIME-WAIT entries not included
	TimeWaitConns uint64 // connections in TIME-WAIT kept without their endpoint
	FramesHeld    uint64 // frames held by all connections' queues
	Holders       uint64 // connections holding at least one frame
	ShareFrames   uint64 // frames per direction a connection may hold now
	MaxConnFrames uint64 // the most frames one connection holds in one direction
}

// Proto is the TCP engine of one stack: the connection table, listeners,
// ports and timers. Create it with New; it is driven by the stack (Input,
// Tick) on one goroutine.
type Proto struct {
	net  Network
	link nic.Link
	note Notifier
	cfg  Config

	conns     map[Tuple]*Endpoint // connections by 4-tuple (all states but LISTEN and CLOSED)
	lastConn  *Endpoint           // the connection Input found last (see Input)
	listeners map[uint16]*Endpoint
	ports     map[uint16]*Endpoint // port owners (bound endpoints)
	nextEph   uint16

	timers  timerWheel
	tw      twTable
	bud     budget
	ackList []*Endpoint // ACKs deferred to the end of the receive batch
	inBatch bool        // between Input and EndBatch
	// Pools of queue arrays (pool.go).
	rpool  ringPool[reasmEntry[nic.Buf]]
	sqPool ringPool[txSeg]
	rqPool ringPool[nic.Buf]

	chalStart int64 // start of the current challenge-ACK second
	chalCount int

	opts Options // scratch for the segment being processed
	txb  nic.Buf // scratch for Output, so the caller's Buf does not escape
	ctr  Counters
}

// New returns an engine on network n reporting to note.
func New(n Network, note Notifier, cfg Config) *Proto {
	cfg.defaults()
	p := &Proto{
		net:       n,
		link:      n.Link(),
		note:      note,
		cfg:       cfg,
		conns:     make(map[Tuple]*Endpoint),
		listeners: make(map[uint16]*Endpoint),
		ports:     make(map[uint16]*Endpoint),
		// A random first ephemeral port, so a restarted process does not
		// walk the 4-tuples its predecessor left in TIME-WAIT at the peer.
		nextEph: cfg.EphemeralFirst + uint16(rand.IntN(int(cfg.EphemeralLast-cfg.EphemeralFirst)+1)),
	}
	p.bud.init(cfg.Frames)
	p.timers.clk = p.now() >> wheelTick // the wheel starts at the clock's time
	return p
}

// Counters returns a snapshot of the engine's counters. It walks the
// connections holding frames (for MaxConnFrames): not for every packet.
func (p *Proto) Counters() Counters {
	c := p.ctr
	c.FramesHeld, c.Holders, c.ShareFrames = uint64(p.bud.held), uint64(p.bud.holders), uint64(p.bud.share)
	c.Conns, c.TimeWaitConns = uint64(len(p.conns)), uint64(p.tw.len())
	for e := p.bud.head; e != nil; e = e.hNext {
		c.MaxConnFrames = max(c.MaxConnFrames, uint64(e.sndFrames), uint64(e.rcvFrames))
	}
	return c
}

// Conns returns the number of connections the engine keeps, TIME-WAIT
// included.
func (p *Proto) Conns() int { return len(p.conns) + p.tw.len() }

// Close aborts every connection and listener without notifying anyone,
// releasing every frame the engine holds.
func (p *Proto) Close() {
	for _, e := range p.conns {
		e.destroy()
	}
	for _, e := range p.listeners {
		e.destroy()
	}
	for p.tw.head != nil {
		p.tw.remove(p.tw.head)
	}
}

// ephemeral returns a free port, or 0.
func (p *Proto) ephemeral() uint16 {
	first, last := p.cfg.EphemeralFirst, p.cfg.EphemeralLast
	n := int(last-first) + 1
	for i := 0; i < n; i++ {
		port := p.nextEph
		if p.nextEph == last {
			p.nextEph = first
		} else {
			p.nextEph++
		}
		if p.ports[port] == nil && p.listeners[port] == nil {
			return port
		}
	}
	return 0
}

func (p *Proto) now() int64 { return p.net.Now() }

// tsNow is the timestamp clock: milliseconds.
func tsClock(now int64) uint32 { return uint32(now / int64(time.Millisecond)) }

// challengeOK applies the global challenge-ACK rate limit (RFC 5961 §7).
func (p *Proto) challengeOK(now int64) bool {
	if now-p.chalStart >= int64(time.Second) {
		p.chalStart, p.chalCount = now, 0
	}
	if p.chalCount >= p.cfg.ChallengeACKs {
		p.ctr.ChallengeLimited++
		return false
	}
	p.chalCount++
	p.ctr.ChallengeACKs++
	return true
}

// sendRaw builds a control segment (no payload) in a fresh frame and sends
// it from t.Local to t.Remote. opts may be nil.
func (p *Proto) sendRaw(t *Tuple, seq, ack Seq, flags Flags, win uint16, opts *Options) {
	b, err := p.link.Alloc()
	if err != nil {
		p.ctr.NoBufs++
		return
	}
	var ob [MaxOptionsLen]byte
	n := 0
	if opts != nil {
		n = EncodeOptions(ob[:], opts, flags.Has(FlagSYN))
	}
	hb, ok := b.Prepend(HeaderLen + n)
	if !ok || b.Off < Headroom-MaxHeaderLen {
		p.link.Release(b.Frame)
		p.ctr.NoBufs++
		return
	}
	h := Header(hb)
	h.Encode(&Fields{SrcPort: t.LocalPort, DstPort: t.RemotePort, Seq: seq, Ack: ack,
		DataOffset: uint8(HeaderLen + n), Flags: flags, Window: win})
	copy(h[HeaderLen:], ob[:n])
	p.setChecksum(&b, t)
	if p.output(&b, t.RemoteAddr) == nil {
		p.ctr.SegsOut++
		if flags.Has(FlagRST) {
			p.ctr.RSTsOut++
		}
	}
	p.link.Release(b.Frame)
}

// sendReset answers a segment that belongs to no connection (RFC 9293
// §3.10.7.1): never to a RST.
func (p *Proto) sendReset(t *Tuple, h Header, payloadLen int) {
	f := h.Flags()
	if f.Has(FlagRST) {
		return
	}
	if f.Has(FlagACK) {
		p.sendRaw(t, h.Ack(), 0, FlagRST, 0, nil)
		return
	}
	n := uint32(payloadLen)
	if f.Has(FlagSYN) {
		n++
	}
	if f.Has(FlagFIN) {
		n++
	}
	p.sendRaw(t, 0, h.Seq().Add(n), FlagRST|FlagACK, 0, nil)
}

// Input processes one received TCP segment. b holds the segment (Off at
// the TCP header, Len its length, as bounded by the IPv4 total length);
// src and dst are the IPv4 addresses. It returns true if it kept the
// caller's reference on the frame (the data was queued), false if the
// caller must release it. It never panics on wire input.
//
//demixdp:hotpath — allocates nothing in steady state.
func (p *Proto) Input(b nic.Buf, src, dst [4]byte) bool {
	h, err := Parse(b.Bytes())
	if err != nil {
		p.ctr.Malformed++
		return false
	}
	if !h.VerifyChecksum(src, dst) {
		p.ctr.BadChecksum++
		return false
	}
	if ParseOptions(h.Options(), &p.opts) != nil {
		p.ctr.Malformed++
		return false
	}
	f := h.Flags()
	if f.Has(FlagSYN|FlagRST) || f.Has(FlagSYN|FlagFIN) || h.SrcPort() == 0 || h.DstPort() == 0 {
		p.ctr.Malformed++
		return false
	}
	p.ctr.SegsIn++
	p.inBatch = true
	p.pressure()
	t := Tuple{LocalAddr: dst, LocalPort: h.DstPort(), RemoteAddr: src, RemotePort: h.SrcPort()}
	seg := segment{h: h, b: b, flags: f, opts: &p.opts}
	seg.b.Off += h.DataOffset()
	seg.b.Len -= h.DataOffset()
	seg.seq, seg.ack = h.Seq(), h.Ack()
	// Segments mostly come in runs for one connection (a request and its
	// response, a stream): remember the last one found and skip the map
	// for it. An endpoint in the table is conns[e.t] (destroy takes it
	// out and clears inTable), so the check below is exact.
	e := p.lastConn
	if e == nil || !e.inTable || e.t != t {
		if e = p.conns[t]; e != nil {
			p.lastConn = e
		}
	}
	if e != nil {
		if e.state == StateTimeWait && f.Has(FlagSYN) && !f.Has(FlagACK) && seg.seq.GreaterThan(e.rcvNxt) {
			if l := p.listeners[t.LocalPort]; l != nil {
				// A new incarnation of the connection (RFC 9293 §3.6.1).
				e.destroy()
				return l.listenInput(&t, &seg)
			}
		}
		kept := e.input(&seg)
		if e.state == StateTimeWait && e.orphan && e.inTable {
			e.toTimeWait() // its ACK has gone: the endpoint can go too
		}
		return kept
	}
	if tw := p.tw.m[t]; tw != nil {
		return p.twInput(tw, &t, &seg)
	}
	if l := p.listeners[t.LocalPort]; l != nil {
		return l.listenInput(&t, &seg)
	}
	p.ctr.NoPort++
	p.sendReset(&t, h, seg.b.Len)
	return false
}

// EndBatch ends a batch of received segments (all those the link handed
// over in one turn of the event loop): every connection that received
// in-order data calling for an ACK during the batch sends one now, for all
// of it. Stretching ACKs over a batch is what Linux does behind GRO; it
// spares the peer and, on a copy-mode link, one transmission per pair of
// segments. Out-of-order data, a FIN and window updates are still
// acknowledged at once, and a connection never waits longer than
// maxStretch bytes for its ACK. The pure ACK carrying SACK blocks that
// follows full-sized data segments while a receive hole lasts goes here
// too, once for all the segments the batch's ACKs released. A caller that
// never calls EndBatch gets its ACKs from the delayed-ACK timer.
//
//demixdp:hotpath — allocates nothing in steady state.
func (p *Proto) EndBatch() {
	p.inBatch = false
	for i, e := range p.ackList {
		p.ackList[i] = nil
		e.ackQueued = false
		if e.unacked > 0 || e.ackNow || e.sackOwed {
			e.sendAck()
			e.schedule()
		}
	}
	p.ackList = p.ackList[:0]
}

// Tick runs every connection timer due at the clock's current time.
func (p *Proto) Tick() {
	p.pressure() // frames held may have to be reclaimed even when nothing arrives
	now := p.now()
	p.expireTimeWait(now)
	p.timers.expire(now)
	for e := p.timers.pop(); e != nil; e = p.timers.pop() {
		e.deadline = 0
		e.onTimer(now)
		if e.state != StateClosed && e.state != StateListen {
			e.schedule()
		}
	}
}

// NextDeadline returns the earliest timer deadline, or 0 if none.
func (p *Proto) NextDeadline() int64 {
	d := p.timers.nextExpiry()
	if tw := p.tw.head; tw != nil && (d == 0 || tw.expires < d) {
		d = tw.expires
	}
	return d
}

// setChecksum fills in the checksum of the segment b holds (header at
// b.Off, sent on t): in full, or, with transmit checksum offload, the
// pseudo-header's sum for the link to complete.
func (p *Proto) setChecksum(b *nic.Buf, t *Tuple) {
	h := Header(b.Bytes())
	if p.cfg.TxChecksumOffload {
		// The link completes it (nic.L4Checksum).
		h.SetChecksum(checksum.Fold(checksum.PseudoIPv4(t.LocalAddr, t.RemoteAddr, ProtocolNumber, uint16(len(h)))))
		return
	}
	h.SetChecksum(h.ComputeChecksum(t.LocalAddr, t.RemoteAddr))
}

// output hands b to the network through a scratch Buf held by p: passing
// the address of a local to an interface method would make every caller
// allocate it on the heap. The Buf is copied field by field
// (nic.CopyBuf): the caller has just prepended the TCP header.
func (p *Proto) output(b *nic.Buf, dst [4]byte) error {
	nic.CopyBuf(&p.txb, b)
	err := p.net.Output(&p.txb, dst)
	nic.CopyBuf(b, &p.txb)
	return err
}
