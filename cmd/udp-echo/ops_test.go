package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		priv.Unavailable(t, name+" not installed (make deps installs it)")
	}
	return p
}

// counterValue returns the value of the series of family name whose labels
// include want.
func counterValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, lp := range m.Label {
				found = found || lp.GetName() == k && lp.GetValue() == v
			}
			if !found {
				continue next
			}
		}
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}

// udp-echo with -pcap, -metrics and its default log: curl scrapes
// /metrics (checked by promtool and the client library's parser, with
// the echo's counts), /debug/vars and /debug/pprof/ on the kernel's
// loopback in namespace A while it runs; after SIGINT, tcpdump and tshark
// read back exactly the frames the libOS counted; stderr has the attach
// and detach.
func TestPcapMetricsAndLogs(t *testing.T) {
	curl, promtool := tool(t, "curl"), tool(t, "promtool")
	tcpdump, tshark := tool(t, "tcpdump"), tool(t, "tshark")
	priv.Require(t, "udp-echo on a veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "ueops"})
	a := lab.AddrA.Addr().String()
	pcap := filepath.Join(t.TempDir(), "echo.pcapng")
	p := startEcho(t, lab, "-addr", a+":7", "-pcap", pcap, "-metrics", "127.0.0.1:0")
	m := regexp.MustCompile(`metrics on (http://\S+)/metrics`).FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no metrics address:\n%s", p.Output())
	}
	base := m[1]

	const n = 1000
	kudpClient(t, lab, a+":7", n, "-sizes", "1-1472", "-outstanding", "4")

	body, err := lab.CommandA(curl, "-sf", base+"/metrics").Output()
	if err != nil {
		t.Fatalf("curl /metrics: %v", err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	labels := map[string]string{"iface": lab.IfA, "queue": "0", "name": "echo"}
	if v, ok := counterValue(fams, "demixdp_queue_pops_total", labels); !ok || v != n {
		t.Errorf("demixdp_queue_pops_total{name=echo} = %v (%v), want %d", v, ok, n)
	}
	if v, ok := counterValue(fams, "demixdp_stack_udp_delivered_total", map[string]string{"iface": lab.IfA}); !ok || v != n {
		t.Errorf("demixdp_stack_udp_delivered_total = %v (%v), want %d", v, ok, n)
	}
	if vars, err := lab.CommandA(curl, "-sf", base+"/debug/vars").Output(); err != nil || !bytes.Contains(vars, []byte(`"demixdp"`)) ||
		!bytes.Contains(vars, []byte(`"UDPDelivered":1000`)) {
		t.Errorf("curl /debug/vars: %v\n%.500s", err, vars)
	}
	if prof, err := lab.CommandA(curl, "-sf", base+"/debug/pprof/").Output(); err != nil || !bytes.Contains(prof, []byte("goroutine")) {
		t.Errorf("curl /debug/pprof/: %v", err)
	}

	k := checkCleanExit(t, lab, p, syscall.SIGINT, n)
	out := p.Output()
	for _, want := range []string{"level=INFO msg=attached", "xdp=copy", "xdp_attach=native", "level=INFO msg=detached"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if k["libos.capture_errors"] != 0 || k["libos.captured"] != k["libos.rx_descs"]+k["libos.tx_descs"] {
		t.Errorf("captured %d (errors %d), rx %d + tx %d", k["libos.captured"], k["libos.capture_errors"], k["libos.rx_descs"], k["libos.tx_descs"])
	}

	dump, err := exec.Command(tcpdump, "-r", pcap, "-nn", "-q").Output()
	if err != nil {
		t.Fatalf("tcpdump -r: %v", err)
	}
	frames := strings.Count(string(dump), "\n")
	udpIn := strings.Count(string(dump), " > "+a+".7: UDP")
	udpOut := strings.Count(string(dump), a+".7 > ")
	if uint64(frames) != k["libos.captured"] || udpIn != n || udpOut != n {
		t.Errorf("tcpdump: %d frames (libOS captured %d), %d datagrams in, %d out, want %d each",
			frames, k["libos.captured"], udpIn, udpOut, n)
	}
	sum, err := exec.Command(tshark, "-r", pcap, "-n", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-Y", "udp.checksum.status == 1 && ip.checksum.status == 1", "-T", "fields", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	in, outb := strings.Count(string(sum), "in queue=0"), strings.Count(string(sum), "out queue=0")
	if in != n || outb != n {
		t.Errorf("tshark: %d datagrams in and %d out with good checksums, want %d each", in, outb, n)
	}
}
