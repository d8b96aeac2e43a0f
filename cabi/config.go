//go:build cgo

package main

// demi_init's configuration, learnt as Demikernel learns it: the YAML file
// named by CONFIG_PATH, then environment variables that override it, plus
// demixdp's own DEMIXDP_* variables.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/umem"
)

// demiFile is the part of a Demikernel config.yaml demixdp reads. Other
// sections and keys (dpdk, catnip, xdp_* options, checksum offloads) are
// ignored.
type demiFile struct {
	Demikernel struct {
		LocalIPv4Addr string `yaml:"local_ipv4_addr"`
		LocalLinkAddr string `yaml:"local_link_addr"`
	} `yaml:"demikernel"`
	RawSocket struct {
		LinuxInterfaceName string `yaml:"linux_interface_name"`
	} `yaml:"raw_socket"`
	InetStack struct {
		MTU               *int              `yaml:"mtu"`
		MSS               *int              `yaml:"mss"` // the libOS derives the MSS from the MTU
		ARPTable          map[string]string `yaml:"arp_table"`
		ARPCacheTTL       *int              `yaml:"arp_cache_ttl"`       // seconds
		ARPRequestTimeout *int              `yaml:"arp_request_timeout"` // seconds
		ARPRequestRetries *int              `yaml:"arp_request_retries"`
	} `yaml:"inetstack_config"`
	TCPSocketOptions struct {
		KeepAlive struct {
			Enabled *bool `yaml:"enabled"`
		} `yaml:"keepalive"`
		Linger struct {
			Enabled     *bool `yaml:"enabled"`
			TimeSeconds *int  `yaml:"time_seconds"`
		} `yaml:"linger"`
		NoDelay *bool `yaml:"nodelay"`
	} `yaml:"tcp_socket_options"`
}

// settings is the configuration demi_init starts the libOS with.
type settings struct {
	cfg      libos.Config
	linkAddr net.HardwareAddr // LOCAL_LINK_ADDR: must be the interface's, if given
	mtu      int              // MTU: checked against the libOS's, 0 if not given
	tcp      tcpDefaults
	source   string // where the configuration came from, for messages
}

// configError is a configuration problem: its message goes to stderr and
// its errno is what demi_init returns.
type configError struct {
	errno unix.Errno
	msg   string
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.errno }
func badConfig(format string, a ...any) error {
	return &configError{unix.EINVAL, fmt.Sprintf(format, a...)}
}

// loadSettings reads the configuration: the file named by CONFIG_PATH (if
// set; an unreadable or malformed file is an error), then the environment
// (getenv), which overrides it.
func loadSettings(getenv func(string) string) (settings, error) {
	var f demiFile
	s := settings{source: "the environment"}
	if path := getenv("CONFIG_PATH"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			e := unix.EINVAL
			if pe, ok := err.(*os.PathError); ok {
				if en, ok := pe.Err.(unix.Errno); ok {
					e = en
				}
			}
			return s, &configError{e, fmt.Sprintf("CONFIG_PATH: %v", err)}
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			return s, badConfig("%s: %v", path, err)
		}
		s.source = path + " and the environment"
	}
	// Environment variables override the file, as in Demikernel.
	str := func(file *string, env string) {
		if v := getenv(env); v != "" {
			*file = v
		}
	}
	str(&f.RawSocket.LinuxInterfaceName, "LINUX_INTERFACE_NAME")
	str(&f.Demikernel.LocalIPv4Addr, "LOCAL_IPV4_ADDR")
	str(&f.Demikernel.LocalLinkAddr, "LOCAL_LINK_ADDR")
	var errs []string
	num := func(p **int, env string) {
		v := getenv(env)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q is not a number", env, v))
			return
		}
		*p = &n
	}
	boolean := func(p **bool, env string) {
		v := getenv(env)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q is not true or false", env, v))
			return
		}
		*p = &b
	}
	num(&f.InetStack.MTU, "MTU")
	num(&f.InetStack.ARPCacheTTL, "ARP_CACHE_TTL")
	num(&f.InetStack.ARPRequestTimeout, "ARP_REQUEST_TIMEOUT")
	num(&f.InetStack.ARPRequestRetries, "ARP_REQUEST_RETRIES")
	boolean(&f.TCPSocketOptions.NoDelay, "NODELAY")
	if v := getenv("LINGER"); v != "" { // seconds: linger on
		on := true
		f.TCPSocketOptions.Linger.Enabled = &on
		num(&f.TCPSocketOptions.Linger.TimeSeconds, "LINGER")
	}
	var prefix, queue *int
	num(&prefix, "DEMIXDP_PREFIX")
	num(&queue, "DEMIXDP_QUEUE")
	if len(errs) > 0 {
		return s, badConfig("%s", strings.Join(errs, "; "))
	}

	c := &s.cfg
	c.FrameSize = umem.DefaultFrameSize // set, not defaulted: sga.go finds frames by it
	c.Interface = f.RawSocket.LinuxInterfaceName
	if c.Interface == "" {
		return s, badConfig("no interface: set raw_socket.linux_interface_name in the file CONFIG_PATH names, or LINUX_INTERFACE_NAME")
	}
	if f.Demikernel.LocalIPv4Addr == "" {
		return s, badConfig("no address: set demikernel.local_ipv4_addr in the file CONFIG_PATH names, or LOCAL_IPV4_ADDR")
	}
	ip, err := netip.ParseAddr(f.Demikernel.LocalIPv4Addr)
	if err != nil || !ip.Is4() || ip.IsUnspecified() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return s, badConfig("local_ipv4_addr %q is not a usable IPv4 address", f.Demikernel.LocalIPv4Addr)
	}
	bits := 24
	if prefix != nil {
		bits = *prefix
	}
	if c.Addr, err = ip.Prefix(bits); err != nil || bits < 1 {
		return s, badConfig("DEMIXDP_PREFIX=%d is not a prefix length (1..32)", bits)
	}
	c.Addr = netip.PrefixFrom(ip, bits)
	if g := getenv("DEMIXDP_GATEWAY"); g != "" {
		if c.Gateway, err = netip.ParseAddr(g); err != nil || !c.Gateway.Is4() {
			return s, badConfig("DEMIXDP_GATEWAY=%q is not an IPv4 address", g)
		}
	}
	if m := getenv("DEMIXDP_MODE"); m != "" {
		if c.Mode, err = libos.ParseMode(m); err != nil {
			return s, badConfig("DEMIXDP_MODE=%q: want dedicated or shared", m)
		}
	}
	if queue != nil {
		if *queue < 0 {
			return s, badConfig("DEMIXDP_QUEUE=%d is negative", *queue)
		}
		c.Queue = *queue
	}
	if a := f.Demikernel.LocalLinkAddr; a != "" {
		if s.linkAddr, err = net.ParseMAC(a); err != nil || len(s.linkAddr) != 6 {
			return s, badConfig("local_link_addr %q is not an Ethernet address", a)
		}
	}
	if m := f.InetStack.MTU; m != nil {
		if *m < 576 || *m > 65535 {
			return s, badConfig("mtu %d out of range (576..65535)", *m)
		}
		s.mtu = *m
	}
	secs := func(name string, p *int) (time.Duration, error) {
		if p == nil {
			return 0, nil
		}
		if *p <= 0 {
			return 0, badConfig("%s %d must be positive", name, *p)
		}
		return time.Duration(*p) * time.Second, nil
	}
	if c.ARP.CacheTTL, err = secs("arp_cache_ttl", f.InetStack.ARPCacheTTL); err != nil {
		return s, err
	}
	if c.ARP.RetryInterval, err = secs("arp_request_timeout", f.InetStack.ARPRequestTimeout); err != nil {
		return s, err
	}
	if r := f.InetStack.ARPRequestRetries; r != nil {
		if *r <= 0 {
			return s, badConfig("arp_request_retries %d must be positive", *r)
		}
		c.ARP.Retries = *r
	}
	o := f.TCPSocketOptions
	s.tcp.noDelay = o.NoDelay
	if o.KeepAlive.Enabled != nil {
		s.tcp.keepAlive = o.KeepAlive.Enabled
	}
	if o.Linger.Enabled != nil {
		sec := -1
		if *o.Linger.Enabled {
			if o.Linger.TimeSeconds == nil || *o.Linger.TimeSeconds < 0 || *o.Linger.TimeSeconds > 65535 {
				return s, badConfig("tcp_socket_options.linger: enabled needs time_seconds (0..65535)")
			}
			sec = *o.Linger.TimeSeconds
		}
		s.tcp.linger = &sec
	}
	return s, nil
}
