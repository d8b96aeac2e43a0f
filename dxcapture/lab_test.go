package dxcapture_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxcapture"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// needTool fails (or skips outside strict mode) when a tool `make deps`
// installs is missing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		priv.Unavailable(t, name+" not installed (make deps installs it)")
	}
	return p
}

// wait waits for qt and fails t unless it completed with want.
func wait(t *testing.T, lib *libos.LibOS, qt libos.QToken, want libos.Opcode) libos.Result {
	t.Helper()
	r, err := lib.Wait(qt, 10*time.Second)
	if err != nil || r.Opcode != want {
		t.Fatalf("wait for %v: %v, %+v", want, err, r)
	}
	return r
}

// quiesce runs lib's loop until no frame has moved for a while, so its
// counters are final.
func quiesce(t *testing.T, lib *libos.LibOS, idle libos.QD) libos.Counters {
	t.Helper()
	pop, err := lib.Pop(idle)
	if err != nil {
		t.Fatal(err)
	}
	var last libos.Counters
	for still := 0; still < 5; {
		if _, err := lib.Wait(pop, 50*time.Millisecond); !errors.Is(err, unix.ETIMEDOUT) {
			t.Fatalf("idle pop: %v", err)
		}
		c, err := lib.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.RxDescs == last.RxDescs && c.TxDescs == last.TxDescs {
			still++
		} else {
			still = 0
		}
		last = c
	}
	return last
}

// A TCP connection from the kernel to a libOS echo, and a datagram to a
// port nobody has bound, captured and read back by tcpdump and tshark:
// the handshake, the data both ways and both FINs are there with correct
// checksums, each frame's direction and queue are recorded, the datagram
// is marked dropped with its reason, and the file holds exactly the frames
// the libOS counted.
func TestCaptureReadByTcpdumpAndTshark(t *testing.T) {
	tcpdump, tshark := needTool(t, "tcpdump"), needTool(t, "tshark")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "cap"})
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	w, err := dxcapture.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var lib *libos.LibOS
	if err := lab.RunInA(func() (err error) {
		lib, err = libos.New(libos.Config{Interface: lab.IfA, Addr: lab.AddrA, Capture: w})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })

	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7000)
	lq, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err := lib.Bind(lq, srv); err != nil {
		t.Fatal(err)
	}
	if err := lib.Listen(lq, 4); err != nil {
		t.Fatal(err)
	}
	acc, _ := lib.Accept(lq)

	msg := []byte("hello capture")
	echoed := make(chan []byte, 1)
	go func() {
		// The kernel client: it runs while the test drives the libOS.
		var c net.Conn
		if err := lab.RunInB(func() (err error) {
			c, err = net.DialTimeout("tcp4", srv.String(), 10*time.Second)
			return err
		}); err != nil {
			echoed <- []byte(err.Error())
			return
		}
		defer c.Close()
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		echoed <- b
	}()

	conn := wait(t, lib, acc, libos.OpAccept).NewQD
	pop, _ := lib.Pop(conn)
	r := wait(t, lib, pop, libos.OpPop)
	if !bytes.Equal(r.SGA.Segs[0], msg) {
		t.Fatalf("popped %q", r.SGA.Segs[0])
	}
	push, err := lib.Push(conn, r.SGA)
	if err != nil {
		t.Fatal(err)
	}
	lib.SGAFree(r.SGA)
	wait(t, lib, push, libos.OpPush)
	pop, _ = lib.Pop(conn)
	if r := wait(t, lib, pop, libos.OpPop); len(r.SGA.Segs) != 0 {
		t.Fatalf("want end of stream, got %d segments", len(r.SGA.Segs))
	}
	if err := lib.CloseQueue(conn); err != nil {
		t.Fatal(err)
	}

	// A datagram to a closed port: the stack drops it (udp_no_port).
	if err := lab.RunInB(func() error {
		u, err := net.Dial("udp4", netip.AddrPortFrom(lab.AddrA.Addr(), 9999).String())
		if err != nil {
			return err
		}
		defer u.Close()
		_, err = u.Write([]byte("nobody listens"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	idle, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	lib.Bind(idle, netip.AddrPortFrom(lab.AddrA.Addr(), 1))
	ctr := quiesce(t, lib, idle)
	if got := <-echoed; !bytes.Equal(got, msg) {
		t.Fatalf("kernel client read %q back", got)
	}
	if err := lib.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ctr.CaptureErrors != 0 || ctr.Captured != ctr.RxDescs+ctr.TxDescs {
		t.Fatalf("captured %d, errors %d, rx %d + tx %d", ctr.Captured, ctr.CaptureErrors, ctr.RxDescs, ctr.TxDescs)
	}
	t.Logf("rx %d tx %d captured %d", ctr.RxDescs, ctr.TxDescs, ctr.Captured)

	// tcpdump: one line per frame, every TCP checksum verified correct.
	out, err := exec.Command(tcpdump, "-r", path, "-nn", "-vv", "-tt").CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	var frames, tcpSegs int
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) > 0 && line[0] >= '0' && line[0] <= '9' { // a packet starts with its timestamp
			frames++
		}
		if strings.Contains(line, "Flags [") { // a TCP segment's second line
			tcpSegs++
			if !strings.Contains(line, "cksum 0x") || !strings.Contains(line, "(correct)") {
				t.Errorf("tcpdump: checksum not correct: %s", line)
			}
		}
		if strings.Contains(line, "UDP, length") && !strings.Contains(line, "[udp sum ok]") {
			t.Errorf("tcpdump: UDP checksum not correct: %s", line)
		}
	}
	if uint64(frames) != ctr.Captured {
		t.Errorf("tcpdump read %d frames, the libOS counted %d\n%s", frames, ctr.Captured, out)
	}
	if tcpSegs < 7 {
		t.Errorf("tcpdump verified %d TCP checksums, want the whole connection (>= 7)\n%s", tcpSegs, out)
	}

	// tshark: direction, queue, drop reason, flags, payload, checksums.
	out, err = exec.Command(tshark, "-r", path, "-n",
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=|",
		"-e", "frame.comment", "-e", "frame.packet_flags_direction", "-e", "frame.interface_queue",
		"-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status",
		"-e", "tcp.srcport", "-e", "tcp.flags", "-e", "tcp.payload", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, out)
	}
	type seg struct{ dir, flags, payload string }
	var segs []seg
	var in, outb, dropped int
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range lines {
		f := strings.Split(line, "|")
		if len(f) != 10 {
			t.Fatalf("tshark line %q", line)
		}
		comment, dir, queue := f[0], f[1], f[2]
		switch {
		case strings.HasPrefix(comment, "in queue=0") && dir == "0x00000001":
			in++
		case strings.HasPrefix(comment, "out queue=0") && dir == "0x00000002":
			outb++
		default:
			t.Errorf("tshark: comment %q with direction %q", comment, dir)
		}
		if queue != "0" {
			t.Errorf("tshark: queue %q, want 0", queue)
		}
		// Status 1 is "good"; every IPv4 frame must have one, and so must
		// the TCP or UDP in it.
		l4 := f[4] + f[5]
		if f[3] != "" && (f[3] != "1" || l4 != "1") {
			t.Errorf("tshark: checksum status ip %q tcp %q udp %q in %q", f[3], f[4], f[5], line)
		}
		if f[9] == "9999" {
			dropped++
			if !strings.HasSuffix(comment, "dropped=stack.udp_no_port") {
				t.Errorf("datagram to a closed port has comment %q", comment)
			}
		} else if strings.Contains(comment, "dropped=") && f[7] == "" {
			// (A TCP segment may be dropped: a retransmission the
			// peer sent when an ACK was late is out of the window.)
			t.Errorf("unexpected drop: %q", line)
		}
		if f[7] != "" {
			segs = append(segs, seg{comment[:strings.Index(comment, " ")], f[7], f[8]})
		}
	}
	if uint64(in) != ctr.RxDescs || uint64(outb) != ctr.TxDescs {
		t.Errorf("tshark: %d in, %d out; the libOS counted rx %d, tx %d", in, outb, ctr.RxDescs, ctr.TxDescs)
	}
	if dropped != 1 {
		t.Errorf("tshark: %d datagrams to the closed port, want 1", dropped)
	}
	// The connection, in order: SYN in, SYN-ACK out, ACK in, the data in,
	// the echo out, and a FIN each way.
	want := hex.EncodeToString(msg)
	var steps []string
	for _, s := range segs {
		switch {
		case s.flags == "0x0002" && s.dir == "in":
			steps = append(steps, "syn")
		case s.flags == "0x0012" && s.dir == "out":
			steps = append(steps, "synack")
		case s.payload == want && s.dir == "in":
			steps = append(steps, "data-in")
		case s.payload == want && s.dir == "out":
			steps = append(steps, "data-out")
		case s.flags == "0x0011" && s.dir == "in":
			steps = append(steps, "fin-in")
		case s.flags == "0x0011" && s.dir == "out":
			steps = append(steps, "fin-out")
		}
	}
	got := strings.Join(steps, " ")
	for _, w := range []string{"syn synack", "data-in", "data-out", "fin-in", "fin-out"} {
		if !strings.Contains(got, w) {
			t.Errorf("tshark: connection steps %q lack %q\n%s", got, w, out)
		}
	}
	if !strings.HasPrefix(got, "syn synack") {
		t.Errorf("tshark: connection steps %q do not start with the handshake", got)
	}
}
