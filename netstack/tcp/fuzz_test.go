package tcp_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/tcp"
)

// FuzzSegment feeds arbitrary bytes as a TCP segment to a stack that has a
// listener and an established connection with data in flight. The first
// input byte steers the segment at the connection, the listener or a
// closed port, and the second decides whether its sequence numbers are
// rebased near the connection's and its checksum fixed, so the fuzzer gets
// past the cheap checks. Nothing may panic, the frame ownership rules must
// hold, the connection's queues must stay sane, and once everything is
// closed every frame must be back in the pool.
func FuzzSegment(f *testing.F) {
	f.Add([]byte{0, 3, 0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0, 'h', 'i'})
	f.Add([]byte{1, 1, 0x9c, 0x41, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0xb4})
	f.Add([]byte{0, 3, 0x9c, 0x40, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x04, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) < 2 || len(raw) > 1400 {
			return
		}
		x := newFx(t, tcp.Config{MaxSynBacklog: 2})
		e, iss := x.established(&tcp.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSVal: 1, HasWScale: true, WScale: 2})
		e.SetNoDelay(true)
		x.push(e, payload(100), 1)
		x.push(e, payload(100), 2)
		x.sent()
		mode, fix := raw[0], raw[1]
		l4 := append([]byte(nil), raw[2:]...)
		if len(l4) >= tcp.HeaderLen {
			switch mode % 3 {
			case 0:
				binary.BigEndian.PutUint16(l4[0:], peerPort)
				binary.BigEndian.PutUint16(l4[2:], ourPort)
			case 1:
				binary.BigEndian.PutUint16(l4[2:], ourPort)
			}
			if fix&1 != 0 {
				seq := binary.BigEndian.Uint32(l4[4:])
				ack := binary.BigEndian.Uint32(l4[8:])
				binary.BigEndian.PutUint32(l4[4:], uint32(peerISN)+1+seq%4096-2048)
				binary.BigEndian.PutUint32(l4[8:], uint32(iss)+1+ack%512-256)
			}
			if fix&2 != 0 {
				h := tcp.Header(l4)
				h.SetChecksum(h.ComputeChecksum(peerIP, ourIP))
			}
		}
		x.injectL4(l4)
		x.sent()
		for i := 0; i < 3; i++ {
			x.advance(700 * time.Millisecond)
			x.sent()
		}
		if e.Readable() < 0 || e.Unacked() < 0 || e.Unacked() > 200 {
			t.Fatalf("queues: readable %d unacked %d", e.Readable(), e.Unacked())
		}
		n := 0
		for {
			b, err := e.Recv()
			if err != nil {
				break
			}
			if b.Off < 0 || b.Len <= 0 || b.Off+b.Len > len(b.Data) {
				t.Fatalf("Recv view out of its frame: off %d len %d", b.Off, b.Len)
			}
			n += b.Len
			x.link.Release(b.Frame)
		}
		if n > 1400 {
			t.Fatalf("received %d bytes from one segment", n)
		}
		x.h.s.TCP().Close()
		x.link.Complete()
		if err := x.link.Check(); err != nil {
			t.Fatal(err)
		}
		if free := x.link.Free(); free != 256 {
			t.Fatalf("%d frames leaked", 256-free)
		}
	})
}
