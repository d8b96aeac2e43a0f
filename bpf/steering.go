package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Mode selects which frames the steering program claims.
type Mode uint32

const (
	// Dedicated claims ARP for, and every IPv4 packet to, the addresses in
	// the address map: the libOS owns those addresses outright.
	Dedicated Mode = iota
	// Shared claims only unfragmented TCP/UDP to the addresses in the
	// address map whose (protocol, destination port) is in the port map;
	// ARP, ICMP and everything else stay with the kernel.
	Shared
)

// String returns "dedicated" or "shared".
func (m Mode) String() string {
	switch m {
	case Dedicated:
		return "dedicated"
	case Shared:
		return "shared"
	}
	return fmt.Sprintf("Mode(%d)", uint32(m))
}

// Default map sizes used when a Config field is zero.
const (
	DefaultMaxQueues = 64
	DefaultMaxAddrs  = 16
	DefaultMaxPorts  = 4096
)

// Config sizes the maps and picks the mode of a Steering program.
type Config struct {
	// Mode is baked into the program at Load.
	Mode Mode
	// MaxQueues is the XSKMAP size: queues 0..MaxQueues-1 can carry a
	// socket. Zero means DefaultMaxQueues.
	MaxQueues int
	// MaxAddrs and MaxPorts size the address and port maps. Zero means
	// DefaultMaxAddrs and DefaultMaxPorts.
	MaxAddrs, MaxPorts int
}

// Counters are the program's statistics, summed over all CPUs. Every frame
// the program sees is counted exactly once in Redirected or Passed;
// Malformed counts the subset of Passed frames that failed validation.
type Counters struct {
	Redirected uint64 // frames claimed for the libOS and redirected to the queue's socket
	Passed     uint64 // frames left to the kernel (XDP_PASS)
	Malformed  uint64 // passed frames that failed validation (a subset of Passed)
}

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalidConfig reports a Config with a negative size or an unknown mode.
	ErrInvalidConfig = errors.New("bpf: invalid config")
	// ErrNotIPv4 reports an address that is not a plain IPv4 address.
	ErrNotIPv4 = errors.New("bpf: not an IPv4 address")
	// ErrProtocol reports a protocol other than TCP (6) or UDP (17).
	ErrProtocol = errors.New("bpf: protocol is neither TCP nor UDP")
	// ErrAttached reports an Attach on a Steering that is already attached.
	ErrAttached = errors.New("bpf: already attached")
	// ErrClosed reports use of a closed Steering.
	ErrClosed = errors.New("bpf: steering closed")
)

// configAnyAddr is the bit in config[0] that makes every destination
// address "ours" (AddAddr(0.0.0.0)).
const configAnyAddr = 1

// Steering is a loaded steering program with its maps, optionally attached
// to one interface. Its methods are safe for concurrent use.
type Steering struct {
	mode Mode

	mu     sync.Mutex
	closed bool
	link   link.Link
	flags  uint32 // mirror of config[0]
	pinDir string // where Pin pinned the maps, "" if not pinned

	prog     *ebpf.Program
	addrs    *ebpf.Map
	ports    *ebpf.Map
	xsks     *ebpf.Map
	config   *ebpf.Map
	counters *ebpf.Map
}

// Load creates the maps and loads the program for cfg. It does not attach.
// It fails with ErrInvalidConfig for a bad cfg, or with the kernel's error
// (for instance a permission error without CAP_BPF) wrapped.
func Load(cfg Config) (*Steering, error) {
	if cfg.Mode != Dedicated && cfg.Mode != Shared {
		return nil, fmt.Errorf("%w: mode %d", ErrInvalidConfig, uint32(cfg.Mode))
	}
	queues, err := size(cfg.MaxQueues, DefaultMaxQueues, "MaxQueues")
	if err != nil {
		return nil, err
	}
	addrs, err := size(cfg.MaxAddrs, DefaultMaxAddrs, "MaxAddrs")
	if err != nil {
		return nil, err
	}
	ports, err := size(cfg.MaxPorts, DefaultMaxPorts, "MaxPorts")
	if err != nil {
		return nil, err
	}

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones
	// ignore it. Best effort: without the privilege the maps may still fit.
	_ = rlimit.RemoveMemlock()

	s := &Steering{mode: cfg.Mode}
	specs := []struct {
		m    **ebpf.Map
		spec ebpf.MapSpec
	}{
		{&s.addrs, ebpf.MapSpec{Name: "dxb_addrs", Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: addrs}},
		{&s.ports, ebpf.MapSpec{Name: "dxb_ports", Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: ports}},
		{&s.xsks, ebpf.MapSpec{Name: "dxb_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: queues}},
		{&s.config, ebpf.MapSpec{Name: "dxb_config", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
		{&s.counters, ebpf.MapSpec{Name: "dxb_counters", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: (queues + 1) * numCounters}},
	}
	for _, sp := range specs {
		m, err := ebpf.NewMap(&sp.spec)
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("bpf: create map %s: %w", sp.spec.Name, err)
		}
		*sp.m = m
	}

	insns, err := steeringProgram(cfg.Mode, mapFDs{
		addrs:    s.addrs.FD(),
		ports:    s.ports.FD(),
		xsks:     s.xsks.FD(),
		config:   s.config.FD(),
		counters: s.counters.FD(),
		queues:   int32(queues),
	})
	if err != nil {
		s.closeAll()
		return nil, err
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "dxb_steer",
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("bpf: load program: %w", err)
	}
	return s, nil
}

func size(v, def int, name string) (uint32, error) {
	switch {
	case v == 0:
		return uint32(def), nil
	case v < 0 || v > 1<<24:
		return 0, fmt.Errorf("%w: %s = %d", ErrInvalidConfig, name, v)
	}
	return uint32(v), nil
}

// Mode reports the mode the program was loaded with.
func (s *Steering) Mode() Mode { return s.mode }

// Program returns the loaded program, for BPF_PROG_TEST_RUN in tests. It is
// owned by s: do not close it.
func (s *Steering) Program() *ebpf.Program { return s.prog }

// Attach attaches the program to the interface with index ifindex as a
// bpf_link (the kernel detaches it when the process dies). No mode flag is
// passed: the kernel uses driver mode where available, else generic mode.
// It fails with ErrAttached if s is already attached, ErrClosed after Close,
// or the kernel's error (for instance when another XDP program is attached).
func (s *Steering) Attach(ifindex int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.link != nil {
		return ErrAttached
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: s.prog, Interface: ifindex})
	if err != nil {
		return fmt.Errorf("bpf: attach to ifindex %d: %w", ifindex, err)
	}
	s.link = l
	return nil
}

// Detach removes the program from its interface. Detaching a Steering that
// is not attached (or is closed) does nothing and returns nil.
func (s *Steering) Detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.detachLocked()
}

func (s *Steering) detachLocked() error {
	if s.link == nil {
		return nil
	}
	err := s.link.Close()
	s.link = nil
	if err != nil {
		return fmt.Errorf("bpf: detach: %w", err)
	}
	return nil
}

// Close removes the pins (see Pin), detaches the program and releases the
// program and maps. Further
// calls return nil; other methods then fail with ErrClosed.
func (s *Steering) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := errors.Join(s.unpinLocked(), s.detachLocked())
	if cerr := s.closeAll(); err == nil {
		err = cerr
	}
	return err
}

func (s *Steering) closeAll() error {
	var errs []error
	if s.prog != nil {
		errs = append(errs, s.prog.Close())
	}
	for _, m := range []*ebpf.Map{s.addrs, s.ports, s.xsks, s.config, s.counters} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bpf: close: %w", err)
	}
	return nil
}

func (s *Steering) check() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}

// addrKey encodes a as the addrs map key (4 bytes, network order).
func addrKey(a netip.Addr) ([4]byte, error) {
	if !a.Is4() {
		return [4]byte{}, fmt.Errorf("%w: %v", ErrNotIPv4, a)
	}
	return a.As4(), nil
}

// portKey encodes (proto, port) as the ports map key: {proto, 0, port
// in network order}.
func portKey(proto uint8, port uint16) ([4]byte, error) {
	if proto != protoTCP && proto != protoUDP {
		return [4]byte{}, fmt.Errorf("%w: %d", ErrProtocol, proto)
	}
	return [4]byte{proto, 0, byte(port >> 8), byte(port)}, nil
}

// AddAddr makes a an address of this libOS. a must be IPv4 (ErrNotIPv4
// otherwise; an IPv4-mapped IPv6 address counts as IPv6). 0.0.0.0 is the
// wildcard: every destination address is then ours (in dedicated mode that
// includes every ARP request and every IPv4 packet on the interface). Adding
// an address twice is not an error.
func (s *Steering) AddAddr(a netip.Addr) error {
	k, err := addrKey(a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if a.IsUnspecified() {
		return s.setFlagsLocked(s.flags | configAnyAddr)
	}
	if err := s.addrs.Put(k, uint8(1)); err != nil {
		return fmt.Errorf("bpf: add address %v: %w", a, err)
	}
	return nil
}

// RemoveAddr undoes AddAddr. Removing an address that was not added fails
// with an error that satisfies errors.Is(err, ebpf.ErrKeyNotExist).
func (s *Steering) RemoveAddr(a netip.Addr) error {
	k, err := addrKey(a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if a.IsUnspecified() {
		if s.flags&configAnyAddr == 0 {
			return fmt.Errorf("bpf: remove address %v: %w", a, ebpf.ErrKeyNotExist)
		}
		return s.setFlagsLocked(s.flags &^ configAnyAddr)
	}
	if err := s.addrs.Delete(k); err != nil {
		return fmt.Errorf("bpf: remove address %v: %w", a, err)
	}
	return nil
}

func (s *Steering) setFlagsLocked(flags uint32) error {
	if err := s.config.Put(uint32(0), flags); err != nil {
		return fmt.Errorf("bpf: set config: %w", err)
	}
	s.flags = flags
	return nil
}

// AddPort claims (proto, port) in shared mode; proto is 6 (TCP) or 17 (UDP),
// anything else fails with ErrProtocol. The port map is ignored in dedicated
// mode. Entries are not reference counted: one RemovePort undoes any number
// of AddPort calls for the same pair.
func (s *Steering) AddPort(proto uint8, port uint16) error {
	k, err := portKey(proto, port)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := s.ports.Put(k, uint8(1)); err != nil {
		return fmt.Errorf("bpf: add port %d/%d: %w", proto, port, err)
	}
	return nil
}

// RemovePort undoes AddPort. Removing a pair that was not added fails with
// an error that satisfies errors.Is(err, ebpf.ErrKeyNotExist).
func (s *Steering) RemovePort(proto uint8, port uint16) error {
	k, err := portKey(proto, port)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := s.ports.Delete(k); err != nil {
		return fmt.Errorf("bpf: remove port %d/%d: %w", proto, port, err)
	}
	return nil
}

// RegisterSocket puts the AF_XDP socket fd into the XSKMAP slot for queue,
// replacing any previous one. fd must be an AF_XDP socket (the kernel
// refuses other fds) and should be bound to this queue of the interface the
// program is attached to: the kernel accepts an unbound socket here but
// drops, at redirect time, frames for a socket bound elsewhere.
func (s *Steering) RegisterSocket(queue uint32, fd int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if fd < 0 {
		return fmt.Errorf("bpf: register socket for queue %d: bad fd %d", queue, fd)
	}
	if err := s.xsks.Put(queue, uint32(fd)); err != nil {
		return fmt.Errorf("bpf: register socket for queue %d: %w", queue, err)
	}
	return nil
}

// UnregisterSocket empties the XSKMAP slot for queue; frames for that queue
// then go to the kernel. Emptying an empty slot succeeds; a queue beyond
// Config.MaxQueues is an error.
func (s *Steering) UnregisterSocket(queue uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := s.xsks.Delete(queue); err != nil {
		return fmt.Errorf("bpf: unregister socket for queue %d: %w", queue, err)
	}
	return nil
}

// Counters reads the program's counters, summed over CPUs and queues. It
// allocates (a slice per read) and is meant for statistics, not the
// datapath.
func (s *Steering) Counters() (Counters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return Counters{}, err
	}
	rows, err := readCounters(s.counters)
	if err != nil {
		return Counters{}, err
	}
	return sumRows(rows), nil
}
