package bpf

import (
	"bytes"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const xdpRedirect = 4 // XDP_REDIRECT

// testXSK is the smallest AF_XDP socket that can receive: a UMEM of a few
// frames, a fill ring and an RX ring, bound in copy mode to queue 0. It is
// built with raw syscalls so this package does not depend on xdp/.
type testXSK struct {
	fd        int
	umem      []byte
	fill, rx  []byte
	off       unix.XDPMmapOffsets
	ringSize  uint32
	frameSize uint32
}

func newTestXSK(t *testing.T, ifindex int) *testXSK {
	t.Helper()
	x := &testXSK{ringSize: 16, frameSize: 4096}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	x.fd = fd
	t.Cleanup(x.close)

	x.umem, err = unix.Mmap(-1, 0, int(x.ringSize*x.frameSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap umem: %v", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: uint64(len(x.umem)), Size: x.frameSize}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		t.Fatalf("XDP_UMEM_REG: %v", err)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, int(x.ringSize)); err != nil {
			t.Fatalf("ring option %d: %v", opt, err)
		}
	}
	optlen := uint32(unsafe.Sizeof(x.off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&x.off)), uintptr(unsafe.Pointer(&optlen)), 0); e != 0 {
		t.Fatalf("XDP_MMAP_OFFSETS: %v", e)
	}
	x.fill, err = unix.Mmap(fd, unix.XDP_UMEM_PGOFF_FILL_RING, int(x.off.Fr.Desc)+int(x.ringSize)*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("mmap fill ring: %v", err)
	}
	x.rx, err = unix.Mmap(fd, unix.XDP_PGOFF_RX_RING, int(x.off.Rx.Desc)+int(x.ringSize)*int(unsafe.Sizeof(unix.XDPDesc{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("mmap rx ring: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: 0}); err != nil {
		t.Fatalf("bind AF_XDP to ifindex %d queue 0: %v", ifindex, err)
	}
	return x
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

func (x *testXSK) close() {
	for _, m := range [][]byte{x.rx, x.fill, x.umem} {
		if m != nil {
			_ = unix.Munmap(m)
		}
	}
	_ = unix.Close(x.fd)
}

func ringWord(ring []byte, off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&ring[off])) }

// giveFrames puts every UMEM frame on the fill ring.
func (x *testXSK) giveFrames() {
	for i := uint32(0); i < x.ringSize; i++ {
		*(*uint64)(unsafe.Pointer(&x.fill[x.off.Fr.Desc+uint64(i)*8])) = uint64(i * x.frameSize)
	}
	atomic.StoreUint32(ringWord(x.fill, x.off.Fr.Producer), x.ringSize)
}

// received returns the frames on the RX ring (without consuming them).
func (x *testXSK) received() [][]byte {
	prod := atomic.LoadUint32(ringWord(x.rx, x.off.Rx.Producer))
	cons := atomic.LoadUint32(ringWord(x.rx, x.off.Rx.Consumer))
	var out [][]byte
	for i := cons; i != prod; i++ {
		d := (*unix.XDPDesc)(unsafe.Pointer(&x.rx[x.off.Rx.Desc+uint64(i%x.ringSize)*uint64(unsafe.Sizeof(unix.XDPDesc{}))]))
		out = append(out, x.umem[d.Addr:d.Addr+uint64(d.Len)])
	}
	return out
}

func TestRegisteredSocketGetsRedirect(t *testing.T) {
	inVethLab(t, func(lab *vethLab) {
		s, err := Load(Config{Mode: Shared})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		setupAddrPorts(t, s)

		x := newTestXSK(t, lab.ifindex)
		if err := s.RegisterSocket(0, x.fd); err != nil {
			t.Fatalf("RegisterSocket: %v", err)
		}
		run := func(frame []byte) uint32 {
			ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(lab.ifindex)}
			ret, err := s.Program().Run(&ebpf.RunOptions{Data: frame, Context: ctx})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			return ret
		}
		if ret := run(udpTo(ourAddr, 7)); ret != xdpRedirect {
			t.Errorf("ours with a socket: return %d, want XDP_REDIRECT", ret)
		}
		if ret := run(udpTo(ourAddr, 9)); ret != xdpPass {
			t.Errorf("unbound port with a socket: return %d, want XDP_PASS", ret)
		}
		if err := s.UnregisterSocket(0); err != nil {
			t.Fatal(err)
		}
		if ret := run(udpTo(ourAddr, 7)); ret != xdpPass {
			t.Errorf("ours after UnregisterSocket: return %d, want XDP_PASS", ret)
		}
	})
}

// TestLiveSteering attaches the program to one end of a veth pair, sends
// frames into the other end, and checks that exactly the frame that is ours
// lands on the AF_XDP socket's RX ring, byte for byte.
func TestLiveSteering(t *testing.T) {
	inVethLab(t, func(lab *vethLab) {
		s, err := Load(Config{Mode: Shared})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		setupAddrPorts(t, s)
		x := newTestXSK(t, lab.ifindex)
		x.giveFrames()
		if err := s.RegisterSocket(0, x.fd); err != nil {
			t.Fatal(err)
		}
		if err := s.Attach(lab.ifindex); err != nil {
			t.Fatal(err)
		}

		ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(ps)
		to := &unix.SockaddrLinklayer{Ifindex: lab.b.Attrs().Index, Protocol: 0x0008 /* htons(ETH_P_IP) */}
		send := func(f []byte) {
			copy(f[0:6], lab.a.Attrs().HardwareAddr)
			copy(f[6:12], lab.b.Attrs().HardwareAddr)
			if err := unix.Sendto(ps, f, 0, to); err != nil {
				t.Fatalf("send: %v", err)
			}
		}

		before := counters(t, s)
		notOurs := udpTo(ourAddr, 9)
		ours := udpTo(ourAddr, 7)
		ours[len(ours)-1] = 0x5a // a marker in the payload
		send(notOurs)
		send(ours)

		// veth delivers in the sender's context, so both frames have been
		// through the program when sendto returns; poll is a safety net.
		fds := []unix.PollFd{{Fd: int32(x.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 2000); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		got := x.received()
		if len(got) != 1 || !bytes.Equal(got[0], ours) {
			t.Fatalf("RX ring holds %d frames %x, want exactly %x", len(got), got, ours)
		}
		after := counters(t, s)
		if d := after.Redirected - before.Redirected; d != 1 {
			t.Errorf("Redirected moved by %d, want 1", d)
		}
		// The kernel may send IPv6 neighbour discovery of its own on
		// the new links; those count as Passed too.
		if d := after.Passed - before.Passed; d < 1 {
			t.Errorf("Passed moved by %d, want at least 1", d)
		}
	})
}

// xdpMD mirrors struct xdp_md, the context of an XDP program.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}
