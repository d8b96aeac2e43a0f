package main

// Privileged test of the stream mode: the real binary in namespace B
// streaming to the Linux kernel in namespace A, which counts the frames
// (the veth's own counters) and checks the bytes of those its socket gets.

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// vethStats returns IfA's received packets and IfB's dropped transmissions:
// a frame IfB sends is either handed to IfA (and counted there) or dropped
// (and counted on IfB).
func vethStats(t *testing.T, lab *vethlab.Lab) (rxA, dropB uint64) {
	t.Helper()
	get := func(run func(func() error) error, name string) *netlink.LinkStatistics {
		var st *netlink.LinkStatistics
		if err := run(func() error {
			l, err := netlink.LinkByName(name)
			if err == nil {
				st = l.Attrs().Statistics
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	return get(lab.RunInA, lab.IfA).RxPackets, get(lab.RunInB, lab.IfB).TxDropped
}

func TestStreamToKernel(t *testing.T) {
	priv.Require(t, "AF_XDP client on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	dst := netip.AddrPortFrom(lab.AddrA.Addr(), 7777)
	var sock *net.UDPConn
	if err := lab.RunInA(func() (err error) {
		sock, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if rc, err := sock.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20) })
	}
	type tally struct{ good, bad, notStream int }
	done := make(chan tally, 1)
	go func() {
		var k tally
		buf := make([]byte, 2048)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				done <- k
				return
			}
			p := buf[:n]
			switch _, ok := cli.StreamSeq(p); {
			case !ok:
				k.notStream++
			case n == 1472 && cli.StreamIntact(p):
				k.good++
			default:
				k.bad++
			}
		}
	}()

	const n = 50000
	rx0, drop0 := vethStats(t, lab)
	out, stderr, code := labtest.Run(t, lab.CommandB(labtest.Build(t, "."), "-iface", lab.IfB, "-src", lab.AddrB.Addr().String()+":9000",
		"-dst", dst.String(), "-dstmac", lab.MACA.String(), "-stream", "-size", "1472", "-n", strconv.Itoa(n)))
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	rx1, drop1 := vethStats(t, lab)
	// The socket has what it could keep; read it dry, then stop.
	sock.SetReadDeadline(time.Now().Add(time.Second))
	k := <-done
	t.Logf("client: %s", strings.TrimSpace(string(out)))
	t.Logf("veth: IfA received %d, IfB dropped %d; socket: %d intact, %d bad, %d other", rx1-rx0, drop1-drop0, k.good, k.bad, k.notStream)

	c := labtest.ParseFloats(string(out))
	if !strings.HasPrefix(string(out), "stream ") || c["sent"] != n || c["completed"] != n || c["payload_bytes"] != 1472 || c["gbps"] <= 0 {
		t.Fatalf("summary: %s", out)
	}
	// Every frame reached the other end or was counted as dropped on the
	// way; a few more frames (an ARP exchange) may pass too.
	if got := (rx1 - rx0) + (drop1 - drop0); got < n || got > n+8 {
		t.Errorf("IfA received %d and IfB dropped %d: %d frames, want %d (+ARP)", rx1-rx0, drop1-drop0, got, n)
	}
	if k.good == 0 || k.bad != 0 || k.notStream != 0 || k.good > n {
		t.Errorf("socket got %d intact, %d bad and %d foreign datagrams of %d sent", k.good, k.bad, k.notStream, n)
	}
}

func TestStreamStampKeepsChecksums(t *testing.T) {
	tm := newTemplate(testEndpoints(), 1472)
	buf := make([]byte, 2048)
	copy(buf, tm.frame)
	for _, seq := range []uint64{0, 1, 0xffff, 1 << 40} {
		tm.stampHead(buf, seq, cli.StreamMark)
		f := buf[:len(tm.frame)]
		ip := f[ethLen:]
		ps := sum(ip[12:20], 0) + protoUDP + uint32(len(f)-ethLen-ipLen)
		if got := fold(sum(f[ethLen+ipLen:], ps)); got != 0 {
			t.Fatalf("seq %d: UDP checksum does not verify (%#x)", seq, got)
		}
		got, ok := cli.StreamSeq(f[hdrLen:])
		if !ok || got != seq || !cli.StreamIntact(f[hdrLen:]) {
			t.Fatalf("seq %d: payload is not the stream format (seq %d ok %v)", seq, got, ok)
		}
	}
}
