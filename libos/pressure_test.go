package libos_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
)

// TestTCPEchoWithScarceFrames: 200 kernel clients push 256 KB each through
// a libOS echo server whose UMEM (512 frames) holds far less than their
// windows would. The frame budgets must share the frames between the
// connections so that every one keeps moving: each connection fails the
// test if it makes no progress for stallBound (not the length of the run),
// every byte must come back, and the counters must show that the budgets,
// not plenty, kept the frames circulating.
func TestTCPEchoWithScarceFrames(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.Frames = 512; c.RingSize = 128 })
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	stop := startTCPEcho(t, lib, srv)
	const conns, size = 200, 256 << 10
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for i := 0; i < conns; i++ {
		c := dialTCPB(t, lab, srv)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs <- fmt.Errorf("connection %d: %v", i, r)
				}
			}()
			ft := &fatalT{}
			streamEcho(ft, c, size, uint64(i+10))
			if ft.err != nil {
				errs <- fmt.Errorf("connection %d: %v", i, ft.err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stop()
	cs, _ := lib.Counters()
	c := cs.TCP
	t.Logf("%d connections x %d KB in %v; share-limited windows %d, pushes refused by the share %d, reclaims %d (frames spilled %d), receive pressure drops %d, out-of-order queues pruned %d",
		conns, size>>10, time.Since(start), c.RcvShareLimited, c.SndShareFull, c.Reclaims, c.SpilledFrames, c.RcvPressureDrops, c.OOOPruned)
	if c.RcvShareLimited == 0 {
		t.Errorf("no window was ever limited by the frame share: the test did not exercise the budgets")
	}
	if cs.OwnershipErrors != 0 {
		t.Fatalf("ownership errors %d", cs.OwnershipErrors)
	}
	if c.FramesHeld != 0 || c.Holders != 0 {
		t.Fatalf("after every connection closed: %d frames held by %d connections", c.FramesHeld, c.Holders)
	}
}

// fatalT lets streamEcho run off the test goroutine: Fatal records the
// error and ends the goroutine.
type fatalT struct {
	testing.TB
	err error
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatal(args ...any) {
	f.err = fmt.Errorf("%s", fmt.Sprint(args...))
	panic(f.err)
}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.err = fmt.Errorf(format, args...)
	panic(f.err)
}
