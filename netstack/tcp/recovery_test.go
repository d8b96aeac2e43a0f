package tcp_test

import (
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/tcp"
)

// A lone segment whose ACK does not come (lost, or delayed by the
// receiver) gets a loss probe at the time the retransmission timer would
// have fired, not a timeout: the window survives, and the timeout is
// re-armed behind the probe.
func TestProbeGoesInsteadOfTheTimeoutForALoneSegment(t *testing.T) {
	f, e, first, mss := rackConn(t, time.Millisecond)
	f.push(e, payload(int(mss)), 0)
	f.sent()
	before := e.Info().CWND
	f.advance(190 * time.Millisecond)
	f.none()
	f.advance(10 * time.Millisecond)
	if got := seqs(f.sent()); len(got) != 1 || got[0] != first {
		t.Fatalf("at the RTO time sent %v, want a probe of segment %d", got, first)
	}
	c := f.h.s.TCP().Counters()
	if c.RTOs != 0 || c.LossProbes != 1 || e.Info().CWND != before {
		t.Fatalf("RTOs %d probes %d cwnd %d (was %d): want the probe, not the timeout", c.RTOs, c.LossProbes, e.Info().CWND, before)
	}
	// Still nothing: the timeout follows, one RTO after the probe.
	f.advance(190 * time.Millisecond)
	f.none()
	f.advance(20 * time.Millisecond)
	if c := f.h.s.TCP().Counters(); c.RTOs != 1 {
		t.Fatalf("no RTO after the unanswered probe: %+v", c)
	}
}

// In fast recovery, when the window is full and no ACK comes, a loss probe
// still goes after the probe timeout rather than the connection waiting for
// the retransmission timer.
func TestProbeInRecovery(t *testing.T) {
	f, e, first, mss := rackConn(t, 10*time.Millisecond)
	for i := 0; i < 8; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
	f.advance(10 * time.Millisecond)
	sackOf(f, at(0), tcp.SACKBlock{Start: at(1), End: at(7)}) // 0 and 7 missing
	if got := seqs(f.sent()); len(got) == 0 || got[0] != at(0) {
		t.Fatalf("recovery sent %v, want segment 0 first", got)
	}
	if !e.Info().InRecovery {
		t.Fatal("not in recovery")
	}
	// Nothing more arrives: a probe goes within a few SRTTs.
	f.advance(50 * time.Millisecond)
	if got := seqs(f.sent()); len(got) != 1 {
		t.Fatalf("sent %v 50ms into a silent recovery, want one probe", got)
	}
	if c := f.h.s.TCP().Counters(); c.RTOs != 0 || c.LossProbes != 1 {
		t.Fatalf("RTOs %d probes %d", c.RTOs, c.LossProbes)
	}
}

// A retransmission timeout does not send again what the peer SACKed: only
// the other segments are deemed lost and resent, in slow start, and the
// losses found while they are resent do not start a fast recovery with a
// second reduction.
func TestTimeoutKeepsSACKedSegments(t *testing.T) {
	f, e, first, mss := rackConn(t, 10*time.Millisecond)
	for i := 0; i < 6; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
	// Segments 2 and 3 SACKed soon; 0, 1, 4 and 5 never answered.
	f.advance(time.Millisecond)
	sackOf(f, at(0), tcp.SACKBlock{Start: at(2), End: at(4)})
	var resent []tcp.Seq
	for i := 0; i < 40 && f.h.s.TCP().Counters().RTOs == 0; i++ {
		f.advance(20 * time.Millisecond)
		resent = append(resent, seqs(f.sent())...)
	}
	if f.h.s.TCP().Counters().RTOs != 1 {
		t.Fatalf("no RTO: %+v", f.h.s.TCP().Counters())
	}
	last := resent[len(resent)-1]
	if last != at(0) {
		t.Fatalf("the RTO resent %d, want segment 0 (%d)", last, at(0))
	}
	fr := f.h.s.TCP().Counters().FastRecoveries
	// Each ACK opens the window by its bytes: what goes next is segments
	// 1, 4 and 5, never the SACKed 2 and 3.
	var after []tcp.Seq
	f.advance(time.Millisecond)
	sackOf(f, at(1), tcp.SACKBlock{Start: at(2), End: at(4)})
	after = append(after, seqs(f.sent())...)
	f.advance(time.Millisecond)
	sackOf(f, at(4))
	after = append(after, seqs(f.sent())...)
	for _, s := range after {
		if s == at(2) || s == at(3) {
			t.Fatalf("after the RTO sent %v: SACKed segment %d again", after, s)
		}
	}
	if len(after) < 2 || after[0] != at(1) {
		t.Fatalf("after the RTO sent %v, want segment 1 (%d) first", after, at(1))
	}
	if c := f.h.s.TCP().Counters(); c.FastRecoveries != fr {
		t.Fatalf("a fast recovery started inside the timeout's episode: %d -> %d", fr, c.FastRecoveries)
	}
}

// An ACK that asks for a segment the peer had SACKed means the peer
// dropped it (it may, RFC 2018 s8): the SACK marks are forgotten.
func TestSACKRenegingIsDetected(t *testing.T) {
	f, e, first, mss := rackConn(t, 10*time.Millisecond)
	for i := 0; i < 4; i++ {
		f.push(e, payload(int(mss)), 0)
	}
	f.sent()
	at := func(i int) tcp.Seq { return first + tcp.Seq(i)*mss }
	sackOf(f, at(0), tcp.SACKBlock{Start: at(1), End: at(3)})
	f.sent()
	// Segment 0 arrives; the peer acknowledges it but asks for 1 again.
	sackOf(f, at(1))
	if c := f.h.s.TCP().Counters(); c.SACKReneging != 1 {
		t.Fatalf("reneging not seen: %+v", c)
	}
	if in := e.Info(); in.InFlight != uint32(3*mss) {
		t.Fatalf("in flight %d, want %d", in.InFlight, 3*mss)
	}
}
