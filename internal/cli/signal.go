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
