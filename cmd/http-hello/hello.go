package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
)

// maxBytes is the largest N of GET /bytes/N.
const maxBytes = 1 << 30

// Pattern returns byte i of every /bytes/N response: i mod 251 (a prime,
// so that the pattern never lines up with a power-of-two buffer and a
// misplaced chunk shows).
func Pattern(i int64) byte { return byte(i % 251) }

// patternBlock holds the pattern from offset 0 for 64 KiB plus one period,
// so any offset's next 64 KiB is a slice of it.
var patternBlock = func() []byte {
	b := make([]byte, 64<<10+251)
	for i := range b {
		b[i] = Pattern(int64(i))
	}
	return b
}()

// handler is the server's http.Handler: the same on dxnet and the kernel.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", "6")
		io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		// The body streams back while it arrives: an HTTP/1.1 handler may
		// do that only in full-duplex mode (net/http would otherwise
		// discard the unread rest of the body once the response starts).
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.ContentLength >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
		}
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > maxBytes {
			http.Error(w, "N must be an integer from 0 to 1073741824", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for off := int64(0); off < n; {
			start := off % 251
			chunk := min(n-off, 64<<10)
			if _, err := w.Write(patternBlock[start : start+chunk]); err != nil {
				return // the client went away
			}
			off += chunk
		}
	})
	return mux
}

// serve runs net/http on ln until SIGINT or SIGTERM, then shuts down
// gracefully. ready runs once the server is about to accept.
func serve(ln net.Listener, ready func()) error {
	srv := &http.Server{Handler: handler(), ReadHeaderTimeout: 30 * time.Second}
	stopped := make(chan error, 1)
	defer cli.OnSignal(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if err != nil {
			srv.Close() // what did not finish in time is cut off
		}
		stopped <- err
	})()
	ready()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped // Serve returns as soon as Shutdown starts; wait for it to end
	return nil
}
