package tcp_test

import (
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
)

func sackConn(t *testing.T) (*fx, *tcp.Endpoint, tcp.Seq) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(&tcp.Options{HasMSS: true, MSS: 1460, SACKPermitted: true})
	return f, e, iss
}

// A segment whose data we already had (the peer retransmitted in vain) is
// answered at once with a D-SACK block naming it (RFC 2883 §4).
func TestDuplicateDataIsReportedByDSACK(t *testing.T) {
	f, _, iss := sackConn(t)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: payload(100)})
	f.advance(50 * time.Millisecond)
	f.one(tcp.FlagACK)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1, data: payload(100)})
	a := f.one(tcp.FlagACK)
	if a.Ack() != peerISN+101 || a.o.NumSACK != 1 || a.o.SACK[0] != (tcp.SACKBlock{Start: peerISN + 1, End: peerISN + 101}) {
		t.Fatalf("ack %d with %d blocks %v, want a D-SACK of [%d, %d)", a.Ack(), a.o.NumSACK, a.o.SACK[:a.o.NumSACK], peerISN+1, peerISN+101)
	}
	// Reported once: the next ACK has no D-SACK.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 101, ack: iss + 1, data: payload(100)})
	f.advance(50 * time.Millisecond)
	if a := f.one(tcp.FlagACK); a.o.NumSACK != 0 {
		t.Fatalf("D-SACK repeated: %v", a.o.SACK[:a.o.NumSACK])
	}
}

// A duplicate of data held out of order is reported by a D-SACK block,
// followed by the SACK block that holds it (RFC 2883 §4.2.1).
func TestDuplicateOutOfOrderDataIsReportedByDSACK(t *testing.T) {
	f, _, iss := sackConn(t)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 201, ack: iss + 1, data: payload(100)})
	f.one(tcp.FlagACK)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 201, ack: iss + 1, data: payload(100)})
	a := f.one(tcp.FlagACK)
	blk := tcp.SACKBlock{Start: peerISN + 201, End: peerISN + 301}
	if a.Ack() != peerISN+1 || a.o.NumSACK != 2 || a.o.SACK[0] != blk || a.o.SACK[1] != blk {
		t.Fatalf("ack %d with blocks %v, want D-SACK %v then SACK %v", a.Ack(), a.o.SACK[:a.o.NumSACK], blk, blk)
	}
}

// A fast recovery whose only retransmission the peer reports as a
// duplicate (the original was late, not lost) is undone: the congestion
// window goes back to what it was. A D-SACK of data that was not
// retransmitted (a duplicate the network made) undoes nothing.
func TestSpuriousRecoveryIsUndoneByDSACK(t *testing.T) {
	for _, retransmitted := range []bool{true, false} {
		f, e, first, mss := rackConn(t, 10*time.Millisecond)
		for i := 0; i < 8; i++ {
			f.push(e, payload(int(mss)), 0)
		}
		f.sent()
		at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
		before := e.Info().CWND
		// Segment 0 seems lost: 1..7 are SACKed, well past the
		// reordering window.
		f.advance(10 * time.Millisecond)
		sackOf(f, at(0), tcp.SACKBlock{Start: at(1), End: at(8)})
		if got := seqs(f.sent()); len(got) != 1 || got[0] != at(0) {
			t.Fatalf("retransmitted %v, want segment 0", got)
		}
		reduced := e.Info().CWND
		if reduced >= before {
			t.Fatalf("cwnd %d after entering recovery, was %d", reduced, before)
		}
		// The original arrives after all: everything is acknowledged,
		// then the retransmission comes in as a duplicate.
		f.advance(time.Millisecond)
		sackOf(f, at(8))
		dup := tcp.SACKBlock{Start: at(0), End: at(1)}
		if !retransmitted {
			dup = tcp.SACKBlock{Start: at(3), End: at(4)} // never retransmitted
		}
		f.advance(time.Millisecond)
		sackOf(f, at(8), dup)
		c := f.h.s.TCP().Counters()
		switch {
		case retransmitted && (e.Info().CWND < before || c.SpuriousRecoveries != 1):
			t.Fatalf("after a D-SACK of the retransmission: cwnd %d (was %d before recovery), %d undone", e.Info().CWND, before, c.SpuriousRecoveries)
		case !retransmitted && (e.Info().CWND >= before || c.SpuriousRecoveries != 0):
			t.Fatalf("after a D-SACK of another segment: cwnd %d (was %d before recovery), %d undone", e.Info().CWND, before, c.SpuriousRecoveries)
		}
	}
}

// holeConn is sackConn holding 100 bytes out of order, after a hole of
// 200: blk is the SACK block that reports them.
func holeConn(t *testing.T) (*fx, *tcp.Endpoint, tcp.Seq, tcp.SACKBlock) {
	f, e, iss := sackConn(t)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 201, ack: iss + 1, data: payload(100)})
	f.one(tcp.FlagACK)
	return f, e, iss, tcp.SACKBlock{Start: peerISN + 201, End: peerISN + 301}
}

// While data is held out of order, a full-sized data segment has no room
// for the SACK blocks RFC 2018 wants in every ACK: a pure ACK that carries
// them follows it, so a peer that lost our earlier SACKs still learns of
// the hole from the data we send. A data segment with room carries the
// blocks itself, and without a hole nothing extra goes.
func TestFullDataSegmentIsFollowedBySACK(t *testing.T) {
	f, e, iss, blk := holeConn(t)
	mss := e.SndMSS()

	f.push(e, payload(mss), 1)
	s := f.sent()
	if len(s) != 2 || len(s[0].payload) != mss || s[0].o.NumSACK != 0 {
		t.Fatalf("sent %s, want the full segment (no room for SACK) then an ACK", describe(s))
	}
	if a := s[1]; len(a.payload) != 0 || a.Ack() != peerISN+1 || a.o.NumSACK != 1 || a.o.SACK[0] != blk {
		t.Fatalf("after the full segment: %s with blocks %v, want a pure ACK with SACK %v", describe(s[1:]), a.o.SACK[:a.o.NumSACK], blk)
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1 + tcp.Seq(mss), data: payload(50)})
	f.sent()

	f.push(e, payload(100), 2)
	if s := f.sent(); len(s) != 1 || s[0].o.NumSACK != 1 || s[0].o.SACK[0] != blk {
		t.Fatalf("a short segment: sent %s, want it alone, carrying SACK %v", describe(s), blk)
	}
	// The hole fills: no more SACK, and no ACK after a full segment.
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 51, ack: iss + 1 + tcp.Seq(mss) + 100, data: payload(150)})
	f.sent()
	f.push(e, payload(mss), 3)
	if s := f.sent(); len(s) != 1 || s[0].o.NumSACK != 0 {
		t.Fatalf("without a hole: sent %s, want the segment alone", describe(s))
	}
}

// Within a receive batch, output runs for every ACK that arrives; while a
// receive hole lasts, the pure ACK carrying SACK blocks after full-sized
// data goes once, at the end of the batch, not after each ACK's segments.
func TestSACKAfterFullSegmentsOncePerBatch(t *testing.T) {
	f, e, iss, blk := holeConn(t)
	mss := e.SndMSS()

	// One Send of 30 segments: the initial window goes, then one ACK.
	bufs := make([]nic.Buf, 30)
	for i := range bufs {
		b, err := f.link.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		b.Len = copy(b.Data[b.Off:], payload(mss))
		bufs[i] = b
	}
	if err := e.Send(bufs, 1); err != nil {
		t.Fatal(err)
	}
	for _, b := range bufs {
		f.link.Release(b.Frame)
	}
	first := f.sent()
	if n := len(first); n < 2 || len(first[n-1].payload) != 0 || first[n-1].o.NumSACK != 1 {
		t.Fatalf("one Send: sent %s, want data then one pure ACK with SACK", describe(first))
	}

	// Three ACKs in one batch, each acknowledging a segment: each lets
	// more full segments go, and one pure ACK ends the batch.
	f.batch(func() {
		for k := 1; k <= 3; k++ {
			f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1 + tcp.Seq(k*mss)})
		}
	})
	s := f.sent()
	data, pure := 0, 0
	for _, x := range s {
		if len(x.payload) == mss {
			data++
		} else if len(x.payload) == 0 {
			pure++
		}
	}
	last := s[len(s)-1]
	if data < 3 || pure != 1 || len(last.payload) != 0 || last.o.NumSACK != 1 || last.o.SACK[0] != blk {
		t.Fatalf("a batch of 3 ACKs: sent %s (%d full segments, %d pure ACKs), want full segments then one pure ACK with SACK %v",
			describe(s), data, pure, blk)
	}
}
