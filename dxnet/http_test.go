package dxnet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/demixdp/demixdp/internal/labtest"
)

// echoHandler answers /hello with a greeting naming the request's client
// and /echo with the request's body, and /bytes/N with N bytes of
// pattern(…, 3).
func echoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.RemoteAddr)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		// Stream the body back while it arrives: HTTP/1.1 handlers may
		// do so only in full-duplex mode (net/http would otherwise
		// discard the unread rest of the body once the response starts).
		http.NewResponseController(w).EnableFullDuplex()
		io.Copy(w, r.Body)
	})
	big := pattern(8<<20, 3)
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Write(big[:min(n, len(big))])
	})
	return mux
}

// exerciseHTTP makes requests through client to base: small and large
// bodies both ways, in parallel over keep-alive connections, each checked.
func exerciseHTTP(t *testing.T, client *http.Client, base string, wantRemote string) {
	t.Helper()
	resp, err := client.Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "hello " + wantRemote; !bytes.HasPrefix(b, []byte(want)) {
		t.Fatalf("GET /hello: %q, want prefix %q", b, want)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				size := (g*25 + i) * 4099 % (3 << 20)
				body := pattern(size, uint64(g*100+i))
				resp, err := client.Post(base+"/echo", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("POST /echo of %d bytes: %d back, %v", size, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	resp, err = client.Get(base + "/bytes/8388608")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || sha256.Sum256(got) != sha256.Sum256(pattern(8<<20, 3)) {
		t.Fatalf("GET /bytes/8388608: %d bytes, %v", len(got), err)
	}
}

// TestHTTPServerOnDxnet: Go's own http.Server serves a dxnet listener;
// a kernel http.Client in B talks to it.
func TestHTTPServerOnDxnet(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln, err := st.Listen("tcp", ":8000")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: echoHandler()}
	served := run(func() error { return srv.Serve(ln) })
	tr := &http.Transport{DialContext: func(ctx context.Context, nw, addr string) (net.Conn, error) {
		var c net.Conn
		err := lab.RunInB(func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, nw, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	base := "http://" + netip.AddrPortFrom(lab.AddrA.Addr(), 8000).String()
	exerciseHTTP(t, &http.Client{Transport: tr, Timeout: hang}, base, lab.AddrB.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := within(t, "Serve", served); err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}

// TestHTTPClientOnDxnet: an http.Client whose Transport dials with
// Stack.DialContext talks to Go's http.Server on the kernel in B.
func TestHTTPClientOnDxnet(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln := kernelListen(t, lab, 8001)
	srv := &http.Server{Handler: echoHandler()}
	served := run(func() error { return srv.Serve(ln) })
	tr := &http.Transport{DialContext: st.DialContext, MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	base := "http://" + netip.AddrPortFrom(lab.AddrB.Addr(), 8001).String()
	exerciseHTTP(t, &http.Client{Transport: tr, Timeout: hang}, base, lab.AddrA.Addr().String())
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	srv.Shutdown(ctx)
	if err := within(t, "Serve", served); err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}
