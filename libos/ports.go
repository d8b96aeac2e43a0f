package libos

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"

	"github.com/demixdp/demixdp/rss"
	"golang.org/x/sys/unix"
)

// portTable says, for every local port of one protocol, which queues of a
// group hold it (bit i: queue index i). The loops read it per received
// frame with one atomic load (handoff.go) and change it only when a port
// is bound or released, never per packet.
type portTable [1 << 16]atomic.Uint64

func (g *group) table(proto uint8) *portTable {
	if proto == unix.IPPROTO_TCP {
		return g.tcp
	}
	return g.udp
}

// bindPort records that queue qi holds (proto, port). In Shared mode the
// first holder of the group also adds the port to the steering program.
func (g *group) bindPort(proto uint8, port uint16, qi int) error {
	t := g.table(proto)
	if !g.shared {
		t[port].Or(1 << uint(qi))
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := keyOf(proto, port)
	if !g.steered[k] {
		if err := g.steer.AddPort(proto, port); err != nil {
			return err
		}
		g.steered[k] = true
	}
	t[port].Or(1 << uint(qi))
	return nil
}

// unbindPort undoes bindPort (or reserveEphemeral); the last holder of a
// port in Shared mode removes it from the steering program.
func (g *group) unbindPort(proto uint8, port uint16, qi int) {
	t := g.table(proto)
	if !g.shared {
		t[port].And(^uint64(1 << uint(qi)))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := keyOf(proto, port)
	if t[port].And(^uint64(1<<uint(qi)))&^(1<<uint(qi)) == 0 && g.steered[k] {
		_ = g.steer.RemovePort(proto, port)
		delete(g.steered, k)
	}
}

// claimPort is register's first reference to a port: the steering
// program's port map in Shared mode, the group's port table in a group.
func (l *LibOS) claimPort(proto uint8, port uint16) error {
	if l.grp != nil {
		return l.grp.bindPort(proto, port, l.qi)
	}
	return l.steer.AddPort(proto, port)
}

// unclaimPort undoes claimPort when release drops the last reference.
func (l *LibOS) unclaimPort(proto uint8, port uint16) {
	if l.grp != nil {
		l.grp.unbindPort(proto, port, l.qi)
		return
	}
	_ = l.steer.RemovePort(proto, port)
}

// ephemeralCursor is where a queue's next search for a free ephemeral
// port starts, per protocol.
type ephemeralCursor struct{ tcp, udp uint16 }

// reserveEphemeral finds a port of the ephemeral range that no queue of
// the group holds and takes it for queue l.qi alone (compare-and-swap on
// the port table, so two queues never take the same port). With the NIC's
// RSS configuration and a known remote, it takes only ports whose replies
// from remote the NIC delivers to this queue. It returns 0 when none is
// free.
func (l *LibOS) reserveEphemeral(proto uint8, remote netip.AddrPort) uint16 {
	g := l.grp
	t := g.table(proto)
	first, last := l.cfg.EphemeralFirst, l.cfg.EphemeralLast
	cur := &l.eph.udp
	ch := g.udpRSS
	if proto == unix.IPPROTO_TCP {
		cur, ch = &l.eph.tcp, g.tcpRSS
	}
	if *cur < first || *cur > last {
		*cur = first + uint16(rand.IntN(int(last-first)+1))
	}
	bit := uint64(1) << uint(l.qi)
	take := func(p uint16) bool { return t[p].Load() == 0 && t[p].CompareAndSwap(0, bit) }
	var port uint16
	if ch != nil && remote.IsValid() {
		port = ch.Find(remote, uint32(l.cfg.Queue), first, last, *cur, take)
		if port != 0 {
			l.ctr.Handoffs.RSSPorts++
		}
	}
	if port == 0 {
		p := *cur
		for range int(last-first) + 1 {
			if take(p) {
				port = p
				break
			}
			if p == last {
				p = first
			} else {
				p++
			}
		}
	}
	if port != 0 {
		if *cur = port + 1; port == last {
			*cur = first
		}
	}
	return port
}

// bindEphemeral binds queue q, which is not bound, to the libOS's address
// and a port reserved for this queue (reserveEphemeral), as the stack
// would bind it to an ephemeral port of its own; a group cannot let each
// queue's stack choose, since they share the address. remote, if valid,
// is the peer the port is for. Errors: those of Bind, EADDRNOTAVAIL when
// no port is free.
func (l *LibOS) bindEphemeral(q *queue, remote netip.AddrPort) error {
	proto := uint8(unix.IPPROTO_UDP)
	if q.stream {
		proto = unix.IPPROTO_TCP
	}
	port := l.reserveEphemeral(proto, remote)
	if port == 0 {
		return unix.EADDRNOTAVAIL
	}
	a := netip.AddrPortFrom(l.cfg.Addr.Addr(), port)
	var err error
	if q.stream {
		err = q.tcp.Bind(a)
	} else {
		err = q.udp.Bind(a)
	}
	if err == nil {
		err = l.register(q)
	}
	if err != nil && q.steered == 0 {
		l.grp.unbindPort(proto, port, l.qi)
	}
	return err
}

// unboundInGroup reports whether q is a queue of a group that has no local
// port yet: one the stack would give an ephemeral port of its own choice.
func (l *LibOS) unboundInGroup(q *queue) bool {
	if l.grp == nil || q.steered != 0 {
		return false
	}
	return !q.localAddr().IsValid()
}

// newChoosers makes the RSS port choosers for a group: nil where cfg
// cannot predict the queue of a reply (then replies that arrive elsewhere
// are handed off).
func newChoosers(cfg *rss.Config, local netip.Addr) (tcp, udp *rss.Chooser) {
	if cfg == nil || cfg.Validate() != nil {
		return nil, nil
	}
	tcp, _ = rss.NewChooser(*cfg, local, true)
	udp, _ = rss.NewChooser(*cfg, local, false)
	return tcp, udp
}

// validRemote reports whether a is an address a connection or datagram
// can go to; the stack refuses the others with its own error, which the
// caller should see rather than an ephemeral port taken for nothing.
func validRemote(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	return ip.Is4() && !ip.IsUnspecified() && a.Port() != 0
}
