package libos_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// The privilege errors of New need a process with fewer rights than the
// test's: the test binary runs itself again (inside the lab's namespace A)
// with envChild set, and that child calls New and prints the outcome.
const envChild = "DEMIXDP_LIBOS_NEW_CHILD"

func TestMain(m *testing.M) {
	if what := os.Getenv(envChild); what != "" {
		os.Exit(newChild(what))
	}
	os.Exit(m.Run())
}

// newChild drops what the test asks for, runs New on $IFACE with $ADDR and
// prints "err: MESSAGE" and the errnos it wraps, or "ok".
func newChild(what string) int {
	switch what {
	case "nobody":
		// All threads become uid/gid 65534: every capability is gone.
		if err := syscall.Setgroups(nil); err == nil {
			err = syscall.Setgid(65534)
			if err == nil {
				err = syscall.Setuid(65534)
			}
			if err != nil {
				fmt.Println("setup:", err)
				return 1
			}
		}
	case "memlock":
		// Started without CAP_IPC_LOCK (see startChild): the UMEM is
		// charged to a 64 KiB RLIMIT_MEMLOCK.
		lim := unix.Rlimit{Cur: 64 << 10, Max: 64 << 10}
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
			fmt.Println("setup:", err)
			return 1
		}
	}
	lib, err := libos.New(libos.Config{Interface: os.Getenv("IFACE"), Addr: netip.MustParsePrefix(os.Getenv("ADDR"))})
	if err != nil {
		fmt.Println("err:", err)
		for _, e := range []unix.Errno{unix.EPERM, unix.EACCES, unix.ENOBUFS, unix.ENOMEM} {
			if errors.Is(err, e) {
				fmt.Println("errno:", unix.ErrnoName(e))
			}
		}
		return 0
	}
	lib.Close()
	fmt.Println("ok")
	return 0
}

// runChild runs the test binary as a New child in namespace A. With
// dropBound, the child starts without the capabilities in dropBound: they
// are dropped from the bounding set of a thread that starts it and then
// dies with its goroutine.
func runChild(t *testing.T, lab *vethlab.Lab, what string, dropBound ...uintptr) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := lab.CommandA(exe)
	cmd.Env = append(os.Environ(), envChild+"="+what, "IFACE="+lab.IfA, "ADDR="+lab.AddrA.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for _, c := range dropBound {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
				started <- err
				return
			}
		}
		started <- cmd.Start()
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	t.Logf("child (%s): %s", what, strings.TrimSpace(out.String()))
	return out.String()
}

// Without privileges New fails with EPERM and says which capabilities it
// needs and how to grant them.
func TestNewErrorNotPermitted(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "eperm"})
	out := runChild(t, lab, "nobody")
	for _, want := range []string{"errno: EPERM", "not permitted to open an AF_XDP socket on " + lab.IfA,
		"CAP_NET_RAW", "setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep", "docs/troubleshooting.md#eperm"} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q", want)
		}
	}
}

// Without CAP_IPC_LOCK, a UMEM larger than RLIMIT_MEMLOCK cannot be
// registered; the error names the limit and the fixes.
func TestNewErrorMemlock(t *testing.T) {
	lab := vethlab.ForTest(t, vethlab.Config{Name: "emlock"})
	out := runChild(t, lab, "memlock", unix.CAP_IPC_LOCK)
	if !strings.Contains(out, "errno: ENOBUFS") && !strings.Contains(out, "errno: ENOMEM") {
		t.Errorf("child output lacks ENOBUFS or ENOMEM")
	}
	for _, want := range []string{"does not fit in RLIMIT_MEMLOCK (64 KiB)", "lacks CAP_IPC_LOCK", "ulimit -l unlimited",
		"4096 frames of 2048 bytes", "docs/troubleshooting.md#memlock"} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q", want)
		}
	}
}
