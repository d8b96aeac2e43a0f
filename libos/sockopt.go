package libos

import (
	"errors"
	"time"

	"github.com/demixdp/demixdp/netstack/tcp"

	"golang.org/x/sys/unix"
)

// Socket options of TCP queues: the calls behind setsockopt(2) and
// getsockopt(2) for TCP_NODELAY, SO_KEEPALIVE (with TCP_KEEPIDLE and
// TCP_KEEPINTVL) and SO_LINGER. Each fails with EBADF for a bad queue and
// EINVAL for a UDP queue.

var errNotStream = errors.New("libos: not a TCP queue")

func (l *LibOS) streamQueue(qd QD) (*queue, error) {
	q, err := l.queue(qd)
	if err != nil {
		return nil, err
	}
	if !q.stream {
		return nil, errors.Join(unix.EINVAL, errNotStream)
	}
	return q, nil
}

// TCPInfo returns a TCP queue's connection state (what getsockopt(2)'s
// TCP_INFO reports on Linux): congestion window, RTT, windows, what is
// queued each way and the frames held.
func (l *LibOS) TCPInfo(qd QD) (tcp.EndpointInfo, error) {
	q, err := l.streamQueue(qd)
	if err != nil {
		return tcp.EndpointInfo{}, err
	}
	return q.tcp.Info(), nil
}

// SetNoDelay turns Nagle's algorithm off (on) for a TCP queue, as
// TCP_NODELAY does. A listener's setting is inherited by the connections
// it accepts.
func (l *LibOS) SetNoDelay(qd QD, on bool) error {
	q, err := l.streamQueue(qd)
	if err != nil {
		return err
	}
	q.tcp.SetNoDelay(on)
	return nil
}

// NoDelay reports whether Nagle's algorithm is off for a TCP queue.
func (l *LibOS) NoDelay(qd QD) (bool, error) {
	q, err := l.streamQueue(qd)
	if err != nil {
		return false, err
	}
	return q.tcp.NoDelay(), nil
}

// SetKeepAlive turns TCP keepalive probes on or off for a TCP queue; the
// probes start after Config.TCP.KeepIdle (2 hours by default) of silence,
// or the period SetKeepAlivePeriod gave.
func (l *LibOS) SetKeepAlive(qd QD, on bool) error {
	q, err := l.streamQueue(qd)
	if err != nil {
		return err
	}
	q.tcp.SetKeepAlive(on)
	return nil
}

// KeepAlive reports whether keepalive probes are on for a TCP queue.
func (l *LibOS) KeepAlive(qd QD) (bool, error) {
	q, err := l.streamQueue(qd)
	if err != nil {
		return false, err
	}
	return q.tcp.KeepAlive(), nil
}

// SetKeepAlivePeriod sets the idle time before the first keepalive probe
// and the interval between probes of a TCP queue to d (d <= 0 restores
// Config.TCP's values), as net.TCPConn.SetKeepAlivePeriod does.
func (l *LibOS) SetKeepAlivePeriod(qd QD, d time.Duration) error {
	q, err := l.streamQueue(qd)
	if err != nil {
		return err
	}
	q.tcp.SetKeepAlivePeriod(d)
	return nil
}

// SetLinger chooses what CloseQueue does with a TCP connection, as
// SO_LINGER and net.TCPConn.SetLinger do. sec < 0 (the default) and
// sec > 0: the close is graceful, the data already pushed is still
// delivered and a FIN follows it (CloseQueue never blocks, so a positive
// linger time changes nothing). sec == 0: CloseQueue resets the connection
// at once (RST) and discards whatever is queued either way.
func (l *LibOS) SetLinger(qd QD, sec int) error {
	q, err := l.streamQueue(qd)
	if err != nil {
		return err
	}
	q.linger = int32(max(sec, -1))
	return nil
}

// Linger returns the queue's SO_LINGER setting: -1 (off, the default) or
// the seconds SetLinger gave.
func (l *LibOS) Linger(qd QD) (int, error) {
	q, err := l.streamQueue(qd)
	if err != nil {
		return 0, err
	}
	return int(q.linger), nil
}
