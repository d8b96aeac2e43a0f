package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// idleProbes serves idle_cpu's first-request measurement on a kernel
// socket that has just been used (connected UDP or TCP to an echo): it
// prints "warm", then for every line read on stdin it times one exchange
// and prints "probe us=RTT", until stdin closes.
//
// A probe measures the server, not the client: the client first spins for
// 2 ms so that its own vCPU and caches are awake again after the idle
// window, then sends and busy-polls the socket (non-blocking reads) for the
// echo, so no client-side sleep or wake-up is in the figure.
func idleProbes(c net.Conn, size int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("idle probe: not a kernel socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{}) // the run's last deadline has passed
	req, resp := make([]byte, size), make([]byte, size)
	fmt.Println("warm")
	in := bufio.NewScanner(os.Stdin)
	for seq := uint64(1 << 40); in.Scan(); seq++ {
		rtt, err := spinProbe(c, rc, req, resp, seq)
		if err != nil {
			return err
		}
		fmt.Printf("probe us=%.2f\n", usOf(int64(rtt)))
	}
	return in.Err()
}

// spinProbe sends req (tagged with seq) and busy-polls for its echo.
func spinProbe(c net.Conn, rc syscall.RawConn, req, resp []byte, seq uint64) (time.Duration, error) {
	for t := time.Now(); time.Since(t) < 2*time.Millisecond; {
	}
	binary.LittleEndian.PutUint64(req, seq)
	t0 := time.Now()
	if _, err := c.Write(req); err != nil {
		return 0, fmt.Errorf("idle probe: %w", err)
	}
	got := 0
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for got < len(resp) {
			n, err := unix.Read(int(fd), resp[got:])
			switch {
			case err == unix.EAGAIN || err == unix.EINTR:
				if time.Since(t0) > time.Second {
					rerr = errors.New("idle probe: no echo within 1 s")
					return true
				}
			case err != nil:
				rerr = err
				return true
			case n == 0:
				rerr = errors.New("idle probe: the server closed the connection")
				return true
			default:
				got += n
			}
		}
		return true
	})
	rtt := time.Since(t0)
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint64(resp) != seq {
		return 0, fmt.Errorf("idle probe: echo of %d is not the request %d", binary.LittleEndian.Uint64(resp), seq)
	}
	return rtt, nil
}
