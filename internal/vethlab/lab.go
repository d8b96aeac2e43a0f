package vethlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/demixdp/demixdp/internal/ethtool"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every lab and therefore of every namespace a lab
// creates.
const Prefix = "dx"

// Errors returned (wrapped) by this package; test them with errors.Is.
var (
	// ErrBadConfig reports an invalid Config or name: an address outside
	// the allowed ranges, a bad MTU, a name with unsupported characters.
	ErrBadConfig = errors.New("vethlab: invalid configuration")
	// ErrExists reports that a namespace with the lab's name already exists.
	ErrExists = errors.New("vethlab: lab already exists")
	// ErrNotFound reports that Open found no lab of that name.
	ErrNotFound = errors.New("vethlab: no such lab")
	// ErrOffloads reports that the offload state did not follow a request.
	ErrOffloads = errors.New("vethlab: offloads not applied")
)

// Default addresses of the two ends.
var (
	DefaultAddrA = netip.MustParsePrefix("198.51.100.1/24")
	DefaultAddrB = netip.MustParsePrefix("198.51.100.2/24")
)

// allowedNets are the only networks a lab may use (RFC 5737 TEST-NET-2 and
// TEST-NET-3; TEST-NET-1 is the lab machines' own network).
var allowedNets = []netip.Prefix{
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

// maxBaseLen bounds the name a caller gives, so namespace names stay short.
const maxBaseLen = 32

// aliasTag starts the IFLA_IFALIAS the lab writes on each veth end; Open
// reads the address back from it (in dedicated mode the kernel in A has no
// address to read).
const aliasTag = "demixdp-vethlab addr="

// Config describes a lab. The zero value is a valid dedicated-mode lab.
type Config struct {
	// Name is an optional prefix. The lab prepends "dx-" unless it already
	// starts with "dx" and appends a random suffix, so labs never collide
	// and tests may run in parallel. Letters, digits and '-' only.
	Name string
	// ExactName uses Name (with the "dx" prefix rule) without a random
	// suffix, for labs a person names on the command line. New fails with
	// ErrExists if the lab is already up.
	ExactName bool
	// AddrA and AddrB are the addresses of the A and B ends; zero values
	// mean DefaultAddrA and DefaultAddrB. Both must lie in 198.51.100.0/24
	// or 203.0.113.0/24, with a prefix length of 24 to 31.
	AddrA, AddrB netip.Prefix
	// KernelAddrA assigns AddrA to IfA in namespace A (shared-address
	// mode). By default the libOS owns AddrA and the kernel in A has no
	// IPv4 address (dedicated mode). B always gets AddrB.
	KernelAddrA bool
	// MTU of both ends; 0 means 1500.
	MTU int
	// Offloads keeps the veth's checksum, SG, TSO, GSO and GRO offloads as
	// SetOffloads(true) sets them. False (the default) turns them all off
	// on both ends.
	Offloads bool
	// IPv6 keeps IPv6 enabled in both namespaces. By default it is disabled
	// so no DAD, router solicitation or MLD frames appear on the veth.
	IPv6 bool
	// Queues gives both ends that many RX and TX queues (numrxqueues,
	// numtxqueues; 0 means 1). A veth delivers a frame on the receive
	// queue whose number is the sender's transmit queue, and the kernel
	// in B picks a socket's transmit queue from the socket's random flow
	// hash, so B's flows spread over A's queues. With more than one
	// queue the lab also sets net.core.txrehash=0 in B, so that the
	// kernel keeps a connection on its queue after a retransmission
	// timeout instead of drawing a new hash (see multiqueue.go).
	Queues int
}

// Lab is a veth pair whose ends live in two network namespaces the lab
// created. Its methods may be called from any goroutine.
type Lab struct {
	Name           string           // the lab's name; namespaces are Name+"-a" and Name+"-b"
	NSA, NSB       string           // network namespace names, as `ip netns` shows them
	IfA, IfB       string           // interface names in NSA and NSB
	IndexA, IndexB int              // ifindex of IfA in NSA and of IfB in NSB
	MACA, MACB     net.HardwareAddr // hardware addresses of IfA and IfB
	AddrA, AddrB   netip.Prefix     // AddrA belongs to the libOS (and to the kernel in A in shared mode)

	mu     sync.Mutex
	closed bool
	ownA   bool // NSA is ours to delete
	ownB   bool // NSB is ours to delete
}

// New creates a lab: both named namespaces, the veth pair created inside A
// with its peer in B, the addresses, lo and both ends up, offloads off unless
// cfg.Offloads. On any error it removes everything it created and returns an
// error wrapping the cause (ErrBadConfig for a bad cfg).
func New(cfg Config) (*Lab, error) {
	l, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	if err := l.build(cfg); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("vethlab: cleanup after failed New: %w", cerr))
		}
		return nil, err
	}
	return l, nil
}

// ForTest creates a lab for t, or skips t without privileges (see
// priv.Require). It fails t if the lab cannot be built and closes the lab
// when t ends.
func ForTest(t testing.TB, cfg Config) *Lab {
	t.Helper()
	priv.Require(t, "veth lab")
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("vethlab.New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("vethlab: close %s: %v", l.Name, err)
		}
	})
	return l
}

// LabName applies the "dx" prefix rule to a name: it returns name unchanged
// if it starts with "dx" and "dx-"+name otherwise.
func LabName(name string) string {
	if strings.HasPrefix(name, Prefix) {
		return name
	}
	return Prefix + "-" + name
}

func validName(name string) error {
	if len(name) > maxBaseLen {
		return fmt.Errorf("vethlab: name %q longer than %d: %w", name, maxBaseLen, ErrBadConfig)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("vethlab: name %q: only letters, digits and '-': %w", name, ErrBadConfig)
		}
	}
	return nil
}

func checkAddr(which string, p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("vethlab: %s %v is not an IPv4 prefix: %w", which, p, ErrBadConfig)
	}
	if p.Bits() < 24 || p.Bits() > 31 {
		return fmt.Errorf("vethlab: %s %v: prefix length must be 24..31: %w", which, p, ErrBadConfig)
	}
	for _, n := range allowedNets {
		if n.Contains(p.Addr()) {
			if p.Bits() < 31 {
				a4, n4 := p.Addr().As4(), p.Masked().Addr().As4()
				host := uint32(a4[3]-n4[3]) & (1<<(32-p.Bits()) - 1)
				if host == 0 || host == 1<<(32-p.Bits())-1 {
					return fmt.Errorf("vethlab: %s %v is a network or broadcast address: %w", which, p, ErrBadConfig)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("vethlab: %s %v outside 198.51.100.0/24 and 203.0.113.0/24: %w", which, p, ErrBadConfig)
}

// plan validates cfg and chooses names; it creates nothing.
func plan(cfg Config) (*Lab, error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.ExactName && cfg.Name == "" {
		return nil, fmt.Errorf("vethlab: ExactName needs a Name: %w", ErrBadConfig)
	}
	l := &Lab{AddrA: cfg.AddrA, AddrB: cfg.AddrB}
	if !l.AddrA.IsValid() {
		l.AddrA = DefaultAddrA
	}
	if !l.AddrB.IsValid() {
		l.AddrB = DefaultAddrB
	}
	if err := checkAddr("AddrA", l.AddrA); err != nil {
		return nil, err
	}
	if err := checkAddr("AddrB", l.AddrB); err != nil {
		return nil, err
	}
	if l.AddrA.Addr() == l.AddrB.Addr() {
		return nil, fmt.Errorf("vethlab: AddrA and AddrB are both %v: %w", l.AddrA.Addr(), ErrBadConfig)
	}
	if cfg.Queues < 0 || cfg.Queues > MaxQueues {
		return nil, fmt.Errorf("vethlab: Queues %d outside 0..%d: %w", cfg.Queues, MaxQueues, ErrBadConfig)
	}
	if cfg.MTU != 0 && (cfg.MTU < 68 || cfg.MTU > 65535) {
		return nil, fmt.Errorf("vethlab: MTU %d outside 68..65535: %w", cfg.MTU, ErrBadConfig)
	}
	var tag string
	if cfg.ExactName {
		l.Name = LabName(cfg.Name)
		h := fnv.New32a()
		h.Write([]byte(l.Name))
		tag = fmt.Sprintf("%06x", h.Sum32()&0xffffff)
	} else {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("vethlab: random suffix: %w", err)
		}
		tag = hex.EncodeToString(b[:])
		base := cfg.Name
		if base == "" {
			base = "dxl"
		}
		l.Name = LabName(base) + "-" + tag
	}
	l.NSA, l.NSB = l.Name+"-a", l.Name+"-b"
	l.IfA, l.IfB = "dxa"+tag, "dxb"+tag
	return l, nil
}

// build creates what plan named. The caller closes l on error.
func (l *Lab) build(cfg Config) error {
	if err := prepareNetnsDir(); err != nil {
		return err
	}
	if err := createNamedNetns(l.NSA); err != nil {
		return err
	}
	l.ownA = true
	if err := createNamedNetns(l.NSB); err != nil {
		return err
	}
	l.ownB = true

	if !cfg.IPv6 {
		for _, ns := range []string{l.NSA, l.NSB} {
			if err := runInNetns(ns, disableIPv6); err != nil {
				return err
			}
		}
	}

	nsA, err := netns.GetFromName(l.NSA)
	if err != nil {
		return fmt.Errorf("vethlab: open %s: %w", l.NSA, err)
	}
	defer nsA.Close()
	nsB, err := netns.GetFromName(l.NSB)
	if err != nil {
		return fmt.Errorf("vethlab: open %s: %w", l.NSB, err)
	}
	defer nsB.Close()
	hA, err := netlink.NewHandleAt(nsA)
	if err != nil {
		return fmt.Errorf("vethlab: netlink in %s: %w", l.NSA, err)
	}
	defer hA.Close()
	hB, err := netlink.NewHandleAt(nsB)
	if err != nil {
		return fmt.Errorf("vethlab: netlink in %s: %w", l.NSB, err)
	}
	defer hB.Close()

	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 1500
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.IfA, MTU: mtu},
		PeerName:      l.IfB,
		PeerNamespace: netlink.NsFd(int(nsB)),
	}
	setQueues(veth, cfg.Queues)
	if err := hA.LinkAdd(veth); err != nil {
		return fmt.Errorf("vethlab: create veth %s/%s in %s: %w", l.IfA, l.IfB, l.NSA, err)
	}
	if err := setupEnd(hA, l.IfA, l.AddrA, cfg.KernelAddrA); err != nil {
		return fmt.Errorf("vethlab: %s: %w", l.NSA, err)
	}
	if err := setupEnd(hB, l.IfB, l.AddrB, true); err != nil {
		return fmt.Errorf("vethlab: %s: %w", l.NSB, err)
	}
	if err := l.SetOffloads(cfg.Offloads); err != nil {
		return err
	}
	if err := l.pinFlowsToQueues(cfg.Queues); err != nil {
		return err
	}
	if err := l.readLinks(hA, hB); err != nil {
		return err
	}
	return nil
}

// disableIPv6 turns IPv6 off for every current and future interface of the
// calling thread's namespace. A kernel without IPv6 needs nothing.
func disableIPv6() error {
	for _, f := range []string{"default", "all", "lo"} {
		p := "/proc/sys/net/ipv6/conf/" + f + "/disable_ipv6"
		if err := os.WriteFile(p, []byte("1\n"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("vethlab: %s: %w", p, err)
		}
	}
	return nil
}

// setupEnd tags, addresses (if kernelAddr) and brings up one end and lo.
func setupEnd(h *netlink.Handle, ifname string, addr netip.Prefix, kernelAddr bool) error {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s: %w", ifname, err)
	}
	if err := h.LinkSetAlias(link, aliasTag+addr.String()); err != nil {
		return fmt.Errorf("alias %s: %w", ifname, err)
	}
	if kernelAddr {
		ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("address %v on %s: %w", addr, ifname, err)
		}
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", ifname, err)
	}
	return nil
}

// readLinks fills the indexes and MACs from the kernel.
func (l *Lab) readLinks(hA, hB *netlink.Handle) error {
	a, err := hA.LinkByName(l.IfA)
	if err != nil {
		return fmt.Errorf("vethlab: find %s in %s: %w", l.IfA, l.NSA, err)
	}
	b, err := hB.LinkByName(l.IfB)
	if err != nil {
		return fmt.Errorf("vethlab: find %s in %s: %w", l.IfB, l.NSB, err)
	}
	l.IndexA, l.MACA = a.Attrs().Index, a.Attrs().HardwareAddr
	l.IndexB, l.MACB = b.Attrs().Index, b.Attrs().HardwareAddr
	return nil
}

// Open finds a lab that is already up (for example one `vethlab up` left
// behind) by its name; the "dx" prefix rule of LabName applies. Closing the
// returned Lab removes it. It fails with ErrNotFound if either namespace or
// veth end is missing.
func Open(name string) (*Lab, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	name = LabName(name)
	l := &Lab{Name: name, NSA: name + "-a", NSB: name + "-b"}
	var ends [2]struct {
		ifname string
		index  int
		mac    net.HardwareAddr
		addr   netip.Prefix
	}
	for i, ns := range []string{l.NSA, l.NSB} {
		h, err := netns.GetFromName(ns)
		if err != nil {
			return nil, fmt.Errorf("vethlab: namespace %s: %w", ns, ErrNotFound)
		}
		nh, err := netlink.NewHandleAt(h)
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("vethlab: netlink in %s: %w", ns, err)
		}
		links, err := nh.LinkList()
		nh.Close()
		if err != nil {
			return nil, fmt.Errorf("vethlab: links in %s: %w", ns, err)
		}
		for _, lk := range links {
			at := lk.Attrs()
			if lk.Type() != "veth" || !strings.HasPrefix(at.Alias, aliasTag) {
				continue
			}
			p, err := netip.ParsePrefix(strings.TrimPrefix(at.Alias, aliasTag))
			if err != nil {
				continue
			}
			ends[i].ifname, ends[i].index, ends[i].mac, ends[i].addr = at.Name, at.Index, at.HardwareAddr, p
			break
		}
		if ends[i].ifname == "" {
			return nil, fmt.Errorf("vethlab: no lab veth in %s: %w", ns, ErrNotFound)
		}
	}
	l.IfA, l.IndexA, l.MACA, l.AddrA = ends[0].ifname, ends[0].index, ends[0].mac, ends[0].addr
	l.IfB, l.IndexB, l.MACB, l.AddrB = ends[1].ifname, ends[1].index, ends[1].mac, ends[1].addr
	l.ownA, l.ownB = true, true
	return l, nil
}

// Remove deletes the lab named name (the "dx" prefix rule of LabName
// applies): the tagged veth and the namespaces name-a and name-b, whichever
// of them exist. Use it to take down a lab a previous process left up, even a
// partial one. It fails with ErrNotFound if neither namespace exists.
func Remove(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	name = LabName(name)
	found := false
	var errs []error
	for _, ns := range []string{name + "-a", name + "-b"} {
		if !netnsExists(ns) {
			continue
		}
		found = true
		if err := deleteLabVeths(ns); err != nil {
			errs = append(errs, err)
		}
		if err := deleteNamedNetns(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if !found {
		return fmt.Errorf("vethlab: %s: %w", name, ErrNotFound)
	}
	return errors.Join(errs...)
}

// Vars describes the lab as shell-friendly KEY=VALUE lines: NAME, NSA, NSB,
// IFA, IFB, INDEXA, INDEXB, ADDRA, ADDRB, MACA, MACB. Values contain no
// spaces or quotes.
func (l *Lab) Vars() []string {
	return []string{
		"NAME=" + l.Name,
		"NSA=" + l.NSA,
		"NSB=" + l.NSB,
		"IFA=" + l.IfA,
		"IFB=" + l.IfB,
		fmt.Sprintf("INDEXA=%d", l.IndexA),
		fmt.Sprintf("INDEXB=%d", l.IndexB),
		"ADDRA=" + l.AddrA.String(),
		"ADDRB=" + l.AddrB.String(),
		"MACA=" + l.MACA.String(),
		"MACB=" + l.MACB.String(),
	}
}

// Close removes the lab: it deletes the veth (which detaches any XDP program
// on it) and both namespaces. It only removes what this lab created (or, for
// a Lab from Open, the two namespaces of that name). Calling it again does
// nothing and returns nil. A process or socket still inside a namespace keeps
// that namespace alive, but it no longer has a name or the veth.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if l.ownA && l.IfA != "" {
		if err := deleteLinkIn(l.NSA, l.IfA); err != nil {
			errs = append(errs, err)
		}
	}
	if l.ownA {
		if err := deleteNamedNetns(l.NSA); err != nil {
			errs = append(errs, err)
		}
	}
	if l.ownB {
		if err := deleteNamedNetns(l.NSB); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteLinkIn deletes ifname in namespace ns; a missing namespace or link
// is not an error.
func deleteLinkIn(ns, ifname string) error {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("vethlab: netlink in %s: %w", ns, err)
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("vethlab: find %s in %s: %w", ifname, ns, err)
	}
	if err := nh.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("vethlab: delete %s in %s: %w", ifname, ns, err)
	}
	return nil
}

// RunInA runs fn on the calling goroutine's OS thread switched into NSA:
// it locks the thread, enters the namespace, runs fn and restores the
// original namespace before unlocking. Sockets fn opens stay in NSA after it
// returns; goroutines fn starts do not run in NSA. If restoring fails the
// thread stays locked, so the Go runtime ends it when the goroutine exits
// rather than reuse a thread in the wrong namespace; the error says so.
func (l *Lab) RunInA(fn func() error) error { return runInNetns(l.NSA, fn) }

// RunInB is RunInA for NSB.
func (l *Lab) RunInB(fn func() error) error { return runInNetns(l.NSB, fn) }

// CommandA returns `ip netns exec NSA name args...`.
func (l *Lab) CommandA(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.NSA, name}, args...)...)
}

// CommandB returns `ip netns exec NSB name args...`.
func (l *Lab) CommandB(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.NSB, name}, args...)...)
}

// SetOffloads turns RX/TX checksum offload, scatter-gather, TSO, GSO and
// GRO on or off on both ends, through the SIOCETHTOOL ioctl issued inside
// each namespace, and verifies the result (ErrOffloads if the kernel did not
// follow).
func (l *Lab) SetOffloads(on bool) error {
	return l.eachEnd(func(fd int, ifname string) error { return setOffloads(fd, ifname, on) })
}

// SetTxChecksumA turns tx-checksumming (ETHTOOL_STXCSUM) of IfA alone on
// or off, and verifies it: the A end then hands partial checksums to B (a
// libOS on A computing its own checksums or not), while B's packets to A
// keep theirs complete.
func (l *Lab) SetTxChecksumA(on bool) error {
	var fd int
	if err := runInNetns(l.NSA, func() (err error) { fd, err = ethtool.Socket(); return err }); err != nil {
		return err
	}
	defer unix.Close(fd)
	var val uint32
	if on {
		val = 1
	}
	if _, err := ethtool.Value(fd, l.IfA, unix.ETHTOOL_STXCSUM, val); err != nil {
		return fmt.Errorf("vethlab: %s: set tx-checksumming=%v: %w", l.IfA, on, err)
	}
	got, err := ethtool.Value(fd, l.IfA, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil {
		return fmt.Errorf("vethlab: %s: get tx-checksumming: %w", l.IfA, err)
	}
	if (got != 0) != on {
		return fmt.Errorf("vethlab: %s: tx-checksumming stayed %v: %w", l.IfA, got != 0, ErrOffloads)
	}
	return nil
}

// GetOffloads reports the offload state of IfA and IfB.
func (l *Lab) GetOffloads() (a, b Offloads, err error) {
	i := 0
	err = l.eachEnd(func(fd int, ifname string) error {
		o, err := getOffloads(fd, ifname)
		if i == 0 {
			a = o
		} else {
			b = o
		}
		i++
		return err
	})
	return a, b, err
}

// eachEnd calls fn for IfA then IfB with an ethtool socket of its namespace.
func (l *Lab) eachEnd(fn func(fd int, ifname string) error) error {
	for _, end := range [2][2]string{{l.NSA, l.IfA}, {l.NSB, l.IfB}} {
		var fd int
		err := runInNetns(end[0], func() (err error) {
			fd, err = ethtool.Socket()
			return err
		})
		if err != nil {
			return err
		}
		err = fn(fd, end[1])
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

// Cleanup removes every namespace under NetnsDir whose name starts with
// prefix, deleting the lab veth in it first. The prefix must start with "dx",
// so Cleanup never removes a namespace the lab did not name.
func Cleanup(prefix string) error {
	if !strings.HasPrefix(prefix, Prefix) {
		return fmt.Errorf("vethlab: cleanup prefix %q must start with %q: %w", prefix, Prefix, ErrBadConfig)
	}
	entries, err := os.ReadDir(NetnsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("vethlab: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if err := deleteLabVeths(name); err != nil {
			errs = append(errs, err)
		}
		if err := deleteNamedNetns(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteLabVeths deletes the veths the lab tagged in namespace ns.
func deleteLabVeths(ns string) error {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("vethlab: netlink in %s: %w", ns, err)
	}
	defer nh.Close()
	links, err := nh.LinkList()
	if err != nil {
		return fmt.Errorf("vethlab: links in %s: %w", ns, err)
	}
	for _, lk := range links {
		if lk.Type() == "veth" && strings.HasPrefix(lk.Attrs().Alias, aliasTag) {
			if err := nh.LinkDel(lk); err != nil && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("vethlab: delete %s in %s: %w", lk.Attrs().Name, ns, err)
			}
		}
	}
	return nil
}
