package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func TestSinkSampleMissingLate(t *testing.T) {
	var s sink
	udp := make([]byte, udpHeaderLen+100)
	send := func(seq uint64, corrupt bool) {
		p := udp[udpHeaderLen:]
		cli.FillStream(p, seq)
		if corrupt {
			p[len(p)-1] ^= 0x80
		}
		udp[4], udp[5] = 0, byte(len(udp))
		s.count(udp)
	}
	for seq := uint64(0); seq < 100; seq++ {
		if seq >= 40 && seq < 45 {
			continue // five never arrive ...
		}
		send(seq, seq == 32 || seq == 33) // 32 is sampled, 33 not
	}
	send(42, false) // ... and one of them comes late
	if s.frames != 96 || s.stream != 96 || s.missing != 4 || s.late != 1 || s.next != 100 {
		t.Errorf("frames %d stream %d missing %d late %d next %d; want 96 96 4 1 100", s.frames, s.stream, s.missing, s.late, s.next)
	}
	if s.checked != 7 || s.corrupt != 1 { // 0, 16, 32, 48, 64, 80, 96
		t.Errorf("checked %d corrupt %d; want 7 and 1", s.checked, s.corrupt)
	}
	if s.bytes != 96*100 {
		t.Errorf("bytes %d, want %d", s.bytes, 96*100)
	}
	if a := testing.AllocsPerRun(100, func() { send(1000, false) }); a != 0 {
		t.Errorf("count: %v allocs, want 0", a)
	}
}

// TestSinkCountsEveryDatagram: the kernel in B sends stream datagrams of
// every size to the sink (paced by its progress lines, so no queue on the
// way can overflow), with a gap, a late one, two corrupt ones and a few that
// are not stream payloads; the sink counts each exactly and sends nothing.
func TestSinkCountsEveryDatagram(t *testing.T) {
	priv.Require(t, "AF_XDP sink on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	p := startReflector(t, lab, "-sink", "-progress", "-addr", lab.AddrA.Addr().String())
	c := dialB(t, lab, 7777)
	const n, window = 6000, 128
	var sent, streamSent, bytes, checked uint64
	buf := make([]byte, 1472)
	write := func(b []byte) {
		if _, err := c.Write(b); err != nil {
			t.Fatalf("send: %v", err)
		}
		sent++
		bytes += uint64(len(b))
	}
	awaitCount := func() {
		for {
			k := labtest.ParseUints(p.NextLine(t, 30*time.Second))
			if k["frames"] >= sent {
				return
			}
		}
	}
	for seq := uint64(0); seq < n; seq++ {
		if seq >= 3000 && seq < 3010 {
			continue // a gap of ten
		}
		b := buf[:cli.StreamHeader+int(seq%(1472-cli.StreamHeader+1))]
		cli.FillStream(b, seq)
		if (seq == 160 || seq == 161) && len(b) > cli.StreamHeader {
			b[len(b)-1] ^= 1 // 160 is sampled, 161 is not
		}
		write(b)
		streamSent++
		if seq%sinkSample == 0 {
			checked++
		}
		if seq%1000 == 999 {
			write([]byte("not a stream payload")) // counted, not followed
		}
		if sent%window == 0 {
			awaitCount()
		}
	}
	b := buf[:100]
	cli.FillStream(b, 3005) // late
	write(b)
	streamSent++
	awaitCount()

	if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Output())
	}
	k := labtest.Counters(p.Output())
	want := map[string]uint64{
		"sink.frames": sent, "sink.bytes": bytes, "sink.stream": streamSent, "sink.checked": checked,
		"sink.corrupt": 1, "sink.missing": 9, "sink.late": 1,
	}
	for key, v := range want {
		if k[key] != v {
			t.Errorf("%s = %d, want %d", key, k[key], v)
		}
	}
	if u := labtest.ParseUints(p.Output()); u["tx"] != 0 || u["verdict_reflected"] != sent {
		t.Errorf("tx=%d verdict_reflected=%d; want 0 and %d", u["tx"], u["verdict_reflected"], sent)
	}
}

// TestStreamPairIntoSink: the bare pair's bulk ceiling as dxbench runs it,
// cmd/xdp-client -stream in B against -sink in A. Whatever the kernel
// delivers arrives in order and intact; what it dropped on the way shows
// as missing, never as more than was sent.
func TestStreamPairIntoSink(t *testing.T) {
	priv.Require(t, "AF_XDP pair on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{KernelAddrA: true})
	p := startReflector(t, lab, "-sink", "-busy", "-addr", lab.AddrA.Addr().String())
	const n = 200000
	client := lab.CommandB(labtest.Build(t, "../xdp-client"), "-iface", lab.IfB, "-src", lab.AddrB.Addr().String()+":9000",
		"-dst", lab.AddrA.Addr().String()+":7777", "-dstmac", lab.MACA.String(), "-stream", "-size", "1472", "-n", strconv.Itoa(n))
	out, stderr, code := labtest.Run(t, client)
	if code != 0 {
		t.Fatalf("xdp-client -stream: exit %d: %s %s", code, out, stderr)
	}
	cs := labtest.ParseFloats(string(out))
	if !strings.HasPrefix(string(out), "stream ") || cs["sent"] != n || cs["completed"] != n || cs["frame_bytes"] != 1514 {
		t.Fatalf("client: %s", out)
	}
	// Frames the sink has not taken from its RX ring when it stops are not
	// counted (neither received nor missing).
	if err := p.Stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Output())
	}
	k := labtest.Counters(p.Output())
	t.Logf("client: %s", strings.TrimSpace(string(out)))
	t.Logf("sink: frames %d missing %d checked %d (%s)", k["sink.frames"], k["sink.missing"], k["sink.checked"],
		strings.TrimSpace(strings.SplitN(p.Output()[strings.Index(p.Output(), "xdp:"):], "\n", 2)[0]))
	if k["sink.stream"] == 0 || k["sink.frames"] != k["sink.stream"] || k["sink.bytes"] != k["sink.frames"]*1472 {
		t.Errorf("sink counted frames %d stream %d bytes %d", k["sink.frames"], k["sink.stream"], k["sink.bytes"])
	}
	if k["sink.stream"]+k["sink.missing"] > n || k["sink.late"] != 0 || k["sink.corrupt"] != 0 || k["sink.checked"] == 0 {
		t.Errorf("stream %d + missing %d > %d sent, or late %d, corrupt %d, checked %d",
			k["sink.stream"], k["sink.missing"], n, k["sink.late"], k["sink.corrupt"], k["sink.checked"])
	}
}
