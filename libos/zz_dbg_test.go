package libos_test

import (
	"crypto/sha256"
	"errors"
	"github.com/demixdp/demixdp/dxcapture"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

func TestDbgLossClient(t *testing.T) {
	cw, err := dxcapture.Create("/tmp/dbg.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	lab, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.Capture = cw })
	defer cw.Close()
	withLoss(t, lab, 0.05)
	names := []string{"PAWSEstabRejected", "TCPRcvQDrop", "TCPOFODrop", "TCPBacklogDrop", "InErrs", "InCsumErrors", "TCPACKSkippedPAWS", "TCPACKSkippedSeq", "TCPZeroWindowDrop", "TCPRcvCoalesce", "TCPOFOQueue", "TCPDSACKOfoSent", "TCPDSACKOldSent", "OutRsts", "TCPMemoryPressures", "PruneCalled", "RcvPruned", "OfoPruned", "TCPRcvCollapsed", "TCPTimeouts", "DelayedACKs", "TCPAbortOnData"}
	b0 := nstat(t, lab, false, names...)
	defer func() {
		b1 := nstat(t, lab, false, names...)
		for _, n := range names {
			if b1[n] != b0[n] {
				t.Logf("B %-20s %d", n, b1[n]-b0[n])
			}
		}
	}()
	ksrv := netip.AddrPortFrom(lab.AddrB.Addr(), 8082)
	done := kernelTCPServer(t, lab, ksrv, tcpLossBytes, 6)
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	ct, _ := lib.Connect(qd, ksrv)
	if r, err := lib.Wait(ct, 10*time.Second); err != nil || r.Opcode != libos.OpConnect {
		t.Fatalf("connect: %v %+v", err, r)
	}
	hs := sha256.New()
	rng := rand.New(rand.NewPCG(7, 7))
	pop, _ := lib.Pop(qd)
	toks := []libos.QToken{pop}
	left, pushes, eof, shut := tcpLossBytes, 0, false, false
	var held *libos.SGA
	start := time.Now()
	next := start.Add(time.Second)
	got := 0
	for !eof || pushes > 0 || left > 0 || held != nil {
		for (left > 0 || held != nil) && pushes < 64 {
			sga := held
			if sga == nil {
				size := min(left, 16*lib.SegmentSize())
				var err error
				if sga, err = lib.SGAAlloc(size); err != nil {
					break
				}
				for _, seg := range sga.Segs {
					for i := range seg {
						seg[i] = byte(rng.Uint32())
					}
					hs.Write(seg)
				}
				left -= size
			}
			qt, err := lib.Push(qd, sga)
			if errors.Is(err, unix.EAGAIN) {
				held = sga
				break
			}
			held = nil
			lib.SGAFree(sga)
			toks = append(toks, qt)
			pushes++
		}
		if left == 0 && held == nil && !shut {
			lib.Shutdown(qd)
			shut = true
		}
		i, r, err := lib.WaitAny(toks, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks[:i], toks[i+1:]...)
		switch r.Opcode {
		case libos.OpPush:
			pushes--
		case libos.OpPop:
			if len(r.SGA.Segs) == 0 {
				eof = true
			}
			got += r.SGA.Len()
			lib.SGAFree(r.SGA)
			if !eof {
				p, _ := lib.Pop(qd)
				toks = append(toks, p)
			}
		}
		if now := time.Now(); now.After(next) {
			next = now.Add(time.Second)
			in, _ := lib.TCPInfo(qd)
			qc, _ := lib.QueueCounters(qd)
			t.Logf("%4.1fs sent %3d MB got %3d MB | %+v | rto %d retx %d fr %d", now.Sub(start).Seconds(), (tcpLossBytes-left)>>20, got>>20, in, qc.TCP.RTOs, qc.TCP.Retransmits, qc.TCP.FastRecoveries)
		}
	}
	<-done
	c, _ := lib.Counters()
	t.Logf("xdp %+v steering %+v fill_starved %d rx_descs %d", c.XDP, c.Steering, c.FillStarved, c.RxDescs)
	t.Logf("done in %v: rtos %d in recovery %d probes %d fr %d retx %d ooo_dropped %d dsacks %d undone %d", time.Since(start), c.TCP.RTOs, c.TCP.RTOsInRecovery, c.TCP.LossProbes, c.TCP.FastRecoveries, c.TCP.Retransmits, c.TCP.OOODropped, c.TCP.DSACKsOut, c.TCP.SpuriousRecoveries)
}

func nstat(t *testing.T, lab interface {
	RunInB(func() error) error
	RunInA(func() error) error
}, a bool, names ...string) map[string]int64 {
	out := map[string]int64{}
	run := lab.RunInB
	if a {
		run = lab.RunInA
	}
	run(func() error {
		for _, f := range []string{"/proc/thread-self/net/netstat", "/proc/thread-self/net/snmp"} {
			b, _ := os.ReadFile(f)
			lines := strings.Split(string(b), "\n")
			for i := 0; i+1 < len(lines); i += 2 {
				k, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
				for j := 1; j < len(k) && j < len(v); j++ {
					for _, n := range names {
						if k[j] == n {
							x, _ := strconv.ParseInt(v[j], 10, 64)
							out[n] = x
						}
					}
				}
			}
		}
		return nil
	})
	return out
}

func TestDbgKernelPairLoss(t *testing.T) {
	lab, _ := labLibOS(t, libos.Dedicated, nil)
	kaddr := netip.MustParsePrefix("198.51.100.9/24")
	lab.AddAddrA(kaddr)
	kecho := kernelEchoA(t, lab, netip.AddrPortFrom(kaddr.Addr(), 7))
	kc := dialTCPB(t, lab, kecho)
	names := []string{"TCPTimeouts", "TCPLossProbes", "TCPLossProbeRecovery", "TCPSackRecovery", "TCPDSACKUndo", "TCPSpuriousRTOs", "TCPFullUndo", "TCPPartialUndo", "TCPLossUndo", "RetransSegs", "TCPRenoRecovery", "TCPSACKReorder", "TCPOFOQueue", "TCPOFODrop"}
	a0, b0 := nstat(t, lab, true, names...), nstat(t, lab, false, names...)
	withLoss(t, lab, 0.05)
	start := time.Now()
	streamEcho(t, kc, tcpLossBytes, 5)
	t.Logf("kernel pair: %v", time.Since(start))
	a1, b1 := nstat(t, lab, true, names...), nstat(t, lab, false, names...)
	for _, n := range names {
		t.Logf("%-22s A %6d  B %6d", n, a1[n]-a0[n], b1[n]-b0[n])
	}
}
