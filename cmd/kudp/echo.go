package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/demixdp/demixdp/internal/cli"
)

// echoStats counts what an echo server did.
type echoStats struct{ received, echoed, errors uint64 }

// serveEcho answers every datagram on c with its own bytes until c is closed.
func serveEcho(c *net.UDPConn, st *echoStats) error {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		st.received++
		if _, err := c.WriteToUDPAddrPort(buf[:n], from); err != nil {
			st.errors++
			continue
		}
		st.echoed++
	}
}

func echoMain(args []string) int {
	fs := flag.NewFlagSet("kudp echo", flag.ExitOnError)
	addr := fs.String("addr", "", "IP:PORT to listen on (required)")
	fs.Parse(args)
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "kudp echo: -addr is required")
		return 2
	}
	la, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp echo:", err)
		return 2
	}
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp echo:", err)
		return 2
	}
	defer cli.OnSignal(func() { c.Close() })()
	fmt.Printf("listening addr=%s\n", c.LocalAddr())
	var st echoStats
	err = serveEcho(c, &st)
	fmt.Printf("received=%d echoed=%d errors=%d\n", st.received, st.echoed, st.errors)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kudp echo:", err)
		return 2
	}
	return 0
}
