package xdp

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/internal/ethtool"
	"github.com/demixdp/demixdp/netstack/checksum"
)

func TestPutTxChecksumLayout(t *testing.T) {
	m := make([]byte, TxMetadataLen)
	for i := range m {
		m[i] = 0xee
	}
	PutTxChecksum(m, 34, 6)
	if f := binary.NativeEndian.Uint64(m[0:]); f != unix.XDP_TXMD_FLAGS_CHECKSUM {
		t.Fatalf("flags %#x", f)
	}
	if s, o := binary.NativeEndian.Uint16(m[8:]), binary.NativeEndian.Uint16(m[10:]); s != 34 || o != 6 {
		t.Fatalf("csum_start %d, csum_offset %d", s, o)
	}
	for i := 12; i < TxMetadataLen; i++ {
		if m[i] != 0 {
			t.Fatalf("byte %d is %#x, want 0 (padding, launch_time)", i, m[i])
		}
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("kernel release %q", rel)
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || ma == major && mi >= minor
}

// setTxChecksumming sets a device's tx-checksumming (ETHTOOL_STXCSUM) in
// the calling thread's namespace.
func setTxChecksumming(t *testing.T, name string, on bool) {
	t.Helper()
	fd, err := ethtool.Socket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var v uint32
	if on {
		v = 1
	}
	if _, err := ethtool.Value(fd, name, unix.ETHTOOL_STXCSUM, v); err != nil {
		t.Fatalf("ETHTOOL_STXCSUM %s: %v", name, err)
	}
}

// TestTxChecksumRequest: a UMEM registered with TX metadata takes a UDP
// datagram whose checksum field holds only the pseudo-header's sum, with
// a checksum request in front of it; in copy mode, on a device with
// tx-checksumming off, the kernel completes the checksum and the peer
// receives the datagram with the right one.
func TestTxChecksumRequest(t *testing.T) {
	l := newLab(t)
	setTxChecksumming(t, l.a.Attrs().Name, false)
	umem := mapUmem(t)
	s := openOrFail(t, Config{Ifindex: l.a.Attrs().Index, Umem: umem, FrameSize: testFrameSize, Mode: ModeCopy, TxMetadata: true})
	if s.TxMetadataLen() != TxMetadataLen {
		if kernelAtLeast(t, 6, 11) {
			t.Fatalf("TxMetadataLen %d on a kernel with XDP_UMEM_TX_METADATA_LEN", s.TxMetadataLen())
		}
		t.Skipf("kernel before 6.11: no AF_XDP TX metadata (TxMetadataLen %d)", s.TxMetadataLen())
	}

	ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(ps)
	if err := unix.Bind(ps, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: l.b.Attrs().Index}); err != nil {
		t.Fatalf("bind packet socket: %v", err)
	}

	// A UDP datagram 198.51.100.1:4000 -> 198.51.100.2:9, 64 bytes into
	// frame 5 (the metadata goes in the 24 bytes before it).
	const addr, l4 = 5*testFrameSize + 64, 14 + 20
	payload := []byte("demixdp: checksum left to the kernel")
	pkt := umem[addr : addr+l4+8+len(payload)]
	copy(pkt[0:6], []byte{0x02, 0, 0, 0, 0, 0xbb})
	copy(pkt[6:12], []byte{0x02, 0, 0, 0, 0, 0xaa})
	binary.BigEndian.PutUint16(pkt[12:], unix.ETH_P_IP)
	src, dst := [4]byte{198, 51, 100, 1}, [4]byte{198, 51, 100, 2}
	ip := pkt[14:l4]
	ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)-14))
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum.Checksum(ip, 0))
	u := pkt[l4:]
	binary.BigEndian.PutUint16(u[0:], 4000)
	binary.BigEndian.PutUint16(u[2:], 9)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	binary.BigEndian.PutUint16(u[6:], checksum.Fold(checksum.PseudoIPv4(src, dst, unix.IPPROTO_UDP, uint16(len(u)))))
	copy(u[8:], payload)
	PutTxChecksum(umem[addr-TxMetadataLen:addr], l4, 6)

	idx, got := s.TX().Reserve(1)
	if got != 1 {
		t.Fatalf("TX Reserve got %d", got)
	}
	s.TX().Set(idx, unix.XDPDesc{Addr: addr, Len: uint32(len(pkt)), Options: unix.XDP_TX_METADATA})
	s.TX().Submit(1)
	awaitCompletion(t, s, addr)
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(ps, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, _, err := unix.Recvfrom(ps, buf, 0)
		if err != nil {
			st, _ := s.Stats()
			t.Fatalf("receive on peer: %v (socket stats %+v)", err, st)
		}
		r := buf[:n] // the whole Ethernet frame
		if n != len(pkt) || r[14+9] != unix.IPPROTO_UDP || binary.BigEndian.Uint16(r[l4:]) != 4000 {
			if time.Now().After(deadline) {
				t.Fatal("the datagram did not arrive")
			}
			continue // something else of the kernel's
		}
		ru := r[l4:]
		if sum := checksum.Fold(checksum.Sum(ru, checksum.PseudoIPv4(src, dst, unix.IPPROTO_UDP, uint16(len(ru))))); sum != 0xffff {
			t.Fatalf("the datagram arrived with checksum %#04x, which does not verify (sum %#04x)", binary.BigEndian.Uint16(ru[6:]), sum)
		}
		if string(ru[8:]) != string(payload) {
			t.Fatalf("payload %q", ru[8:])
		}
		break
	}
	if st, _ := s.Stats(); st.TxInvalidDescs != 0 {
		t.Fatalf("TxInvalidDescs = %d", st.TxInvalidDescs)
	}
}
