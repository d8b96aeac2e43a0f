package xdp

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// redirectAll attaches (generic mode) to ifindex a minimal XDP program that
// redirects every frame to the socket in XSKMAP slot rx_queue_index, or
// passes it when the slot is empty. Package bpf owns the real steering
// program; this one only exists to feed the RX ring in tests.
func redirectAll(t *testing.T, ifindex int, s *Socket) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatalf("XSKMAP: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Put(uint32(0), uint32(s.FD())); err != nil {
		t.Fatalf("insert socket into XSKMAP: %v", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // ctx->rx_queue_index
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS when the slot is empty
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load XDP program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPGenericMode})
	if err != nil {
		t.Fatalf("attach XDP program: %v", err)
	}
	t.Cleanup(func() { l.Close() })
}

// TestSocketReceives sends a frame from the veth peer with a packet socket
// and reads it from the RX ring: Poll wakes, the descriptor points at one of
// the frames given on the fill ring, and the bytes match.
func TestSocketReceives(t *testing.T) {
	l := newLab(t)
	umem := mapUmem(t)
	s := openOrFail(t, Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize,
		FillSize: 64, CompletionSize: 64, RXSize: 64, TXSize: 64})

	// Fill before attaching, so no frame finds an empty fill ring.
	idx, got := s.Fill().Reserve(16)
	if got != 16 {
		t.Fatalf("Fill Reserve(16) got %d", got)
	}
	for i := uint32(0); i < got; i++ {
		s.Fill().Set(idx+i, uint64(16+i)*testFrameSize)
	}
	s.Fill().Submit(got)
	if err := s.WakeFill(); err != nil {
		t.Fatal(err)
	}
	redirectAll(t, l.a.Attrs().Index, s)

	const etherType = 0x88B6 // IEEE 802 local experimental 2
	ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(ps)
	frame := make([]byte, 60)
	copy(frame[0:6], []byte{0x02, 0, 0, 0, 0, 0xaa})
	copy(frame[6:12], []byte{0x02, 0, 0, 0, 0, 0xbb})
	binary.BigEndian.PutUint16(frame[12:14], etherType)
	copy(frame[14:], "demixdp xdp receive test")
	to := &unix.SockaddrLinklayer{Ifindex: l.b.Attrs().Index, Halen: 6}
	if err := unix.Sendto(ps, frame, 0, to); err != nil {
		t.Fatalf("send from peer: %v", err)
	}

	ok, err := s.Poll(2 * time.Second)
	if err != nil || !ok {
		st, _ := s.Stats()
		t.Fatalf("Poll = %v, %v; want readable. stats %+v", ok, err, st)
	}
	// Other traffic (IPv6 router solicitations...) may arrive too: look for ours.
	found := false
	deadline := time.Now().Add(2 * time.Second)
	for !found && time.Now().Before(deadline) {
		ridx, n := s.RX().Peek(64)
		for i := uint32(0); i < n; i++ {
			d := s.RX().Get(ridx + i)
			if d.Addr < 16*testFrameSize || d.Addr+uint64(d.Len) > 32*testFrameSize {
				t.Fatalf("RX descriptor %+v outside the frames given on the fill ring", d)
			}
			if bytes.Equal(umem[d.Addr:d.Addr+uint64(d.Len)], frame) {
				found = true
			}
		}
		s.RX().Release(n)
		if n == 0 {
			s.Poll(10 * time.Millisecond)
		}
	}
	if !found {
		t.Fatal("the frame sent from the peer never appeared on the RX ring")
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RxInvalidDescs != 0 || st.RxDropped != 0 || st.RxFillRingEmptyDescs != 0 {
		t.Errorf("stats %+v, want no RX drops", st)
	}
}
