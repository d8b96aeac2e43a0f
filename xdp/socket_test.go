package xdp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/internal/priv"
)

// lab is a veth pair (a, b) inside a network namespace the test created.
// The calling goroutine stays locked to a thread inside that namespace until
// the test ends, so sockets the test opens live there too.
type lab struct {
	a, b netlink.Link
}

func newLab(t testing.TB) *lab {
	t.Helper()
	priv.Require(t, "AF_XDP on a veth in a netns")
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	tag := hex.EncodeToString(rnd[:])
	nsName := "dxx" + tag

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.NewNamed(nsName) // also moves this thread into it
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create netns %s: %v", nsName, err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it when the
			// goroutine exits instead of reusing a thread in the wrong netns.
			t.Errorf("restore netns: %v", err)
		} else {
			runtime.UnlockOSThread()
		}
		orig.Close()
		ns.Close()
		if err := netns.DeleteNamed(nsName); err != nil {
			t.Errorf("delete netns %s: %v", nsName, err)
		}
	})

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", nsName, err)
	}
	defer h.Close()
	va := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dxa" + tag}, PeerName: "dxb" + tag}
	if err := h.LinkAdd(va); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	l := &lab{}
	for _, p := range []struct {
		name string
		dst  *netlink.Link
	}{{"dxa" + tag, &l.a}, {"dxb" + tag, &l.b}} {
		link, err := h.LinkByName(p.name)
		if err != nil {
			t.Fatalf("find %s: %v", p.name, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatalf("set %s up: %v", p.name, err)
		}
		*p.dst = link
	}
	return l
}

const (
	testFrames    = 64
	testFrameSize = 2048
)

func mapUmem(t testing.TB) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, testFrames*testFrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap UMEM: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

func openOrFail(t testing.TB, cfg Config) *Socket {
	t.Helper()
	s, err := Open(cfg)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		priv.Unavailable(t, "kernel without AF_XDP: "+err.Error())
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSocketOnVeth(t *testing.T) {
	l := newLab(t)
	umem := mapUmem(t)
	s := openOrFail(t, Config{
		Ifindex:   l.a.Attrs().Index,
		Umem:      umem,
		FrameSize: testFrameSize,
		FillSize:  64, CompletionSize: 64, RXSize: 64, TXSize: 64,
	})
	if s.ZeroCopy() {
		t.Error("ZeroCopy() = true on a veth, want copy mode")
	}
	if !s.NeedWakeupEnabled() {
		t.Error("need_wakeup not enabled by default")
	}
	if s.FD() < 0 {
		t.Errorf("FD() = %d", s.FD())
	}
	if s.Fill().Size() != 64 || s.Completion().Size() != 64 || s.RX().Size() != 64 || s.TX().Size() != 64 {
		t.Errorf("ring sizes %d %d %d %d, want 64", s.Fill().Size(), s.Completion().Size(), s.RX().Size(), s.TX().Size())
	}
	if _, err := s.Stats(); err != nil {
		t.Errorf("Stats: %v", err)
	}

	// Give the kernel the first half of the frames to receive into.
	idx, got := s.Fill().Reserve(32)
	if got != 32 {
		t.Fatalf("Fill Reserve(32) got %d", got)
	}
	for i := uint32(0); i < got; i++ {
		s.Fill().Set(idx+i, uint64(i)*testFrameSize)
	}
	s.Fill().Submit(got)
	if f := s.Fill().Free(); f != 32 {
		t.Errorf("Fill Free after submitting 32 of 64 = %d", f)
	}
	if err := s.WakeFill(); err != nil {
		t.Errorf("WakeFill: %v", err)
	}

	// No XDP program steers anything to the socket: nothing to read.
	if ok, err := s.Poll(0); ok || err != nil {
		t.Errorf("Poll(0) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.Poll(30 * time.Millisecond); ok || err != nil {
		t.Errorf("Poll(30ms) = %v, %v; want false, nil", ok, err)
	}
	if _, got := s.RX().Peek(1); got != 0 {
		t.Errorf("RX has %d descriptors without traffic", got)
	}

	allocs := testing.AllocsPerRun(100, func() {
		_ = s.Kick()
		_ = s.WakeFill()
		_, _ = s.Poll(0)
	})
	if allocs != 0 {
		t.Errorf("Kick/WakeFill/Poll allocate %.1f times", allocs)
	}

	mapsOpen, fdsOpen := countMaps(t), countFDs(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if maps, fds := countMaps(t), countFDs(t); maps != mapsOpen-4 || fds != fdsOpen-1 {
		t.Errorf("Close left %d of 4 ring mappings and %d of 1 fd", maps-(mapsOpen-4), fds-(fdsOpen-1))
	}
	if s.FD() != -1 {
		t.Errorf("FD after Close = %d", s.FD())
	}
	if err := s.Kick(); !errors.Is(err, ErrClosed) {
		t.Errorf("Kick after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Poll(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Poll after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v, want ErrClosed", err)
	}
	if _, got := s.Fill().Reserve(1); got != 0 {
		t.Errorf("Fill Reserve after Close got %d", got)
	}
	if _, got := s.RX().Peek(1); got != 0 {
		t.Errorf("RX Peek after Close got %d", got)
	}
}

// TestSocketTransmits sends one frame through the TX ring of a socket on one
// veth end and receives it with a packet socket on the other end, then finds
// the frame's address on the completion ring.
func TestSocketTransmits(t *testing.T) {
	l := newLab(t)
	umem := mapUmem(t)
	s := openOrFail(t, Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize})

	const etherType = 0x88B5 // IEEE 802 local experimental
	ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(etherType)))
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(ps)
	if err := unix.Bind(ps, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: l.b.Attrs().Index}); err != nil {
		t.Fatalf("bind packet socket: %v", err)
	}

	const addr = 5 * testFrameSize
	frame := umem[addr : addr+64]
	copy(frame[0:6], []byte{0x02, 0, 0, 0, 0, 0xbb})
	copy(frame[6:12], []byte{0x02, 0, 0, 0, 0, 0xaa})
	binary.BigEndian.PutUint16(frame[12:14], etherType)
	copy(frame[14:], "demixdp xdp transmit test")

	idx, got := s.TX().Reserve(1)
	if got != 1 {
		t.Fatalf("TX Reserve got %d", got)
	}
	s.TX().Set(idx, unix.XDPDesc{Addr: addr, Len: uint32(len(frame))})
	s.TX().Submit(1)
	if !s.TX().NeedWakeup() {
		t.Log("TX ring does not ask for a wakeup (unexpected in copy mode)")
	}
	awaitCompletion(t, s, addr)

	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(ps, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, _, err := unix.Recvfrom(ps, buf, 0)
	if err != nil {
		t.Fatalf("receive on peer: %v", err)
	}
	if !bytes.Equal(buf[:n], frame) {
		t.Errorf("peer received %x\nwant %x", buf[:n], frame)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.TxInvalidDescs != 0 {
		t.Errorf("TxInvalidDescs = %d", st.TxInvalidDescs)
	}
}

// awaitCompletion kicks s until the completion ring returns the one frame
// at addr it transmitted (the kernel is done with it), failing after 2 s
// (a hang, not a timing).
func awaitCompletion(t *testing.T, s *Socket, addr uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err := s.Kick(); err != nil {
			t.Fatalf("Kick: %v", err)
		}
		if cidx, n := s.Completion().Peek(1); n == 1 {
			if a := s.Completion().Get(cidx); a != addr {
				t.Errorf("completion address %d, want %d", a, addr)
			}
			s.Completion().Release(1)
			return
		}
		if time.Now().After(deadline) {
			st, _ := s.Stats()
			t.Fatalf("no completion within 2s; stats %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSocketSharedUmem(t *testing.T) {
	l := newLab(t)
	umem := mapUmem(t)
	owner := openOrFail(t, Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize})

	// Another device: own fill and completion rings over the same UMEM.
	other := openOrFail(t, Config{Ifindex: l.b.Attrs().Index, Shared: owner, FillSize: 128})
	if other.Fill() == owner.Fill() || other.Completion() == owner.Completion() {
		t.Error("socket on another device shares the owner's fill/completion rings")
	}
	if other.Fill().Size() != 128 {
		t.Errorf("own fill ring size %d, want 128", other.Fill().Size())
	}
	if other.ZeroCopy() != owner.ZeroCopy() || other.NeedWakeupEnabled() != owner.NeedWakeupEnabled() {
		t.Error("shared socket's mode differs from the owner's")
	}

	// Same device and queue: the kernel uses the owner's rings.
	same := openOrFail(t, Config{Ifindex: l.a.Attrs().Index, Shared: owner})
	if same.Fill() != owner.Fill() || same.Completion() != owner.Completion() {
		t.Error("socket on the owner's queue does not use the owner's fill/completion rings")
	}
	if same.RX() == owner.RX() {
		t.Error("socket on the owner's queue has no RX ring of its own")
	}
	if err := same.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got := owner.Fill().Reserve(1); got != 1 {
		t.Error("closing a sharer detached the owner's fill ring")
	}
}

func TestOpenErrors(t *testing.T) {
	l := newLab(t)
	umem := mapUmem(t)
	base := Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize}
	fdsBefore, mapsBefore := countFDs(t), countMaps(t)

	_, err := Open(Config{Ifindex: 0, Umem: umem, FrameSize: testFrameSize})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ifindex 0: %v, want ErrInvalidConfig", err)
	}
	bad := base
	bad.Ifindex = 1 << 30 // no such device
	_, err = Open(bad)
	if !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "bind") {
		t.Errorf("missing ifindex: %v, want a bind error wrapping ENODEV", err)
	}
	t.Logf("missing ifindex: %v", err)
	bad = base
	bad.RXSize = 100
	if _, err = Open(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ring size 100: %v, want ErrInvalidConfig", err)
	}
	bad = base
	bad.FrameSize = 1000
	if _, err = Open(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("frame size 1000: %v, want ErrInvalidConfig", err)
	}
	bad = base
	bad.Umem = umem[1:] // not page aligned: the kernel refuses the UMEM
	_, err = Open(bad)
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "register UMEM") {
		t.Errorf("unaligned UMEM: %v, want a register-UMEM error wrapping EINVAL", err)
	}
	bad = base
	bad.QueueID = 7 // a veth has one queue
	if _, err = Open(bad); err == nil || !strings.Contains(err.Error(), "bind") {
		t.Errorf("queue 7 on a veth: %v, want a bind error", err)
	}
	zc := base
	zc.Mode = ModeZeroCopy
	if s, err := Open(zc); err == nil {
		s.Close()
		t.Error("ModeZeroCopy on a veth succeeded; veth has no zero-copy support")
	} else {
		t.Logf("zero-copy on veth: %v", err)
	}
	// Every failed Open closed what it opened.
	if fds, maps := countFDs(t), countMaps(t); fds != fdsBefore || maps != mapsBefore {
		t.Errorf("after failed Opens: %d fds (was %d), %d mappings (was %d)", fds, fdsBefore, maps, mapsBefore)
	}
	// After all these failures a normal open still works (nothing leaked
	// that keeps the queue busy).
	s := openOrFail(t, base)
	if s.ZeroCopy() {
		t.Error("copy mode expected")
	}
	if maps := countMaps(t); maps != mapsBefore+4 {
		t.Errorf("an open socket has %d ring mappings, want 4", maps-mapsBefore)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// countMaps counts the process's mappings of socket memory (AF_XDP rings).
func countMaps(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "socket:[")
}

// BenchmarkTXBatchKick transmits batches of 64 60-byte frames from a
// copy-mode socket on a veth: reserve, set, submit, one Kick, then reap the
// completions. One op is one batch.
func BenchmarkTXBatchKick(b *testing.B) {
	l := newLab(b)
	umem := mapUmem(b)
	s := openOrFail(b, Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize,
		FillSize: 64, CompletionSize: 64, RXSize: 64, TXSize: 64})
	for i := 0; i < testFrames; i++ {
		f := umem[i*testFrameSize:]
		copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 0xbb})
		copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 0xaa})
		binary.BigEndian.PutUint16(f[12:14], 0x88B5)
	}
	tx, comp := s.TX(), s.Completion()
	inFlight := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		idx, got := tx.Reserve(testFrames - inFlight)
		for i := uint32(0); i < got; i++ {
			tx.Set(idx+i, unix.XDPDesc{Addr: uint64((idx+i)%testFrames) * testFrameSize, Len: 60})
		}
		tx.Submit(got)
		inFlight += got
		if err := s.Kick(); err != nil {
			b.Fatal(err)
		}
		_, n := comp.Peek(64)
		comp.Release(n)
		inFlight -= n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/frame")
}

// A queue held by another socket: Open returns EBUSY at once without
// BusyWait, after retrying with it, and takes the queue once its holder
// closes while Open waits.
func TestOpenBusyWait(t *testing.T) {
	l := newLab(t)
	cfg := Config{Ifindex: l.a.Attrs().Index, Umem: mapUmem(t), FrameSize: testFrameSize}
	holder := openOrFail(t, cfg)

	second := cfg
	second.Umem = mapUmem(t)
	if s, err := Open(second); !errors.Is(err, unix.EBUSY) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("queue held by another socket: %v, want EBUSY", err)
	}
	second.BusyWait = 100 * time.Millisecond
	start := time.Now()
	if s, err := Open(second); !errors.Is(err, unix.EBUSY) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("with BusyWait, queue held throughout: %v, want EBUSY", err)
	}
	if waited := time.Since(start); waited < second.BusyWait {
		t.Errorf("gave up after %v, before BusyWait %v", waited, second.BusyWait)
	}

	// The holder closes while Open waits: the kernel's deferred release
	// frees the queue, and Open takes it. The wait is generous: nothing
	// here depends on how long the release takes, short of a minute.
	closed := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		closed <- holder.Close()
	}()
	second.BusyWait = time.Minute
	s, err := Open(second)
	if err != nil {
		t.Fatalf("Open while the holder closes: %v", err)
	}
	s.Close()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
