package umem

import (
	"bufio"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Defaults used when a Config field is zero.
const (
	DefaultFrameSize = 2048
	DefaultNumFrames = 4096
	DefaultHeadroom  = 256
)

// MinHeadroom is the smallest headroom a Config may ask for: room for the
// largest header stack demixdp writes (Ethernet 14 + IPv4 60 + TCP 60).
const MinHeadroom = 14 + 60 + 60

// minPayload is the smallest payload area Config validation leaves behind
// the headroom.
const minPayload = 64

// maxRegion is the largest region New maps: UMEM offsets must fit the
// kernel's 32-bit chunk arithmetic and frame indices a uint32.
const maxRegion = 1 << 32

// Sentinel errors. Errors returned by this package wrap one of them; test
// with errors.Is.
var (
	// ErrInvalidConfig: a Config field is out of range, or NewPool got a
	// frame range outside the UMEM.
	ErrInvalidConfig = errors.New("umem: invalid config")
	// ErrExhausted: the pool has no free frame.
	ErrExhausted = errors.New("umem: no free frame")
	// ErrDoubleFree: Unref of a frame that has no holder left.
	ErrDoubleFree = errors.New("umem: double free")
	// ErrNotFrame: the frame index is outside the pool.
	ErrNotFrame = errors.New("umem: not a frame of this pool")
	// ErrBadTransition: the operation is impossible in the frame's state.
	ErrBadTransition = errors.New("umem: impossible frame state transition")
	// ErrClosed: the UMEM has been closed.
	ErrClosed = errors.New("umem: closed")
)

// Config describes a UMEM. The zero value is valid and gives the defaults.
type Config struct {
	// FrameSize is the size of one frame in bytes: 2048 or 4096.
	// 0 means DefaultFrameSize.
	FrameSize int
	// NumFrames is the number of frames. 0 means DefaultNumFrames. The
	// region (FrameSize*NumFrames) must not exceed 4 GiB.
	NumFrames int
	// Headroom is the payload offset inside the frames the application
	// allocates, reserved for headers. 0 means DefaultHeadroom. It must be
	// at least MinHeadroom and at most FrameSize-64.
	Headroom int
	// HugePages asks for MAP_HUGETLB. If the huge-page mapping fails (none
	// reserved, for instance), New falls back to normal pages; HugePages()
	// reports which one it got.
	HugePages bool
}

// withDefaults fills the zero fields of c and validates the result.
func (c Config) withDefaults() (Config, error) {
	if c.FrameSize == 0 {
		c.FrameSize = DefaultFrameSize
	}
	if c.NumFrames == 0 {
		c.NumFrames = DefaultNumFrames
	}
	if c.Headroom == 0 {
		c.Headroom = DefaultHeadroom
	}
	if c.FrameSize != 2048 && c.FrameSize != 4096 {
		return c, fmt.Errorf("%w: frame size %d (want 2048 or 4096)", ErrInvalidConfig, c.FrameSize)
	}
	if c.NumFrames < 0 || int64(c.NumFrames)*int64(c.FrameSize) > maxRegion {
		return c, fmt.Errorf("%w: %d frames of %d bytes (region must be 1 byte to 4 GiB)", ErrInvalidConfig, c.NumFrames, c.FrameSize)
	}
	if c.Headroom < MinHeadroom || c.Headroom > c.FrameSize-minPayload {
		return c, fmt.Errorf("%w: headroom %d (want %d..%d)", ErrInvalidConfig, c.Headroom, MinHeadroom, c.FrameSize-minPayload)
	}
	return c, nil
}

// UMEM is a region of memory shared with AF_XDP sockets, cut into
// NumFrames frames of FrameSize bytes. Its accessors are safe for
// concurrent use; Close is not safe to call while the region is in use.
type UMEM struct {
	mapping   []byte // exactly what unix.Mmap returned, for Munmap
	mem       []byte // the region: mapping[:size:size]; nil after Close
	base      uintptr
	size      uint64
	frameSize int
	shift     uint // log2(frameSize)
	numFrames int
	headroom  int
	huge      bool

	closeMu sync.Mutex
	closed  bool
}

// New maps a UMEM described by cfg: an anonymous, private, page-aligned
// region, pre-faulted with MAP_POPULATE so the datapath takes no page fault.
// It fails with an error wrapping ErrInvalidConfig for a bad cfg, or with
// the mmap error.
func New(cfg Config) (*UMEM, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	size := cfg.FrameSize * cfg.NumFrames
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	prot := unix.PROT_READ | unix.PROT_WRITE

	var mapping []byte
	huge := false
	if cfg.HugePages {
		// munmap of a hugetlb mapping needs a length that is a multiple
		// of the huge page size, so map a rounded-up length.
		hp := hugePageSize()
		length := (size + hp - 1) / hp * hp
		if m, err := unix.Mmap(-1, 0, length, prot, flags|unix.MAP_HUGETLB); err == nil {
			mapping, huge = m, true
		}
	}
	if mapping == nil {
		mapping, err = unix.Mmap(-1, 0, size, prot, flags)
		if err != nil {
			return nil, fmt.Errorf("umem: mmap %d bytes: %w", size, err)
		}
	}
	mem := mapping[:size:size]
	return &UMEM{
		mapping:   mapping,
		mem:       mem,
		base:      uintptr(unsafe.Pointer(unsafe.SliceData(mem))),
		size:      uint64(size),
		frameSize: cfg.FrameSize,
		shift:     uint(bits.TrailingZeros(uint(cfg.FrameSize))),
		numFrames: cfg.NumFrames,
		headroom:  cfg.Headroom,
		huge:      huge,
	}, nil
}

// hugePageSize returns the system's default huge page size from
// /proc/meminfo, or 2 MiB if it cannot tell.
func hugePageSize() int {
	const fallback = 2 << 20
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return fallback
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "Hugepagesize:")
		if !ok {
			continue
		}
		kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
		if err != nil || kb <= 0 {
			return fallback
		}
		return kb << 10
	}
	return fallback
}

// Close unmaps the region. It is idempotent. After Close, Bytes and Frame
// return nil, FrameOf and FrameOfSlice report ok=false, and Pool.Alloc and
// Pool.AllocFill fail with ErrClosed; any slice of the region still held
// must not be touched.
func (u *UMEM) Close() error {
	u.closeMu.Lock()
	defer u.closeMu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	m := u.mapping
	u.mapping, u.mem, u.base, u.size = nil, nil, 0, 0
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("umem: munmap: %w", err)
	}
	return nil
}

// Bytes returns the whole region, for XDP_UMEM_REG. It is nil after Close.
func (u *UMEM) Bytes() []byte { return u.mem }

// FrameSize returns the size of one frame in bytes.
func (u *UMEM) FrameSize() int { return u.frameSize }

// NumFrames returns the number of frames in the region.
func (u *UMEM) NumFrames() int { return u.numFrames }

// Headroom returns the payload offset inside frames the application
// allocates.
func (u *UMEM) Headroom() int { return u.headroom }

// HugePages reports whether the region is backed by huge pages.
func (u *UMEM) HugePages() bool { return u.huge }

// Frame returns frame idx as a slice of FrameSize bytes whose capacity ends
// at the frame's end, so appending to it reallocates rather than writing into
// the next frame. It returns nil if idx is out of range or the UMEM is
// closed.
func (u *UMEM) Frame(idx uint32) []byte {
	o := uint64(idx) << u.shift
	if o >= u.size {
		return nil
	}
	end := o + uint64(u.frameSize)
	return u.mem[o:end:end]
}

// Addr returns the UMEM offset of frame idx, as ring descriptors carry it.
// It does not check idx.
func (u *UMEM) Addr(idx uint32) uint64 { return uint64(idx) << u.shift }

// FrameOf returns the frame that contains UMEM offset addr (a descriptor
// address, which may point past the frame's start). ok is false if addr is
// beyond the region.
func (u *UMEM) FrameOf(addr uint64) (idx uint32, ok bool) {
	if addr >= u.size {
		return 0, false
	}
	return uint32(addr >> u.shift), true
}

// FrameOfSlice returns the frame in which b's first byte lies and that
// byte's offset inside the frame. A zero-length b with spare capacity is
// located by its data pointer. ok is false if b is nil or has no capacity, if
// it starts outside the region, or if its capacity reaches past the end of
// its frame (such a slice could spill into a neighbour).
func (u *UMEM) FrameOfSlice(b []byte) (idx uint32, off int, ok bool) {
	if cap(b) == 0 {
		return 0, 0, false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < u.base || uint64(p-u.base) >= u.size {
		return 0, 0, false
	}
	rel := uint64(p - u.base)
	off = int(rel & uint64(u.frameSize-1))
	if off+cap(b) > u.frameSize {
		return 0, 0, false
	}
	return uint32(rel >> u.shift), off, true
}

// isClosed reports whether Close has run.
func (u *UMEM) isClosed() bool { return u.mem == nil }
