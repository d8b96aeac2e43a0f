package libos_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// wakeLater calls lib.Wake from another goroutine after d and returns a
// channel closed once it has.
func wakeLater(lib *libos.LibOS, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		time.Sleep(d)
		lib.Wake()
		close(done)
	}()
	return done
}

// waitResult is what a wait returned.
type waitResult struct {
	n   int
	err error
}

// waitNextAsync runs WaitNext(timeout) on a goroutine of its own; the
// caller must not touch lib until the result arrives.
func waitNextAsync(lib *libos.LibOS, timeout time.Duration) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		var out [4]libos.Result
		n, err := lib.WaitNext(out[:], timeout)
		ch <- waitResult{n, err}
	}()
	return ch
}

// untilAsleepInPpoll waits until one of the process's threads is blocked
// in ppoll(2) (what the loop sleeps in; Go's own idle threads sit in
// futex or epoll_pwait), so that a Wake sent next
// must come through the eventfd rather than the flag.
func untilAsleepInPpoll(t *testing.T) {
	t.Helper()
	inPpoll := strconv.Itoa(unix.SYS_PPOLL) + " "
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		files, _ := filepath.Glob("/proc/self/task/*/syscall")
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), inPpoll) {
				return
			}
		}
	}
	t.Fatal("the loop never went to sleep in ppoll(2)")
}

// hangGuard is the safety net against a wait that never returns; it is
// not a measure of promptness (nothing here depends on timing).
const hangGuard = 20 * time.Second

// TestWakeInterruptsSleepingWait: with no spin the loop goes straight to
// poll(2) with nothing to wait for; a Wake from another goroutine must
// bring WaitNext back with EINTR, through the eventfd (the loop counted a
// sleep).
func TestWakeInterruptsSleepingWait(t *testing.T) {
	_, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.Spin = -1 })
	c0, _ := lib.Counters()
	res := waitNextAsync(lib, -1)
	untilAsleepInPpoll(t)
	lib.Wake()
	select {
	case r := <-res:
		if r.err != unix.EINTR || r.n != 0 {
			t.Fatalf("WaitNext after Wake: n=%d err=%v, want 0 and EINTR", r.n, r.err)
		}
	case <-time.After(hangGuard):
		t.Fatal("WaitNext(-1) did not return after Wake")
	}
	c1, _ := lib.Counters()
	if c1.Sleeps == c0.Sleeps {
		t.Fatalf("the loop never slept (%d sleeps): the eventfd path was not exercised", c1.Sleeps)
	}
	// The wake-up was consumed: a poll now finds nothing.
	var out [4]libos.Result
	if n, err := lib.WaitNext(out[:], 0); err != unix.ETIMEDOUT || n != 0 {
		t.Fatalf("WaitNext(0) after the EINTR: %d %v, want ETIMEDOUT", n, err)
	}
}

// TestWakeInterruptsSpinningWait: with a spin far longer than the test the
// loop never sleeps; the flag alone must stop it.
func TestWakeInterruptsSpinningWait(t *testing.T) {
	_, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.Spin = time.Hour })
	c0, _ := lib.Counters()
	res := waitNextAsync(lib, -1)
	wakeLater(lib, 50*time.Millisecond)
	select {
	case r := <-res:
		if r.err != unix.EINTR {
			t.Fatalf("WaitNext after Wake: %v, want EINTR", r.err)
		}
	case <-time.After(hangGuard):
		t.Fatal("a spinning WaitNext did not return after Wake")
	}
	if c1, _ := lib.Counters(); c1.Sleeps != c0.Sleeps {
		t.Fatalf("the loop slept %d times with a one-hour spin", c1.Sleeps-c0.Sleeps)
	}
}

// TestWakeSemantics: a Wake with no wait running is reported by the next
// wait; several Wakes give one EINTR; Wait and WaitAny report it too and
// leave their tokens valid; an operation that completes wins over a
// pending Wake, which the next wait then reports; Wake after Close does
// nothing; Wake allocates nothing.
func TestWakeSemantics(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	qd, peer := roundTripper(t, lab, lib)
	var out [4]libos.Result

	lib.Wake()
	lib.Wake()
	lib.Wake()
	if n, err := lib.WaitNext(out[:], -1); err != unix.EINTR || n != 0 {
		t.Fatalf("WaitNext after three Wakes: %d %v, want EINTR", n, err)
	}
	if n, err := lib.WaitNext(out[:], 0); err != unix.ETIMEDOUT || n != 0 {
		t.Fatalf("second WaitNext: %d %v, want ETIMEDOUT (Wakes do not accumulate)", n, err)
	}

	// Wait on a pop: EINTR, and the token is still good.
	pop, err := lib.Pop(qd)
	if err != nil {
		t.Fatal(err)
	}
	lib.Wake()
	if _, err := lib.Wait(pop, -1); err != unix.EINTR {
		t.Fatalf("Wait after Wake: %v, want EINTR", err)
	}
	lib.Wake()
	if _, _, err := lib.WaitAny([]libos.QToken{pop}, time.Second); err != unix.EINTR {
		t.Fatalf("WaitAny after Wake: %v, want EINTR", err)
	}
	sga, _ := lib.SGAAlloc(16)
	copy(sga.Segs[0], "woken, not lost.")
	push, err := lib.PushTo(qd, sga, peer)
	if err != nil {
		t.Fatal(err)
	}
	lib.SGAFree(sga)
	r, err := lib.Wait(pop, 5*time.Second)
	if err != nil || r.Opcode != libos.OpPop || string(r.SGA.Segs[0]) != "woken, not lost." {
		t.Fatalf("pop after the EINTRs: %v %+v", err, r)
	}
	lib.SGAFree(r.SGA)
	if r, err := lib.Wait(push, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("push: %v %+v", err, r)
	}

	// A completed operation comes first; the Wake is kept for the next
	// wait.
	pop, _ = lib.Pop(qd)
	sga, _ = lib.SGAAlloc(8)
	push, _ = lib.PushTo(qd, sga, peer)
	lib.SGAFree(sga)
	if r, err := lib.Wait(push, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("push: %v %+v", err, r)
	}
	if r, err := lib.Wait(pop, 5*time.Second); err != nil || r.Opcode != libos.OpPop {
		t.Fatalf("pop: %v %+v", err, r)
	} else {
		lib.SGAFree(r.SGA)
	}
	pop, _ = lib.Pop(qd)
	sga, _ = lib.SGAAlloc(8)
	push, _ = lib.PushTo(qd, sga, peer)
	lib.SGAFree(sga)
	lib.Wake()
	// Both the push and the reflected pop complete eventually; the Wake
	// is reported by some wait in between or after, exactly once.
	got, eintr := 0, 0
	for deadline := time.Now().Add(hangGuard); got < 2; {
		if time.Now().After(deadline) {
			t.Fatal("push and pop never both completed")
		}
		n, err := lib.WaitNext(out[:], time.Second)
		switch err {
		case nil:
		case unix.EINTR:
			eintr++
		case unix.ETIMEDOUT:
		default:
			t.Fatal(err)
		}
		for _, r := range out[:n] {
			if r.QT != pop && r.QT != push {
				t.Fatalf("unexpected completion %+v", r)
			}
			if r.Opcode == libos.OpPop {
				lib.SGAFree(r.SGA)
			}
		}
		got += n
	}
	if n, err := lib.WaitNext(out[:], 0); err == unix.EINTR {
		eintr++
	} else if err != unix.ETIMEDOUT || n != 0 {
		t.Fatalf("WaitNext(0) after both completed: %d %v", n, err)
	}
	if eintr != 1 {
		t.Fatalf("one Wake was reported %d times, want once", eintr)
	}

	if a := testing.AllocsPerRun(1000, lib.Wake); a != 0 {
		t.Fatalf("Wake: %v allocations, want 0", a)
	}
	lib.WaitNext(out[:], 0) // consume it
	if err := lib.Close(); err != nil {
		t.Fatal(err)
	}
	lib.Wake() // after Close: nothing, and no panic
	if _, err := lib.WaitNext(out[:], 0); err != unix.EBADF {
		t.Fatalf("WaitNext after Close: %v, want EBADF", err)
	}
}

// TestWakeConcurrent: many goroutines hammer Wake while the loop runs
// WaitNext over and over, spinning and sleeping; every wait returns, and
// a final Wake after the hammering still gets through to a sleeping
// loop. Run with -race, it also checks that Wake is safe beside the loop.
func TestWakeConcurrent(t *testing.T) {
	_, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.Spin = 20 * time.Microsecond })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				lib.Wake()
				time.Sleep(time.Duration(i*50) * time.Microsecond)
			}
		}()
	}
	var out [4]libos.Result
	eintr := 0
	for i := 0; i < 2000; i++ {
		_, err := lib.WaitNext(out[:], 10*time.Millisecond)
		if err == unix.EINTR {
			eintr++
		} else if err != unix.ETIMEDOUT {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if eintr == 0 {
		t.Fatal("2000 waits beside four waking goroutines never saw EINTR")
	}
	lib.WaitNext(out[:], 0) // drop a leftover wake-up
	res := waitNextAsync(lib, -1)
	untilAsleepInPpoll(t)
	lib.Wake()
	select {
	case r := <-res:
		if r.err != unix.EINTR {
			t.Fatalf("final WaitNext: %v, want EINTR", r.err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the final Wake did not reach the sleeping loop")
	}
}
