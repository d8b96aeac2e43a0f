package vethlab

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestQueues: a lab with Queues: 4 has four RX and four TX queues on both
// ends, and B keeps its sockets' flow hashes (net.core.txrehash 0), while
// a one-queue lab leaves B's default alone.
func TestQueues(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "mq", Queues: 4})
	if got := realQueues(t, l.CommandA("ls", "/sys/class/net/"+l.IfA+"/queues")); got != "rx-0 rx-1 rx-2 rx-3 tx-0 tx-1 tx-2 tx-3" {
		t.Errorf("%s queues: %s", l.IfA, got)
	}
	if got := realQueues(t, l.CommandB("ls", "/sys/class/net/"+l.IfB+"/queues")); got != "rx-0 rx-1 rx-2 rx-3 tx-0 tx-1 tx-2 tx-3" {
		t.Errorf("%s queues: %s", l.IfB, got)
	}
	if got, ok := txrehash(t, l); ok && got != "0" {
		t.Errorf("B's net.core.txrehash = %q with 4 queues, want 0", got)
	}
	one := ForTest(t, Config{Name: "sq"})
	if got := realQueues(t, one.CommandA("ls", "/sys/class/net/"+one.IfA+"/queues")); got != "rx-0 tx-0" {
		t.Errorf("default lab queues: %s", got)
	}
	if got, ok := txrehash(t, one); ok && got == "0" {
		t.Errorf("one-queue lab changed B's net.core.txrehash")
	}
	if _, err := New(Config{Queues: MaxQueues + 1}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Queues %d: %v, want ErrBadConfig", MaxQueues+1, err)
	}
}

// txrehash reads net.core.txrehash in B; false if this kernel has none
// (before 6.2), when there is nothing to check.
func txrehash(t *testing.T, l *Lab) (string, bool) {
	t.Helper()
	var v string
	ok := true
	err := l.RunInB(func() error {
		b, err := os.ReadFile(txrehashPath)
		if errors.Is(err, os.ErrNotExist) {
			ok = false
			return nil
		}
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Log("no net.core.txrehash on this kernel: not checked")
	}
	return v, ok
}

// realQueues lists the queues the kernel made (sysfs, read inside the
// namespace by ip netns exec, which mounts that namespace's /sys).
func realQueues(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}
