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

func TestOnInfoRunsOnEverySIGUSR1(t *testing.T) {
	fired := make(chan struct{}, 2)
	cancel := OnInfo(func() { fired <- struct{}{} })
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatalf("SIGUSR1 %d did not run the function", i+1)
		}
	}
}
