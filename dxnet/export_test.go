package dxnet

// Stray returns how many libOS results came for no socket, or for a
// socket that had none outstanding: the bookkeeping that keeps a closed
// queue's results away from a new queue with the same descriptor. It
// should stay 0.
func (s *Stack) Stray() uint64 {
	var n uint64
	s.call(func() error { n = s.stray; return nil })
	return n
}

// Handoff returns a function that makes one round trip through the loop
// with nothing to do there (a request queued, the loop woken, the request
// finished, the caller woken): the cost every dxnet call adds to the
// libOS operation it asks for.
func Handoff(s *Stack) func() {
	r := newRequest()
	r.fn = func() error { return nil }
	return func() {
		gen := r.start()
		if s.submit(item{r: &r, gen: gen, kind: kCall}) {
			<-r.done
		}
	}
}

// The calls of a value that are in progress: past their checks, queued to
// the loop and waiting there (do has published them), so that a deadline
// or Close now must interrupt them. Tests wait for these rather than sleep.

func (c *conn) ReadWaiting() bool          { return c.rd.active.Load() != 0 }
func (c *conn) WriteWaiting() bool         { return c.wr.active.Load() != 0 }
func (l *TCPListener) AcceptWaiting() bool { return l.ac.active.Load() != 0 }
