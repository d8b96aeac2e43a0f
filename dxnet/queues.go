package dxnet

import (
	"errors"
	"net"
	"sync"

	"github.com/demixdp/demixdp/libos"
)

// OpenQueues is Open for several queues of cfg.Interface at once
// (libos.OpenQueues: Config.Queues or Config.QueueIDs, default every
// receive queue, on one shared UMEM): one Stack, and one loop goroutine,
// per queue, in the order of the queue ids. Listen on each (or use
// ListenQueues) to serve every queue; a connection lives on the stack whose
// queue its first packet reached. Each loop runs until its Stack is
// closed, which the queues need: a queue's loop hands the others the
// frames RSS delivers to it for them. Config.CPUs is not applied (the
// loops are not locked to threads; see Open). Errors are
// libos.OpenQueues's.
func OpenQueues(cfg libos.Config) ([]*Stack, error) {
	spin := loopSpin(&cfg)
	libs, err := libos.OpenQueues(cfg)
	if err != nil {
		return nil, err
	}
	ss := make([]*Stack, len(libs))
	for i, lib := range libs {
		ss[i] = start(lib, spin)
	}
	return ss, nil
}

// QueueID returns the NIC queue the stack's libOS serves.
func (s *Stack) QueueID() int { return s.queueID }

// ListenQueues listens on address on every stack of ss (as Listen) and
// returns one net.Listener whose Accept gives the connections of all of
// them, in the order they arrive. Closing it closes every stack's
// listener. If one Listen fails, the listeners already made are closed and
// its error is returned.
func ListenQueues(ss []*Stack, nw, address string) (net.Listener, error) {
	if len(ss) == 1 {
		return ss[0].Listen(nw, address)
	}
	m := &multiListener{conns: make(chan accepted), done: make(chan struct{})}
	for _, s := range ss {
		ln, err := s.Listen(nw, address)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.lns = append(m.lns, ln)
	}
	for _, ln := range m.lns {
		m.wg.Add(1)
		go m.accept(ln)
	}
	return m, nil
}

// accepted is one Accept's outcome on one of the listeners.
type accepted struct {
	c   net.Conn
	err error
}

// multiListener merges the listeners of several stacks.
type multiListener struct {
	lns   []net.Listener
	conns chan accepted
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func (m *multiListener) accept(ln net.Listener) {
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		select {
		case m.conns <- accepted{c, err}:
		case <-m.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			return // a closed listener; its error went to one Accept
		}
	}
}

// Accept returns the next connection of any of the stacks. After Close it
// returns an error wrapping net.ErrClosed.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case a := <-m.conns:
		return a.c, a.err
	case <-m.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: m.Addr(), Err: net.ErrClosed}
	}
}

// Close closes every stack's listener; it is idempotent.
func (m *multiListener) Close() error {
	var errs []error
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			errs = append(errs, ln.Close())
		}
	})
	m.wg.Wait()
	return errors.Join(errs...)
}

// Addr returns the address of the first stack's listener (they all have
// the same).
func (m *multiListener) Addr() net.Addr {
	if len(m.lns) == 0 {
		return nil
	}
	return m.lns[0].Addr()
}
