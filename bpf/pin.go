package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// DefaultPinRoot is where a libOS pins its steering maps, one directory per
// interface (DefaultPinRoot/IFNAME), so that tools such as `demixdp stat`
// can read them while the libOS runs.
const DefaultPinRoot = "/sys/fs/bpf/demixdp"

// ErrNotBPFFS reports a pin directory that does not lie on a bpf file
// system (mount one with `mount -t bpf bpf /sys/fs/bpf`).
var ErrNotBPFFS = errors.New("bpf: not on a bpf file system")

// Names of the pinned maps inside a pin directory. The XSKMAP is never
// pinned: a pinned XSKMAP would keep the AF_XDP socket, its UMEM and its
// queue alive after the process died.
const (
	pinCounters = "counters"
	pinAddrs    = "addrs"
	pinPorts    = "ports"
	pinConfig   = "config"
)

// PinDir returns the pin directory of interface ifname under root.
func PinDir(root, ifname string) string { return filepath.Join(root, ifname) }

// IsBPFFS reports whether path (which must exist) lies on a bpf file system.
func IsBPFFS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.BPF_FS_MAGIC, nil
}

// Pin pins the counters, address, port and config maps in dir (created if
// missing, its parent must lie on a bpf file system, else ErrNotBPFFS).
// Whatever dir already holds is removed first: a process that crashed
// leaves its pins behind, and the caller, who has just attached to the
// interface the directory is named after, is now its only owner. Close
// (or Unpin) removes the pins and dir.
func (s *Steering) Pin(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if s.pinDir != "" {
		return fmt.Errorf("bpf: already pinned in %s", s.pinDir)
	}
	parent := filepath.Dir(dir)
	// The nearest existing ancestor says which file system the
	// directories will be made on.
	for p := parent; ; p = filepath.Dir(p) {
		ok, err := IsBPFFS(p)
		if errors.Is(err, os.ErrNotExist) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return fmt.Errorf("bpf: pin directory %s: %w", p, err)
		}
		if !ok {
			return fmt.Errorf("bpf: pin directory %s: %s: %w", parent, p, ErrNotBPFFS)
		}
		break
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("bpf: pin directory: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("bpf: remove stale pins in %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("bpf: pin directory: %w", err)
	}
	s.pinDir = dir
	for _, p := range []struct {
		m    *ebpf.Map
		name string
	}{{s.counters, pinCounters}, {s.addrs, pinAddrs}, {s.ports, pinPorts}, {s.config, pinConfig}} {
		if err := p.m.Pin(filepath.Join(dir, p.name)); err != nil {
			err = fmt.Errorf("bpf: pin %s: %w", p.name, err)
			return errors.Join(err, s.unpinLocked())
		}
	}
	return nil
}

// PinnedAt returns the directory the maps are pinned in, or "".
func (s *Steering) PinnedAt() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinDir
}

// Unpin removes the pins Pin made and their directory. Without pins it
// does nothing.
func (s *Steering) Unpin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unpinLocked()
}

func (s *Steering) unpinLocked() error {
	if s.pinDir == "" {
		return nil
	}
	var errs []error
	for _, m := range []*ebpf.Map{s.counters, s.addrs, s.ports, s.config} {
		if m != nil {
			if err := m.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(s.pinDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	s.pinDir = ""
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bpf: unpin: %w", err)
	}
	return nil
}

// readCounters reads every row of a counters map, summed over CPUs: row q
// holds queue q's counters, and the last row those of queues beyond the
// XSKMAP.
func readCounters(m *ebpf.Map) ([]Counters, error) {
	n := m.MaxEntries() / numCounters
	rows := make([]Counters, n)
	var per []uint64
	for q := range rows {
		var sums [numCounters]uint64
		for i := range sums {
			if err := m.Lookup(uint32(q*numCounters+i), &per); err != nil {
				return nil, fmt.Errorf("bpf: read counter %d of queue %d: %w", i, q, err)
			}
			for _, v := range per {
				sums[i] += v
			}
		}
		rows[q] = Counters{Redirected: sums[ctrRedirected], Passed: sums[ctrPassed], Malformed: sums[ctrMalformed]}
	}
	return rows, nil
}

func sumRows(rows []Counters) Counters {
	var c Counters
	for _, r := range rows {
		c.Redirected += r.Redirected
		c.Passed += r.Passed
		c.Malformed += r.Malformed
	}
	return c
}

// QueueCounters are one receive queue's share of the program's counters.
type QueueCounters struct {
	// Queue is the receive queue; -1 stands for every queue at or beyond
	// Config.MaxQueues, which share one row.
	Queue int
	Counters
}

// rowsToQueues turns counter rows into QueueCounters, leaving out the rows
// that counted nothing.
func rowsToQueues(rows []Counters) []QueueCounters {
	var qs []QueueCounters
	for q, r := range rows {
		if r == (Counters{}) {
			continue
		}
		qc := QueueCounters{Queue: q, Counters: r}
		if q == len(rows)-1 {
			qc.Queue = -1
		}
		qs = append(qs, qc)
	}
	return qs
}

// QueueCounters reads the counters of every receive queue that has seen a
// frame, summed over CPUs, in queue order. Like Counters it is for
// statistics, not the datapath.
func (s *Steering) QueueCounters() ([]QueueCounters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := readCounters(s.counters)
	if err != nil {
		return nil, err
	}
	return rowsToQueues(rows), nil
}

// Pinned is a running libOS's steering maps, opened from their pins by
// another process (OpenPinned). Its methods read the maps; they never
// change them.
type Pinned struct {
	dir                            string
	counters, addrs, ports, config *ebpf.Map
}

// ErrNoPins reports a pin directory without a libOS's pins.
var ErrNoPins = errors.New("bpf: no pinned steering maps")

// OpenPinned opens the maps a Steering pinned in dir, read-only. It fails
// with ErrNoPins (wrapping os.ErrNotExist) if dir holds no pins.
func OpenPinned(dir string) (*Pinned, error) {
	p := &Pinned{dir: dir}
	ro := &ebpf.LoadPinOptions{ReadOnly: true}
	for _, x := range []struct {
		m    **ebpf.Map
		name string
	}{{&p.counters, pinCounters}, {&p.addrs, pinAddrs}, {&p.ports, pinPorts}, {&p.config, pinConfig}} {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, x.name), ro)
		if err != nil {
			p.Close()
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w in %s: %w", ErrNoPins, dir, err)
			}
			return nil, fmt.Errorf("bpf: open pinned %s in %s: %w", x.name, dir, err)
		}
		*x.m = m
	}
	if n := p.counters.MaxEntries(); n < 2*numCounters || n%numCounters != 0 {
		p.Close()
		return nil, fmt.Errorf("bpf: pinned counters in %s have %d entries, not a steering program's: %w", dir, n, ErrNoPins)
	}
	return p, nil
}

// Dir returns the pin directory.
func (p *Pinned) Dir() string { return p.dir }

// Counters reads the counters summed over CPUs and queues.
func (p *Pinned) Counters() (Counters, error) {
	rows, err := readCounters(p.counters)
	if err != nil {
		return Counters{}, err
	}
	return sumRows(rows), nil
}

// QueueCounters reads the counters of every queue that has seen a frame.
func (p *Pinned) QueueCounters() ([]QueueCounters, error) {
	rows, err := readCounters(p.counters)
	if err != nil {
		return nil, err
	}
	return rowsToQueues(rows), nil
}

// Addrs returns the addresses the program claims, in order; 0.0.0.0 stands
// for the wildcard.
func (p *Pinned) Addrs() ([]netip.Addr, error) {
	var out []netip.Addr
	var flags uint32
	if err := p.config.Lookup(uint32(0), &flags); err != nil {
		return nil, fmt.Errorf("bpf: read config: %w", err)
	}
	if flags&configAnyAddr != 0 {
		out = append(out, netip.IPv4Unspecified())
	}
	var k [4]byte
	var v uint8
	it := p.addrs.Iterate()
	for it.Next(&k, &v) {
		out = append(out, netip.AddrFrom4(k))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: read addresses: %w", err)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// Port is one (protocol, port) pair of the port map.
type Port struct {
	Proto uint8 // 6 (TCP) or 17 (UDP)
	Port  uint16
}

// String returns "tcp/80" or "udp/53".
func (p Port) String() string {
	switch p.Proto {
	case protoTCP:
		return fmt.Sprintf("tcp/%d", p.Port)
	case protoUDP:
		return fmt.Sprintf("udp/%d", p.Port)
	}
	return fmt.Sprintf("%d/%d", p.Proto, p.Port)
}

// Ports returns the ports the program claims in shared mode, in order.
func (p *Pinned) Ports() ([]Port, error) {
	var out []Port
	var k [4]byte
	var v uint8
	it := p.ports.Iterate()
	for it.Next(&k, &v) {
		out = append(out, Port{Proto: k[0], Port: uint16(k[2])<<8 | uint16(k[3])})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: read ports: %w", err)
	}
	slices.SortFunc(out, func(a, b Port) int {
		if a.Proto != b.Proto {
			return int(a.Proto) - int(b.Proto)
		}
		return int(a.Port) - int(b.Port)
	})
	return out, nil
}

// UsedBy reports whether the loaded program with id uses the pinned
// counters map, i.e. whether the pins belong to that program and not to a
// process that died without removing them.
func (p *Pinned) UsedBy(id ebpf.ProgramID) (bool, error) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false, fmt.Errorf("bpf: program %d: %w", id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return false, fmt.Errorf("bpf: program %d: %w", id, err)
	}
	ids, ok := info.MapIDs()
	if !ok {
		return false, fmt.Errorf("bpf: program %d: map ids not available: %w", id, ebpf.ErrNotSupported)
	}
	minfo, err := p.counters.Info()
	if err != nil {
		return false, fmt.Errorf("bpf: pinned counters: %w", err)
	}
	mid, ok := minfo.ID()
	if !ok {
		return false, fmt.Errorf("bpf: pinned counters: map id not available: %w", ebpf.ErrNotSupported)
	}
	return slices.Contains(ids, mid), nil
}

// Close releases the maps (the pins stay).
func (p *Pinned) Close() error {
	var errs []error
	for _, m := range []*ebpf.Map{p.counters, p.addrs, p.ports, p.config} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
