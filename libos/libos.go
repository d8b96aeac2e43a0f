package libos

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/tcp"
	"github.com/demixdp/demixdp/rss"
	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
	"golang.org/x/sys/unix"
)

// Mode says whether the libOS owns its IPv4 address or shares the kernel's.
type Mode int

const (
	// Dedicated: the address belongs to the libOS alone (the kernel must
	// not have it). ARP for it and all IPv4 to it go to the libOS, which
	// answers ARP and ping itself.
	Dedicated Mode = iota
	// Shared: the address is the kernel's too. Only UDP/TCP to ports the
	// libOS has bound reach it; ARP, ICMP and everything else stay with
	// the kernel, and neighbours come from the kernel's table.
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
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "dedicated" or "shared".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "dedicated":
		return Dedicated, nil
	case "shared":
		return Shared, nil
	}
	return 0, fmt.Errorf("libos: unknown mode %q (want dedicated or shared): %w", s, unix.EINVAL)
}

// Config describes a LibOS. Interface and Addr are required; every other
// field has a default.
type Config struct {
	Interface string       // the network interface, in the caller's network namespace
	Queue     int          // its RX/TX queue; default 0
	Addr      netip.Prefix // the libOS's IPv4 address and on-link prefix, e.g. 198.51.100.1/24
	Gateway   netip.Addr   // next hop for off-link destinations (optional)
	Mode      Mode

	// Frames is the number of UMEM frames (default 4096); FrameSize is
	// 2048 (default) or 4096; Headroom is the space kept in front of each
	// SGA segment for headers (default umem.DefaultHeadroom).
	Frames, FrameSize, Headroom int
	// HugePages backs the UMEM with huge pages when the system has them.
	HugePages bool
	// RingSize is the size of each of the four AF_XDP rings, a power of
	// two (default 1024). The fill ring keeps at most RingSize frames
	// posted, and never more than half of Frames.
	RingSize int
	// XDPMode chooses copy or zero-copy; the default tries zero-copy and
	// falls back to copy. LibOS.ZeroCopy reports the outcome.
	XDPMode xdp.Mode
	// TxChecksum says who computes the UDP and TCP checksums the libOS
	// sends: by default (TxChecksumAuto) the NIC when it can, otherwise
	// the libOS (txcsum.go). LibOS.TxChecksumOffload reports the outcome.
	TxChecksum TxChecksum
	// Spin is how long Wait busy-polls after the last activity before
	// blocking in poll(2). Default 200µs, longer than a round trip on a
	// local link, so a busy server or a client waiting for a reply never
	// pays the ~20µs of a wake-up; negative means never spin.
	Spin time.Duration
	// Batch is the most descriptors handled per ring per loop turn
	// (default 64).
	Batch int
	// RecvQueueLen bounds each UDP queue's receive queue (default 256);
	// a datagram arriving on a full queue is dropped and counted.
	RecvQueueLen int
	// ARP tunes neighbour resolution (see stack.ARPConfig).
	ARP stack.ARPConfig
	// TCP tunes the TCP engine (buffers, timers, congestion control; see
	// tcp.Config). Zero fields take the engine's defaults, except that
	// TCP.Frames (the frames the connections share; a negative value
	// turns frame budgets off) defaults to the frames neither the fill
	// ring nor the reserve needs, and SndBuf and RcvBuf to what a quarter
	// of those frames carry (at most 4 MiB).
	TCP tcp.Config
	// EphemeralFirst..EphemeralLast are the ports picked for port 0 and
	// unbound sends; zero means 61000..65535, outside Linux's default
	// ip_local_port_range (32768..60999). In Shared mode New refuses a
	// range that overlaps the kernel's, since both would hand out the same
	// ports on the same address.
	EphemeralFirst, EphemeralLast uint16

	// Capture, when set, receives every frame taken from the RX ring and
	// put on the TX ring, with the drop reason of received frames the
	// stack dropped (see CaptureSink; package dxcapture writes pcapng).
	// Off by default, and then free.
	Capture CaptureSink
	// Logger receives lifecycle events (attach with the XDP and copy or
	// zero-copy mode obtained and why, detach) and, at most once a second
	// each, warnings about ARP failures, UMEM exhaustion and kernel drops.
	// Nil means silent.
	Logger *slog.Logger
	// PinDir is the bpf file system directory under which the steering
	// maps are pinned, in a subdirectory named after the interface, for
	// `demixdp stat`; Close removes the pins. Empty means
	// bpf.DefaultPinRoot (/sys/fs/bpf/demixdp), best effort: without a
	// bpf file system there New goes on unpinned. A PinDir that is set
	// must work, or New fails.
	PinDir string

	// Queues, QueueIDs, CPUs and RSS are read by OpenQueues, which opens
	// several queues of the interface on one UMEM (queues.go); New opens
	// Queue alone and ignores them.
	//
	// QueueIDs lists the queues to open; if it is empty, Queues says how
	// many (queues 0..Queues-1), and if that is 0 too, every receive
	// queue the interface has (ETHTOOL_GCHANNELS). With several queues,
	// Frames is the UMEM's total, divided evenly between the queues
	// (default 4096 per queue).
	Queues   int
	QueueIDs []int
	// CPUs, if not empty, has one entry per queue: RunQueues pins the
	// loop of the i-th queue to CPU CPUs[i].
	CPUs []int
	// RSS is the NIC's receive-side scaling configuration, with which
	// OpenQueues chooses the ports of outbound connections so that
	// their replies arrive on the queue that opened them. Nil means read
	// it from the interface (ETHTOOL_GRSSH); where it cannot be read (as
	// on veth), or is an empty Config, replies that arrive on another
	// queue are handed to the right one.
	RSS *rss.Config
}

func (c *Config) normalize() error {
	if c.EphemeralFirst == 0 && c.EphemeralLast == 0 {
		c.EphemeralFirst, c.EphemeralLast = 61000, 65535
	}
	if c.EphemeralFirst == 0 || c.EphemeralFirst > c.EphemeralLast {
		return fmt.Errorf("libos: bad ephemeral port range %d-%d: %w", c.EphemeralFirst, c.EphemeralLast, unix.EINVAL)
	}
	if c.Interface == "" {
		return fmt.Errorf("libos: Config.Interface is required: %w", unix.EINVAL)
	}
	if !c.Addr.IsValid() || !c.Addr.Addr().Is4() {
		return fmt.Errorf("libos: Config.Addr must be an IPv4 prefix such as 198.51.100.1/24: %w", unix.EINVAL)
	}
	if c.Mode != Dedicated && c.Mode != Shared {
		return fmt.Errorf("libos: unknown Mode %d: %w", c.Mode, unix.EINVAL)
	}
	if c.Frames == 0 {
		c.Frames = umem.DefaultNumFrames
	}
	if c.FrameSize == 0 {
		c.FrameSize = umem.DefaultFrameSize
	}
	if c.Headroom == 0 {
		c.Headroom = umem.DefaultHeadroom
	}
	if c.RingSize == 0 {
		c.RingSize = 1024
	}
	if c.RingSize < 2 || c.RingSize&(c.RingSize-1) != 0 {
		return fmt.Errorf("libos: RingSize %d is not a power of two: %w", c.RingSize, unix.EINVAL)
	}
	if c.Spin == 0 {
		c.Spin = 200 * time.Microsecond
	}
	if c.Spin < 0 {
		c.Spin = 0
	}
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.Batch > c.RingSize {
		c.Batch = c.RingSize
	}
	if c.RecvQueueLen <= 0 {
		c.RecvQueueLen = 256
	}
	return nil
}

// LibOS is one NIC queue driven by one goroutine. See the package comment.
type LibOS struct {
	cfg      Config
	ifindex  int
	mac      [6]byte
	mtu      int
	um       *umem.UMEM
	pool     framePool // this queue's share of the UMEM, and frames lent to it (frames.go)
	sock     *xdp.Socket
	steer    *bpf.Steering
	stack    *stack.Stack
	neigh    *kernelNeighbors
	link     xskLink
	csumWhy  string // who completes outgoing checksums, or why the libOS does (txcsum.go)
	epoch    time.Time
	boot     int64 // CLOCK_MONOTONIC at epoch: the stack's clock counts from boot
	turn     int64 // the clock as first read in the current loop turn, 0 before that and outside one
	inTurn   bool  // inside poll, PushTo or Pop: Now keeps what it reads in turn
	fillGoal int   // frames the fill ring should hold
	reserve  int   // free frames SGAAlloc leaves for the stack's own packets
	inFill   int   // frames currently posted to the fill ring

	ops     opTable
	doneSeq uint64 // operations completed so far: run rescans tokens only when it moves
	queues  []queue
	freeQD  []QD
	sgas    sgaPool

	steerRefs map[steerKey]int // Shared mode: users of each steered port
	unsteer   []delayedUnsteer // TCP ports to release later, oldest first

	ctr    Counters
	mon    opsState // capture, logs, pins (ops.go)
	closed bool
	wake   waker // Wake: the one thing other goroutines may touch (wake.go)

	grp *group          // the queues opened together with this one (queues.go), nil for New
	qi  int             // this queue's index in grp
	hof handoffSet      // hand-offs between the group's loops (handoff.go)
	eph ephemeralCursor // a group's ephemeral port search (ports.go)
}

// New takes over cfg.Interface's queue cfg.Queue: it maps the UMEM, opens
// the AF_XDP socket, loads and attaches the steering program and starts the
// netstack. It must run in the network namespace that holds the interface;
// the LibOS can be used from any goroutine (one at a time) afterwards.
// It needs CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW (or root).
func New(cfg Config) (*LibOS, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	ifi, err := lookupInterface(&cfg)
	if err != nil {
		return nil, err
	}
	return newLibOS(cfg, ifi, nil, 0)
}

// lookupInterface finds cfg.Interface and checks what New and OpenQueues
// check once for all queues.
func lookupInterface(cfg *Config) (*net.Interface, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, explainInterface(cfg.Interface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("libos: interface %q is not Ethernet: %w", cfg.Interface, unix.ENOTSUP)
	}
	if cfg.Mode == Shared {
		if err := checkEphemeral(cfg.EphemeralFirst, cfg.EphemeralLast); err != nil {
			return nil, err
		}
	}
	return ifi, nil
}

// newLibOS opens queue cfg.Queue: with g nil as a LibOS of its own (New),
// otherwise as queue qi of the group g, on g's UMEM and steering program,
// which the group attaches once every queue is open (OpenQueues).
func newLibOS(cfg Config, ifi *net.Interface, g *group, qi int) (*LibOS, error) {
	l := &LibOS{cfg: cfg, ifindex: ifi.Index, mtu: ifi.MTU, steerRefs: make(map[steerKey]int), grp: g, qi: qi}
	var err error
	// The stack's clock counts from boot (CLOCK_MONOTONIC, the clock Go's
	// monotonic readings use), not from New: TCP timestamps then keep
	// growing across processes, so a restarted server or client reusing
	// a 4-tuple that a peer still holds in TIME-WAIT is not refused by
	// the peer's PAWS check. Peers can read the host's uptime from them,
	// as from Linux before 4.10.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("libos: clock_gettime: %w", err)
	}
	l.boot, l.epoch = ts.Nano(), time.Now()
	copy(l.mac[:], ifi.HardwareAddr)
	if maxMTU := cfg.FrameSize - 256 - 14; l.mtu > maxMTU {
		// Received frames start XDP_PACKET_HEADROOM (256) bytes into a
		// frame; a larger MTU would not fit.
		l.mtu = maxMTU
	}
	ok := false
	defer func() {
		if !ok {
			l.teardown()
		}
	}()
	if err = l.wake.open(); err != nil {
		return nil, err
	}
	first, count := uint32(0), uint32(cfg.Frames)
	if g == nil {
		l.um, err = umem.New(umem.Config{FrameSize: cfg.FrameSize, NumFrames: cfg.Frames, Headroom: cfg.Headroom, HugePages: cfg.HugePages})
		if err != nil {
			return nil, fmt.Errorf("libos: %w", err)
		}
	} else {
		l.um = g.um
		first, count = g.frameRange(qi)
	}
	pool, err := umem.NewPool(l.um, first, count)
	if err != nil {
		return nil, fmt.Errorf("libos: %w", err)
	}
	l.pool.init(l, pool)
	rs := uint32(cfg.RingSize)
	xcfg := xdp.Config{
		Ifindex: l.ifindex, QueueID: cfg.Queue,
		Umem: l.um.Bytes(), FrameSize: uint32(cfg.FrameSize),
		FillSize: rs, CompletionSize: rs, RXSize: rs, TXSize: rs,
		Mode: cfg.XDPMode,
		// A queue whose previous owner just died stays busy until the
		// kernel has released that socket.
		BusyWait: 3 * time.Second,
		// Room for the checksum offload request in front of every
		// packet: every packet starts at least umem.MinHeadroom minus
		// the largest headers (14+20+60) into its frame.
		TxMetadata: cfg.TxChecksum != TxChecksumSoftware,
	}
	if g != nil && qi > 0 {
		// The first queue registered the UMEM; the others share it,
		// each with fill and completion rings of its own (another
		// queue id: XDP_SHARED_UMEM gives every socket its own pair).
		xcfg.Shared = g.libs[0].sock
	}
	if l.sock, err = xdp.Open(xcfg); err != nil {
		return nil, l.explainSocket(err)
	}
	mode := bpf.Dedicated
	if cfg.Mode == Shared {
		mode = bpf.Shared
		if l.neigh, err = newKernelNeighbors(l.ifindex); err != nil {
			return nil, err
		}
	}
	if g == nil {
		l.steer, err = bpf.Load(bpf.Config{Mode: mode})
		if err != nil {
			return nil, explainLoad(err)
		}
		if err = l.steer.AddAddr(cfg.Addr.Addr()); err != nil {
			return nil, fmt.Errorf("libos: %w", err)
		}
	} else {
		l.steer = g.steer
	}
	if err = l.steer.RegisterSocket(uint32(cfg.Queue), l.sock.FD()); err != nil {
		return nil, fmt.Errorf("libos: %w", err)
	}
	if g == nil {
		if err = l.steer.Attach(l.ifindex); err != nil {
			return nil, l.explainAttach(err)
		}
	}
	if err = l.startOps(ifi.MTU); err != nil {
		return nil, err
	}
	l.link.csumOffload, l.csumWhy = l.txChecksumOffload(cfg.Interface)
	l.link.l = l
	frames := l.pool.Len() // this queue's share of the UMEM
	l.link.tags = make([]uint64, frames)
	if g != nil {
		l.link.lentTags = make(map[uint32]uint64) // a queue of a group may send frames lent by the others
	}
	// Frames are the scarce resource of a zero-copy stack: queues waiting
	// for ACKs or for the application must never hold so many that no
	// frame is left to receive those ACKs into. The fill ring keeps up to
	// fillGoal frames posted, SGAAlloc leaves a reserve for ACKs, ARP and
	// ICMP (of which the fill ring never takes the last half), and the TCP
	// connections share the rest through frame budgets (netstack/tcp
	// budget.go): each may hold a fair share per direction that shrinks as
	// more connections hold frames, and when frames run short the ones
	// over their share are trimmed to it (their idle data spilled out of
	// the frames), so no group of connections can starve the others.
	l.fillGoal = min(cfg.RingSize, frames/2)
	l.reserve = min(64, frames/16)
	if cfg.TCP.Frames == 0 {
		cfg.TCP.Frames = max(frames-l.fillGoal-l.reserve, 0)
	}
	// The byte limits follow the frame ceiling (a quarter of the TCP
	// frames per direction), so that a connection alone can use it all.
	seg := l.mtu - 52
	ceiling := max(cfg.TCP.Frames/4, 4) * seg
	if cfg.TCP.SndBuf == 0 {
		cfg.TCP.SndBuf = min(4<<20, ceiling)
	}
	if cfg.TCP.RcvBuf == 0 {
		cfg.TCP.RcvBuf = min(4<<20, ceiling)
	}
	l.cfg.TCP = cfg.TCP
	scfg := stack.Config{
		Addr: cfg.Addr, Gateway: cfg.Gateway, ARP: cfg.ARP, UDPQueueLen: cfg.RecvQueueLen,
		EphemeralFirst: cfg.EphemeralFirst, EphemeralLast: cfg.EphemeralLast,
		TCP: cfg.TCP, TxChecksumOffload: l.link.csumOffload,
	}
	if cfg.Mode == Shared {
		scfg.Mode = stack.Shared
		scfg.Neighbors = l.neigh
	}
	l.stack, err = stack.New(&l.link, &l.link, l, scfg)
	if err != nil {
		return nil, fmt.Errorf("libos: %w", err)
	}
	l.refill()
	l.ops.init()
	l.stack.Start()
	l.flush()
	ok = true
	if g == nil {
		l.logStarted() // a group's queues log once the group is attached
	}
	return l, nil
}

// ZeroCopy reports whether the kernel runs the socket in zero-copy mode
// (false means copy mode, as on veth).
func (l *LibOS) ZeroCopy() bool { return l.sock != nil && l.sock.ZeroCopy() }

// TxChecksumOffload reports whether the UDP and TCP checksums of outgoing
// packets are left to the NIC or the kernel (Config.TxChecksum), and who
// computes them or why the libOS does.
func (l *LibOS) TxChecksumOffload() (bool, string) { return l.link.csumOffload, l.csumWhy }

// Addr returns the libOS's IPv4 address.
func (l *LibOS) Addr() netip.Addr { return l.cfg.Addr.Addr() }

// HardwareAddr returns the interface's Ethernet address.
func (l *LibOS) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(l.mac[:]) }

// MTU returns the IPv4 MTU the libOS uses.
func (l *LibOS) MTU() int { return l.mtu }

// MaxDatagram is the largest UDP payload one Push can send.
func (l *LibOS) MaxDatagram() int { return l.stack.MaxPayload() }

// Close closes every queue (their pending operations complete with
// ECANCELED), lets the frames already queued (TCP FINs and resets among
// them) leave for up to closeDrain, then detaches the steering program and
// releases the socket and the UMEM; connections still open are abandoned.
// It is idempotent.
func (l *LibOS) Close() error {
	if l.closed {
		return nil
	}
	for qd := range l.queues {
		if l.queues[qd].open {
			l.closeQueue(QD(qd))
		}
	}
	l.drain(closeDrain)
	l.stack.Close()
	l.closed = true
	defer l.logClosed(l.ctr.RxDescs, l.ctr.TxDescs)
	return l.teardown()
}

func (l *LibOS) teardown() error {
	var errs []error
	if l.grp != nil {
		// A queue of a group leaves the steering program and the UMEM
		// to the group, which closes them after its last queue.
		errs = append(errs, l.leaveGroup())
	}
	if l.steer != nil {
		errs = append(errs, l.steer.Close())
		l.steer = nil
	}
	if l.sock != nil {
		errs = append(errs, l.sock.Close())
		l.sock = nil
	}
	if l.neigh != nil {
		l.neigh.close()
		l.neigh = nil
	}
	if l.um != nil {
		errs = append(errs, l.um.Close())
		l.um = nil
	}
	if l.grp != nil {
		errs = append(errs, l.grp.release())
	}
	l.wake.close()
	l.closed = true
	return errors.Join(errs...)
}

// checkEphemeral refuses an ephemeral range that overlaps the kernel's own
// (read from the calling thread's network namespace).
func checkEphemeral(first, last uint16) error {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return nil // no procfs: nothing to compare with
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return nil
	}
	if int(first) <= hi && int(last) >= lo {
		return fmt.Errorf("libos: shared mode: ephemeral ports %d-%d overlap the kernel's ip_local_port_range %d-%d; "+
			"set Config.EphemeralFirst/EphemeralLast outside it: %w", first, last, lo, hi, unix.EADDRINUSE)
	}
	return nil
}

// closeDrain bounds how long Close keeps the loop running so that what is
// on the TX ring, and the FINs the queue closes just queued, go out.
const closeDrain = 50 * time.Millisecond

// drain runs the loop until the TX ring has no frame in flight, or for d.
func (l *LibOS) drain(d time.Duration) {
	end := l.link.Now() + int64(d)
	for now := l.link.Now(); now < end; now = l.link.Now() {
		l.poll(now)
		if l.link.inflight == 0 {
			return
		}
	}
}
