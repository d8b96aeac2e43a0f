package xdp

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mode selects how Open binds the socket to the device queue.
type Mode int

const (
	// ModeAuto tries XDP_ZEROCOPY first and, when that bind fails with
	// EOPNOTSUPP, EINVAL, ENOTSUPP (524) or EPROTONOSUPPORT, opens a fresh
	// socket with XDP_COPY. Other bind errors (ENODEV, EBUSY...) are
	// returned as they are. Socket.ZeroCopy tells which mode the kernel
	// accepted.
	ModeAuto Mode = iota
	// ModeCopy binds with XDP_COPY: works on every device, the kernel copies
	// frames between its buffers and the UMEM.
	ModeCopy
	// ModeZeroCopy binds with XDP_ZEROCOPY and fails when the driver lacks
	// support.
	ModeZeroCopy
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCopy:
		return "copy"
	case ModeZeroCopy:
		return "zerocopy"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultRingSize is the ring size used when a Config size is 0.
const DefaultRingSize = 2048

// Errors returned by this package; test for them with errors.Is. Errors from
// the kernel are wrapped unix.Errno values, so errors.Is(err, unix.ENODEV)
// works too.
var (
	// ErrInvalidConfig reports a Config that Open rejects before any
	// system call.
	ErrInvalidConfig = errors.New("xdp: invalid config")
	// ErrClosed reports use of a closed Socket.
	ErrClosed = errors.New("xdp: socket closed")
)

// Config describes an AF_XDP socket for Open.
type Config struct {
	// Ifindex and QueueID name the device queue to bind to.
	Ifindex int
	QueueID int
	// Umem is the packet memory shared with the kernel (page aligned, e.g.
	// from unix.Mmap), registered with XDP_UMEM_REG. It must stay mapped
	// until every socket using it is closed. Ignored when Shared is set.
	Umem []byte
	// FrameSize is the chunk size: 2048 or 4096 (a power of two between 2048
	// and the page size). Ignored when Shared is set.
	FrameSize uint32
	// FrameHeadroom is xdp_umem_reg.headroom, normally 0. Ignored when
	// Shared is set.
	FrameHeadroom uint32
	// Ring sizes in entries; each must be a power of two, 0 means
	// DefaultRingSize.
	FillSize, CompletionSize, RXSize, TXSize uint32
	// Mode selects zero-copy or copy; ignored when Shared is set (the
	// kernel uses the mode of the socket that owns the UMEM).
	Mode Mode
	// NoNeedWakeup disables XDP_USE_NEED_WAKEUP. Ignored when Shared is set.
	NoNeedWakeup bool
	// TxMetadata registers the UMEM with TxMetadataLen bytes of TX
	// metadata in front of every transmitted packet (tx_metadata_len with
	// XDP_UMEM_TX_METADATA_LEN, kernels >= 6.11), so that a descriptor
	// may ask for offloads such as the L4 checksum (PutTxChecksum). Every
	// TX descriptor must then start at least TxMetadataLen bytes into its
	// frame. A kernel that refuses the registration gets one without
	// metadata: TxMetadataLen tells which. Ignored when Shared is set (the
	// owner's registration holds).
	TxMetadata bool
	// Shared makes this socket use Shared's UMEM (XDP_SHARED_UMEM). On a
	// different queue or device the socket gets its own fill and completion
	// rings (FillSize, CompletionSize; kernels >= 5.10). On the same device
	// and queue the kernel shares the owner's fill and completion rings, so
	// Fill and Completion return Shared's rings, which stay single-producer
	// and single-consumer across both sockets.
	Shared *Socket
	// BusyWait is how long Open keeps retrying a bind that fails with
	// EBUSY, every 20 ms, before it returns the error. The kernel releases
	// a closed socket's hold on its queue from a workqueue, so a queue
	// whose previous owner has just closed or exited stays busy for a
	// moment; 0 returns EBUSY at once.
	BusyWait time.Duration
}

// Stats are the kernel's per-socket counters (XDP_STATISTICS).
type Stats struct {
	RxDropped            uint64 // frames dropped for reasons other than invalid descriptors
	RxInvalidDescs       uint64 // frames dropped because of an invalid RX descriptor
	TxInvalidDescs       uint64 // TX descriptors the kernel rejected
	RxRingFull           uint64 // frames dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 // times the fill ring was found empty
	TxRingEmptyDescs     uint64 // times the TX ring was found empty when kicked
}

// Socket is a bound AF_XDP socket with its four mapped rings. It is meant for
// one goroutine: the rings are single-producer/single-consumer and the
// methods do not lock.
type Socket struct {
	fd         int
	ifindex    int
	queueID    int
	zeroCopy   bool
	needWakeup bool
	fill       *FillRing
	comp       *CompRing
	rx         *RXRing
	tx         *TXRing
	maps       [][]byte // ring mappings this socket owns
	ownRings   bool     // fill and completion rings are ours, not the owner's
	closed     bool
	zcRefusal  error  // ModeAuto: why zero-copy was refused (ZeroCopyRefusal)
	txMetaLen  uint32 // the UMEM's tx_metadata_len (0: none)
}

// Open creates an AF_XDP socket, registers the UMEM (unless cfg.Shared is
// set), sizes and maps the rings and binds to cfg.Ifindex/cfg.QueueID.
// On failure it closes everything it opened and returns an error naming the
// failed step that wraps the kernel's errno. Registering a UMEM pins its
// pages, which needs CAP_IPC_LOCK or enough RLIMIT_MEMLOCK.
func Open(cfg Config) (*Socket, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.BusyWait)
	for {
		s, err := openOnce(&cfg)
		if !errors.Is(err, unix.EBUSY) || !time.Now().Before(deadline) {
			return s, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openOnce is one attempt of Open on a normalized cfg (which it only
// reads).
func openOnce(cfg *Config) (*Socket, error) {
	if cfg.Shared != nil {
		s, _, err := open(cfg, unix.XDP_SHARED_UMEM)
		return s, err
	}
	var wake uint16
	if !cfg.NoNeedWakeup {
		wake = unix.XDP_USE_NEED_WAKEUP
	}
	switch cfg.Mode {
	case ModeCopy:
		s, _, err := open(cfg, unix.XDP_COPY|wake)
		return s, err
	case ModeZeroCopy:
		s, _, err := open(cfg, unix.XDP_ZEROCOPY|wake)
		return s, err
	}
	s, step, zcErr := open(cfg, unix.XDP_ZEROCOPY|wake)
	if zcErr == nil || step != stepBind || !zeroCopyRefused(zcErr) {
		return s, zcErr
	}
	// Zero-copy refused at bind: start over in copy mode on a fresh socket,
	// so no state of the failed bind lingers.
	s, _, err := open(cfg, unix.XDP_COPY|wake)
	if err != nil {
		return nil, fmt.Errorf("%w (zero-copy attempt: %v)", err, zcErr)
	}
	s.zcRefusal = zcErr
	return s, nil
}

// errnoENOTSUPP is the kernel-internal ENOTSUPP (524) some drivers leak
// from a zero-copy setup; x/sys/unix does not name it.
const errnoENOTSUPP = unix.Errno(524)

// zeroCopyRefused reports whether a bind error means "no zero-copy here"
// rather than a problem copy mode would hit too (ENODEV, EBUSY, ...).
func zeroCopyRefused(err error) bool {
	for _, e := range []unix.Errno{unix.EOPNOTSUPP, unix.EINVAL, errnoENOTSUPP, unix.EPROTONOSUPPORT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (c *Config) normalize() error {
	for _, p := range []*uint32{&c.FillSize, &c.CompletionSize, &c.RXSize, &c.TXSize} {
		if *p == 0 {
			*p = DefaultRingSize
		}
		if *p&(*p-1) != 0 || *p > 1<<30 {
			return fmt.Errorf("%w: ring size %d is not a power of two", ErrInvalidConfig, *p)
		}
	}
	if c.Ifindex <= 0 {
		return fmt.Errorf("%w: ifindex %d", ErrInvalidConfig, c.Ifindex)
	}
	if c.QueueID < 0 || int64(c.QueueID) > int64(^uint32(0)) {
		return fmt.Errorf("%w: queue id %d", ErrInvalidConfig, c.QueueID)
	}
	if c.Mode < ModeAuto || c.Mode > ModeZeroCopy {
		return fmt.Errorf("%w: mode %d", ErrInvalidConfig, int(c.Mode))
	}
	if c.Shared != nil {
		if c.Shared.closed {
			return fmt.Errorf("%w: shared socket is closed", ErrInvalidConfig)
		}
		return nil
	}
	if len(c.Umem) == 0 {
		return fmt.Errorf("%w: empty UMEM", ErrInvalidConfig)
	}
	if c.FrameSize == 0 || c.FrameSize&(c.FrameSize-1) != 0 {
		return fmt.Errorf("%w: frame size %d is not a power of two", ErrInvalidConfig, c.FrameSize)
	}
	if c.FrameHeadroom >= c.FrameSize {
		return fmt.Errorf("%w: headroom %d >= frame size %d", ErrInvalidConfig, c.FrameHeadroom, c.FrameSize)
	}
	return nil
}

const (
	stepSocket  = "socket"
	stepUmemReg = "register UMEM"
	stepRings   = "set ring sizes"
	stepOffsets = "get mmap offsets"
	stepMmap    = "mmap rings"
	stepBind    = "bind"
	stepOptions = "get options"
)

// open runs every step once with the given bind flags. It returns the step
// that failed so Open can decide on the copy-mode fallback.
func open(cfg *Config, bindFlags uint16) (_ *Socket, step string, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, stepSocket, fmt.Errorf("xdp: %s: %w", stepSocket, err)
	}
	s := &Socket{fd: fd, ifindex: cfg.Ifindex, queueID: cfg.QueueID, needWakeup: bindFlags&unix.XDP_USE_NEED_WAKEUP != 0}
	defer func() {
		if err != nil {
			s.Close()
			err = &OpenError{Step: step, Err: err}
		}
	}()

	owner := cfg.Shared
	ownRings := owner == nil || owner.ifindex != cfg.Ifindex || owner.queueID != cfg.QueueID
	if owner == nil {
		reg := unix.XDPUmemReg{
			Addr:     uint64(uintptr(unsafe.Pointer(&cfg.Umem[0]))),
			Len:      uint64(len(cfg.Umem)),
			Size:     cfg.FrameSize,
			Headroom: cfg.FrameHeadroom,
		}
		if cfg.TxMetadata {
			// Only with the flag: kernels before 6.11 reject it (EINVAL),
			// and those before 6.8 would ignore a bare tx_metadata_len,
			// then refuse every descriptor that asks for metadata.
			meta := reg
			meta.Flags |= unix.XDP_UMEM_TX_METADATA_LEN
			meta.Tx_metadata_len = TxMetadataLen
			err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&meta), unsafe.Sizeof(meta))
			if err != nil && !errors.Is(err, unix.EINVAL) {
				return nil, stepUmemReg, err
			}
			if err == nil {
				s.txMetaLen = TxMetadataLen
			}
		}
		if s.txMetaLen == 0 {
			if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
				return nil, stepUmemReg, err
			}
		}
	} else {
		s.needWakeup = owner.needWakeup
		s.txMetaLen = owner.txMetaLen
	}

	type ringOpt struct {
		opt  int
		size uint32
	}
	opts := []ringOpt{{unix.XDP_RX_RING, cfg.RXSize}, {unix.XDP_TX_RING, cfg.TXSize}}
	if ownRings {
		opts = append(opts, ringOpt{unix.XDP_UMEM_FILL_RING, cfg.FillSize}, ringOpt{unix.XDP_UMEM_COMPLETION_RING, cfg.CompletionSize})
	}
	for _, o := range opts {
		size := o.size
		if err := setsockopt(fd, o.opt, unsafe.Pointer(&size), unsafe.Sizeof(size)); err != nil {
			return nil, stepRings, err
		}
	}

	var off unix.XDPMmapOffsets
	n, err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	if err != nil {
		return nil, stepOffsets, err
	}
	if n != unsafe.Sizeof(off) {
		// Kernels before 4.18 report offsets without the flags word.
		return nil, stepOffsets, fmt.Errorf("short XDP_MMAP_OFFSETS (%d bytes): kernel too old: %w", n, unix.EOPNOTSUPP)
	}

	rxm, err := s.mapRing(unix.XDP_PGOFF_RX_RING, off.Rx, cfg.RXSize, 16)
	if err != nil {
		return nil, stepMmap, fmt.Errorf("RX ring: %w", err)
	}
	s.rx = newRXRing(rxm, cfg.RXSize)
	txm, err := s.mapRing(unix.XDP_PGOFF_TX_RING, off.Tx, cfg.TXSize, 16)
	if err != nil {
		return nil, stepMmap, fmt.Errorf("TX ring: %w", err)
	}
	s.tx = newTXRing(txm, cfg.TXSize)
	if ownRings {
		fm, err := s.mapRing(unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, cfg.FillSize, 8)
		if err != nil {
			return nil, stepMmap, fmt.Errorf("fill ring: %w", err)
		}
		s.fill = newFillRing(fm, cfg.FillSize)
		cm, err := s.mapRing(unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, cfg.CompletionSize, 8)
		if err != nil {
			return nil, stepMmap, fmt.Errorf("completion ring: %w", err)
		}
		s.comp = newCompRing(cm, cfg.CompletionSize)
		s.ownRings = true
	} else {
		s.fill, s.comp = owner.fill, owner.comp
	}

	sa := &unix.SockaddrXDP{Flags: bindFlags, Ifindex: uint32(cfg.Ifindex), QueueID: uint32(cfg.QueueID)}
	if owner != nil {
		sa.SharedUmemFD = uint32(owner.fd)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, stepBind, err
	}

	var xo xdpOptions
	if _, err := getsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&xo), unsafe.Sizeof(xo)); err != nil {
		return nil, stepOptions, err
	}
	s.zeroCopy = xo.Flags&unix.XDP_OPTIONS_ZEROCOPY != 0
	return s, "", nil
}

// mapRing maps one ring (producer, consumer, flags and size entries of
// entSize bytes, at the offsets the kernel reported) and checks that the
// offsets lie inside the mapping.
func (s *Socket) mapRing(pgoff int64, o unix.XDPRingOffset, size uint32, entSize uint64) (ringMem, error) {
	length := o.Desc + uint64(size)*entSize
	if o.Desc%8 != 0 || o.Producer+4 > o.Desc || o.Consumer+4 > o.Desc || o.Flags+4 > o.Desc ||
		o.Producer%4 != 0 || o.Consumer%4 != 0 || o.Flags%4 != 0 || length > 1<<40 {
		return ringMem{}, fmt.Errorf("implausible ring offsets %+v: %w", o, unix.EINVAL)
	}
	mem, err := unix.Mmap(s.fd, pgoff, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ringMem{}, err
	}
	s.maps = append(s.maps, mem)
	return ringMem{
		producer: (*uint32)(unsafe.Pointer(&mem[o.Producer])),
		consumer: (*uint32)(unsafe.Pointer(&mem[o.Consumer])),
		flags:    (*uint32)(unsafe.Pointer(&mem[o.Flags])),
		desc:     unsafe.Pointer(&mem[o.Desc]),
	}, nil
}

// FD returns the socket's file descriptor, e.g. to insert into an XSKMAP.
// It returns -1 after Close.
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode
// (XDP_OPTIONS_ZEROCOPY from getsockopt XDP_OPTIONS, read at Open).
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// TxMetadataLen returns the bytes of TX metadata the UMEM was registered
// with (TxMetadataLen, or 0 when Config.TxMetadata was not set or the
// kernel refused it).
func (s *Socket) TxMetadataLen() uint32 { return s.txMetaLen }

// NeedWakeupEnabled reports whether the socket uses XDP_USE_NEED_WAKEUP, i.e.
// whether the rings' NeedWakeup flags are meaningful.
func (s *Socket) NeedWakeupEnabled() bool { return s.needWakeup }

// Fill returns the UMEM fill ring (shared with the owner socket when sharing
// a UMEM on the same device queue).
func (s *Socket) Fill() *FillRing { return s.fill }

// Completion returns the UMEM completion ring (shared with the owner socket
// when sharing a UMEM on the same device queue).
func (s *Socket) Completion() *CompRing { return s.comp }

// RX returns the receive ring.
func (s *Socket) RX() *RXRing { return s.rx }

// TX returns the transmit ring.
func (s *Socket) TX() *TXRing { return s.tx }

// transient reports errors of a wake-up syscall that mean "try again later":
// the kernel is busy (EBUSY, EAGAIN), out of skbs (ENOBUFS, copy mode), or
// the device is down (ENETDOWN); the descriptors stay in the ring.
func transient(e unix.Errno) bool {
	switch e {
	case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN, unix.EINTR:
		return true
	}
	return false
}

// Kick asks the kernel to process the TX ring with sendto(fd, nil,
// MSG_DONTWAIT). It always makes the system call; callers using need_wakeup
// check TX().NeedWakeup() first (in copy mode it is always set). EAGAIN,
// EBUSY, ENOBUFS, ENETDOWN and EINTR are transient and return nil: the
// descriptors stay queued and a later Kick retries. It does not allocate.
func (s *Socket) Kick() error {
	if s.closed {
		return ErrClosed
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if e != 0 && !transient(e) {
		return fmt.Errorf("xdp: kick: %w", e)
	}
	return nil
}

// WakeFill makes the recvfrom(MSG_DONTWAIT) system call that lets the driver
// refill its RX queue, but only when need_wakeup is enabled and the kernel
// set the fill ring's flag; otherwise it returns nil at once (without
// need_wakeup the driver polls the fill ring by itself). Transient errors
// (see Kick) return nil. It does not allocate.
func (s *Socket) WakeFill() error {
	if s.closed {
		return ErrClosed
	}
	if !s.needWakeup || !s.fill.NeedWakeup() {
		return nil
	}
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if e != 0 && !transient(e) {
		return fmt.Errorf("xdp: wake fill: %w", e)
	}
	return nil
}

// Poll waits in poll(2) until the socket is readable (the RX ring has
// entries) or timeout passes; a negative timeout waits forever and zero
// checks once. A sub-millisecond timeout is rounded up to 1ms. EINTR is
// retried with the remaining time. It reports whether the socket is
// readable.
func (s *Socket) Poll(timeout time.Duration) (bool, error) {
	if s.closed {
		return false, ErrClosed
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ms := -1
		if timeout >= 0 {
			ms = 0
			if timeout > 0 {
				left := time.Until(deadline)
				if left < 0 {
					left = 0
				}
				ms = int((left + time.Millisecond - 1) / time.Millisecond)
			}
		}
		fds := [1]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds[:], ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("xdp: poll: %w", err)
		}
		if n == 0 {
			return false, nil
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return false, fmt.Errorf("xdp: poll: %w", unix.EBADF)
		}
		return fds[0].Revents&unix.POLLIN != 0, nil
	}
}

// Stats reads the kernel's counters for this socket (XDP_STATISTICS).
func (s *Socket) Stats() (Stats, error) {
	if s.closed {
		return Stats{}, ErrClosed
	}
	var st unix.XDPStatistics
	if _, err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st)); err != nil {
		return Stats{}, fmt.Errorf("xdp: statistics: %w", err)
	}
	return Stats{
		RxDropped:            st.Rx_dropped,
		RxInvalidDescs:       st.Rx_invalid_descs,
		TxInvalidDescs:       st.Tx_invalid_descs,
		RxRingFull:           st.Rx_ring_full,
		RxFillRingEmptyDescs: st.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     st.Tx_ring_empty_descs,
	}, nil
}

// Close unmaps the rings and closes the socket. Ring views obtained earlier
// then report full (producer rings) or empty (consumer rings). Calling Close
// again returns nil. The UMEM itself belongs to the caller. Close sockets that
// share this socket's UMEM on the same device queue before this one: they use
// its fill and completion rings.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	// Detach the ring views first, so a caller that keeps using them after
	// Close sees full/empty rings instead of faulting on unmapped memory.
	if s.ownRings {
		if s.fill != nil {
			s.fill.detach()
		}
		if s.comp != nil {
			s.comp.detach()
		}
	}
	if s.rx != nil {
		s.rx.detach()
	}
	if s.tx != nil {
		s.tx.detach()
	}
	var errs []error
	for _, m := range s.maps {
		if err := unix.Munmap(m); err != nil {
			errs = append(errs, fmt.Errorf("xdp: munmap ring: %w", err))
		}
	}
	s.maps = nil
	if err := unix.Close(s.fd); err != nil {
		errs = append(errs, fmt.Errorf("xdp: close: %w", err))
	}
	s.fd = -1
	return errors.Join(errs...)
}
