package umem

import (
	"errors"
	"github.com/demixdp/demixdp/internal/priv"
	"os"
	"strconv"
	"strings"
	"testing"
)

func mustNew(t testing.TB, cfg Config) *UMEM {
	t.Helper()
	u, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return u
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{FrameSize: 1024},
		{FrameSize: 3000},
		{FrameSize: 8192},
		{FrameSize: -2048},
		{NumFrames: -1},
		{FrameSize: 2048, NumFrames: 1<<21 + 1}, // 4 GiB + 2 KiB
		{FrameSize: 4096, NumFrames: 1<<20 + 1},
		{Headroom: MinHeadroom - 1},
		{Headroom: -1},
		{FrameSize: 2048, Headroom: 2048 - 63},
		{FrameSize: 2048, Headroom: 2048},
		{FrameSize: 4096, Headroom: 4096 - 63},
	}
	for _, cfg := range bad {
		u, err := New(cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
		if u != nil {
			t.Errorf("New(%+v) returned a UMEM with an error", cfg)
			u.Close()
		}
	}

	u := mustNew(t, Config{})
	if u.FrameSize() != DefaultFrameSize || u.NumFrames() != DefaultNumFrames || u.Headroom() != DefaultHeadroom {
		t.Errorf("defaults: got %d/%d/%d", u.FrameSize(), u.NumFrames(), u.Headroom())
	}
	// Edge values that are valid.
	for _, cfg := range []Config{
		{FrameSize: 2048, NumFrames: 1, Headroom: MinHeadroom},
		{FrameSize: 2048, NumFrames: 1, Headroom: 2048 - 64},
		{FrameSize: 4096, NumFrames: 3, Headroom: 4096 - 64},
	} {
		u := mustNew(t, cfg)
		if u.FrameSize() != cfg.FrameSize || u.NumFrames() != cfg.NumFrames || u.Headroom() != cfg.Headroom {
			t.Errorf("New(%+v): got %d/%d/%d", cfg, u.FrameSize(), u.NumFrames(), u.Headroom())
		}
	}
}

func TestMmapSizeAlignment(t *testing.T) {
	for _, fs := range []int{2048, 4096} {
		u := mustNew(t, Config{FrameSize: fs, NumFrames: 33})
		b := u.Bytes()
		if len(b) != fs*33 || cap(b) != fs*33 {
			t.Errorf("fs %d: len %d cap %d, want %d", fs, len(b), cap(b), fs*33)
		}
		if u.base%uintptr(os.Getpagesize()) != 0 {
			t.Errorf("fs %d: region at %#x is not page-aligned", fs, u.base)
		}
		// Writable and zeroed end to end.
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("byte %d not zero", i)
			}
		}
		b[0], b[len(b)-1] = 1, 2
		if u.HugePages() {
			t.Errorf("HugePages() true without asking")
		}
	}
}

func TestHugePagesFallback(t *testing.T) {
	u := mustNew(t, Config{NumFrames: 64, HugePages: true})
	b := u.Bytes()
	if len(b) != 64*DefaultFrameSize {
		t.Fatalf("len %d", len(b))
	}
	b[len(b)-1] = 7
	if u.HugePages() {
		if u.base%uintptr(hugePageSize()) != 0 {
			t.Errorf("huge-page region at %#x not aligned to %d", u.base, hugePageSize())
		}
	}
	t.Logf("HugePages() = %v (huge page size %d)", u.HugePages(), hugePageSize())
	if free := meminfo(t, "HugePages_Free:"); free == 0 && u.HugePages() {
		t.Error("HugePages() true with no huge page free")
	}
}

// TestHugePagesMapped exercises the MAP_HUGETLB path. If the system has
// fewer than two free huge pages it reserves two more for the test (root
// only) and gives them back afterwards.
func TestHugePagesMapped(t *testing.T) {
	hp := hugePageSize()
	if meminfo(t, "HugePages_Free:") < 2 {
		reserveHugePages(t, 2)
	}
	// 1.5 huge pages of frames: the mapping rounds up to 2.
	n := hp * 3 / 2 / 2048
	u, err := New(Config{NumFrames: n, HugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	if !u.HugePages() {
		t.Fatal("huge pages free but New fell back")
	}
	if u.base%uintptr(hp) != 0 || len(u.Bytes()) != n*2048 || len(u.mapping) != 2*hp {
		t.Errorf("base %#x len %d mapping %d", u.base, len(u.Bytes()), len(u.mapping))
	}
	u.Frame(uint32(n - 1))[2047] = 1
	if err := u.Close(); err != nil {
		t.Fatalf("Close of a huge-page UMEM: %v", err)
	}
}

// meminfo returns a numeric field of /proc/meminfo, or -1.
func meminfo(t *testing.T, key string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if v, err := strconv.Atoi(f[0]); err == nil {
					return v
				}
			}
		}
	}
	return -1
}

func TestCloseIdempotent(t *testing.T) {
	u, err := New(Config{NumFrames: 4})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(u, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if u.Bytes() != nil || u.Frame(0) != nil {
		t.Error("region still visible after Close")
	}
	if _, ok := u.FrameOf(0); ok {
		t.Error("FrameOf ok after Close")
	}
	if _, err := p.Alloc(); !errors.Is(err, ErrClosed) {
		t.Errorf("Alloc after Close: %v, want ErrClosed", err)
	}
	if _, err := p.AllocFill(); !errors.Is(err, ErrClosed) {
		t.Errorf("AllocFill after Close: %v, want ErrClosed", err)
	}
	if _, err := NewPool(u, 0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPool after Close: %v, want ErrClosed", err)
	}
}

func TestFrameBounds(t *testing.T) {
	for _, fs := range []int{2048, 4096} {
		u := mustNew(t, Config{FrameSize: fs, NumFrames: 8})
		for i := uint32(0); i < 8; i++ {
			f := u.Frame(i)
			if len(f) != fs || cap(f) != fs {
				t.Fatalf("Frame(%d): len %d cap %d", i, len(f), cap(f))
			}
			if &f[0] != &u.Bytes()[int(i)*fs] {
				t.Fatalf("Frame(%d) at the wrong place", i)
			}
			if u.Addr(i) != uint64(i)*uint64(fs) {
				t.Fatalf("Addr(%d) = %d", i, u.Addr(i))
			}
		}
		for _, i := range []uint32{8, 9, 1 << 31, ^uint32(0)} {
			if f := u.Frame(i); f != nil {
				t.Errorf("Frame(%d) = len %d, want nil", i, len(f))
			}
		}

		// Append past a frame's end must reallocate, never write into the
		// neighbour.
		next := u.Frame(4)
		for i := range next {
			next[i] = 0xAA
		}
		f := u.Frame(3)
		g := append(f, 1, 2, 3)
		if &g[0] == &f[0] {
			t.Error("append to a full frame did not reallocate")
		}
		payload := u.Frame(3)[u.Headroom():u.Headroom()]
		for len(payload) < fs-u.Headroom() {
			payload = append(payload, 0x55)
		}
		if &payload[0] != &u.Frame(3)[u.Headroom()] {
			t.Error("append within the frame reallocated")
		}
		payload = append(payload, 0x66)
		if &payload[0] == &u.Frame(3)[u.Headroom()] {
			t.Error("append past the frame did not reallocate")
		}
		for i, c := range next {
			if c != 0xAA {
				t.Fatalf("fs %d: neighbour byte %d overwritten with %#x", fs, i, c)
			}
		}
	}
}

func TestFrameOf(t *testing.T) {
	u := mustNew(t, Config{FrameSize: 2048, NumFrames: 4})
	cases := []struct {
		addr uint64
		idx  uint32
		ok   bool
	}{
		{0, 0, true},
		{1, 0, true},
		{256, 0, true},
		{2047, 0, true},
		{2048, 1, true},
		{2048 + 300, 1, true},
		{4*2048 - 1, 3, true},
		{4 * 2048, 0, false},
		{1 << 40, 0, false},
		{^uint64(0), 0, false},
	}
	for _, c := range cases {
		idx, ok := u.FrameOf(c.addr)
		if ok != c.ok || (ok && idx != c.idx) {
			t.Errorf("FrameOf(%d) = %d, %v; want %d, %v", c.addr, idx, ok, c.idx, c.ok)
		}
	}
}

func TestFrameOfSlice(t *testing.T) {
	const fs = 2048
	u := mustNew(t, Config{FrameSize: fs, NumFrames: 4})
	mem := u.Bytes()
	f2 := u.Frame(2)
	cases := []struct {
		name string
		b    []byte
		idx  uint32
		off  int
		ok   bool
	}{
		{"whole frame", f2, 2, 0, true},
		{"payload", f2[256:300], 2, 256, true},
		{"empty with cap", f2[256:256], 2, 256, true},
		{"last byte", f2[fs-1:], 2, fs - 1, true},
		{"first frame", u.Frame(0), 0, 0, true},
		{"last frame tail", u.Frame(3)[100:], 3, 100, true},
		{"nil", nil, 0, 0, false},
		{"empty no cap", f2[fs:], 0, 0, false},
		{"cap spills into next frame", mem[2*fs+10 : 2*fs+20], 0, 0, false},
		{"spans two frames", mem[fs-4 : fs+4 : fs+4], 0, 0, false},
		{"whole region", mem, 0, 0, false},
		{"capped across frame", mem[fs-4 : fs-2 : fs+1], 0, 0, false},
		{"capped exactly at end", mem[fs-4 : fs-2 : fs], 0, fs - 4, true},
		{"Go heap", make([]byte, 64), 0, 0, false},
		{"empty non-nil", []byte{}, 0, 0, false},
	}
	for _, c := range cases {
		idx, off, ok := u.FrameOfSlice(c.b)
		if ok != c.ok || (ok && (idx != c.idx || off != c.off)) {
			t.Errorf("%s: FrameOfSlice = %d, %d, %v; want %d, %d, %v", c.name, idx, off, ok, c.idx, c.off, c.ok)
		}
	}
	// A slice of another UMEM is foreign.
	v := mustNew(t, Config{FrameSize: fs, NumFrames: 4})
	if _, _, ok := u.FrameOfSlice(v.Frame(1)); ok {
		t.Error("frame of another UMEM accepted")
	}
}

// reserveHugePages raises vm.nr_hugepages by n for the duration of the test.
func reserveHugePages(t *testing.T, n int) {
	t.Helper()
	priv.Require(t, "reserving huge pages")
	const knob = "/proc/sys/vm/nr_hugepages"
	old, err := os.ReadFile(knob)
	if err != nil {
		priv.Unavailable(t, "no "+knob+": "+err.Error())
	}
	cur, _ := strconv.Atoi(strings.TrimSpace(string(old)))
	if err := os.WriteFile(knob, []byte(strconv.Itoa(cur+n)), 0); err != nil {
		priv.Unavailable(t, "cannot reserve huge pages: "+err.Error())
	}
	t.Cleanup(func() { os.WriteFile(knob, old, 0) })
	if meminfo(t, "HugePages_Free:") < n {
		priv.Unavailable(t, "the kernel could not reserve huge pages (memory fragmented?)")
	}
}
