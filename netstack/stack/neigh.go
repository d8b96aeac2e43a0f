package stack

import (
	"net/netip"

	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

func addrFrom4(a [4]byte) netip.Addr { return netip.AddrFrom4(a) }

type neighState uint8

const (
	neighIncomplete neighState = iota + 1 // resolution in progress
	neighReachable                        // mac is valid until expires
)

type neighEntry struct {
	ip         [4]byte
	mac        ethernet.Addr
	state      neighState
	expires    int64 // reachable: end of validity
	nextRetry  int64 // incomplete: time of the next request (or table read)
	deadline   int64 // incomplete: give up at this time
	nextARP    int64 // incomplete, Shared mode: our own fallback request
	refreshing bool  // reachable: a refresh request is out
}

// pendingDgram is an IPv4 packet (b.Off at the IPv4 header) waiting for its
// next hop to resolve. The stack holds a reference on its frame.
type pendingDgram struct {
	b   nic.Buf
	hop [4]byte
	tag uint64
}

// neighTable is the ARP cache and resolver. Entries are created only when a
// new neighbour appears (not per packet); the pending queue and the list of
// resolutions in progress are bounded.
type neighTable struct {
	last       *neighEntry // the entry lookup returned last (see lookup)
	lastUntil  int64       // lookup trusts last without a clock read until tick sees this time
	s          *Stack
	cfg        *ARPConfig
	entries    map[[4]byte]*neighEntry
	incomplete []*neighEntry
	pending    []pendingDgram
}

func (t *neighTable) init(s *Stack, cfg *ARPConfig) {
	t.s, t.cfg = s, cfg
	t.entries = make(map[[4]byte]*neighEntry)
	t.incomplete = make([]*neighEntry, 0, cfg.MaxPending)
	t.pending = make([]pendingDgram, 0, cfg.MaxPending)
}

// lookup returns the link address of hop if it is known and fresh. Shortly
// before an entry expires it sends one refresh request so that a busy flow
// never stalls on re-resolution.
//
// Traffic mostly goes to one next hop (the peer, or the gateway): lookup
// remembers the entry it returned last and answers for it with neither the
// map nor a clock read (a read costs about as much as the rest of a
// datagram's output). Its age is checked by the stack's timer instead:
// tick forgets last once the entry reaches its refresh window (lastUntil,
// part of NextDeadline), and the next lookup takes the full path, which
// reads the clock, refreshes or expires the entry. A driver that does not
// tick while it sends may use the entry past its refresh time until it
// does, as Linux sends through a stale entry while it re-validates it.
func (t *neighTable) lookup(hop [4]byte) (ethernet.Addr, bool) {
	if e := t.last; e != nil && e.ip == hop {
		return e.mac, true
	}
	now := t.s.clock.Now()
	e := t.entries[hop]
	if e != nil && e.state == neighReachable {
		if now < e.expires {
			if !e.refreshing && e.expires-now < t.window() {
				e.refreshing = true
				t.refresh(e)
			}
			t.remember(e)
			return e.mac, true
		}
		// Expired: forget it and resolve again.
		t.forget(hop)
	}
	if t.s.cfg.Mode == Shared && t.s.cfg.Neighbors != nil {
		if mac, ok := t.s.cfg.Neighbors.Lookup(hop); ok {
			t.insert(hop, mac)
			return mac, true
		}
	}
	return ethernet.Addr{}, false
}

// window is how long before an entry expires lookup sends its refresh
// request.
func (t *neighTable) window() int64 { return int64(t.cfg.RetryInterval) * int64(t.cfg.Retries) }

// remember makes the reachable e lookup's last entry, trusted until its
// refresh window begins, or, with a refresh out, until it expires.
func (t *neighTable) remember(e *neighEntry) {
	t.last, t.lastUntil = e, e.expires
	if !e.refreshing {
		t.lastUntil -= t.window()
	}
}

// refresh re-validates a reachable entry before it expires.
func (t *neighTable) refresh(e *neighEntry) {
	if t.s.cfg.Mode == Shared && t.s.cfg.Neighbors != nil {
		// The kernel's table is the authority: re-read it on expiry.
		e.refreshing = false
		if mac, ok := t.s.cfg.Neighbors.Lookup(e.ip); ok {
			e.mac = mac
			e.expires = t.s.clock.Now() + int64(t.cfg.CacheTTL)
		}
		return
	}
	t.sendRequest(e.ip, e.mac)
}

// forget removes ip's entry.
func (t *neighTable) forget(ip [4]byte) {
	if t.last != nil && t.last.ip == ip {
		t.last = nil
	}
	delete(t.entries, ip)
}

func (t *neighTable) insert(ip [4]byte, mac ethernet.Addr) *neighEntry {
	e := t.entries[ip]
	if e == nil {
		if len(t.entries) >= t.cfg.MaxEntries {
			return nil
		}
		e = &neighEntry{ip: ip}
		t.entries[ip] = e
	}
	e.mac, e.state, e.refreshing = mac, neighReachable, false
	e.expires = t.s.clock.Now() + int64(t.cfg.CacheTTL)
	if e == t.last {
		t.remember(e) // its new MAC and lifetime
	}
	t.s.ctr.ARPResolved++
	return e
}

// learn records an ARP sender. Known neighbours are refreshed; a new one is
// created only if create is set (it asked for us: RFC 826).
func (t *neighTable) learn(ip [4]byte, mac ethernet.Addr, create bool) {
	if ip == ([4]byte{}) || mac == ethernet.Broadcast || mac.IsMulticast() {
		return
	}
	e := t.entries[ip]
	if e == nil && !create {
		return
	}
	wasIncomplete := e != nil && e.state == neighIncomplete
	t.insert(ip, mac)
	if wasIncomplete {
		t.resolved(ip, mac)
	}
}

// resolved sends every datagram that waited for ip.
func (t *neighTable) resolved(ip [4]byte, mac ethernet.Addr) {
	t.dropIncomplete(ip)
	kept := t.pending[:0]
	for i := range t.pending {
		p := t.pending[i]
		if p.hop != ip {
			kept = append(kept, p)
			continue
		}
		if err := t.s.transmitIP(&p.b, mac, p.tag); err != nil && p.tag != 0 {
			t.s.note.Done(p.tag, unix.ENOBUFS)
		}
		t.s.link.Release(p.b.Frame)
	}
	clear(t.pending[len(kept):])
	t.pending = kept
}

func (t *neighTable) dropIncomplete(ip [4]byte) {
	for i, e := range t.incomplete {
		if e.ip == ip {
			last := len(t.incomplete) - 1
			t.incomplete[i] = t.incomplete[last]
			t.incomplete[last] = nil
			t.incomplete = t.incomplete[:last]
			return
		}
	}
}

// hold queues an IPv4 packet until hop resolves, starting the resolution.
func (t *neighTable) hold(b *nic.Buf, hop [4]byte, tag uint64) error {
	if len(t.pending) == cap(t.pending) {
		t.s.ctr.ARPPendingFull++
		return unix.EAGAIN
	}
	e := t.entries[hop]
	if e == nil || e.state != neighIncomplete {
		if len(t.incomplete) == cap(t.incomplete) || (e == nil && len(t.entries) >= t.cfg.MaxEntries) {
			t.s.ctr.ARPPendingFull++
			return unix.EAGAIN
		}
		if e == nil {
			e = &neighEntry{ip: hop}
			t.entries[hop] = e
		}
		if e == t.last {
			t.last = nil // no longer reachable
		}
		now := t.s.clock.Now()
		e.state = neighIncomplete
		e.deadline = now + int64(t.cfg.RetryInterval)*int64(t.cfg.Retries)
		t.incomplete = append(t.incomplete, e)
		t.startResolve(e, now)
	}
	t.s.link.Ref(b.Frame)
	t.pending = append(t.pending, pendingDgram{b: *b, hop: hop, tag: tag})
	return nil
}

func (t *neighTable) startResolve(e *neighEntry, now int64) {
	if t.s.cfg.Mode == Shared && t.s.cfg.Neighbors != nil {
		// The kernel owns ARP on a shared address: ask it, then re-read
		// its table often until the deadline. Our own request goes out
		// too, as a fallback: its reply reaches the kernel (ARP is not
		// steered) and completes the entry the kernel is resolving.
		t.s.cfg.Neighbors.Resolve(e.ip)
		t.sendRequest(e.ip, ethernet.Broadcast)
		e.nextRetry = now + t.sharedPoll()
		e.nextARP = now + int64(t.cfg.RetryInterval)
		return
	}
	t.sendRequest(e.ip, ethernet.Broadcast)
	e.nextRetry = now + int64(t.cfg.RetryInterval)
}

func (t *neighTable) sharedPoll() int64 {
	p := int64(t.cfg.RetryInterval) / 100
	if p <= 0 {
		p = 1
	}
	return p
}

// tick retries and expires resolutions in progress, and ends lookup's
// trust in its last entry (lastUntil).
func (t *neighTable) tick(now int64) {
	if t.last != nil && now >= t.lastUntil {
		t.last = nil
	}
	for i := 0; i < len(t.incomplete); {
		e := t.incomplete[i]
		if now < e.nextRetry {
			i++
			continue
		}
		if t.s.cfg.Mode == Shared && t.s.cfg.Neighbors != nil {
			if mac, ok := t.s.cfg.Neighbors.Lookup(e.ip); ok {
				e.state = neighReachable // so learn does not recurse into resolved
				t.insert(e.ip, mac)
				t.resolved(e.ip, mac) // removes e from incomplete
				continue
			}
		}
		if now >= e.deadline {
			t.fail(e)
			continue
		}
		if t.s.cfg.Mode == Shared && t.s.cfg.Neighbors != nil {
			e.nextRetry = now + t.sharedPoll()
			if now >= e.nextARP {
				t.sendRequest(e.ip, ethernet.Broadcast)
				e.nextARP = now + int64(t.cfg.RetryInterval)
			}
		} else {
			t.sendRequest(e.ip, ethernet.Broadcast)
			e.nextRetry = now + int64(t.cfg.RetryInterval)
		}
		i++
	}
}

// fail gives up on e: its datagrams complete with EHOSTUNREACH.
func (t *neighTable) fail(e *neighEntry) {
	t.s.ctr.ARPFailed++
	t.dropIncomplete(e.ip)
	t.forget(e.ip)
	kept := t.pending[:0]
	for i := range t.pending {
		p := t.pending[i]
		if p.hop != e.ip {
			kept = append(kept, p)
			continue
		}
		t.s.link.Release(p.b.Frame)
		if p.tag != 0 {
			t.s.note.Done(p.tag, unix.EHOSTUNREACH)
		}
	}
	clear(t.pending[len(kept):])
	t.pending = kept
}

func (t *neighTable) nextDeadline() int64 {
	var d int64
	if t.last != nil {
		d = t.lastUntil
	}
	for _, e := range t.incomplete {
		if d == 0 || e.nextRetry < d {
			d = e.nextRetry
		}
	}
	return d
}

// sendRequest sends an ARP request for tpa to dst (broadcast, or the known
// address for a refresh). tpa == our address makes it gratuitous.
func (t *neighTable) sendRequest(tpa [4]byte, dst ethernet.Addr) {
	s := t.s
	b, err := s.link.Alloc()
	if err != nil {
		s.ctr.TxNoBufs++
		return
	}
	p, ok := b.Prepend(ethernet.HeaderLen + arp.HeaderLen)
	if !ok {
		s.link.Release(b.Frame)
		s.ctr.TxNoBufs++
		return
	}
	ethernet.Header(p).Encode(dst, s.mac, ethernet.TypeARP)
	arp.Header(p[ethernet.HeaderLen:]).Encode(arp.OpRequest, s.mac, s.addr, ethernet.Addr{}, tpa)
	if s.transmitOwn(&b) {
		s.ctr.ARPRequestsTx++
	}
	s.link.Release(b.Frame)
}

// drop releases every held datagram (used by Close) without notifying.
func (t *neighTable) drop() {
	for i := range t.pending {
		t.s.link.Release(t.pending[i].b.Frame)
	}
	clear(t.pending)
	t.pending = t.pending[:0]
}
