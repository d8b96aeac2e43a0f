package tcp_test

// Packet-level tests in the style of packetdrill: a stack on an in-memory
// link, segments injected from a scripted peer, and the segments the stack
// sends back checked one rule at a time.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/memlink"
	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

var (
	ourIP   = [4]byte{198, 51, 100, 1}
	peerIP  = [4]byte{198, 51, 100, 2}
	ourMAC  = ethernet.Addr{0x02, 0, 0, 0, 0, 1}
	peerMAC = ethernet.Addr{0x02, 0, 0, 0, 0, 2}
)

const (
	ourPort  = 80
	peerPort = 40000
	peerISN  = tcp.Seq(1000)
)

type fx struct {
	t        testing.TB
	link     *memlink.Link
	clock    *nic.VirtualClock
	h        *host
	batching bool // inside batch: frames are one receive batch
}

func newFx(t testing.TB, cfg tcp.Config) *fx {
	t.Helper()
	return newFxOn(t, cfg, memlink.New(256, 2048, 256))
}

// newFxOn is newFx on a link of the test's own (another size or MTU).
func newFxOn(t testing.TB, cfg tcp.Config, link *memlink.Link) *fx {
	t.Helper()
	f := &fx{t: t, link: link, clock: &nic.VirtualClock{T: int64(time.Hour)}}
	f.h = newHost(t, f.link, f.clock, netip.MustParsePrefix("198.51.100.1/24"), cfg)
	// The peer asks for us: the stack learns its MAC.
	body := make([]byte, arp.HeaderLen)
	arp.Header(body).Encode(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, ourIP)
	f.inputFrame(ethernet.TypeARP, body)
	f.link.Complete()
	t.Cleanup(func() {
		if err := f.link.Check(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *fx) inputFrame(typ uint16, payload []byte) {
	b := make([]byte, ethernet.HeaderLen+len(payload))
	ethernet.Header(b).Encode(ourMAC, peerMAC, typ)
	copy(b[ethernet.HeaderLen:], payload)
	f.h.s.Input(f.link.Inject(b))
	if !f.batching {
		f.h.s.EndBatch() // each injected frame is a batch of its own
	}
}

// batch runs inject calls as one receive batch: EndBatch comes after the
// last frame only.
func (f *fx) batch(inject func()) {
	f.batching = true
	inject()
	f.batching = false
	f.h.s.EndBatch()
}

// seg is a segment the scripted peer sends.
type seg struct {
	flags    tcp.Flags
	seq, ack tcp.Seq
	win      uint16
	data     []byte
	opts     *tcp.Options
	zeroWin  bool   // send window 0 (win 0 means 65535)
	sport    uint16 // 0: peerPort
	dport    uint16 // 0: ourPort
}

func (f *fx) inject(s seg) {
	if s.sport == 0 {
		s.sport = peerPort
	}
	if s.dport == 0 {
		s.dport = ourPort
	}
	if s.win == 0 && !s.zeroWin && !s.flags.Has(tcp.FlagRST) {
		s.win = 65535
	}
	var ob [tcp.MaxOptionsLen]byte
	n := 0
	if s.opts != nil {
		n = tcp.EncodeOptions(ob[:], s.opts, s.flags.Has(tcp.FlagSYN))
	}
	l4 := make([]byte, tcp.HeaderLen+n+len(s.data))
	h := tcp.Header(l4)
	h.Encode(&tcp.Fields{SrcPort: s.sport, DstPort: s.dport, Seq: s.seq, Ack: s.ack, DataOffset: uint8(tcp.HeaderLen + n), Flags: s.flags, Window: s.win})
	copy(l4[tcp.HeaderLen:], ob[:n])
	copy(l4[tcp.HeaderLen+n:], s.data)
	h.SetChecksum(h.ComputeChecksum(peerIP, ourIP))
	f.injectL4(l4)
}

// injectL4 sends l4 as the payload of an IPv4 TCP packet from the peer.
func (f *fx) injectL4(l4 []byte) {
	ip := make([]byte, ipv4.MinHeaderLen+len(l4))
	ipv4.Header(ip).Encode(ipv4.Fields{TotalLength: uint16(len(ip)), ID: 1, TTL: 64, Protocol: ipv4.ProtoTCP, Src: peerIP, Dst: ourIP})
	copy(ip[ipv4.MinHeaderLen:], l4)
	f.inputFrame(ethernet.TypeIPv4, ip)
}

// out is a segment the stack sent.
type out struct {
	tcp.Header
	o       tcp.Options
	payload []byte
}

// sent completes the link's transmissions and returns the TCP segments.
func (f *fx) sent() []out {
	var r []out
	for _, s := range f.link.Complete() {
		eth, err := ethernet.Parse(s.Bytes)
		if err != nil || eth.Type() != ethernet.TypeIPv4 {
			continue
		}
		ip, err := ipv4.Parse(eth.Payload())
		if err != nil || ip.Protocol() != ipv4.ProtoTCP {
			f.t.Fatalf("bad IPv4 packet sent: %v", err)
		}
		h, err := tcp.Parse(ip.Payload())
		if err != nil || !h.VerifyChecksum(ip.Src(), ip.Dst()) {
			f.t.Fatalf("bad TCP segment sent: %v", err)
		}
		o := out{Header: h, payload: h.Payload()}
		if err := tcp.ParseOptions(h.Options(), &o.o); err != nil {
			f.t.Fatal(err)
		}
		r = append(r, o)
	}
	return r
}

// one expects exactly one segment with flags.
func (f *fx) one(flags tcp.Flags) out {
	f.t.Helper()
	s := f.sent()
	if len(s) != 1 || s[0].Flags() != flags {
		f.t.Fatalf("sent %s, want one %v", describe(s), flags)
	}
	return s[0]
}

func (f *fx) none() {
	f.t.Helper()
	if s := f.sent(); len(s) != 0 {
		f.t.Fatalf("sent %s, want nothing", describe(s))
	}
}

func describe(s []out) string {
	r := "["
	for i, x := range s {
		if i > 0 {
			r += " "
		}
		r += x.Flags().String()
	}
	return r + "]"
}

func (f *fx) advance(d time.Duration) {
	f.clock.Advance(int64(d))
	f.h.s.Tick()
}

// listen binds a listener on ourPort.
func (f *fx) listen(backlog int) *tcp.Endpoint {
	l := f.h.s.NewTCP(100)
	if err := l.Bind(netip.AddrPortFrom(netip.AddrFrom4(ourIP), ourPort)); err != nil {
		f.t.Fatal(err)
	}
	if err := l.Listen(backlog); err != nil {
		f.t.Fatal(err)
	}
	return l
}

// established runs a passive open with the given peer SYN options and
// returns the accepted endpoint and our ISS.
func (f *fx) established(opts *tcp.Options) (*tcp.Endpoint, tcp.Seq) {
	f.t.Helper()
	l := f.listen(8)
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN, opts: opts})
	sa := f.one(tcp.FlagSYN | tcp.FlagACK)
	iss := sa.Seq()
	var ao *tcp.Options
	if opts != nil && opts.HasTS {
		ao = &tcp.Options{HasTS: true, TSVal: 2, TSEcr: sa.o.TSVal}
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, opts: ao})
	f.none()
	e, err := l.Accept(7)
	if err != nil {
		f.t.Fatal(err)
	}
	if e.State() != tcp.StateEstablished {
		f.t.Fatalf("state %v", e.State())
	}
	return e, iss
}

// push sends one buffer holding data.
func (f *fx) push(e *tcp.Endpoint, data []byte, tag uint64) {
	f.t.Helper()
	b, err := f.link.Alloc()
	if err != nil {
		f.t.Fatal(err)
	}
	b.Len = copy(b.Data[b.Off:], data)
	if err := e.Send([]nic.Buf{b}, tag); err != nil {
		f.t.Fatal(err)
	}
	f.link.Release(b.Frame)
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestSYNToClosedPortGetsRST(t *testing.T) {
	f := newFx(t, tcp.Config{})
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN})
	r := f.one(tcp.FlagRST | tcp.FlagACK)
	if r.Seq() != 0 || r.Ack() != peerISN+1 {
		t.Fatalf("RST seq %d ack %d", r.Seq(), r.Ack())
	}
}

func TestACKToClosedPortGetsRSTAtItsAck(t *testing.T) {
	f := newFx(t, tcp.Config{})
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN, ack: 5555})
	if r := f.one(tcp.FlagRST); r.Seq() != 5555 {
		t.Fatalf("RST seq %d", r.Seq())
	}
}

func TestRSTToClosedPortIsNotAnswered(t *testing.T) {
	f := newFx(t, tcp.Config{})
	f.inject(seg{flags: tcp.FlagRST, seq: peerISN})
	f.none()
}

func TestSYNACKCarriesNegotiatedOptions(t *testing.T) {
	f := newFx(t, tcp.Config{})
	f.listen(4)
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN, opts: &tcp.Options{HasMSS: true, MSS: 1400, HasWScale: true, WScale: 7, SACKPermitted: true, HasTS: true, TSVal: 77}})
	sa := f.one(tcp.FlagSYN | tcp.FlagACK)
	o := sa.o
	if sa.Ack() != peerISN+1 || !o.HasMSS || o.MSS != 1460 || !o.HasWScale || o.WScale != 5 || !o.SACKPermitted || !o.HasTS || o.TSEcr != 77 {
		t.Fatalf("SYN-ACK ack %d options %+v", sa.Ack(), o)
	}
	// Without options offered, none come back but MSS.
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN, sport: peerPort + 1})
	sa = f.one(tcp.FlagSYN | tcp.FlagACK)
	if o := sa.o; !o.HasMSS || o.HasWScale || o.SACKPermitted || o.HasTS {
		t.Fatalf("options %+v", o)
	}
}

func TestHandshakeAndDataInOrderAreDelivered(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK | tcp.FlagPSH, seq: peerISN + 1, ack: iss + 1, data: []byte("hello")})
	b, err := e.Recv()
	if err != nil || string(b.Bytes()) != "hello" {
		t.Fatalf("Recv %q %v", b.Bytes(), err)
	}
	f.link.Release(b.Frame)
	if _, err := e.Recv(); err != unix.EAGAIN {
		t.Fatalf("empty Recv: %v", err)
	}
}

func TestDelayedACKAfter40ms(t *testing.T) {
	f := newFx(t, tcp.Config{})
	_, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: []byte("x")})
	f.none()
	f.advance(39 * time.Millisecond)
	f.none()
	f.advance(time.Millisecond)
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+2 {
		t.Fatalf("ack %d", a.Ack())
	}
}

func TestSecondFullSegmentIsACKedAtOnce(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	mss := e.SndMSS()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: payload(mss)})
	f.none()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1 + tcp.Seq(mss), ack: iss + 1, data: payload(mss)})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1+tcp.Seq(2*mss) {
		t.Fatalf("ack %d", a.Ack())
	}
}

func TestOutOfWindowSegmentGetsACKAndIsDropped(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1 + 1<<30, ack: iss + 1, data: []byte("evil")})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 || a.Seq() != iss+1 {
		t.Fatalf("ack %d seq %d", a.Ack(), a.Seq())
	}
	if _, err := e.Recv(); err != unix.EAGAIN {
		t.Fatalf("Recv after bogus data: %v", err)
	}
	if c := f.h.s.TCP().Counters(); c.OutOfWindow != 1 {
		t.Fatalf("OutOfWindow %d", c.OutOfWindow)
	}
}

func TestRSTWithExactSeqResets(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, _ := f.established(nil)
	f.inject(seg{flags: tcp.FlagRST, seq: peerISN + 1})
	f.none()
	if e.State() != tcp.StateClosed || !errors.Is(e.Err(), unix.ECONNRESET) {
		t.Fatalf("state %v err %v", e.State(), e.Err())
	}
	if _, err := e.Recv(); err != unix.ECONNRESET {
		t.Fatalf("Recv: %v", err)
	}
	if !f.h.has(7, tcp.EventError) {
		t.Fatalf("events %v", f.h.events)
	}
	e.Close()
}

func TestInWindowRSTGetsChallengeACK(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagRST, seq: peerISN + 100})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 || a.Seq() != iss+1 {
		t.Fatalf("challenge ack %d seq %d", a.Ack(), a.Seq())
	}
	if e.State() != tcp.StateEstablished {
		t.Fatalf("state %v", e.State())
	}
	// An RST outside the window is dropped silently.
	f.inject(seg{flags: tcp.FlagRST, seq: peerISN + 1<<30})
	f.none()
}

func TestSYNOnEstablishedGetsChallengeACK(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, _ := f.established(nil)
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN + 5})
	f.one(tcp.FlagACK)
	if e.State() != tcp.StateEstablished {
		t.Fatalf("state %v", e.State())
	}
}

func TestChallengeACKsAreRateLimited(t *testing.T) {
	f := newFx(t, tcp.Config{ChallengeACKs: 2})
	f.established(nil)
	for i := 0; i < 5; i++ {
		f.inject(seg{flags: tcp.FlagRST, seq: peerISN + 100})
	}
	if s := f.sent(); len(s) != 2 {
		t.Fatalf("sent %d challenge ACKs, want 2", len(s))
	}
	if c := f.h.s.TCP().Counters(); c.ChallengeLimited != 3 {
		t.Fatalf("limited %d", c.ChallengeLimited)
	}
}

func TestACKForUnsentDataIsAnsweredAndDropped(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1000, data: []byte("x")})
	f.one(tcp.FlagACK)
	if _, err := e.Recv(); err != unix.EAGAIN {
		t.Fatalf("data of a bad ACK was accepted: %v", err)
	}
}

func TestThreeDupACKsTriggerFastRetransmit(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	e.SetNoDelay(true)
	mss := e.SndMSS()
	for i := 0; i < 5; i++ {
		f.push(e, payload(mss), uint64(i+1))
	}
	if s := f.sent(); len(s) != 5 {
		t.Fatalf("sent %d segments, want 5", len(s))
	}
	first := iss + 1
	// The first segment is lost: three duplicate ACKs.
	for i := 0; i < 2; i++ {
		f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: first})
		f.none()
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: first})
	r := f.sent()
	if len(r) == 0 || r[0].Seq() != first || len(r[0].payload) != mss {
		t.Fatalf("after 3 dup ACKs sent %s", describe(r))
	}
	if c := e.Counters(); c.FastRecoveries != 1 || c.Retransmits != 1 {
		t.Fatalf("counters %+v", c)
	}
	// The full ACK completes every push.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: first + tcp.Seq(5*mss)})
	for i := 1; i <= 5; i++ {
		if err, ok := f.h.done[uint64(i)]; !ok || err != nil {
			t.Fatalf("push %d: done %v %v", i, ok, err)
		}
	}
}

func TestSACKedHoleIsRetransmittedFirst(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(&tcp.Options{HasMSS: true, MSS: 1460, SACKPermitted: true})
	e.SetNoDelay(true)
	mss := tcp.Seq(e.SndMSS())
	for i := 0; i < 6; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	first := iss + 1
	// Segment 2 is lost; 3..6 arrive and are SACKed.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: first + mss})
	for i := tcp.Seq(3); i <= 5; i++ {
		o := &tcp.Options{NumSACK: 1}
		o.SACK[0] = tcp.SACKBlock{Start: first + 2*mss, End: first + i*mss}
		f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: first + mss, opts: o})
	}
	r := f.sent()
	if len(r) == 0 || r[0].Seq() != first+mss {
		t.Fatalf("sent %s, first seq %v, want the hole at %d", describe(r), r, first+mss)
	}
}

func TestRTODoubles(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.push(e, []byte("data"), 1)
	f.one(tcp.FlagACK | tcp.FlagPSH)
	// No RTT sample yet: the initial RTO is 1s, then 2s, 4s.
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		f.advance(d - time.Millisecond)
		f.none()
		f.advance(time.Millisecond)
		if r := f.one(tcp.FlagACK | tcp.FlagPSH); r.Seq() != iss+1 {
			t.Fatalf("retransmission seq %d", r.Seq())
		}
	}
}

func TestRetriesExhaustedTimesOut(t *testing.T) {
	f := newFx(t, tcp.Config{Retries: 3, RTO: tcp.RTOOptions{Max: 4 * time.Second}})
	e, _ := f.established(nil)
	f.push(e, []byte("data"), 9)
	for i := 0; i < 10 && e.State() != tcp.StateClosed; i++ {
		f.advance(5 * time.Second)
		f.sent()
	}
	if !errors.Is(e.Err(), unix.ETIMEDOUT) || !errors.Is(f.h.done[9], unix.ETIMEDOUT) {
		t.Fatalf("err %v, push %v", e.Err(), f.h.done[9])
	}
	e.Close()
}

func TestZeroWindowIsProbed(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	// The peer closes its window.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, zeroWin: true})
	f.push(e, []byte("data"), 1)
	f.none()
	f.advance(time.Second)
	if p := f.one(tcp.FlagACK); p.Seq() != iss || len(p.payload) != 0 {
		t.Fatalf("probe seq %d len %d", p.Seq(), len(p.payload))
	}
	f.advance(2 * time.Second)
	f.one(tcp.FlagACK)
	// The window opens: the data goes.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, win: 1000})
	if d := f.one(tcp.FlagACK | tcp.FlagPSH); string(d.payload) != "data" {
		t.Fatalf("payload %q", d.payload)
	}
}

func TestNagleHoldsSmallSegmentWhileDataIsInFlight(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.push(e, []byte("a"), 1)
	f.one(tcp.FlagACK | tcp.FlagPSH)
	f.push(e, []byte("b"), 2)
	f.none()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 2})
	if d := f.one(tcp.FlagACK | tcp.FlagPSH); string(d.payload) != "b" {
		t.Fatalf("payload %q", d.payload)
	}
	e.SetNoDelay(true)
	f.push(e, []byte("c"), 3)
	f.one(tcp.FlagACK | tcp.FlagPSH)
}

func TestOutOfOrderFINIsHeldUntilTheGapFills(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK | tcp.FlagFIN, seq: peerISN + 4, ack: iss + 1, data: []byte("def")})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 {
		t.Fatalf("ack %d", a.Ack())
	}
	if e.State() != tcp.StateEstablished {
		t.Fatalf("state %v", e.State())
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: []byte("abc")})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+8 {
		t.Fatalf("ack %d, want past the FIN", a.Ack())
	}
	if e.State() != tcp.StateCloseWait {
		t.Fatalf("state %v", e.State())
	}
	got := ""
	for {
		b, err := e.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got += string(b.Bytes())
		f.link.Release(b.Frame)
	}
	if got != "abcdef" {
		t.Fatalf("got %q", got)
	}
}

func TestCloseWithUnreadDataSendsRST(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: []byte("unread")})
	f.sent()
	e.Close()
	f.one(tcp.FlagRST | tcp.FlagACK)
	if f.h.s.TCP().Conns() != 0 {
		t.Fatal("connection left in the table")
	}
}

func TestActiveCloseGoesThroughTimeWait(t *testing.T) {
	f := newFx(t, tcp.Config{MSL: time.Second})
	e, iss := f.established(nil)
	e.Close()
	fin := f.one(tcp.FlagFIN | tcp.FlagACK)
	if fin.Seq() != iss+1 {
		t.Fatalf("FIN seq %d", fin.Seq())
	}
	f.inject(seg{flags: tcp.FlagACK | tcp.FlagFIN, seq: peerISN + 1, ack: iss + 2})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+2 {
		t.Fatalf("ack %d", a.Ack())
	}
	if f.h.s.TCP().Conns() != 1 {
		t.Fatal("no TIME_WAIT entry")
	}
	// A retransmitted FIN is ACKed again.
	f.inject(seg{flags: tcp.FlagACK | tcp.FlagFIN, seq: peerISN + 1, ack: iss + 2})
	f.one(tcp.FlagACK)
	f.advance(2*time.Second - time.Millisecond)
	if f.h.s.TCP().Conns() != 1 {
		t.Fatal("TIME_WAIT ended early")
	}
	f.advance(time.Millisecond)
	if f.h.s.TCP().Conns() != 0 {
		t.Fatal("TIME_WAIT did not end after 2*MSL")
	}
}

func TestPassiveCloseLastAck(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK | tcp.FlagFIN, seq: peerISN + 1, ack: iss + 1})
	f.one(tcp.FlagACK)
	if _, err := e.Recv(); err != io.EOF {
		t.Fatalf("Recv: %v", err)
	}
	if err := e.Shutdown(); err != nil {
		t.Fatal(err)
	}
	f.one(tcp.FlagFIN | tcp.FlagACK)
	if e.State() != tcp.StateLastAck {
		t.Fatalf("state %v", e.State())
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 2, ack: iss + 2})
	if e.State() != tcp.StateClosed || f.h.s.TCP().Conns() != 0 {
		t.Fatalf("state %v", e.State())
	}
}

func TestPAWSDropsOldTimestamp(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(&tcp.Options{HasTS: true, TSVal: 1})
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: []byte("new"), opts: &tcp.Options{HasTS: true, TSVal: 100}})
	f.sent()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 4, ack: iss + 1, data: []byte("old"), opts: &tcp.Options{HasTS: true, TSVal: 50}})
	f.one(tcp.FlagACK)
	if c := f.h.s.TCP().Counters(); c.PAWSDropped != 1 {
		t.Fatalf("PAWS drops %d", c.PAWSDropped)
	}
	if e.Readable() != 3 {
		t.Fatalf("readable %d", e.Readable())
	}
}

func TestSYNFloodFallsBackToCookies(t *testing.T) {
	f := newFx(t, tcp.Config{MaxSynBacklog: 4})
	l := f.listen(8)
	for i := 0; i < 4; i++ {
		f.inject(seg{flags: tcp.FlagSYN, seq: peerISN, sport: uint16(30000 + i)})
	}
	if s := f.sent(); len(s) != 4 {
		t.Fatalf("sent %d SYN-ACKs", len(s))
	}
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN, opts: &tcp.Options{HasMSS: true, MSS: 1460}})
	sa := f.one(tcp.FlagSYN | tcp.FlagACK)
	if c := f.h.s.TCP().Counters(); c.SynCookiesSent != 1 {
		t.Fatalf("cookies %d", c.SynCookiesSent)
	}
	if f.h.s.TCP().Conns() != 4 {
		t.Fatalf("a cookie SYN created state: %d conns", f.h.s.TCP().Conns())
	}
	// A forged ACK is refused; the right one completes the handshake.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: sa.Seq() + 2})
	f.one(tcp.FlagRST)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: sa.Seq() + 1, data: []byte("hi")})
	e, err := l.Accept(9)
	if err != nil {
		t.Fatal(err)
	}
	if e.RemoteAddr().Port() != peerPort || e.SndMSS() != 1460 {
		t.Fatalf("peer %v mss %d", e.RemoteAddr(), e.SndMSS())
	}
	if b, err := e.Recv(); err != nil || string(b.Bytes()) != "hi" {
		t.Fatalf("Recv %v", err)
	} else {
		f.link.Release(b.Frame)
	}
}

func TestSynRcvdIsDroppedAfterSynAckRetries(t *testing.T) {
	f := newFx(t, tcp.Config{SynAckRetries: 2})
	f.listen(4)
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN})
	f.one(tcp.FlagSYN | tcp.FlagACK)
	f.advance(time.Second)
	f.one(tcp.FlagSYN | tcp.FlagACK)
	f.advance(2 * time.Second)
	f.one(tcp.FlagSYN | tcp.FlagACK)
	f.advance(4 * time.Second)
	f.none()
	if f.h.s.TCP().Conns() != 0 {
		t.Fatal("half-open connection kept")
	}
}

func TestConnectRefusedByRST(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e := f.h.s.NewTCP(5)
	if err := e.Connect(netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)); err != nil {
		t.Fatal(err)
	}
	syn := f.one(tcp.FlagSYN)
	if !syn.o.HasMSS || !syn.o.HasWScale || !syn.o.SACKPermitted || !syn.o.HasTS {
		t.Fatalf("SYN options %+v", syn.o)
	}
	f.inject(seg{flags: tcp.FlagRST | tcp.FlagACK, seq: 0, ack: syn.Seq() + 1, sport: 9, dport: syn.SrcPort()})
	if !errors.Is(e.Err(), unix.ECONNREFUSED) || !f.h.has(5, tcp.EventError) {
		t.Fatalf("err %v events %v", e.Err(), f.h.events)
	}
	if err := e.Connect(netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)); err != unix.EINVAL {
		t.Fatalf("Connect after failure: %v", err)
	}
	e.Close()
}

func TestConnectActiveOpen(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e := f.h.s.NewTCP(5)
	if err := e.Connect(netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)); err != nil {
		t.Fatal(err)
	}
	syn := f.one(tcp.FlagSYN)
	if err := e.Connect(netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)); err != unix.EALREADY {
		t.Fatalf("second Connect: %v", err)
	}
	f.inject(seg{flags: tcp.FlagSYN | tcp.FlagACK, seq: peerISN, ack: syn.Seq() + 1, sport: 9, dport: syn.SrcPort(),
		opts: &tcp.Options{HasMSS: true, MSS: 1000}})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 {
		t.Fatalf("ack %d", a.Ack())
	}
	if e.State() != tcp.StateEstablished || !f.h.has(5, tcp.EventEstablished) || e.SndMSS() != 1000 {
		t.Fatalf("state %v mss %d", e.State(), e.SndMSS())
	}
	if err := e.Connect(netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)); err != unix.EISCONN {
		t.Fatalf("Connect when connected: %v", err)
	}
}

func TestSYNRetriesExhaustedRefuse(t *testing.T) {
	f := newFx(t, tcp.Config{SynRetries: 2})
	e := f.h.s.NewTCP(5)
	if err := e.Connect(netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		f.one(tcp.FlagSYN)
		f.advance(time.Second << i)
	}
	f.none()
	if !errors.Is(e.Err(), unix.ECONNREFUSED) {
		t.Fatalf("err %v", e.Err())
	}
	e.Close()
}

func TestSendSplitsAtMSSCopyingTheExcess(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, _ := f.established(&tcp.Options{HasMSS: true, MSS: 500})
	e.SetNoDelay(true)
	f.push(e, payload(1200), 1)
	s := f.sent()
	if len(s) != 3 || len(s[0].payload) != 500 || len(s[1].payload) != 500 || len(s[2].payload) != 200 {
		t.Fatalf("segments %s", describe(s))
	}
	if c := f.h.s.TCP().Counters(); c.SendCopies != 700 {
		t.Fatalf("copied %d bytes, want 700", c.SendCopies)
	}
}

func TestSendErrors(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e := f.h.s.NewTCP(1)
	b, _ := f.link.Alloc()
	b.Len = 1
	defer f.link.Release(b.Frame)
	if err := e.Send([]nic.Buf{b}, 1); err != unix.ENOTCONN {
		t.Fatalf("Send unconnected: %v", err)
	}
	c, _ := f.established(nil)
	if err := c.Send(nil, 1); err != unix.EINVAL {
		t.Fatalf("Send nothing: %v", err)
	}
	short := b
	short.Off = 10
	if err := c.Send([]nic.Buf{short}, 1); err != unix.EINVAL {
		t.Fatalf("Send without headroom: %v", err)
	}
	c.Shutdown()
	if err := c.Send([]nic.Buf{b}, 1); err != unix.EPIPE {
		t.Fatalf("Send after Shutdown: %v", err)
	}
}

func TestBindAndListenErrors(t *testing.T) {
	f := newFx(t, tcp.Config{})
	a := f.h.s.NewTCP(1)
	if err := a.Listen(1); err != unix.EDESTADDRREQ {
		t.Fatalf("Listen unbound: %v", err)
	}
	if err := a.Bind(netip.MustParseAddrPort("198.51.100.1:80")); err != nil {
		t.Fatal(err)
	}
	b := f.h.s.NewTCP(2)
	if err := b.Bind(netip.MustParseAddrPort("0.0.0.0:80")); err != unix.EADDRINUSE {
		t.Fatalf("Bind taken port: %v", err)
	}
	if err := b.Bind(netip.MustParseAddrPort("203.0.113.9:81")); err != unix.EINVAL {
		t.Fatalf("Bind foreign address: %v", err)
	}
	if _, err := a.Accept(1); err != unix.EINVAL {
		t.Fatalf("Accept not listening: %v", err)
	}
	a.Listen(1)
	if _, err := a.Accept(1); err != unix.EAGAIN {
		t.Fatalf("Accept empty: %v", err)
	}
	if err := a.Connect(netip.MustParseAddrPort("198.51.100.2:1")); err != unix.EINVAL {
		t.Fatalf("Connect listening: %v", err)
	}
	a.Close()
	if err := b.Bind(netip.MustParseAddrPort("0.0.0.0:80")); err != nil {
		t.Fatalf("port not freed by Close: %v", err)
	}
}

func TestKeepAliveProbesThenTimesOut(t *testing.T) {
	f := newFx(t, tcp.Config{KeepIdle: 10 * time.Second, KeepInterval: time.Second, KeepCount: 2})
	e, iss := f.established(nil)
	e.SetKeepAlive(true)
	f.advance(10 * time.Second)
	if p := f.one(tcp.FlagACK); p.Seq() != iss {
		t.Fatalf("probe seq %d", p.Seq())
	}
	f.advance(time.Second)
	f.one(tcp.FlagACK)
	f.advance(time.Second)
	if !errors.Is(e.Err(), unix.ETIMEDOUT) {
		t.Fatalf("err %v", e.Err())
	}
	e.Close()
}

func TestWindowShrinksAsDataQueuesAndReopensOnRecv(t *testing.T) {
	f := newFx(t, tcp.Config{RcvBuf: 4000})
	e, iss := f.established(nil)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: payload(1000)})
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1001, ack: iss + 1, data: payload(1000)})
	a := f.one(tcp.FlagACK)
	if a.Window() > 2000 {
		t.Fatalf("window %d with 2000 of 4000 bytes queued", a.Window())
	}
	for i := 0; i < 2; i++ {
		b, err := e.Recv()
		if err != nil {
			t.Fatal(err)
		}
		f.link.Release(b.Frame)
	}
	if u := f.one(tcp.FlagACK); u.Window() != 4000 {
		t.Fatalf("window update %d", u.Window())
	}
}

func TestLostRetransmissionIsDetectedBySACK(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(&tcp.Options{HasMSS: true, MSS: 1460, SACKPermitted: true})
	e.SetNoDelay(true)
	mss := tcp.Seq(e.SndMSS())
	for i := 0; i < 6; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	first := iss + 1
	sack := func(end tcp.Seq) {
		o := &tcp.Options{NumSACK: 1}
		o.SACK[0] = tcp.SACKBlock{Start: first + mss, End: end}
		f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: first, opts: o})
	}
	// Segment 1 is lost; 2..4 are SACKed: fast retransmit.
	for i := tcp.Seq(2); i <= 4; i++ {
		sack(first + i*mss)
	}
	r := f.sent()
	if len(r) == 0 || r[0].Seq() != first {
		t.Fatalf("no fast retransmit: %s", describe(r))
	}
	// More data goes out after the retransmission...
	f.advance(5 * time.Millisecond)
	f.push(e, payload(int(mss)), 0)
	f.sent()
	// ...and is SACKed while segment 1 is still missing: its
	// retransmission was lost too, and it is sent again at once.
	f.advance(5 * time.Millisecond)
	sack(first + 7*mss)
	r = f.sent()
	if len(r) == 0 || r[0].Seq() != first {
		t.Fatalf("lost retransmission not resent: %s seq %d first %d", describe(r), r[0].Seq(), first)
	}
	if c := e.Counters(); c.RTOs != 0 || c.Retransmits < 2 {
		t.Fatalf("counters %+v", c)
	}
}

func TestFullSendBufferGivesEAGAINThenWritable(t *testing.T) {
	f := newFx(t, tcp.Config{SndBuf: 3000})
	e, iss := f.established(nil)
	e.SetNoDelay(true)
	f.push(e, payload(1000), 1)
	f.push(e, payload(1000), 2)
	f.push(e, payload(1000), 3)
	b, _ := f.link.Alloc()
	b.Len = 1000
	if err := e.Send([]nic.Buf{b}, 4); err != unix.EAGAIN {
		t.Fatalf("Send over SndBuf: %v", err)
	}
	f.link.Release(b.Frame)
	f.sent()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 2001})
	if !f.h.has(7, tcp.EventWritable) {
		t.Fatalf("no EventWritable: %v", f.h.events)
	}
	if err := f.h.done[2]; err != nil || len(f.h.done) != 2 {
		t.Fatalf("done %v", f.h.done)
	}
}

// Under frame scarcity a connection that already holds the floor's worth
// of frames keeps no more received payload: data is dropped (and the peer
// will resend it), the out-of-order queue is pruned so its frames come
// back, but the ACK a segment carries is still taken.
func TestScarceFramesDropPayloadAndPruneOutOfOrder(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	// Queue four out-of-order pieces (four frames, the floor) while
	// frames are plentiful.
	for i := 0; i < 4; i++ {
		f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 4 + tcp.Seq(4*i), ack: iss + 1, data: []byte("def")})
		f.one(tcp.FlagACK)
	}
	if _, rcv, _, _ := e.Held(); rcv != 4 {
		t.Fatalf("holding %d receive frames, want 4", rcv)
	}
	held := f.link.Free()
	// Our data in flight, for the peer to acknowledge.
	b, _ := f.link.Alloc()
	b.Len = copy(b.Data[b.Off:], "xyz")
	if err := e.Send([]nic.Buf{b}, 7); err != nil {
		t.Fatal(err)
	}
	f.link.Release(b.Frame)
	f.link.Complete()
	// Now the link runs short: the gap-filler arrives, acking our data.
	f.link.ScarceBelow = f.link.Free() + 1
	before := f.h.s.TCP().Counters()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 4, data: []byte("abc")})
	after := f.h.s.TCP().Counters()
	if after.RcvPressureDrops != before.RcvPressureDrops+1 || after.OOOPruned != before.OOOPruned+1 {
		t.Fatalf("pressure drops %d -> %d, pruned %d -> %d", before.RcvPressureDrops, after.RcvPressureDrops, before.OOOPruned, after.OOOPruned)
	}
	if e.Readable() != 0 {
		t.Fatalf("%d bytes queued while scarce", e.Readable())
	}
	if _, rcv, _, _ := e.Held(); rcv != 0 {
		t.Fatalf("still holding %d receive frames after the prune", rcv)
	}
	if err, ok := f.h.done[7]; !ok || err != nil {
		t.Fatalf("the ACK in the dropped segment was not processed: push done %v, %v", ok, err)
	}
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 {
		t.Fatalf("ack %d: the dropped data must not be acknowledged", a.Ack())
	}
	if f.link.Free() < held+4 {
		t.Fatalf("pruning gave back %d frames, want 4", f.link.Free()-held)
	}
	// Pressure gone: the resent data is taken.
	f.link.ScarceBelow = 0
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 4, data: []byte("abcdef")})
	f.advance(50 * time.Millisecond) // the delayed ACK
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+7 {
		t.Fatalf("ack %d after the resend", a.Ack())
	}
	got := ""
	for e.Readable() > 0 {
		b, _ := e.Recv()
		got += string(b.Bytes())
		f.link.Release(b.Frame)
	}
	if got != "abcdef" {
		t.Fatalf("got %q", got)
	}
}

// Under frame scarcity the connection at the head of the line is not
// starved: its next in-order segment is taken while it holds less than the
// floor, and only what goes beyond that, or arrives out of order, is
// dropped.
func TestScarceFramesStillTakeTheHeadOfTheLine(t *testing.T) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(nil)
	f.link.ScarceBelow = f.link.Free() + 1000
	before := f.h.s.TCP().Counters()
	// Out of order: dropped.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 100, ack: iss + 1, data: []byte("later")})
	f.one(tcp.FlagACK)
	if c := f.h.s.TCP().Counters(); c.RcvPressureDrops != before.RcvPressureDrops+1 {
		t.Fatalf("an out-of-order segment was kept under scarcity")
	}
	// In order, holding nothing: taken, up to the floor.
	seq := peerISN + 1
	for i := 0; i < 6; i++ {
		f.inject(seg{flags: tcp.FlagACK, seq: seq, ack: iss + 1, data: []byte("0123456789")})
		if _, rcv, _, _ := e.Held(); rcv <= 4 && i < 4 {
			seq += 10
		}
	}
	if got := e.Readable(); got != 40 {
		t.Fatalf("%d bytes taken under scarcity, want 40 (the floor's four segments)", got)
	}
	if c := f.h.s.TCP().Counters(); c.RcvPressureDrops != before.RcvPressureDrops+3 {
		t.Fatalf("pressure drops %d, want 3 (one out of order, two beyond the floor)", c.RcvPressureDrops-before.RcvPressureDrops)
	}
}

// NewReno (RFC 6582) on a connection without SACK: after a fast
// retransmit, a partial ACK (one that covers the retransmitted segment but
// not everything sent before recovery) retransmits the next hole at once,
// without waiting for more duplicate ACKs or the RTO.
func TestNewRenoPartialACKRetransmitsNextHole(t *testing.T) {
	f := newFx(t, tcp.Config{CC: tcp.CCNewReno})
	e, iss := f.established(nil) // no SACK-permitted: NewReno recovery
	e.SetNoDelay(true)
	mss := e.SndMSS()
	for i := 0; i < 6; i++ {
		f.push(e, payload(mss), uint64(i+1))
	}
	if s := f.sent(); len(s) != 6 {
		t.Fatalf("sent %d segments, want 6", len(s))
	}
	first := iss + 1
	at := func(i int) tcp.Seq { return first + tcp.Seq(i*mss) }
	// Segments 0 and 2 are lost: the peer keeps acking segment 0.
	for i := 0; i < 3; i++ {
		f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: at(0)})
	}
	if r := f.sent(); len(r) == 0 || r[0].Seq() != at(0) {
		t.Fatalf("fast retransmit: sent %s", describe(r))
	}
	// The retransmission fills the first hole: the ACK stops at the second.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: at(2)})
	r := f.sent()
	if len(r) == 0 || r[0].Seq() != at(2) || len(r[0].payload) != mss {
		t.Fatalf("partial ACK: sent %s, want segment 2 again", describe(r))
	}
	if c := e.Counters(); c.FastRecoveries != 1 || c.RTOs != 0 {
		t.Fatalf("counters %+v: one recovery, no RTO expected", c)
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: at(6)})
	for i := 1; i <= 6; i++ {
		if err, ok := f.h.done[uint64(i)]; !ok || err != nil {
			t.Fatalf("push %d: done %v %v", i, ok, err)
		}
	}
}

func TestKeepAlivePeriodOverridesConfig(t *testing.T) {
	f := newFx(t, tcp.Config{KeepIdle: time.Hour, KeepInterval: time.Hour, KeepCount: 2})
	e, iss := f.established(nil)
	e.SetKeepAlive(true)
	e.SetKeepAlivePeriod(3 * time.Second)
	if !e.KeepAlive() {
		t.Fatal("KeepAlive false after SetKeepAlive(true)")
	}
	f.advance(3 * time.Second)
	if p := f.one(tcp.FlagACK); p.Seq() != iss {
		t.Fatalf("probe seq %d, want %d", p.Seq(), iss)
	}
	f.advance(3 * time.Second)
	f.one(tcp.FlagACK)
	f.advance(3 * time.Second)
	if !errors.Is(e.Err(), unix.ETIMEDOUT) {
		t.Fatalf("err %v after two unanswered probes", e.Err())
	}
	e.Close()
}

// A sender that fills the whole default window (1 MiB) after losing its
// first segment has every out-of-order segment kept: the out-of-order
// queue holds as many pieces as the window holds segments, not a fixed
// 256, and the segment that fills the gap delivers them all. The pieces
// are counted for segments shorter than the MSS by 40 bytes of options
// too: a peer that sends data while it holds ours out of order puts up to
// three SACK blocks beside its timestamps (TestTCPUnderLoss dropped 20 of
// 83,000 when the room was counted in MSS-12 segments).
func TestFullWindowOfOutOfOrderSegmentsIsKept(t *testing.T) {
	const mss = 1460
	for _, size := range []int{mss, mss - 12, mss - tcp.MaxOptionsLen} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFxOn(t, tcp.Config{}, memlink.New(1024, 2048, 256))
			e, iss := f.established(&tcp.Options{HasMSS: true, MSS: mss, HasWScale: true, WScale: 7})
			n := 1<<20/size - 2 // the default RcvBuf, less what the window scale rounds off
			if n <= tcp.ReasmCapacity {
				t.Fatalf("%d segments in the window: the test needs more than %d", n, tcp.ReasmCapacity)
			}
			data := payload((n + 1) * size)
			for i := 1; i <= n; i++ {
				f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1 + tcp.Seq(i*size), ack: iss + 1, data: data[i*size : (i+1)*size]})
				f.sent() // the duplicate ACK
			}
			if c := f.h.s.TCP().Counters(); c.OOODropped != 0 || c.OOOQueued != uint64(n) {
				t.Fatalf("out-of-order: queued %d, dropped %d; want %d queued, none dropped", c.OOOQueued, c.OOODropped, n)
			}
			f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: data[:size]})
			acks := f.sent()
			if len(acks) == 0 || acks[len(acks)-1].Ack() != peerISN+1+tcp.Seq(len(data)) {
				t.Fatalf("after the gap filled: %s, want an ACK of all %d bytes; %+v", describe(acks), len(data), f.h.s.TCP().Counters())
			}
			var got []byte
			for {
				b, err := e.Recv()
				if err != nil {
					break
				}
				got = append(got, b.Bytes()...)
				f.link.Release(b.Frame)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("received %d bytes, not the %d sent", len(got), len(data))
			}
		})
	}
}

// A peer that filled our window and lost the first of those segments sends
// its next ACK with SEG.SEQ at the right edge of our window (its SND.NXT).
// That ACK is taken, as Linux and the BSDs take it: refusing it (RFC 9293's
// acceptability table) would ignore every acknowledgement of our data while
// the hole lasts, and both ends would sit out a retransmission timeout.
func TestACKAtTheRightEdgeOfTheWindowIsTaken(t *testing.T) {
	f := newFx(t, tcp.Config{RcvBuf: 1400})
	e, iss := f.established(&tcp.Options{HasMSS: true, MSS: 1460})
	wnd := e.Info().RcvWnd
	if wnd <= 100 || wnd > 1400 {
		t.Fatalf("window %d", wnd)
	}
	f.push(e, []byte("hello"), 1)
	if d := f.one(tcp.FlagACK | tcp.FlagPSH); string(d.payload) != "hello" {
		t.Fatalf("sent %q", d.payload)
	}
	// The peer's data fills the window; its first 100 bytes are lost.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1 + 100, ack: iss + 1, data: payload(int(wnd) - 100)})
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 {
		t.Fatalf("dup ack %d", a.Ack())
	}
	// Its ACK of our data, at its SND.NXT: the right edge of our window.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1 + tcp.Seq(wnd), ack: iss + 6})
	if _, ok := f.h.done[1]; !ok || e.Info().InFlight != 0 {
		t.Fatalf("ACK at the right edge ignored: done %v, in flight %d", f.h.done, e.Info().InFlight)
	}
	// One byte beyond the edge is still refused (answered with an ACK).
	f.push(e, []byte("again"), 2)
	f.sent()
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 2 + tcp.Seq(wnd), ack: iss + 11})
	if _, ok := f.h.done[2]; ok {
		t.Fatal("an ACK beyond the right edge was taken")
	}
	if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 {
		t.Fatalf("answer to the out-of-window ACK: ack %d", a.Ack())
	}
}

// A link MTU of 80 leaves an MSS of 40, all of it taken by options in the
// worst case: the out-of-order room must not divide by that zero when a
// connection opens (it did, and panicked, for one commit).
func TestTinyMTUOpensAConnection(t *testing.T) {
	for _, mtu := range []int{79, 80, 81} {
		t.Run(fmt.Sprint(mtu), func(t *testing.T) {
			link := memlink.New(64, 2048, 256)
			link.LinkMTU = mtu
			f := newFxOn(t, tcp.Config{}, link)
			if e, _ := f.established(&tcp.Options{HasMSS: true, MSS: 536}); e == nil {
				t.Fatal("no connection")
			}
		})
	}
}
