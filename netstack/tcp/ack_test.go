package tcp_test

import (
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/tcp"
)

// In-order data that arrives in one receive batch is acknowledged once, at
// the end of the batch, for all of it (a stretch ACK), not once per two
// segments.
func TestOneACKPerReceiveBatch(t *testing.T) {
	f := newFx(t, tcp.Config{})
	_, iss := f.established(nil)
	seq := peerISN + 1
	f.batch(func() {
		for i := 0; i < 8; i++ {
			f.inject(seg{flags: tcp.FlagACK, seq: seq, ack: iss + 1, data: payload(1000)})
			seq += 1000
			if s := f.sent(); len(s) != 0 {
				t.Fatalf("segment %d: sent %s inside the batch", i, describe(s))
			}
		}
	})
	if a := f.one(tcp.FlagACK); a.Ack() != seq {
		t.Fatalf("the batch's ACK acknowledges %d, want %d", a.Ack(), seq)
	}
}

// Out-of-order data is acknowledged at once, even inside a batch: the
// duplicate ACKs are what the sender's loss detection counts.
func TestOutOfOrderIsAcknowledgedAtOnceInsideABatch(t *testing.T) {
	f := newFx(t, tcp.Config{})
	_, iss := f.established(nil)
	f.batch(func() {
		f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1001, ack: iss + 1, data: payload(1000)})
		if a := f.one(tcp.FlagACK); a.Ack() != peerISN+1 {
			t.Fatalf("dup ACK for %d, want %d", a.Ack(), peerISN+1)
		}
	})
}

// A batch never makes a connection wait more than 64 KB for its ACK.
func TestStretchACKIsCappedInsideABatch(t *testing.T) {
	f := newFx(t, tcp.Config{RcvBuf: 1 << 20})
	_, iss := f.established(&tcp.Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7})
	// A first segment, for an ACK that shows the peer our scaled window
	// (the SYN-ACK's cannot be scaled).
	seq := peerISN + 1
	f.inject(seg{flags: tcp.FlagACK, seq: seq, ack: iss + 1, data: payload(1460), sport: peerPort})
	seq += 1460
	f.advance(50 * time.Millisecond)
	if a := f.one(tcp.FlagACK); int(a.Window())<<7 < 100*1460 {
		t.Fatalf("window %d<<7 too small for the test", a.Window())
	}
	start := seq
	acks := 0
	f.batch(func() {
		for i := 0; i < 60; i++ {
			f.inject(seg{flags: tcp.FlagACK, seq: seq, ack: iss + 1, data: payload(1460)})
			seq += 1460
			for _, s := range f.sent() {
				acks++
				if got := s.Ack() - start; got < 64<<10 {
					t.Fatalf("ACK inside the batch after %d bytes, before 64 KB", got)
				}
			}
		}
	})
	if acks != 1 {
		t.Fatalf("%d ACKs inside a batch of %d KB, want 1", acks, 60*1460>>10)
	}
	if a := f.one(tcp.FlagACK); a.Ack() != seq {
		t.Fatalf("the batch's ACK acknowledges %d, want %d", a.Ack(), seq)
	}
}

// Reading does not send a window update while the peer still sees more
// than half of the largest window; once it sees half or less and reading
// doubles it, the update goes out.
func TestWindowUpdateOnlyWhenTheWindowDoubles(t *testing.T) {
	f := newFx(t, tcp.Config{RcvBuf: 8000})
	e, iss := f.established(nil)
	seq := peerISN + 1
	for i := 0; i < 6; i++ {
		f.inject(seg{flags: tcp.FlagACK, seq: seq, ack: iss + 1, data: payload(1000)})
		seq += 1000
	}
	f.sent()
	read := func() {
		b, err := e.Recv()
		if err != nil {
			t.Fatal(err)
		}
		f.link.Release(b.Frame)
	}
	// 6000 of 8000 held: the peer sees 2000 (a quarter). Reading one
	// segment (3000 on offer, less than twice 2000) sends nothing.
	read()
	f.none()
	// A second read: 4000 on offer, twice what the peer sees.
	read()
	if a := f.one(tcp.FlagACK); a.Ack() != seq || a.Window() != 4000 {
		t.Fatalf("window update: ack %d window %d, want %d and 4000", a.Ack(), a.Window(), seq)
	}
	// The peer now sees 4000, half of 8000; one more read (5000) does not
	// double it.
	read()
	f.none()
}
