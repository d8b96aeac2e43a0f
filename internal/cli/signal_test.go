package cli

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestOnSignalRunsOnSIGTERM(t *testing.T) {
	fired := make(chan struct{})
	cancel := OnSignal(func() { close(fired) })
	defer cancel()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not run the function")
	}
}
