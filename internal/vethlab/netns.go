package vethlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, as by
// `ip netns add`.
const NetnsDir = "/run/netns"

// prepareNetnsDir makes NetnsDir a shared mount point, as iproute2 does, so
// that namespaces created later are visible in mount namespaces created
// earlier (such as the one `ip netns exec` makes). It holds an exclusive
// flock on the directory while doing so, so concurrent labs (in other test
// binaries) do not stack mounts.
func prepareNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("vethlab: create %s: %w", NetnsDir, err)
	}
	fd, err := unix.Open(NetnsDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("vethlab: open %s: %w", NetnsDir, err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("vethlab: lock %s: %w", NetnsDir, err)
	}
	defer unix.Flock(fd, unix.LOCK_UN) //nolint:errcheck // closing the fd unlocks anyway
	err = unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("vethlab: make %s shared: %w", NetnsDir, err)
	}
	// Not a mount point yet: bind it onto itself, then make it shared.
	if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("vethlab: bind %s: %w", NetnsDir, err)
	}
	if err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("vethlab: make %s shared: %w", NetnsDir, err)
	}
	return nil
}

// createNamedNetns creates a new network namespace bind-mounted at
// NetnsDir/name. The calling goroutine's thread is switched into the new
// namespace only for the duration of the call. The name must not exist; on
// failure nothing is left behind.
func createNamedNetns(name string) (err error) {
	path := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("vethlab: namespace %s: %w", name, ErrExists)
		}
		return fmt.Errorf("vethlab: namespace %s: %w", name, err)
	}
	f.Close()
	mounted := false
	defer func() {
		if err != nil {
			if mounted {
				_ = unix.Unmount(path, unix.MNT_DETACH)
			}
			_ = os.Remove(path)
		}
	}()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("vethlab: current namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("vethlab: unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	merr := unix.Mount(self, path, "none", unix.MS_BIND, "")
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it is in the wrong namespace and dies
		// with this goroutine instead of running other goroutines.
		return fmt.Errorf("vethlab: restore namespace: %w", err)
	}
	runtime.UnlockOSThread()
	if merr != nil {
		return fmt.Errorf("vethlab: bind namespace %s: %w", name, merr)
	}
	mounted = true
	return nil
}

// deleteNamedNetns removes the bind mount and file of a named namespace.
// A missing namespace is not an error.
func deleteNamedNetns(name string) error {
	path := filepath.Join(NetnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("vethlab: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vethlab: remove %s: %w", path, err)
	}
	return nil
}

// netnsExists reports whether a named namespace is mounted.
func netnsExists(name string) bool {
	h, err := netns.GetFromName(name)
	if err != nil {
		return false
	}
	h.Close()
	return true
}

// runInNetns runs fn on the calling goroutine's thread switched into the
// named namespace. See Lab.RunInA.
func runInNetns(name string, fn func() error) (err error) {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("vethlab: namespace %s: %w", name, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("vethlab: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("vethlab: enter namespace %s: %w", name, err)
	}
	defer func() {
		if rerr := netns.Set(orig); rerr != nil {
			// Stay locked: the runtime ends this thread when the
			// goroutine exits, so no other goroutine runs in the
			// wrong namespace.
			err = errors.Join(err, fmt.Errorf("vethlab: restore namespace: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}
