package tcp_test

import (
	"encoding/binary"
	"testing"

	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
)

// frameFor builds the Ethernet frame of a peer segment once, so a test can
// rewrite its sequence numbers in place without allocating.
func frameFor(s seg) []byte {
	if s.sport == 0 {
		s.sport = peerPort
	}
	if s.dport == 0 {
		s.dport = ourPort
	}
	l4 := make([]byte, tcp.HeaderLen+len(s.data))
	tcp.Header(l4).Encode(&tcp.Fields{SrcPort: s.sport, DstPort: s.dport, Seq: s.seq, Ack: s.ack, Flags: s.flags, Window: 65535})
	copy(l4[tcp.HeaderLen:], s.data)
	b := make([]byte, ethernet.HeaderLen+ipv4.MinHeaderLen+len(l4))
	ethernet.Header(b).Encode(ourMAC, peerMAC, ethernet.TypeIPv4)
	ipv4.Header(b[ethernet.HeaderLen:]).Encode(ipv4.Fields{TotalLength: uint16(ipv4.MinHeaderLen + len(l4)), TTL: 64, Protocol: ipv4.ProtoTCP, Src: peerIP, Dst: ourIP})
	copy(b[ethernet.HeaderLen+ipv4.MinHeaderLen:], l4)
	setSeqAck(b, s.seq, s.ack)
	return b
}

func setSeqAck(frame []byte, seq, ack tcp.Seq) {
	h := tcp.Header(frame[ethernet.HeaderLen+ipv4.MinHeaderLen:])
	binary.BigEndian.PutUint32(h[4:], uint32(seq))
	binary.BigEndian.PutUint32(h[8:], uint32(ack))
	h.SetChecksum(h.ComputeChecksum(peerIP, ourIP))
}

// steadyState returns one round of steady-state traffic on an established
// connection: a full-sized push sent and acknowledged, and a data segment
// received and taken with Recv.
func steadyState(tb testing.TB) func() {
	f := newFx(tb, tcp.Config{})
	e, iss := f.established(nil)
	e.SetNoDelay(true)
	f.h.quiet = true
	f.link.NoCopy = true
	mss := e.SndMSS()
	next, rseq := iss+1, peerISN+1
	ack := frameFor(seg{flags: tcp.FlagACK})
	data := frameFor(seg{flags: tcp.FlagACK | tcp.FlagPSH, data: payload(1000)})
	bufs := make([]nic.Buf, 1)
	return func() {
		b, err := f.link.Alloc()
		if err != nil {
			tb.Fatal(err)
		}
		b.Len = mss
		bufs[0] = b
		if err := e.Send(bufs, 1); err != nil {
			tb.Fatal(err)
		}
		f.link.Release(b.Frame)
		f.link.CompleteQuiet()
		next += tcp.Seq(mss)
		setSeqAck(ack, rseq, next)
		f.h.s.Input(f.link.Inject(ack))
		setSeqAck(data, rseq, next)
		f.h.s.Input(f.link.Inject(data))
		rseq += 1000
		r, err := e.Recv()
		if err != nil || r.Len != 1000 {
			tb.Fatalf("Recv %d %v", r.Len, err)
		}
		f.link.Release(r.Frame)
		f.link.CompleteQuiet()
		if e.Unacked() != 0 {
			tb.Fatalf("%d bytes unacknowledged", e.Unacked())
		}
	}
}

func TestSteadyStateSendAckRecvAllocatesNothing(t *testing.T) {
	round := steadyState(t)
	for i := 0; i < 200; i++ { // grow the rings once
		round()
	}
	if n := testing.AllocsPerRun(2000, round); n != 0 {
		t.Fatalf("%v allocations per round, want 0", n)
	}
}

// BenchmarkSteadyState measures one round: a full-sized segment pushed,
// sent and acknowledged, and a 1000-byte segment received and popped.
func BenchmarkSteadyState(b *testing.B) {
	round := steadyState(b)
	for i := 0; i < 200; i++ {
		round()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round()
	}
}
