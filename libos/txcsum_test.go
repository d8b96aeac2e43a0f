package libos_test

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
)

// snmpCsumErrors reads InCsumErrors of Udp and Tcp from /proc/net/snmp of
// the calling thread's network namespace (run it in one with RunInB).
func snmpCsumErrors() (udp, tcp uint64, err error) {
	f, err := os.Open("/proc/thread-self/net/snmp")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	head := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		proto := strings.TrimSuffix(fields[0], ":")
		if h, ok := head[proto]; ok {
			for i, name := range h {
				if name == "InCsumErrors" && i < len(fields) {
					v, _ := strconv.ParseUint(fields[i], 10, 64)
					switch proto {
					case "Udp":
						udp = v
					case "Tcp":
						tcp = v
					}
				}
			}
			continue
		}
		head[proto] = fields
	}
	return udp, tcp, sc.Err()
}

// TestTxChecksumOffload: with Config.TxChecksum kernel, on a veth whose
// offloads are off (the lab's default), the libOS leaves its UDP and TCP
// checksums to the kernel, and the kernel peer receives every byte with no
// checksum error. By default on a veth, with the libOS's end's
// tx-checksumming on (which a veth would pass on to its peer unfinished),
// and with TxChecksum software, the libOS computes them, with the same
// result. (The kernel end's offloads stay off: its partial checksums would
// reach the libOS's XDP program as they are, which no AF_XDP receiver can
// verify.)
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
			cfg := libos.Config{Interface: lab.IfA, Addr: lab.AddrA, TxChecksum: tc.mode}
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

			var udpErr, tcpErr uint64
			if err := lab.RunInB(func() (err error) { udpErr, tcpErr, err = snmpCsumErrors(); return err }); err != nil {
				t.Fatal(err)
			}
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
			t.Logf("datagrams %d, tx descs %d, with an offload request %d", datagrams, cs.TxDescs, cs.TxCsumOffloads)
		})
	}
}
