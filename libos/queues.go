package libos

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/rss"
	"github.com/demixdp/demixdp/umem"
	"golang.org/x/sys/unix"
)

// MaxQueues is the most queues OpenQueues opens together.
const MaxQueues = 64

// group is what the queues OpenQueues opened share: the UMEM, the steering
// program, the table of which queue holds which port, and the rings their
// loops hand frames over by. Nothing of it is locked on the datapath: the
// port table is read with atomic loads and the rings are lock-free; mu
// only orders changes of the steering program's port map.
type group struct {
	n      int
	libs   []*LibOS
	um     *umem.UMEM
	steer  *bpf.Steering
	share  uint32  // frames per queue; the last queue also gets the remainder
	addr   [4]byte // the address the queues share
	shared bool    // Shared mode: the steering program's port map follows the port table (else Dedicated)

	tcp, udp       *portTable
	tcpRSS, udpRSS *rss.Chooser // nil: the NIC's hash is unknown, replies are handed off
	alive          []atomic.Bool
	lends, backs   [][]*ring // [from][to]: frames lent to "to"; frames "from" gives back to their owner "to"
	// inbox[to] has bit "from" set when queue from has put something on
	// lends[from][to] or backs[from][to] that to has not looked at: a turn
	// looks at the rings of the queues named there, not at all 2(n-1).
	inbox   []inbox
	lendCap int // frames a queue lends one other queue at most (the rings' size)
	lendMax int // frames a queue lends all the others at most
	// crowded: RunQueues runs more loops than GOMAXPROCS. A spinning
	// loop then yields its P on every idle turn; otherwise it would keep
	// the others' packets waiting until the runtime preempts it (10 ms).
	crowded atomic.Bool

	mu      sync.Mutex
	steered map[steerKey]bool // Shared mode: ports in the steering program's map
	refs    int               // queues not yet closed, plus OpenQueues while it runs
}

// frameRange returns the frames of queue qi's share.
func (g *group) frameRange(qi int) (first, count uint32) {
	first = uint32(qi) * g.share
	count = g.share
	if qi == g.n-1 {
		count = uint32(g.um.NumFrames()) - first
	}
	return first, count
}

// ownerOfFrame returns the index of the queue whose share holds frame f.
func (g *group) ownerOfFrame(f uint32) int { return min(int(f/g.share), g.n-1) }

// hold and release count the group's users; the last release closes the
// steering program and the UMEM.
func (g *group) hold() {
	g.mu.Lock()
	g.refs++
	g.mu.Unlock()
}

func (g *group) release() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refs--; g.refs > 0 {
		return nil
	}
	var errs []error
	if g.steer != nil {
		errs = append(errs, g.steer.Close())
		g.steer = nil
	}
	if g.um != nil {
		errs = append(errs, g.um.Close())
		g.um = nil
	}
	return errors.Join(errs...)
}

// OpenQueues takes over several queues of cfg.Interface (Config.QueueIDs,
// Config.Queues, or by default every receive queue the interface has) and
// returns one LibOS per queue, in the order of the queue ids. They share
// one UMEM, registered once and shared with XDP_SHARED_UMEM; each has its
// own AF_XDP socket, fill and completion rings, its own share of the
// frames (Frames divided evenly: the fill ring, the TCP engine's frame
// budgets and SGAAlloc of a queue draw on its share alone, so a queue
// cannot starve the others), its own netstack and TCP engine, and is
// driven by its own goroutine (RunQueues runs one per queue). The
// steering program sends each packet to the socket of the queue it
// arrived on. They share the address: a port bound on every queue (a
// server's) is served by every queue, a connection lives on the queue
// that received its SYN, and the ephemeral ports of outbound connections
// are chosen so that the NIC's RSS brings the replies to the opening
// queue where Config.RSS or the interface says how it hashes; where it
// does not, a queue that receives a frame for a port another queue holds
// hands it to that queue's loop, without copying it (handoff.go).
//
// With one queue OpenQueues is New for that queue. It must run in the
// network namespace that holds the interface. Errors: those of New, and
// EINVAL for a bad queue list (more than MaxQueues, a duplicate, a
// negative id), for CPUs whose length is not the number of queues, or
// for Frames too few to give each queue 64.
func OpenQueues(cfg Config) ([]*LibOS, error) {
	if err := cfg.normalizeQueues(); err != nil {
		return nil, err
	}
	if len(cfg.QueueIDs) == 1 {
		c := cfg
		c.Queue = cfg.QueueIDs[0]
		lib, err := New(c)
		if err != nil {
			return nil, err
		}
		return []*LibOS{lib}, nil
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	ifi, err := lookupInterface(&cfg)
	if err != nil {
		return nil, err
	}
	n := len(cfg.QueueIDs)
	g := &group{
		n: n, libs: make([]*LibOS, 0, n),
		share:  uint32(cfg.Frames / n),
		shared: cfg.Mode == Shared, addr: cfg.Addr.Addr().As4(),
		tcp: new(portTable), udp: new(portTable),
		alive: make([]atomic.Bool, n), inbox: make([]inbox, n), steered: make(map[steerKey]bool), refs: 1,
	}
	defer g.release() // OpenQueues' own hold; the queues hold the group after it returns
	g.lendCap = lendCapFor(int(g.share))
	g.lendMax = max(int(g.share)/4, 1)
	g.lends, g.backs = make([][]*ring, n), make([][]*ring, n)
	for i := range n {
		g.lends[i], g.backs[i] = make([]*ring, n), make([]*ring, n)
		for j := range n {
			if i != j {
				g.lends[i][j], g.backs[i][j] = newRing(g.lendCap), newRing(g.lendCap)
			}
		}
	}
	rssCfg := cfg.RSS
	if rssCfg == nil {
		if c, err := rss.Read(cfg.Interface); err == nil {
			rssCfg = &c
		}
	}
	g.tcpRSS, g.udpRSS = newChoosers(rssCfg, cfg.Addr.Addr())

	if g.um, err = umem.New(umem.Config{FrameSize: cfg.FrameSize, NumFrames: cfg.Frames, Headroom: cfg.Headroom, HugePages: cfg.HugePages}); err != nil {
		return nil, fmt.Errorf("libos: %w", err)
	}
	mode := bpf.Dedicated
	if cfg.Mode == Shared {
		mode = bpf.Shared
	}
	if g.steer, err = bpf.Load(bpf.Config{Mode: mode, MaxQueues: max(bpf.DefaultMaxQueues, slices.Max(cfg.QueueIDs)+1)}); err != nil {
		return nil, explainLoad(err)
	}
	if err = g.steer.AddAddr(cfg.Addr.Addr()); err != nil {
		return nil, fmt.Errorf("libos: %w", err)
	}
	closeAll := func() {
		for _, l := range g.libs {
			l.Close()
		}
	}
	for i, id := range cfg.QueueIDs {
		c := cfg
		c.Queue = id
		g.hold()
		g.alive[i].Store(true)
		l, err := newLibOS(c, ifi, g, i)
		if err != nil {
			g.alive[i].Store(false)
			closeAll()
			return nil, err
		}
		l.hof.lent = make([]int, n)
		g.libs = append(g.libs, l)
	}
	first := g.libs[0]
	if err = g.steer.Attach(first.ifindex); err != nil {
		err = first.explainAttach(err)
		closeAll()
		return nil, err
	}
	if err = first.pinMaps(); err != nil {
		closeAll()
		return nil, err
	}
	for _, l := range g.libs {
		l.logStarted()
	}
	return slices.Clone(g.libs), nil
}

// lendCapFor sizes the hand-off rings for a queue share of the given
// number of frames: an eighth of it, a power of two from 16 to 512.
func lendCapFor(share int) int {
	c := 16
	for c < 512 && c*2 <= share/8 {
		c *= 2
	}
	return c
}

// normalizeQueues resolves the queue list and checks CPUs and Frames.
func (c *Config) normalizeQueues() error {
	ids := c.QueueIDs
	switch {
	case len(ids) > 0:
	case c.Queues < 0:
		return fmt.Errorf("libos: Config.Queues %d: %w", c.Queues, unix.EINVAL)
	case c.Queues > 0:
		for i := range c.Queues {
			ids = append(ids, i)
		}
	default:
		n, err := interfaceQueues(c.Interface)
		if err != nil {
			return err
		}
		for i := range n {
			ids = append(ids, i)
		}
	}
	if len(ids) > MaxQueues {
		return fmt.Errorf("libos: %d queues, more than %d: %w", len(ids), MaxQueues, unix.EINVAL)
	}
	seen := map[int]bool{}
	for _, id := range ids {
		if id < 0 || id >= 1<<20 || seen[id] {
			return fmt.Errorf("libos: bad queue list %v (ids must be distinct, 0 or more): %w", ids, unix.EINVAL)
		}
		seen[id] = true
	}
	if len(c.CPUs) != 0 && len(c.CPUs) != len(ids) {
		return fmt.Errorf("libos: Config.CPUs has %d entries for %d queues: %w", len(c.CPUs), len(ids), unix.EINVAL)
	}
	if len(ids) > 1 {
		if c.Frames == 0 {
			c.Frames = umem.DefaultNumFrames * len(ids)
		}
		if c.Frames/len(ids) < 64 {
			return fmt.Errorf("libos: %d frames for %d queues: each needs 64 or more: %w", c.Frames, len(ids), unix.EINVAL)
		}
	}
	c.QueueIDs = slices.Clone(ids)
	return nil
}

// interfaceQueues returns how many receive queues ifname has: its RX and
// combined channels (ETHTOOL_GCHANNELS), or 1 where the driver does not
// say (netlink's IFLA_NUM_RX_QUEUES is the most the device could have,
// not what it has).
func interfaceQueues(ifname string) (int, error) {
	if _, err := net.InterfaceByName(ifname); err != nil {
		return 0, explainInterface(ifname, err)
	}
	if n, err := rss.Channels(ifname); err == nil {
		return n, nil
	}
	return 1, nil
}

// QueueID returns the NIC queue the LibOS serves (Config.Queue).
func (l *LibOS) QueueID() int { return l.cfg.Queue }

// RunQueues calls fn for every LibOS of libs at once, each on a goroutine
// of its own locked to an OS thread, and returns when every call has
// returned, with their errors joined. If the LibOS values were opened with
// Config.CPUs, the i-th goroutine's thread is first pinned to CPUs[i]
// (sched_setaffinity); a pinned thread is not given back to the Go
// runtime afterwards (it ends with its goroutine), so the pinning does not
// leak to other goroutines. fn must not use another queue's LibOS: each
// one is driven by its own goroutine, and a LibOS is not safe for
// concurrent use. Every fn must keep its queue's loop running (in Wait,
// WaitAny or WaitNext) while the others have traffic: a queue's loop
// receives the frames RSS delivers to it for the other queues and hands
// them over. With fewer Ps (GOMAXPROCS) than queues, a loop with nothing
// to do yields its P (runtime.Gosched) on every turn of its spin, so the
// loops share the CPUs turn by turn; give each queue a CPU of its own
// for speed.
func RunQueues(libs []*LibOS, fn func(*LibOS) error) error {
	for _, l := range libs {
		if l.grp != nil {
			l.grp.crowded.Store(runtime.GOMAXPROCS(0) < len(libs))
		}
	}
	errs := make([]error, len(libs))
	var wg sync.WaitGroup
	for i, l := range libs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			if cpu := l.cpu(); cpu >= 0 {
				var set unix.CPUSet
				set.Set(cpu)
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					errs[i] = fmt.Errorf("libos: queue %d: pin to CPU %d: %w", l.cfg.Queue, cpu, err)
					return // the thread stays locked and ends with the goroutine
				}
			} else {
				defer runtime.UnlockOSThread()
			}
			if err := fn(l); err != nil {
				errs[i] = fmt.Errorf("queue %d: %w", l.cfg.Queue, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cpu returns the CPU this queue's loop is to run on (Config.CPUs by the
// queue's position in the group, whatever order RunQueues got it in), or
// -1.
func (l *LibOS) cpu() int {
	if l.qi < len(l.cfg.CPUs) {
		return l.cfg.CPUs[l.qi]
	}
	return -1
}

// leaveGroup runs in teardown: the queue stops receiving (XSKMAP slot,
// ports), gives back what other queues handed it and it never took, and
// leaves the steering program and the UMEM to the group.
func (l *LibOS) leaveGroup() error {
	g := l.grp
	var err error
	if g.alive[l.qi].Swap(false) {
		if l.steer != nil && l.sock != nil {
			err = l.steer.UnregisterSocket(uint32(l.cfg.Queue))
		}
		for k := range l.steerRefs {
			g.unbindPort(uint8(k>>16), uint16(k), l.qi)
		}
		clear(l.steerRefs)
		if l.hof.lent != nil {
			l.dropInbox()
		}
	}
	l.steer, l.um = nil, nil
	return err
}
