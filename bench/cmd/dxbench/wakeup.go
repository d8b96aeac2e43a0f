package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The wake-up calibration: how long the machine takes to wake a thread
// that sleeps in the kernel, which every blocking pair (the kernel's own
// sockets above all) pays on each round trip, and which varies between
// machines of the same kind far more than the stacks' own work does.
//
//	dxbench wakeup [-cpus 0,1] [-n 20000]
//
// prints one line of key=value pairs (microseconds):
//
//	pipe_cross_cpu  a byte ping-ponged through two pipes between two
//	                threads pinned to the two CPUs, each sleeping in
//	                read(2) until the other writes: two cross-CPU wake-ups
//	                per round trip
//	pipe_same_cpu   the same with both threads on the first CPU: two
//	                context switches, no inter-processor interrupt
//	spin_cross_cpu  a counter ping-ponged through one cache line between
//	                the two CPUs by threads that never sleep: what the
//	                hardware itself costs
//
// each as _p50_us and _p99_us. The threads are locked OS threads pinned
// with sched_setaffinity, and read/write are direct system calls (rawIO),
// not the os package's poller, so the Go runtime adds no more than its
// bookkeeping around each call.

// wakeupVariants are the calibration's measurements, in report order.
var wakeupVariants = []string{"pipe_cross_cpu", "pipe_same_cpu", "spin_cross_cpu"}

func wakeupMain(args []string) error {
	fs := flag.NewFlagSet("wakeup", flag.ContinueOnError)
	cpus := fs.String("cpus", "0,1", "the two CPUs, comma separated")
	n := fs.Int("n", 20000, "round trips per pipe measurement (the spin one makes 10 times as many)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, b, ok := strings.Cut(*cpus, ",")
	ca, err1 := strconv.Atoi(a)
	cb, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || ca < 0 || cb < 0 || ca == cb || *n < 1 {
		return fmt.Errorf("-cpus %q: want two different CPUs, and -n >= 1", *cpus)
	}
	// Two threads block in system calls: leave the runtime Ps of its own.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 4))
	var out []string
	for _, v := range []struct {
		name   string
		cpuB   int
		n      int
		pingFn func(n, cpuA, cpuB int) ([]time.Duration, error)
	}{
		{"pipe_cross_cpu", cb, *n, pipePingPong},
		{"pipe_same_cpu", ca, *n, pipePingPong},
		{"spin_cross_cpu", cb, 10 * *n, spinPingPong},
	} {
		d, err := v.pingFn(v.n, ca, v.cpuB)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		slices.Sort(d)
		q := func(p float64) string {
			return strconv.FormatFloat(float64(d[min(int(p*float64(len(d))), len(d)-1)])/1e3, 'f', 3, 64)
		}
		out = append(out, v.name+"_p50_us="+q(0.5), v.name+"_p99_us="+q(0.99))
	}
	fmt.Println("result " + strings.Join(out, " "))
	return nil
}

// onCPU locks the calling goroutine to its thread and pins the thread to
// cpu. The thread stays locked: it exits with the goroutine.
func onCPU(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// warmup is how many round trips each measurement makes before timing.
const warmup = 1000

// pipePingPong times n round trips of one byte: a (on cpuA) writes to one
// pipe and reads the other, b (on cpuB) echoes.
func pipePingPong(n, cpuA, cpuB int) ([]time.Duration, error) {
	var ab, ba [2]int
	if err := unix.Pipe2(ab[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	if err := unix.Pipe2(ba[:], unix.O_CLOEXEC); err != nil {
		unix.Close(ab[0])
		unix.Close(ab[1])
		return nil, err
	}
	defer func() {
		for _, fd := range []int{ab[0], ab[1], ba[0], ba[1]} {
			unix.Close(fd)
		}
	}()
	d := make([]time.Duration, 0, n)
	total := n + warmup
	err := pair(cpuA, cpuB, func() error { // the pinger
		c := byte(1)
		for i := 0; i < total; i++ {
			t0 := time.Now()
			if err := rawIO(unix.SYS_WRITE, ab[1], &c); err != nil {
				return err
			}
			if err := rawIO(unix.SYS_READ, ba[0], &c); err != nil {
				return err
			}
			if i >= warmup {
				d = append(d, time.Since(t0))
			}
		}
		return nil
	}, func() error { // the echo
		var c byte
		for i := 0; i < total; i++ {
			if err := rawIO(unix.SYS_READ, ab[0], &c); err != nil {
				return err
			}
			if err := rawIO(unix.SYS_WRITE, ba[1], &c); err != nil {
				return err
			}
		}
		return nil
	})
	return d, err
}

// rawIO reads or writes one byte with a plain system call, not
// RawSyscall: a thread asleep in a raw call looks to the runtime like a
// goroutine running that never reaches a safe point, so a garbage
// collection (or any stop-the-world) that began during the ping-pong
// waited for it forever while its partner, which would have woken it, sat
// stopped (TestWakeupPingPongs hung so in make test). The runtime's
// bookkeeping around the call costs well under a microsecond; with nothing
// else to run, it keeps the thread's P.
func rawIO(trap uintptr, fd int, b *byte) error {
	r, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(b)), 1)
	if e != 0 {
		return e
	}
	if r != 1 {
		return errors.New("short transfer")
	}
	return nil
}

// pair runs a on a thread pinned to cpuA and b on one pinned to cpuB,
// starting both only once both are pinned, and returns the first error.
func pair(cpuA, cpuB int, a, b func() error) error {
	var pinned, wg sync.WaitGroup
	var failed atomic.Bool
	errs := make([]error, 2)
	pinned.Add(2)
	for i, f := range []func() error{a, b} {
		cpu := []int{cpuA, cpuB}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := onCPU(cpu)
			if err != nil {
				failed.Store(true)
			}
			pinned.Done()
			pinned.Wait()
			if err != nil || failed.Load() {
				errs[i] = err
				return
			}
			errs[i] = f()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// spinPingPong times n round trips of a counter through one cache line
// between two spinning threads.
func spinPingPong(n, cpuA, cpuB int) ([]time.Duration, error) {
	var line struct {
		_ [64]byte
		v atomic.Uint64
		_ [64]byte
	}
	d := make([]time.Duration, 0, n)
	total := uint64(n + warmup)
	err := pair(cpuA, cpuB, func() error {
		for i := uint64(0); i < total; i++ {
			t0 := time.Now()
			line.v.Store(2*i + 1)
			for line.v.Load() != 2*i+2 {
			}
			if i >= warmup {
				d = append(d, time.Since(t0))
			}
		}
		return nil
	}, func() error {
		for want := uint64(1); want < 2*total; want += 2 {
			for line.v.Load() != want {
			}
			line.v.Store(want + 1)
		}
		return nil
	})
	return d, err
}

// wakeupRound runs the calibration once, in a process of its own, between
// the CPUs of the pinned servers and clients.
func (h *harness) wakeupRound(round int) {
	if !h.want("wakeup") {
		return
	}
	h.logf("round %d wakeup", round)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, h.bin["dxbench"], "wakeup",
		"-cpus", fmt.Sprintf("%d,%d", h.o.pin.server, h.o.pin.client)).Output()
	kv := map[string]string{}
	for _, f := range strings.Fields(string(out)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	if err != nil {
		h.note("round %d: wakeup: %v", round, err)
	}
	for _, v := range wakeupVariants {
		h.record("wakeup", v, "p50_us", num(kv, v+"_p50_us"))
		h.record("wakeup", v, "p99_us", num(kv, v+"_p99_us"))
	}
}
