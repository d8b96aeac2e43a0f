package libos

import (
	"runtime"
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/umem"
	"github.com/demixdp/demixdp/xdp"
	"golang.org/x/sys/unix"
)

// xskLink is the netstack's view of the AF_XDP socket: nic.Link and
// nic.Clock over the UMEM pool and the TX ring.
type xskLink struct {
	l    *LibOS
	tags []uint64 // by own frame (index - pool.First): the push token its transmission completes
	// lentTags holds the same for frames other queues of a group lent
	// this one (nonzero tokens only): few, their indices spanning the
	// whole UMEM, so a map rather than a table per queue over every frame.
	lentTags map[uint32]uint64
	queued   int // TX descriptors submitted since the last kick
	inflight int // frames on the TX ring not yet completed
	// csumOffload: partial checksums go out with a TX metadata request
	// for the NIC or the kernel to complete (txcsum.go).
	csumOffload bool
}

// setTag records the push token whose completion frame f's transmission
// brings (0: none).
func (k *xskLink) setTag(f uint32, tag uint64) {
	if i := f - k.l.pool.First(); i < uint32(len(k.tags)) {
		k.tags[i] = tag
	} else if tag != 0 {
		k.lentTags[f] = tag
	}
}

// takeTag returns and forgets the push token of frame f.
func (k *xskLink) takeTag(f uint32) uint64 {
	if i := f - k.l.pool.First(); i < uint32(len(k.tags)) {
		tag := k.tags[i]
		k.tags[i] = 0
		return tag
	}
	tag, ok := k.lentTags[f]
	if ok {
		delete(k.lentTags, f)
	}
	return tag
}

func (k *xskLink) HardwareAddr() [6]byte { return k.l.mac }
func (k *xskLink) MTU() int              { return k.l.mtu }
func (k *xskLink) Now() int64 {
	l := k.l
	if l.turn != 0 {
		return l.turn // inside a loop turn: the time first read in it
	}
	t := l.boot + int64(time.Since(l.epoch))
	if l.inTurn {
		l.turn = t
	}
	return t
}

func (k *xskLink) Alloc() (nic.Buf, error) {
	l := k.l
	f, err := l.pool.Alloc()
	if err != nil {
		return nic.Buf{}, nic.ErrNoBufs
	}
	return nic.Buf{Frame: f, Data: l.um.Frame(f), Off: l.um.Headroom()}, nil
}

// Transmit posts b to the TX ring. The kick (sendto) that makes the kernel
// look at the ring is deferred to the end of the current loop turn, so a
// burst of pushes costs one system call.
//
//demixdp:hotpath — allocates nothing.
func (k *xskLink) Transmit(b nic.Buf, tag uint64) error {
	l := k.l
	if k.Busy(b.Frame) {
		// Still on the TX ring from an earlier transmission; its
		// completion may be waiting to be collected.
		l.flush()
		l.reap()
		if k.Busy(b.Frame) {
			return nic.ErrTxFull
		}
	}
	if err := l.pool.SubmitTX(b.Frame); err != nil {
		l.ctr.OwnershipErrors++
		return nic.ErrTxFull
	}
	tx := l.sock.TX()
	idx, got := tx.Reserve(1)
	if got == 0 {
		// Make room: collect completions, and push the kernel along.
		l.flush()
		l.reap()
		if idx, got = tx.Reserve(1); got == 0 {
			l.pool.Completed(b.Frame) // undo SubmitTX: the frame never left
			l.ctr.TxRingFull++
			return nic.ErrTxFull
		}
	}
	d := unix.XDPDesc{Addr: l.um.Addr(b.Frame) + uint64(b.Off), Len: uint32(b.Len)}
	// Every UDP and TCP checksum the stack wrote is partial (txcsum.go).
	// Every packet starts at least umem.MinHeadroom less the largest
	// headers, 40 bytes, into its frame, so the metadata fits in front of
	// it; were it not so, the kernel would refuse the descriptor of a
	// UMEM registered with metadata and count it, and the test on Off
	// only keeps the slice in bounds.
	if k.csumOffload && b.Off >= xdp.TxMetadataLen {
		if start, off, ok := nic.L4Checksum(b.Bytes()); ok {
			xdp.PutTxChecksum(b.Data[b.Off-xdp.TxMetadataLen:b.Off], uint16(start), uint16(off))
			d.Options = unix.XDP_TX_METADATA
			l.ctr.TxCsumOffloads++
		}
	}
	tx.Set(idx, d)
	tx.Submit(1)
	if l.mon.cap != nil {
		l.captureOutput(b)
	}
	k.setTag(b.Frame, tag)
	k.queued++
	k.inflight++
	l.ctr.TxDescs++
	return nil
}

// Scarce reports that free frames have fallen below the reserve kept for
// the stack's own packets: received payload is then dropped (and resent
// by the peer) rather than queued, so frames keep coming back.
func (k *xskLink) Scarce() bool { return k.l.pool.Available() < k.l.reserve }

// Busy reports whether the frame is on the TX ring, not yet completed.
func (k *xskLink) Busy(f uint32) bool {
	st := k.l.pool.State(f)
	return st == umem.StateTX || st == umem.StateAwaitCompletion
}

func (k *xskLink) Ref(f uint32) {
	if k.l.pool.Ref(f) != nil {
		k.l.ctr.OwnershipErrors++
	}
}

func (k *xskLink) Release(f uint32) {
	if k.l.pool.Unref(f) != nil {
		k.l.ctr.OwnershipErrors++
	}
}

// poll runs one turn of the event loop at time now: kick pending
// transmissions, collect completions, receive a batch, refill the fill
// ring, run due timers. It reports whether anything happened.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) poll(now int64) bool {
	// The stack reads the clock for every segment (timestamps, RTT
	// samples, timers); within one turn the time it first reads is close
	// enough and saves a clock read per call. A turn that finds nothing
	// to do reads no clock at all: now, which may be a few idle turns
	// old (run), only decides whether a timer is due.
	l.inTurn = true
	l.flush()
	n := l.reap()
	n += l.receive()
	if l.grp != nil {
		n += l.takeHandoffs() // handoff.go
	}
	l.refill()
	if d := l.stack.NextDeadline(); d != 0 && now >= d {
		l.stack.Tick()
	}
	if len(l.unsteer) > 0 {
		l.sweepUnsteer()
	}
	if l.mon.log != nil && now >= l.mon.nextCheck {
		l.checkEvents(now)
	}
	l.flush()
	l.endCall()
	return n > 0
}

// flush kicks the kernel while the TX ring holds descriptors it has not
// consumed and it asked to be woken. In copy mode it always asks, and one
// sendto moves at most a kernel-defined batch (32 frames), so a burst may
// take several turns of the loop.
func (l *LibOS) flush() {
	tx := l.sock.TX()
	if l.link.queued == 0 && l.link.inflight == 0 {
		return
	}
	l.link.queued = 0
	if tx.Free() == tx.Size() {
		return // the kernel has taken everything
	}
	if !l.sock.NeedWakeupEnabled() || tx.NeedWakeup() {
		l.ctr.Kicks++
		if err := l.sock.Kick(); err != nil {
			l.ctr.KickErrors++
		}
	}
}

// reap collects TX completions, returns their frames to the pool (or to
// their holders) and completes the push tokens they carried.
func (l *LibOS) reap() int {
	comp := l.sock.Completion()
	idx, n := comp.Peek(uint32(l.cfg.Batch))
	for i := uint32(0); i < n; i++ {
		addr := comp.Get(idx + i)
		f, ok := l.um.FrameOf(addr)
		if !ok {
			l.ctr.BadDescs++
			continue
		}
		tag := l.link.takeTag(f)
		l.link.inflight--
		if l.pool.Completed(f) != nil {
			l.ctr.OwnershipErrors++
			continue
		}
		l.ctr.Completions++
		if tag != 0 {
			l.completeOp(QToken(tag), nil)
		}
	}
	if n > 0 {
		comp.Release(n)
	}
	return int(n)
}

// receive takes a batch from the RX ring into the netstack.
func (l *LibOS) receive() int {
	rx := l.sock.RX()
	idx, n := rx.Peek(uint32(l.cfg.Batch))
	fs := uint64(l.um.FrameSize())
	for i := uint32(0); i < n; i++ {
		d := rx.Get(idx + i)
		f, ok := l.um.FrameOf(d.Addr)
		if !ok {
			l.ctr.BadDescs++
			continue
		}
		l.inFill--
		if l.pool.Received(f) != nil {
			l.ctr.OwnershipErrors++
			continue
		}
		off := d.Addr - l.um.Addr(f)
		if off+uint64(d.Len) > fs {
			l.ctr.BadDescs++
			l.link.Release(f)
			continue
		}
		l.ctr.RxDescs++
		if l.grp != nil && l.handOff(f, int(off), int(d.Len)) {
			continue // another queue's: handed to its loop (handoff.go)
		}
		if l.mon.cap != nil {
			l.captureInput(nic.Buf{Frame: f, Data: l.um.Frame(f), Off: int(off), Len: int(d.Len)})
			continue
		}
		l.stack.Input(nic.Buf{Frame: f, Data: l.um.Frame(f), Off: int(off), Len: int(d.Len)})
	}
	if n > 0 {
		rx.Release(n)
		l.stack.EndBatch()
	}
	return int(n)
}

// refill tops the fill ring up to its goal from the free frames, leaving
// half of the reserve for what the stack itself must send (ACKs above all:
// they are what frees the frames of the send queues).
func (l *LibOS) refill() {
	want := l.fillGoal - l.inFill
	if want <= 0 {
		return
	}
	want = min(want, l.pool.Available()-l.reserve/2)
	if want <= 0 {
		l.ctr.FillStarved++
		return
	}
	fill := l.sock.Fill()
	idx, got := fill.Reserve(uint32(want))
	for i := uint32(0); i < got; i++ {
		f, err := l.pool.AllocFill()
		if err != nil { // cannot happen: want <= Available
			f = 0
		}
		fill.Set(idx+i, l.um.Addr(f))
	}
	fill.Submit(got)
	l.inFill += int(got)
	if got > 0 && l.sock.NeedWakeupEnabled() && fill.NeedWakeup() {
		_ = l.sock.WakeFill()
	}
}

// run drives the loop until one of qts completes (any operation, if qts is
// nil) or the timeout passes; the
// caller has checked that none is complete yet (WaitAny returns a completed
// operation without a turn of the loop, so an application that handles a
// batch of completions pushes its replies first and the next turn sends
// them all with one kick). The loop
// spins for Config.Spin after the last activity, then blocks in poll(2)
// until a packet, the next timer or the deadline. It reads the clock once
// per busy turn and once per idleClockEvery idle ones, and looks at the
// tokens only when something completed.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) run(qts []QToken, timeout time.Duration) (int, error) {
	// What the caller pushed since the last turn leaves first: a reply
	// should not wait for the clock read.
	l.flush()
	now := l.link.Now()
	var deadline int64
	if timeout > 0 {
		deadline = now + int64(timeout)
	}
	spin := int64(l.cfg.Spin)
	idle := now
	idleTurns := 0
	for {
		seen := l.doneSeq
		active := l.poll(now)
		if l.doneSeq != seen {
			if i := l.firstDone(qts); i >= 0 {
				return i, nil
			}
		}
		if l.wake.take() {
			return -1, unix.EINTR // Wake (wake.go)
		}
		if timeout == 0 {
			return -1, unix.ETIMEDOUT
		}
		if !active && spin > 0 && (l.grp == nil || !l.grp.crowded.Load()) {
			// A clock read costs more than an idle turn: while
			// spinning, read it every idleClockEvery turns only. (Not
			// when loops share processors: there an idle turn yields,
			// and may last as long as the other loops' turns.)
			if idleTurns++; idleTurns < idleClockEvery {
				continue
			}
		}
		idleTurns = 0
		now = l.link.Now()
		if deadline != 0 && now >= deadline {
			return -1, unix.ETIMEDOUT
		}
		if active {
			idle = now
			continue
		}
		if now-idle < spin {
			if l.grp != nil && l.grp.crowded.Load() {
				runtime.Gosched() // queues.go: more loops than Ps; let the others poll
			}
			continue
		}
		l.block(now, deadline)
		now = l.link.Now()
		idle = now
	}
}

// block sleeps in poll(2) until a packet arrives, or the next stack timer
// or the caller's deadline is due.
func (l *LibOS) block(now, deadline int64) {
	l.flush()
	wake := deadline
	if d := l.stack.NextDeadline(); d != 0 && (wake == 0 || d < wake) {
		wake = d
	}
	if l.link.inflight > 0 {
		// Completions do not wake poll(2); look again soon.
		if w := now + int64(maxBlockWithTX); wake == 0 || w < wake {
			wake = w
		}
	}
	d := time.Duration(-1)
	if wake != 0 {
		d = time.Duration(wake - now)
		if d < 0 {
			d = 0
		}
	}
	if err := l.sleep(d); err != nil { // the socket and Wake's eventfd
		l.ctr.PollErrors++
	}
}

const maxBlockWithTX = 200 * time.Microsecond

// endCall ends an application call that read the clock as a loop turn
// does (PushTo, Pop): the next one reads it again.
func (l *LibOS) endCall() { l.inTurn, l.turn = false, 0 }

// idleClockEvery is how many idle turns of a spinning loop share one
// clock read. An idle turn (look at three rings) took about half the time
// of the read on the 2-vCPU VM (perf of the udp_rtt echo server: 20% of
// its CPU in clock_gettime, 17% in the turns). Timers and the caller's
// deadline are seen up to this many idle turns late, well under a
// microsecond.
const idleClockEvery = 8
