// Package memwire connects two netstack nodes through an in-memory wire
// with seeded impairments (loss, duplication, reordering, corruption) and
// a virtual clock that jumps to the next event when nothing is due, so a
// long transfer runs deterministically in little real time and every run
// with the same seed and inputs is the same.
//
// Each end is a nic.Link with its own frame pool that enforces the
// ownership rules of the real datapath: a frame is transmitted only while
// referenced, at most once at a time (a second Transmit before completion
// fails with nic.ErrTxFull), and completion happens at the next Step, not
// inside Transmit. Violations are recorded and reported by Check.
package memwire

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
)

// Node is what the wire drives: a stack.
type Node interface {
	Input(b nic.Buf)
	EndBatch() // after the packets of one step
	Tick()
	NextDeadline() int64
}

// Config describes a wire. Zero fields take the defaults given.
type Config struct {
	Seed         int64
	Loss         float64       // probability a frame is dropped
	Dup          float64       // probability a frame is delivered twice
	Reorder      float64       // probability a frame is delayed by up to ReorderDelay more
	Corrupt      float64       // probability one byte of a frame is flipped
	Delay        time.Duration // one-way delay; 500µs
	ReorderDelay time.Duration // 1ms
	Frames       int           // frames per end; 8192
	FrameSize    int           // 2048
	Headroom     int           // 256
	MTU          int           // 1500
	// TxChecksumOffload completes the UDP and TCP checksums of every
	// frame, as a kernel or NIC does for stacks with
	// stack.Config.TxChecksumOffload.
	TxChecksumOffload bool
}

// Stats count what the wire did.
type Stats struct {
	Sent, Delivered, Lost, Duplicated, Reordered, Corrupted, NoFrame uint64
	// Partial counts the UDP and TCP frames sent with
	// Config.TxChecksumOffload, Completed the copies whose checksum the
	// wire completed.
	Partial, Completed uint64
}

// Wire is two Links, A and B, and the packets between them.
type Wire struct {
	Clock nic.VirtualClock
	A, B  *Link
	Stats Stats

	cfg   Config
	rng   *rand.Rand
	q     []pkt // min-heap by (t, n)
	n     uint64
	pool  [][]byte
	nodes [2]Node
}

type pkt struct {
	t    int64
	n    uint64
	to   *Link
	data []byte
}

// New returns a wire; attach the two nodes with Attach before running it.
func New(cfg Config) *Wire {
	if cfg.Delay <= 0 {
		cfg.Delay = 500 * time.Microsecond
	}
	if cfg.ReorderDelay <= 0 {
		cfg.ReorderDelay = time.Millisecond
	}
	if cfg.Frames <= 0 {
		cfg.Frames = 8192
	}
	if cfg.FrameSize <= 0 {
		cfg.FrameSize = 2048
	}
	if cfg.Headroom <= 0 {
		cfg.Headroom = 256
	}
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	w := &Wire{cfg: cfg, rng: rand.New(rand.NewSource(cfg.Seed))}
	w.Clock.T = 1
	w.A = newLink(w, [6]byte{0x02, 0, 0, 0, 0, 0xa})
	w.B = newLink(w, [6]byte{0x02, 0, 0, 0, 0, 0xb})
	w.A.peer, w.B.peer = w.B, w.A
	w.A.idx, w.B.idx = 0, 1
	return w
}

// Attach sets the nodes driven by the A and B ends.
func (w *Wire) Attach(a, b Node) { w.nodes = [2]Node{a, b} }

// Link is one end of the wire: a nic.Link.
type Link struct {
	w        *Wire
	peer     *Link
	idx      int
	mac      [6]byte
	mem      []byte
	refs     []int32
	inflight []bool
	free     []uint32
	// ScarceBelow makes Scarce report true below that many free frames.
	ScarceBelow int
	done        []txDone // transmitted, completing at the next Step
	// OnComplete, if set, gets each non-zero tag when its frame completes.
	OnComplete func(tag uint64)
	// Errors records ownership violations.
	Errors []string
}

type txDone struct {
	frame uint32
	tag   uint64
}

func newLink(w *Wire, mac [6]byte) *Link {
	n := w.cfg.Frames
	l := &Link{w: w, mac: mac, mem: make([]byte, n*w.cfg.FrameSize), refs: make([]int32, n), inflight: make([]bool, n)}
	for i := n - 1; i >= 0; i-- {
		l.free = append(l.free, uint32(i))
	}
	return l
}

// HardwareAddr implements nic.Link.
func (l *Link) HardwareAddr() [6]byte { return l.mac }

// MTU implements nic.Link.
func (l *Link) MTU() int { return l.w.cfg.MTU }

func (l *Link) frame(i uint32) []byte {
	fs := l.w.cfg.FrameSize
	o := int(i) * fs
	return l.mem[o : o+fs : o+fs]
}

// Alloc implements nic.Link.
func (l *Link) Alloc() (nic.Buf, error) {
	if len(l.free) == 0 {
		return nic.Buf{}, nic.ErrNoBufs
	}
	i := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	l.refs[i] = 1
	return nic.Buf{Frame: i, Data: l.frame(i), Off: l.w.cfg.Headroom}, nil
}

func (l *Link) errorf(format string, args ...any) {
	if len(l.Errors) < 100 {
		l.Errors = append(l.Errors, fmt.Sprintf(format, args...))
	}
}

// Ref implements nic.Link.
// Scarce implements nic.Link: fewer than ScarceBelow frames are free.
func (l *Link) Scarce() bool { return len(l.free) < l.ScarceBelow }

// Busy implements nic.Link.
func (l *Link) Busy(f uint32) bool { return l.inflight[f] }

func (l *Link) Ref(f uint32) {
	if int(f) >= len(l.refs) || l.refs[f] == 0 {
		l.errorf("ref of free frame %d", f)
		return
	}
	l.refs[f]++
}

// Release implements nic.Link.
func (l *Link) Release(f uint32) {
	if int(f) >= len(l.refs) || l.refs[f] == 0 {
		l.errorf("release of frame %d with no reference", f)
		return
	}
	l.refs[f]--
	if l.refs[f] == 0 && !l.inflight[f] {
		l.free = append(l.free, f)
	}
}

// Transmit implements nic.Link: the bytes are copied onto the wire at once
// (with impairments); the frame completes at the next Step.
func (l *Link) Transmit(b nic.Buf, tag uint64) error {
	f := b.Frame
	if int(f) >= len(l.refs) || l.refs[f] == 0 {
		l.errorf("transmit of unreferenced frame %d", f)
		return nic.ErrTxFull
	}
	if l.inflight[f] {
		return nic.ErrTxFull
	}
	if b.Off < 0 || b.Len < 0 || b.Off+b.Len > len(b.Data) {
		l.errorf("transmit of a bad buffer %d+%d", b.Off, b.Len)
		return nic.ErrTxFull
	}
	if b.Len > l.w.cfg.MTU+14 {
		l.errorf("transmit of %d bytes, above the MTU", b.Len)
	}
	l.inflight[f] = true
	l.done = append(l.done, txDone{f, tag})
	l.w.send(l.peer, b.Bytes())
	return nil
}

// Free returns the number of free frames.
func (l *Link) Free() int { return len(l.free) }

// InUse returns the number of frames referenced or in flight.
func (l *Link) InUse() int { return len(l.refs) - len(l.free) }

func (l *Link) complete() {
	for _, d := range l.done {
		l.inflight[d.frame] = false
		if l.refs[d.frame] == 0 {
			l.free = append(l.free, d.frame)
		}
		if d.tag != 0 && l.OnComplete != nil {
			l.OnComplete(d.tag)
		}
	}
	l.done = l.done[:0]
}

// Check reports ownership violations seen so far.
func (w *Wire) Check() error {
	for _, l := range []*Link{w.A, w.B} {
		if len(l.Errors) > 0 {
			return fmt.Errorf("memwire: %d ownership errors, first: %s", len(l.Errors), l.Errors[0])
		}
	}
	return nil
}

func (w *Wire) buf(p []byte) []byte {
	var b []byte
	if n := len(w.pool); n > 0 {
		b = w.pool[n-1][:0]
		w.pool = w.pool[:n-1]
	}
	return append(b, p...)
}

// send puts p on the wire to to. With Config.TxChecksumOffload, the UDP
// or TCP checksum of p is partial (nic.L4Checksum finds it) and each copy
// is completed, as a kernel or NIC would.
func (w *Wire) send(to *Link, p []byte) {
	w.Stats.Sent++
	cs, off, partial := -1, 0, false
	if w.cfg.TxChecksumOffload {
		cs, off, partial = nic.L4Checksum(p)
		if partial {
			w.Stats.Partial++
		}
	}
	c := &w.cfg
	if c.Loss > 0 && w.rng.Float64() < c.Loss {
		w.Stats.Lost++
		return
	}
	copies := 1
	if c.Dup > 0 && w.rng.Float64() < c.Dup {
		w.Stats.Duplicated++
		copies = 2
	}
	for i := 0; i < copies; i++ {
		t := w.Clock.T + int64(c.Delay)
		if c.Reorder > 0 && w.rng.Float64() < c.Reorder {
			w.Stats.Reordered++
			t += 1 + w.rng.Int63n(int64(c.ReorderDelay))
		}
		data := w.buf(p)
		if partial {
			nic.CompleteChecksum(data[cs:], off)
			w.Stats.Completed++
		}
		if c.Corrupt > 0 && len(data) > 0 && w.rng.Float64() < c.Corrupt {
			w.Stats.Corrupted++
			data[w.rng.Intn(len(data))] ^= byte(1 + w.rng.Intn(255))
		}
		w.push(pkt{t: t, n: w.n, to: to, data: data})
		w.n++
	}
}

func (w *Wire) less(i, j int) bool {
	a, b := &w.q[i], &w.q[j]
	return a.t < b.t || a.t == b.t && a.n < b.n
}

func (w *Wire) push(p pkt) {
	w.q = append(w.q, p)
	i := len(w.q) - 1
	for i > 0 {
		par := (i - 1) / 2
		if !w.less(i, par) {
			break
		}
		w.q[i], w.q[par] = w.q[par], w.q[i]
		i = par
	}
}

func (w *Wire) pop() pkt {
	p := w.q[0]
	last := len(w.q) - 1
	w.q[0] = w.q[last]
	w.q[last] = pkt{}
	w.q = w.q[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(w.q) {
			break
		}
		m := l
		if r := l + 1; r < len(w.q) && w.less(r, l) {
			m = r
		}
		if !w.less(m, i) {
			break
		}
		w.q[i], w.q[m] = w.q[m], w.q[i]
		i = m
	}
	return p
}

// Step completes the transmissions of the previous step, delivers every
// packet due at the current time and runs due timers. It reports whether
// anything happened.
func (w *Wire) Step() bool {
	did := len(w.A.done)+len(w.B.done) > 0
	w.A.complete()
	w.B.complete()
	for len(w.q) > 0 && w.q[0].t <= w.Clock.T {
		p := w.pop()
		did = true
		b, err := p.to.Alloc()
		if err != nil {
			w.Stats.NoFrame++
		} else {
			b.Len = copy(b.Data[b.Off:], p.data)
			w.Stats.Delivered++
			w.nodes[p.to.idx].Input(b)
		}
		w.pool = append(w.pool, p.data)
	}
	for _, n := range w.nodes {
		n.EndBatch()
	}
	for _, n := range w.nodes {
		if d := n.NextDeadline(); d != 0 && d <= w.Clock.T {
			n.Tick()
			did = true
		}
	}
	return did
}

// Next returns the time of the next event (packet or timer), or 0.
func (w *Wire) Next() int64 {
	var t int64
	if len(w.q) > 0 {
		t = w.q[0].t
	}
	for _, n := range w.nodes {
		if d := n.NextDeadline(); d != 0 && (t == 0 || d < t) {
			t = d
		}
	}
	return t
}

// Advance moves the clock to the next event; it reports false if there is
// none (the system is idle for ever).
func (w *Wire) Advance() bool {
	t := w.Next()
	if t == 0 {
		return false
	}
	if t > w.Clock.T {
		w.Clock.T = t
	}
	return true
}
