package tcp_test

import (
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/tcp"
)

// closeActively runs an active close from ours, with the peer's FIN after
// our FIN's ACK, on connection i of a budgetFx; the connection is then in
// TIME-WAIT.
func (f *budgetFx) closeActively(i int) {
	f.t.Helper()
	port := uint16(peerPort + i)
	f.conns[i].Close()
	f.one(tcp.FlagFIN | tcp.FlagACK)
	f.inject(seg{flags: tcp.FlagACK | tcp.FlagFIN, seq: f.rcv[i], ack: f.iss[i] + 2, sport: port})
	if a := f.one(tcp.FlagACK); a.Ack() != f.rcv[i]+1 {
		f.t.Fatalf("ack %d of the peer's FIN, want %d", a.Ack(), f.rcv[i]+1)
	}
}

// A closed connection in TIME-WAIT is kept as a small entry, not as its
// endpoint, and still answers what RFC 9293 says it must.
func TestTimeWaitKeepsNoEndpoint(t *testing.T) {
	f := newBudgetFx(t, 0)
	f.connect()
	f.closeActively(0)
	c := f.h.s.TCP().Counters()
	if c.Conns != 0 || c.TimeWaitConns != 1 || f.h.s.TCP().Conns() != 1 {
		t.Fatalf("conns %d, TIME-WAIT entries %d, Conns() %d; want 0, 1, 1", c.Conns, c.TimeWaitConns, f.h.s.TCP().Conns())
	}
	// Data, or a late segment, is answered by an ACK of the FIN.
	f.inject(seg{flags: tcp.FlagACK, seq: f.rcv[0], ack: f.iss[0] + 2, data: []byte("late")})
	if a := f.one(tcp.FlagACK); a.Ack() != f.rcv[0]+1 || a.Seq() != f.iss[0]+2 {
		t.Fatalf("ACK seq %d ack %d from TIME-WAIT", a.Seq(), a.Ack())
	}
	// A RST at RCV.NXT ends it (as Linux does, RFC 1337 aside).
	f.inject(seg{flags: tcp.FlagRST, seq: f.rcv[0] + 1})
	f.none()
	if f.h.s.TCP().TimeWait() != 0 {
		t.Fatal("a RST at RCV.NXT did not end TIME-WAIT")
	}
}

// A SYN above RCV.NXT on a tuple in TIME-WAIT starts a new connection
// (RFC 9293 §3.6.1); one below it is answered by an ACK and changes
// nothing.
func TestTimeWaitAcceptsANewIncarnation(t *testing.T) {
	f := newBudgetFx(t, 0)
	f.connect()
	f.closeActively(0)
	f.inject(seg{flags: tcp.FlagSYN, seq: f.rcv[0] - 100})
	if a := f.one(tcp.FlagACK); a.Ack() != f.rcv[0]+1 {
		t.Fatalf("an old SYN got ack %d", a.Ack())
	}
	f.inject(seg{flags: tcp.FlagSYN, seq: f.rcv[0] + 100000})
	sa := f.one(tcp.FlagSYN | tcp.FlagACK)
	if sa.Ack() != f.rcv[0]+100001 {
		t.Fatalf("SYN-ACK acks %d", sa.Ack())
	}
	if tw := f.h.s.TCP().TimeWait(); tw != 0 {
		t.Fatalf("%d TIME-WAIT entries after the new incarnation", tw)
	}
}

// TIME-WAIT is bounded: past MaxTimeWait a closing connection skips it.
func TestTimeWaitIsBounded(t *testing.T) {
	f := &budgetFx{fx: newFx(t, tcp.Config{MaxTimeWait: 2, MSL: time.Second})}
	f.l = f.listen(64)
	for i := 0; i < 3; i++ {
		f.connect()
		f.closeActively(i)
	}
	c := f.h.s.TCP().Counters()
	if c.TimeWaitConns != 2 || c.TimeWaitOverflow != 1 || c.Conns != 0 {
		t.Fatalf("TIME-WAIT %d, overflow %d, conns %d; want 2, 1, 0", c.TimeWaitConns, c.TimeWaitOverflow, c.Conns)
	}
	f.advance(2 * time.Second)
	if tw := f.h.s.TCP().TimeWait(); tw != 0 {
		t.Fatalf("%d TIME-WAIT entries after 2*MSL", tw)
	}
}
