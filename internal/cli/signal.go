package cli

import (
	"os"
	"os/signal"
	"syscall"
)

// OnSignal runs f (once, on its own goroutine) when the process gets
// SIGINT or SIGTERM, the way every command here stops. The returned
// function stops listening for them.
func OnSignal(f func()) (cancel func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			f()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// OnInfo calls f (on its own goroutine) every time the process gets
// SIGUSR1: the commands then print their counters without stopping, as dd
// does on SIGUSR1. f must only hand the request to the loop that owns the
// libOS (a LibOS is not safe for concurrent use). The returned function
// stops listening.
func OnInfo(f func()) (cancel func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
