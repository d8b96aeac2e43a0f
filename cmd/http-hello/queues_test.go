package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// TestQueues: http-hello -queues 2 on a 2-queue lab answers 64 requests,
// each on a new kernel connection from B (which the kernel spreads over
// the queues): each queue serves some of the 64 connections, and together
// they serve all 64, each once (a connection lives on the queue that
// received its SYN; a stray segment of it that B's kernel sends on another
// queue, as a TIME-WAIT ACK can be, is handed over, not a second
// connection).
func TestQueues(t *testing.T) {
	priv.Require(t, "http-hello on a multi-queue veth lab")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "hhq", Queues: 2})
	p, url := startHello(t, lab, "-iface", lab.IfA, "-queues", "2")
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, nw, addr string) (c net.Conn, err error) {
			err = lab.RunInB(func() error {
				var d net.Dialer
				c, err = d.DialContext(ctx, "tcp4", addr)
				return err
			})
			return c, err
		},
	}}
	for i := range 64 {
		resp, err := client.Get(url + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "hello\n" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	stopHello(t, lab, p, syscall.SIGINT, true)
	qs := labtest.QueueLines(p.Output())
	if len(qs) != 2 {
		t.Fatalf("%d queue lines:\n%s", len(qs), p.Output())
	}
	conns := uint64(0)
	for q := range 2 {
		t.Logf("queue %d: %v", q, qs[q])
		if qs[q]["conns_established"] == 0 || qs[q]["rx_descs"] == 0 || qs[q]["tx_descs"] == 0 {
			t.Errorf("queue %d served no connection", q)
		}
		conns += qs[q]["conns_established"]
	}
	if conns != 64 {
		t.Errorf("the queues established %d connections for 64 requests", conns)
	}
}
