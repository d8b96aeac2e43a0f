package libos_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/netstack/checksum"
	"github.com/demixdp/demixdp/netstack/nic"
)

// csumSink is a capture sink that checks the UDP and TCP checksum of every
// outgoing frame it is given.
type csumSink struct{ good, bad atomic.Int64 }

func (s *csumSink) CaptureFrame(f *libos.CapturedFrame) error {
	if f.Dir != libos.Outbound {
		return nil
	}
	start, _, ok := nic.L4Checksum(f.Data)
	if !ok {
		return nil
	}
	ip := f.Data[14:]
	var src, dst [4]byte
	copy(src[:], ip[12:16])
	copy(dst[:], ip[16:20])
	l4 := f.Data[start : 14+int(binary.BigEndian.Uint16(ip[2:]))]
	if checksum.Fold(checksum.Sum(l4, checksum.PseudoIPv4(src, dst, ip[9], uint16(len(l4))))) == 0xffff {
		s.good.Add(1)
	} else {
		s.bad.Add(1)
	}
	return nil
}

// TestTxChecksumOffload: with Config.TxChecksum kernel, on a veth whose
// offloads are off (the lab's default), the libOS leaves its UDP and TCP
// checksums to the kernel, and the kernel peer receives every byte with no
// checksum error. By default on a veth, with the libOS's end's
// tx-checksumming on (which a veth would pass on to its peer unfinished),
// and with TxChecksum software, the libOS computes them, with the same
// result. (The kernel end's offloads stay off: its partial checksums would
// reach the libOS's XDP program as they are, which no AF_XDP receiver can
// verify.) A capture records every outgoing frame with its checksum
// complete in all of them.
func TestTxChecksumOffload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		txCsumA bool // tx-checksumming of the libOS's end
		mode    libos.TxChecksum
		want    bool
	}{
		{"kernel completes", false, libos.TxChecksumKernel, true},
		{"auto on a veth", false, libos.TxChecksumAuto, false},
		{"virtual device with tx-checksumming on", true, libos.TxChecksumKernel, false},
		{"software", false, libos.TxChecksumSoftware, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := vethlab.ForTest(t, vethlab.Config{Name: "tcs"})
			if tc.txCsumA {
				if err := lab.SetTxChecksumA(true); err != nil {
					t.Fatal(err)
				}
			}
			sink := &csumSink{}
			cfg := libos.Config{Interface: lab.IfA, Addr: lab.AddrA, TxChecksum: tc.mode, Capture: sink}
			var lib *libos.LibOS
			if err := lab.RunInA(func() (err error) { lib, err = libos.New(cfg); return err }); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lib.Close() })
			on, why := lib.TxChecksumOffload()
			t.Logf("tx checksum: %v, %s", on, why)
			if on != tc.want {
				t.Fatalf("TxChecksumOffload = %v (%s), want %v", on, why, tc.want)
			}

			// UDP: every size from 1 byte to a full MTU's payload in
			// steps, random bytes, echoed back unchanged.
			srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
			stop := startEcho(t, lib, srv)
			c := dialB(t, lab, srv)
			rng := rand.New(rand.NewPCG(3, 4))
			buf := make([]byte, 2048)
			datagrams := 0
			for size := 1; size <= 1472; size += 7 {
				p := make([]byte, size)
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
				if _, err := c.Write(p); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("%d-byte datagram: no echo: %v", size, err)
				}
				if !bytes.Equal(buf[:n], p) {
					t.Fatalf("%d-byte datagram: echo differs", size)
				}
				datagrams++
			}
			stop()

			// TCP: 4 MB each way through an echo, SHA-256 compared.
			tsrv := netip.AddrPortFrom(lab.AddrA.Addr(), 8)
			tstop := startTCPEcho(t, lib, tsrv)
			streamEcho(t, dialTCPB(t, lab, tsrv), 4<<20, 5)
			tstop()

			udpErr := kernelSNMP(t, lab.RunInB, "Udp", "InCsumErrors")
			tcpErr := kernelSNMP(t, lab.RunInB, "Tcp", "InCsumErrors")
			if udpErr != 0 || tcpErr != 0 {
				t.Fatalf("the kernel peer counted checksum errors: Udp %d, Tcp %d", udpErr, tcpErr)
			}
			cs, err := lib.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if cs.XDP.TxInvalidDescs != 0 {
				t.Fatalf("the kernel refused %d TX descriptors", cs.XDP.TxInvalidDescs)
			}
			if tc.want && cs.TxCsumOffloads < uint64(2*datagrams) {
				t.Fatalf("%d frames sent with an offload request, want at least the %d echoes and as many TCP segments", cs.TxCsumOffloads, datagrams)
			}
			if !tc.want && cs.TxCsumOffloads != 0 {
				t.Fatalf("%d frames sent with an offload request, want none", cs.TxCsumOffloads)
			}
			// The capture records every frame with its checksum complete,
			// whoever computes it on the way out.
			if sink.bad.Load() != 0 || sink.good.Load() < int64(2*datagrams) {
				t.Fatalf("capture: %d outgoing UDP and TCP frames with a bad checksum, %d good (want at least %d)",
					sink.bad.Load(), sink.good.Load(), 2*datagrams)
			}
			t.Logf("datagrams %d, tx descs %d, with an offload request %d, captured %d", datagrams, cs.TxDescs, cs.TxCsumOffloads, sink.good.Load())
		})
	}
}
