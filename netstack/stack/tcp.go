package stack

import (
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
)

// TCPNotifier is implemented by a Notifier that wants TCP events. If the
// stack's Notifier does not implement it, TCP events other than
// EventReadable (reported through Notifier.Readable) are not reported;
// push completions always go through Notifier.Done.
type TCPNotifier interface {
	// TCPEvent reports ev on the TCP endpoint with the given cookie
	// (see tcp.Event for what each event means and when err is set).
	TCPEvent(cookie uint64, ev tcp.Event, err error)
}

// tcpGlue implements tcp.Network and tcp.Notifier over the stack.
type tcpGlue struct {
	s  *Stack
	tn TCPNotifier
}

func (g *tcpGlue) Output(b *nic.Buf, dst [4]byte) error {
	return g.s.outputIPv4(b, ipv4.ProtoTCP, dst, 0)
}
func (g *tcpGlue) Link() nic.Link             { return g.s.link }
func (g *tcpGlue) Now() int64                 { return g.s.clock.Now() }
func (g *tcpGlue) LocalAddr() [4]byte         { return g.s.addr }
func (g *tcpGlue) MTU() int                   { return g.s.mtu }
func (g *tcpGlue) Done(tag uint64, err error) { g.s.note.Done(tag, err) }
func (g *tcpGlue) Event(cookie uint64, ev tcp.Event, err error) {
	if g.tn != nil {
		g.tn.TCPEvent(cookie, ev, err)
	} else if ev == tcp.EventReadable {
		g.s.note.Readable(cookie)
	}
}

func (s *Stack) initTCP(cfg tcp.Config) {
	g := &tcpGlue{s: s}
	g.tn, _ = s.note.(TCPNotifier)
	if cfg.EphemeralFirst == 0 {
		cfg.EphemeralFirst, cfg.EphemeralLast = s.cfg.EphemeralFirst, s.cfg.EphemeralLast
	}
	cfg.TxChecksumOffload = s.cfg.TxChecksumOffload
	s.tcp = tcp.New(g, g, cfg)
}

// TCP returns the stack's TCP engine (counters, connection count).
func (s *Stack) TCP() *tcp.Proto { return s.tcp }

// NewTCP returns a closed, unbound TCP endpoint whose events carry cookie.
// Segments built for it leave through this stack.
func (s *Stack) NewTCP(cookie uint64) *tcp.Endpoint { return s.tcp.NewEndpoint(cookie) }

// inputTCP hands a TCP segment to the engine; it returns true if the
// engine kept the frame reference.
func (s *Stack) inputTCP(b *nic.Buf, ip ipv4.Header) bool {
	seg := *b
	seg.Off += ethernet.HeaderLen + ip.HeaderLen()
	seg.Len = len(ip.Payload())
	return s.tcp.Input(seg, ip.Src(), ip.Dst())
}
