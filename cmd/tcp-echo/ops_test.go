package main

import (
	"bytes"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		priv.Unavailable(t, name+" not installed (make deps installs it)")
	}
	return p
}

// tcp-echo with -pcap and -metrics: three kernel connections echo through
// it; curl's scrape passes promtool and counts the connections; tshark
// finds each connection's handshake and both FINs with good checksums, and
// as many frames as the libOS counted.
func TestPcapAndMetrics(t *testing.T) {
	curl, promtool, tshark := tool(t, "curl"), tool(t, "promtool"), tool(t, "tshark")
	priv.Require(t, "tcp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "teops"})
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7000)
	pcap := filepath.Join(t.TempDir(), "tcp.pcapng")
	p := startEcho(t, lab, "-addr", srv.String(), "-pcap", pcap, "-metrics", "127.0.0.1:0")
	m := regexp.MustCompile(`metrics on (http://\S+)/metrics`).FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no metrics address:\n%s", p.Output())
	}
	const conns = 3
	for i := range conns {
		c, err := dial(lab, srv)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoThrough(c, 20000, 1000, uint64(i)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	body, err := lab.CommandA(curl, "-sf", m[1]+"/metrics").Output()
	if err != nil {
		t.Fatalf("curl /metrics: %v", err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	want := `demixdp_tcp_conns_established_total{iface="` + lab.IfA + `",queue="0"} 3`
	if !bytes.Contains(body, []byte(want)) {
		t.Errorf("/metrics lacks %s", want)
	}
	if !bytes.Contains(body, []byte(`demixdp_queue_pops_total{iface="`+lab.IfA+`",name="listener",qd="0",queue="0"} 0`)) {
		t.Errorf("/metrics lacks the listener's queue counters")
	}

	k := stopEcho(t, lab, p, syscall.SIGINT)
	out, err := exec.Command(tshark, "-r", pcap, "-n", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=|", "-e", "frame.comment", "-e", "tcp.flags", "-e", "tcp.checksum.status",
		"-e", "ip.checksum.status").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if uint64(len(lines)) != k["libos.captured"] || k["libos.captured"] != k["libos.rx_descs"]+k["libos.tx_descs"] {
		t.Errorf("tshark read %d frames; the libOS captured %d of rx %d + tx %d", len(lines), k["libos.captured"],
			k["libos.rx_descs"], k["libos.tx_descs"])
	}
	count := map[string]int{}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 4 {
			t.Fatalf("tshark line %q", l)
		}
		if f[1] == "" {
			continue // ARP
		}
		if f[2] != "1" || f[3] != "1" {
			t.Errorf("checksum status tcp %q ip %q: %q", f[2], f[3], l)
		}
		dir := strings.Fields(f[0])[0]
		flags, err := strconv.ParseUint(f[1], 0, 16)
		if err != nil {
			t.Fatalf("tcp.flags %q", f[1])
		}
		switch {
		case flags == 0x002:
			count[dir+" syn"]++
		case flags == 0x012:
			count[dir+" syn-ack"]++
		case flags&0x001 != 0: // a FIN, possibly with the last data
			count[dir+" fin"]++
		}
	}
	// Per connection: SYN in, SYN-ACK out, a FIN each way (or more: a
	// peer may retransmit one, which the capture shows too).
	for _, k := range []string{"in syn", "out syn-ack", "in fin", "out fin"} {
		if count[k] < conns {
			t.Errorf("%d frames %q, want %d (all: %v)", count[k], k, conns, count)
		}
	}
}
