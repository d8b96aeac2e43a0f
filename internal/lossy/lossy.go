// Package lossy injects random packet loss on a lab interface with eBPF,
// since the lab machine's kernel has no netem: an XDP program drops a share
// of the IPv4 frames the interface receives and a TCX egress program drops
// the same share of those it sends. ARP and everything that is not IPv4
// pass untouched, so neighbour resolution stays reliable and the loss hits
// only the traffic under test.
//
// The kernel's TCP always builds GSO super-packets and segments them only
// after the egress hook, so a TC program would drop a whole burst of
// segments at once. Attach therefore lowers the interface's gso_max_size to
// one MTU and its gso_max_segs to 1 for as long as the loss is attached
// (the size alone is not enough: TCP still builds skbs of tcp_min_tso_segs,
// two segments): every skb the egress program sees is one packet. The
// kernel copies these limits into a TCP socket when it connects, so a
// connection made before Attach keeps building super-packets; lower them
// first with LimitGSO when the connection must exist before the loss does.
//
// The same holds for the other direction when the peer is a kernel: a veth
// hands GSO super-packets to the XDP program of its peer as one frame, so
// the program would drop up to 64 KB at once and count it as one frame.
// Whoever attaches the loss opposite a kernel stack must therefore limit
// that end too; LimitGSO does so for an interface of the calling thread's
// namespace.
//
// It is a test tool: attach it only to an interface the test created (the
// peer end of a lab veth), from inside that interface's network namespace.
package lossy

import (
	"errors"
	"fmt"
	"math"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// Loss is a loss injector attached to one interface.
type Loss struct {
	gso      *GSOLimit // the interface's GSO limits before Attach
	counters *ebpf.Map
	progs    []*ebpf.Program
	links    []link.Link
}

// Counters of a Loss: frames dropped and IPv4 frames let through, in both
// directions together.
type Counters struct{ Dropped, Passed uint64 }

// Attach drops the fraction rate (0 <= rate < 1) of IPv4 frames received
// and sent by interface ifindex. It must run in the interface's network
// namespace.
func Attach(ifindex int, rate float64) (*Loss, error) {
	if rate < 0 || rate >= 1 || math.IsNaN(rate) {
		return nil, fmt.Errorf("lossy: rate %v outside [0, 1)", rate)
	}
	threshold := uint32(rate * (1 << 32))
	l := &Loss{}
	var err error
	l.counters, err = ebpf.NewMap(&ebpf.MapSpec{Name: "lossy_ctr", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		return nil, fmt.Errorf("lossy: counters map: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	xdpProg, err := l.load(ebpf.XDP, threshold, 0, 4, 1 /* XDP_DROP */, 2 /* XDP_PASS */)
	if err != nil {
		return nil, err
	}
	// At egress a plain drop (TC_ACT_SHOT) is seen by the sending kernel
	// as a local congestion drop: TCP resends at once and nothing is lost
	// on the wire. Redirecting the packet to the namespace's loopback
	// instead makes the send succeed; the namespace's own stack then
	// discards it (it is not addressed to it and forwarding is off), as
	// a wire would lose it.
	tcProg, err := l.load(ebpf.SchedCLS, threshold, 76, 80, dropToLoopback, -1 /* TCX_NEXT */)
	if err != nil {
		return nil, err
	}
	xl, err := link.AttachXDP(link.XDPOptions{Program: xdpProg, Interface: ifindex})
	if err != nil {
		return nil, fmt.Errorf("lossy: attach XDP: %w", err)
	}
	l.links = append(l.links, xl)
	tl, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: tcProg, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return nil, fmt.Errorf("lossy: attach TCX egress: %w", err)
	}
	l.links = append(l.links, tl)
	// The limit's netlink handle is bound to this (the interface's)
	// namespace, so Close restores the right interface from whatever
	// thread it runs on.
	if l.gso, err = LimitGSO(ifindex); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// dropToLoopback as load's drop verdict redirects the packet to ifindex 1.
const dropToLoopback = -2

// load builds the program for one hook: dataOff/endOff are the offsets of
// the packet pointers in the hook's context, drop/pass its verdicts.
func (l *Loss) load(typ ebpf.ProgramType, threshold uint32, dataOff, endOff int16, drop, pass int32) (*ebpf.Program, error) {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R7, 1), // counter index: 1 passed, 0 dropped
		asm.LoadMem(asm.R2, asm.R6, dataOff, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, endOff, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R4, 0x0008, "out"), // EtherType IPv4, network order read little-endian
		asm.FnGetPrandomU32.Call(),
		asm.LoadImm(asm.R1, int64(threshold), asm.DWord),
		asm.JGE.Reg(asm.R0, asm.R1, "count"),
		asm.Mov.Imm(asm.R7, 0),
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word).WithSymbol("count"),
		asm.LoadMapPtr(asm.R1, l.counters.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "verdict"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, pass).WithSymbol("verdict"),
		asm.JNE.Imm(asm.R7, 0, "exit"),
	}
	if drop == dropToLoopback {
		insns = append(insns,
			asm.Mov.Imm(asm.R1, 1), // ifindex 1: the namespace's lo
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(), // TC_ACT_REDIRECT
		)
	} else {
		insns = append(insns, asm.Mov.Imm(asm.R0, drop))
	}
	insns = append(insns,
		asm.Return().WithSymbol("exit"),
		asm.Mov.Imm(asm.R0, pass).WithSymbol("out"),
		asm.Return(),
	)
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "lossy", Type: typ, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("lossy: load %v program: %w", typ, err)
	}
	l.progs = append(l.progs, p)
	return p, nil
}

// Counters returns how many IPv4 frames were dropped and passed.
func (l *Loss) Counters() (Counters, error) {
	var c Counters
	if err := l.counters.Lookup(uint32(0), &c.Dropped); err != nil {
		return c, err
	}
	err := l.counters.Lookup(uint32(1), &c.Passed)
	return c, err
}

// Close detaches and unloads everything and restores gso_max_size (in the
// interface's namespace, from any thread); it is idempotent.
func (l *Loss) Close() error {
	var errs []error
	for _, k := range l.links {
		errs = append(errs, k.Close())
	}
	for _, p := range l.progs {
		errs = append(errs, p.Close())
	}
	if l.counters != nil {
		errs = append(errs, l.counters.Close())
	}
	if l.gso != nil {
		errs = append(errs, l.gso.Restore())
		l.gso = nil
	}
	l.links, l.progs, l.counters = nil, nil, nil
	return errors.Join(errs...)
}

// GSOLimit is an interface whose GSO limits LimitGSO lowered, and what they
// were before.
type GSOLimit struct {
	nl              *netlink.Handle // bound to the interface's namespace
	ifindex         int
	oldSize, oldSeg uint32
}

// LimitGSO makes the kernel send one packet per skb through interface
// ifindex of the calling thread's network namespace (gso_max_size one MTU,
// gso_max_segs 1) until Restore. Use it on the kernel's end of a link whose
// other end drops frames with Attach.
func LimitGSO(ifindex int) (*GSOLimit, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("lossy: netlink: %w", err)
	}
	link, err := h.LinkByIndex(ifindex)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("lossy: %w", err)
	}
	a := link.Attrs()
	g := &GSOLimit{nl: h, ifindex: ifindex, oldSize: a.GSOMaxSize, oldSeg: a.GSOMaxSegs}
	if err := h.LinkSetGSOMaxSize(link, a.MTU); err != nil {
		h.Close()
		return nil, fmt.Errorf("lossy: gso_max_size: %w", err)
	}
	if err := h.LinkSetGSOMaxSegs(link, 1); err != nil {
		h.LinkSetGSOMaxSize(link, int(g.oldSize))
		h.Close()
		return nil, fmt.Errorf("lossy: gso_max_segs: %w", err)
	}
	return g, nil
}

// Restore puts back the limits LimitGSO found (from any thread: the handle
// stays bound to the interface's namespace). It is idempotent; a link that
// is gone already is not an error.
func (g *GSOLimit) Restore() error {
	if g.nl == nil {
		return nil
	}
	var errs []error
	if link, err := g.nl.LinkByIndex(g.ifindex); err == nil {
		if g.oldSize > 0 {
			errs = append(errs, g.nl.LinkSetGSOMaxSize(link, int(g.oldSize)))
		}
		if g.oldSeg > 0 {
			errs = append(errs, g.nl.LinkSetGSOMaxSegs(link, int(g.oldSeg)))
		}
	}
	g.nl.Close()
	g.nl = nil
	return errors.Join(errs...)
}
