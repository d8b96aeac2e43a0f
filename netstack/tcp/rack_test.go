package tcp_test

import (
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/tcp"
)

// rackConn is an established SACK connection with an RTT sample of rtt
// (one segment acknowledged rtt after it was sent).
func rackConn(t *testing.T, rtt time.Duration) (*fx, *tcp.Endpoint, tcp.Seq, tcp.Seq) {
	f := newFx(t, tcp.Config{})
	e, iss := f.established(&tcp.Options{HasMSS: true, MSS: 1460, SACKPermitted: true})
	e.SetNoDelay(true)
	mss := tcp.Seq(e.SndMSS())
	f.push(e, payload(int(mss)), 0)
	f.one(tcp.FlagACK | tcp.FlagPSH)
	f.advance(rtt)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: iss + 1 + mss})
	f.none()
	return f, e, iss + 1 + mss, mss
}

func sackOf(f *fx, ack tcp.Seq, blocks ...tcp.SACKBlock) {
	o := &tcp.Options{NumSACK: len(blocks)}
	copy(o.SACK[:], blocks)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: ack, opts: o})
}

func seqs(r []out) []tcp.Seq {
	var s []tcp.Seq
	for _, x := range r {
		if len(x.payload) > 0 {
			s = append(s, x.Seq())
		}
	}
	return s
}

func TestLostRetransmissionAboveTheHeadIsDetectedByRACK(t *testing.T) {
	f, e, first, mss := rackConn(t, 10*time.Millisecond)
	for i := 0; i < 8; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	if n := len(f.sent()); n != 8 {
		t.Fatalf("sent %d segments, want 8", n)
	}
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss } // segment i, from 0
	// Segments 0 and 3 are lost; the rest arrive 10ms later.
	f.advance(10 * time.Millisecond)
	sackOf(f, at(0), tcp.SACKBlock{Start: at(1), End: at(3)}, tcp.SACKBlock{Start: at(4), End: at(8)})
	if got := seqs(f.sent()); len(got) < 2 || got[0] != at(0) || got[1] != at(3) {
		t.Fatalf("retransmitted %v, want segments 0 and 3 (%d, %d) %+v", got, at(0), at(3), e.Counters())
	}
	// New data goes out after the retransmissions...
	f.advance(5 * time.Millisecond)
	f.push(e, payload(int(mss)), 0)
	if got := seqs(f.sent()); len(got) != 1 || got[0] != at(8) {
		t.Fatalf("sent %v, want new segment 8", got)
	}
	// ...and is SACKed, with segment 0's retransmission, while segment
	// 3 is still missing: its retransmission was lost and goes again,
	// without waiting for the RTO.
	f.advance(10 * time.Millisecond)
	sackOf(f, at(3), tcp.SACKBlock{Start: at(4), End: at(9)})
	if got := seqs(f.sent()); len(got) == 0 || got[0] != at(3) {
		t.Fatalf("sent %v, want segment 3 (%d) again", got, at(3))
	}
	if c := e.Counters(); c.RTOs != 0 || c.Retransmits != 3 || c.FastRecoveries != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestTailLossIsRepairedByTLPWithoutRTO(t *testing.T) {
	f, e, first, mss := rackConn(t, 10*time.Millisecond)
	for i := 0; i < 4; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
	// Segments 0 and 1 arrive; the tail (2 and 3) is lost: no ACK will
	// ever show it.
	f.advance(10 * time.Millisecond)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: at(2)})
	f.none()
	// PTO = 2*SRTT = 20ms: the last segment is probed, long before the
	// 200ms RTO.
	f.advance(19 * time.Millisecond)
	f.none()
	f.advance(time.Millisecond)
	if got := seqs(f.sent()); len(got) != 1 || got[0] != at(3) {
		t.Fatalf("probe %v, want segment 3 (%d)", got, at(3))
	}
	// The probe is SACKed: RACK finds segment 2 lost and fast recovery
	// repairs it.
	f.advance(10 * time.Millisecond)
	sackOf(f, at(2), tcp.SACKBlock{Start: at(3), End: at(4)})
	if got := seqs(f.sent()); len(got) != 1 || got[0] != at(2) {
		t.Fatalf("sent %v, want segment 2 (%d)", got, at(2))
	}
	f.advance(10 * time.Millisecond)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: at(4)})
	f.advance(time.Second)
	f.none()
	if c := e.Counters(); c.RTOs != 0 || c.Retransmits != 2 || c.FastRecoveries != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestReorderingWithinTheWindowIsNotRetransmitted(t *testing.T) {
	f, e, first, mss := rackConn(t, 40*time.Millisecond)
	for i := 0; i < 3; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
	// Segment 0 is overtaken by segment 1: within min_RTT/4 = 10ms it
	// is not deemed lost.
	f.advance(40 * time.Millisecond)
	sackOf(f, at(0), tcp.SACKBlock{Start: at(1), End: at(2)})
	f.none()
	f.advance(5 * time.Millisecond)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: at(3)})
	f.advance(50 * time.Millisecond)
	f.none()
	if c := e.Counters(); c.Retransmits != 0 || c.FastRecoveries != 0 || c.RTOs != 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestReorderingBeyondTheWindowIsRetransmittedByTheTimer(t *testing.T) {
	f, e, first, mss := rackConn(t, 40*time.Millisecond)
	for i := 0; i < 3; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
	f.advance(40 * time.Millisecond)
	sackOf(f, at(0), tcp.SACKBlock{Start: at(1), End: at(2)})
	f.none()
	// The reordering timer fires at the end of the 10ms window.
	f.advance(9 * time.Millisecond)
	f.none()
	f.advance(time.Millisecond)
	if got := seqs(f.sent()); len(got) != 1 || got[0] != at(0) {
		t.Fatalf("sent %v, want segment 0 (%d)", got, at(0))
	}
	if c := e.Counters(); c.RTOs != 0 || c.FastRecoveries != 1 {
		t.Fatalf("counters %+v", c)
	}
}
