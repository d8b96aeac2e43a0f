package xdp

// OpenError is the error Open returns when a system call fails: Step names
// the setup step ("socket", "register UMEM", "set ring sizes", "get mmap
// offsets", "mmap rings", "bind", "get options") so that a caller can
// explain it (a UMEM registration over RLIMIT_MEMLOCK, a queue another
// socket holds at bind...). It unwraps to the kernel's error.
type OpenError struct {
	Step string
	Err  error
}

// Error returns "xdp: STEP: ERR".
func (e *OpenError) Error() string { return "xdp: " + e.Step + ": " + e.Err.Error() }

// Unwrap returns the kernel's error.
func (e *OpenError) Unwrap() error { return e.Err }

// ZeroCopyRefusal returns why the kernel refused a zero-copy bind that
// ModeAuto then replaced with copy mode, or nil if the socket did not fall
// back (it is zero-copy, or copy mode was asked for).
func (s *Socket) ZeroCopyRefusal() error { return s.zcRefusal }
