//go:build cgo

package main

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/libos"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A Demikernel catpowder configuration, with sections demixdp ignores.
const demikernelYAML = `
demikernel:
  local_ipv4_addr: 198.51.100.1
  local_link_addr: "02:00:00:00:00:01"
raw_socket:
  linux_interface_name: "eth1"
  xdp_interface_index: 0
inetstack_config:
  mtu: 1500
  mss: 1460
  arp_table:
    "02:00:00:00:00:02": "198.51.100.2"
  arp_request_retries: 5
  arp_request_timeout: 2
  arp_cache_ttl: 600
  enable_jumbo_frames: false
  udp_checksum_offload: false
tcp_socket_options:
  keepalive:
    enabled: true
    time_millis: 0
  linger:
    enabled: true
    time_seconds: 0
  nodelay: true
dpdk:
  eal_init: ["-c", "0xff", "-n", "4", "-a", "WW:WW.W", "--proc-type=auto"]
`

func TestSettingsFromDemikernelYAML(t *testing.T) {
	s, err := loadSettings(env("CONFIG_PATH", writeYAML(t, demikernelYAML), "LIBOS", "catnip"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Interface != "eth1" || c.Addr != netip.MustParsePrefix("198.51.100.1/24") || c.Mode != libos.Dedicated || c.Queue != 0 {
		t.Errorf("config %+v", c)
	}
	if c.ARP.Retries != 5 || c.ARP.RetryInterval != 2*time.Second || c.ARP.CacheTTL != 600*time.Second {
		t.Errorf("ARP %+v", c.ARP)
	}
	if s.mtu != 1500 || s.linkAddr.String() != "02:00:00:00:00:01" {
		t.Errorf("mtu %d link %v", s.mtu, s.linkAddr)
	}
	if s.tcp.noDelay == nil || !*s.tcp.noDelay || s.tcp.keepAlive == nil || !*s.tcp.keepAlive || s.tcp.linger == nil || *s.tcp.linger != 0 {
		t.Errorf("TCP options %+v", s.tcp)
	}
}

func TestSettingsEnvironmentOverrides(t *testing.T) {
	s, err := loadSettings(env("CONFIG_PATH", writeYAML(t, demikernelYAML),
		"LINUX_INTERFACE_NAME", "veth7", "LOCAL_IPV4_ADDR", "203.0.113.9", "MTU", "1400", "LOCAL_LINK_ADDR", "02:00:00:00:00:09",
		"NODELAY", "false", "LINGER", "5", "ARP_REQUEST_RETRIES", "2",
		"DEMIXDP_PREFIX", "28", "DEMIXDP_GATEWAY", "203.0.113.1", "DEMIXDP_MODE", "shared", "DEMIXDP_QUEUE", "3"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Interface != "veth7" || c.Addr != netip.MustParsePrefix("203.0.113.9/28") || c.Gateway != netip.MustParseAddr("203.0.113.1") ||
		c.Mode != libos.Shared || c.Queue != 3 || c.ARP.Retries != 2 {
		t.Errorf("config %+v", c)
	}
	if s.mtu != 1400 || s.linkAddr.String() != "02:00:00:00:00:09" || *s.tcp.noDelay || *s.tcp.linger != 5 {
		t.Errorf("mtu %d link %v tcp %+v", s.mtu, s.linkAddr, s.tcp)
	}
}

func TestSettingsFromEnvironmentOnly(t *testing.T) {
	s, err := loadSettings(env("LINUX_INTERFACE_NAME", "eth1", "LOCAL_IPV4_ADDR", "198.51.100.7"))
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Addr != netip.MustParsePrefix("198.51.100.7/24") || s.mtu != 0 || s.linkAddr != nil ||
		s.tcp.noDelay != nil || s.tcp.keepAlive != nil || s.tcp.linger != nil {
		t.Errorf("settings %+v", s)
	}
}

func TestSettingsErrors(t *testing.T) {
	good := []string{"LINUX_INTERFACE_NAME", "eth1", "LOCAL_IPV4_ADDR", "198.51.100.7"}
	for _, c := range []struct {
		name string
		env  []string
		want unix.Errno
		msg  string
	}{
		{"nothing", nil, unix.EINVAL, "no interface"},
		{"no address", []string{"LINUX_INTERFACE_NAME", "eth1"}, unix.EINVAL, "no address"},
		{"missing file", append([]string{"CONFIG_PATH", "/nonexistent/config.yaml"}, good...), unix.ENOENT, "CONFIG_PATH"},
		{"a directory", append([]string{"CONFIG_PATH", t.TempDir()}, good...), unix.EISDIR, "CONFIG_PATH"},
		{"malformed", append([]string{"CONFIG_PATH", writeYAML(t, "demikernel: [x\n")}, good...), unix.EINVAL, "yaml"},
		{"wrong type", append([]string{"CONFIG_PATH", writeYAML(t, "inetstack_config:\n  mtu: big\n")}, good...), unix.EINVAL, "yaml"},
		{"IPv6", []string{"LINUX_INTERFACE_NAME", "eth1", "LOCAL_IPV4_ADDR", "2001:db8::1"}, unix.EINVAL, "IPv4"},
		{"unspecified", []string{"LINUX_INTERFACE_NAME", "eth1", "LOCAL_IPV4_ADDR", "0.0.0.0"}, unix.EINVAL, "IPv4"},
		{"broadcast", []string{"LINUX_INTERFACE_NAME", "eth1", "LOCAL_IPV4_ADDR", "255.255.255.255"}, unix.EINVAL, "IPv4"},
		{"prefix", append([]string{"DEMIXDP_PREFIX", "33"}, good...), unix.EINVAL, "DEMIXDP_PREFIX"},
		{"prefix text", append([]string{"DEMIXDP_PREFIX", "x"}, good...), unix.EINVAL, "DEMIXDP_PREFIX"},
		{"gateway", append([]string{"DEMIXDP_GATEWAY", "nowhere"}, good...), unix.EINVAL, "DEMIXDP_GATEWAY"},
		{"mode", append([]string{"DEMIXDP_MODE", "sometimes"}, good...), unix.EINVAL, "DEMIXDP_MODE"},
		{"queue", append([]string{"DEMIXDP_QUEUE", "-1"}, good...), unix.EINVAL, "DEMIXDP_QUEUE"},
		{"mac", append([]string{"LOCAL_LINK_ADDR", "ff:ff"}, good...), unix.EINVAL, "local_link_addr"},
		{"mtu", append([]string{"MTU", "100"}, good...), unix.EINVAL, "mtu"},
		{"nodelay", append([]string{"NODELAY", "sure"}, good...), unix.EINVAL, "NODELAY"},
		{"arp retries", append([]string{"ARP_REQUEST_RETRIES", "0"}, good...), unix.EINVAL, "arp_request_retries"},
		{"linger without time", append([]string{"CONFIG_PATH", writeYAML(t, "tcp_socket_options:\n  linger:\n    enabled: true\n")}, good...), unix.EINVAL, "linger"},
	} {
		_, err := loadSettings(env(c.env...))
		if !errors.Is(err, c.want) || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", c.name, err, c.want, c.msg)
		}
	}
}

// FuzzLoadSettings: whatever the configuration file holds, loadSettings
// returns settings or an error with an errno, never panics.
func FuzzLoadSettings(f *testing.F) {
	f.Add([]byte(demikernelYAML), "")
	f.Add([]byte("demikernel: [x\n"), "")
	f.Add([]byte("tcp_socket_options:\n  linger:\n    enabled: true\n    time_seconds: -4\n"), "5")
	f.Add([]byte("inetstack_config:\n  arp_cache_ttl: -1\n  mtu: 70000\n"), "x")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte, linger string) {
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, yaml, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadSettings(env("CONFIG_PATH", p, "LINGER", linger))
		var e unix.Errno
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error without an errno: %v", err)
		}
	})
}
