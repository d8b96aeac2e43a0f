package bpf

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// Wire constants the program needs.
const (
	xdpPass = 2 // XDP_PASS

	ethHdrLen   = 14
	ethTypeOff  = 12
	ethTypeIPv4 = 0x0800
	ethTypeARP  = 0x0806

	arpBodyLen = 28 // Ethernet/IPv4 ARP body
	arpTPAOff  = ethHdrLen + 24

	ipv4MinLen   = 20
	ipv4TotLen   = ethHdrLen + 2
	ipv4FragOff  = ethHdrLen + 6
	ipv4ProtoOff = ethHdrLen + 9
	ipv4DstOff   = ethHdrLen + 16
	ipv4FragMask = 0x3fff // MF flag and fragment offset

	protoTCP = 6
	protoUDP = 17
)

// Counter slots in the counters map.
const (
	ctrRedirected = iota
	ctrPassed
	ctrMalformed
	numCounters
)

// Offsets of struct xdp_md fields.
const (
	mdData         = 0
	mdDataEnd      = 4
	mdRxQueueIndex = 16
)

// Stack slots (offsets from R10).
const (
	stkAddrKey   = -4  // 4 bytes: IPv4 address, network order
	stkPortKey   = -8  // 4 bytes: {proto, 0, port (network order)}
	stkCtrKey    = -12 // u32 counter index
	stkConfigKey = -16 // u32 config index (always 0)
)

// Register roles that survive helper calls.
const (
	rCtx     = asm.R6
	rData    = asm.R7
	rDataEnd = asm.R8
)

// mapFDs are the file descriptors the program embeds, and the number of
// queues the counters map has a row for.
type mapFDs struct {
	addrs, ports, xsks, config, counters int
	queues                               int32
}

// builder assembles the program; labels attach to the next emitted instruction.
type builder struct {
	insns   asm.Instructions
	pending string
	n       int
	err     error
}

func (b *builder) emit(ins ...asm.Instruction) {
	for _, in := range ins {
		if b.pending != "" {
			in = in.WithSymbol(b.pending)
			b.pending = ""
		}
		b.insns = append(b.insns, in)
	}
}

func (b *builder) label(name string) {
	if b.pending != "" && b.err == nil {
		b.err = fmt.Errorf("bpf: labels %q and %q on one instruction", b.pending, name)
	}
	b.pending = name
}

func (b *builder) fresh(prefix string) string {
	b.n++
	return fmt.Sprintf("%s_%d", prefix, b.n)
}

// count adds one to counter slot idx of the frame's receive queue (a
// per-CPU u64, so a plain add is safe), then falls through to label next.
// The counters map has one row of numCounters slots per queue; queues at
// or beyond fds.queues share the last row.
func (b *builder) count(idx int32, fds mapFDs, next string) {
	row := b.fresh("row")
	b.emit(
		asm.LoadMem(asm.R1, rCtx, mdRxQueueIndex, asm.Word),
		asm.JLT.Imm(asm.R1, fds.queues, row),
		asm.Mov.Imm(asm.R1, fds.queues),
	)
	b.label(row)
	b.emit(
		asm.Mul.Imm(asm.R1, numCounters),
		asm.Add.Imm(asm.R1, idx),
		asm.StoreMem(asm.R10, stkCtrKey, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, fds.counters),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stkCtrKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, next),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	)
}

// addrCheck jumps to onMatch when the wildcard flag is set or the key at
// stkAddrKey is in the addrs map, and to "pass" otherwise.
func (b *builder) addrCheck(fds mapFDs, onMatch string) {
	exact := b.fresh("exact")
	b.emit(
		asm.StoreImm(asm.R10, stkConfigKey, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, fds.config),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stkConfigKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, exact),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.JSet.Imm(asm.R1, configAnyAddr, onMatch),
	)
	b.label(exact)
	b.emit(
		asm.LoadMapPtr(asm.R1, fds.addrs),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stkAddrKey),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, onMatch),
		asm.Ja.Label("pass"),
	)
}

// copyAddr stores the 4 bytes at packet offset off into the address key,
// as two 16-bit loads (every field used here is 2-byte aligned in the frame,
// so this is safe even where the verifier enforces alignment).
func (b *builder) copyAddr(off int16) {
	b.emit(
		asm.LoadMem(asm.R1, rData, off, asm.Half),
		asm.StoreMem(asm.R10, stkAddrKey, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, rData, off+2, asm.Half),
		asm.StoreMem(asm.R10, stkAddrKey+2, asm.R1, asm.Half),
	)
}

// steeringProgram returns the XDP program for mode, bound to the maps in fds.
//
// Outline (R6 = ctx, R7 = data, R8 = data_end for the whole program):
//
//	frame < 14 bytes                        -> malformed
//	ethertype IPv4                          -> ipv4
//	ethertype ARP (dedicated mode only)     -> arp
//	anything else (VLAN tags, IPv6, ...)    -> pass
//	arp:  body < 28 bytes or not Ethernet/IPv4 ARP -> malformed (an
//	      Ethernet link carries no other kind);
//	      target address ours -> redirect; else pass
//	ipv4: < 20 bytes, version != 4, IHL < 5, IHL*4 past the frame,
//	      total length < IHL*4 -> malformed
//	      dedicated: destination ours -> redirect; else pass
//	      shared: not TCP/UDP -> pass; fragment -> pass;
//	              4 port bytes missing -> malformed;
//	              destination ours and (proto, port) bound -> redirect; else pass
//	redirect:  count Redirected; bpf_redirect_map(xsks, rx_queue_index, XDP_PASS)
//	malformed: count Malformed, then pass
//	pass:      count Passed; XDP_PASS
func steeringProgram(mode Mode, fds mapFDs) (asm.Instructions, error) {
	b := &builder{}

	// Ethernet.
	b.emit(
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(rData, rCtx, mdData, asm.Word),
		asm.LoadMem(rDataEnd, rCtx, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, rData),
		asm.Add.Imm(asm.R2, ethHdrLen),
		asm.JGT.Reg(asm.R2, rDataEnd, "malformed"),
		asm.LoadMem(asm.R2, rData, ethTypeOff, asm.Half),
		asm.HostTo(asm.BE, asm.R2, asm.Half),
		asm.JEq.Imm(asm.R2, ethTypeIPv4, "ipv4"),
	)
	if mode == Dedicated {
		b.emit(asm.JEq.Imm(asm.R2, ethTypeARP, "arp"))
	}
	b.emit(asm.Ja.Label("pass"))

	if mode == Dedicated {
		b.label("arp")
		b.emit(
			asm.Mov.Reg(asm.R2, rData),
			asm.Add.Imm(asm.R2, ethHdrLen+arpBodyLen),
			asm.JGT.Reg(asm.R2, rDataEnd, "malformed"),
			asm.LoadMem(asm.R2, rData, ethHdrLen, asm.Half), // htype
			asm.HostTo(asm.BE, asm.R2, asm.Half),
			asm.JNE.Imm(asm.R2, 1, "malformed"),
			asm.LoadMem(asm.R2, rData, ethHdrLen+2, asm.Half), // ptype
			asm.HostTo(asm.BE, asm.R2, asm.Half),
			asm.JNE.Imm(asm.R2, ethTypeIPv4, "malformed"),
			asm.LoadMem(asm.R2, rData, ethHdrLen+4, asm.Byte), // hlen
			asm.JNE.Imm(asm.R2, 6, "malformed"),
			asm.LoadMem(asm.R2, rData, ethHdrLen+5, asm.Byte), // plen
			asm.JNE.Imm(asm.R2, 4, "malformed"),
		)
		b.copyAddr(arpTPAOff)
		b.emit(asm.Ja.Label("addr"))
	}

	// IPv4 header validation; leaves R2 = start of the L4 header.
	b.label("ipv4")
	b.emit(
		asm.Mov.Reg(asm.R2, rData),
		asm.Add.Imm(asm.R2, ethHdrLen+ipv4MinLen),
		asm.JGT.Reg(asm.R2, rDataEnd, "malformed"),
		asm.LoadMem(asm.R3, rData, ethHdrLen, asm.Byte),
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.RSh.Imm(asm.R4, 4),
		asm.JNE.Imm(asm.R4, 4, "malformed"),
		asm.And.Imm(asm.R3, 0x0f),
		asm.JLT.Imm(asm.R3, 5, "malformed"),
		asm.LSh.Imm(asm.R3, 2), // IHL in bytes, 20..60
		asm.LoadMem(asm.R4, rData, ipv4TotLen, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.JLT.Reg(asm.R4, asm.R3, "malformed"),
		asm.Mov.Reg(asm.R2, rData),
		asm.Add.Reg(asm.R2, asm.R3),
		asm.Add.Imm(asm.R2, ethHdrLen),
		asm.JGT.Reg(asm.R2, rDataEnd, "malformed"),
	)

	if mode == Dedicated {
		// Options and fragments are steered too: the netstack drops
		// and counts them.
		b.copyAddr(ipv4DstOff)
		b.label("addr")
		b.addrCheck(fds, "redirect")
	} else {
		b.emit(
			asm.LoadMem(asm.R4, rData, ipv4ProtoOff, asm.Byte),
			asm.JEq.Imm(asm.R4, protoTCP, "l4"),
			asm.JNE.Imm(asm.R4, protoUDP, "pass"),
		)
		// Fragments stay with the kernel: only the first carries the
		// ports, and the kernel reassembles what it receives whole.
		b.label("l4")
		b.emit(
			asm.LoadMem(asm.R5, rData, ipv4FragOff, asm.Half),
			asm.HostTo(asm.BE, asm.R5, asm.Half),
			asm.And.Imm(asm.R5, ipv4FragMask),
			asm.JNE.Imm(asm.R5, 0, "pass"),
			asm.Mov.Reg(asm.R5, asm.R2),
			asm.Add.Imm(asm.R5, 4),
			asm.JGT.Reg(asm.R5, rDataEnd, "malformed"),
			asm.LoadMem(asm.R5, asm.R2, 2, asm.Half), // destination port, network order
			asm.StoreMem(asm.R10, stkPortKey, asm.R4, asm.Byte),
			asm.StoreImm(asm.R10, stkPortKey+1, 0, asm.Byte),
			asm.StoreMem(asm.R10, stkPortKey+2, asm.R5, asm.Half),
		)
		b.copyAddr(ipv4DstOff)
		b.addrCheck(fds, "ports")
		b.label("ports")
		b.emit(
			asm.LoadMapPtr(asm.R1, fds.ports),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, stkPortKey),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "pass"),
			asm.Ja.Label("redirect"),
		)
	}

	b.label("redirect")
	b.count(ctrRedirected, fds, "do_redirect")
	b.label("do_redirect")
	b.emit(
		asm.LoadMapPtr(asm.R1, fds.xsks),
		asm.LoadMem(asm.R2, rCtx, mdRxQueueIndex, asm.Word),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	)

	b.label("malformed")
	b.count(ctrMalformed, fds, "pass")
	b.label("pass")
	b.count(ctrPassed, fds, "ret_pass")
	b.label("ret_pass")
	b.emit(
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
	)

	if b.err != nil {
		return nil, b.err
	}
	return b.insns, nil
}
