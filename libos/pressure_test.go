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
// windows. Frames must keep circulating (received payload and out-of-order
// queues dropped under pressure and resent by the peers, so ACKs always
// find a frame to arrive in) and every byte must come back: no deadlock.
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
	t.Logf("%d connections x %d KB in %v; receive pressure drops %d, out-of-order queues pruned %d",
		conns, size>>10, time.Since(start), cs.TCP.RcvPressureDrops, cs.TCP.OOOPruned)
	if cs.TCP.RcvPressureDrops == 0 {
		t.Errorf("the UMEM never ran short: the test did not exercise pressure")
	}
	if cs.OwnershipErrors != 0 {
		t.Fatalf("ownership errors %d", cs.OwnershipErrors)
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
