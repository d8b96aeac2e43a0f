package libos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/demixdp/demixdp/bpf"
	"github.com/vishvananda/netlink"
)

// opsState is what a LibOS keeps for operating it: the capture, the
// logger, the pinned maps. All of it stays off the datapath unless asked
// for: the loop tests cap and log for nil.
type opsState struct {
	cap            *capturer    // Config.Capture, nil when off
	log            *slog.Logger // Config.Logger, nil when silent
	nextCheck      int64        // when poll next looks for events to log
	seen           watched      // the counters at the last look
	lastCaptureErr error
	ifaceMTU       int // the interface's MTU, before any clamp to the frame size
}

// startOps runs in New once the steering program is attached: it pins the
// maps, sets up the capture and the logger's periodic checks.
func (l *LibOS) startOps(ifaceMTU int) error {
	l.mon.log = l.cfg.Logger
	l.mon.ifaceMTU = ifaceMTU
	if l.cfg.Capture != nil {
		l.mon.cap = newCapturer(l.cfg.Capture, &l.cfg)
	}
	if l.grp != nil {
		return nil // OpenQueues pins the group's maps once, after attaching
	}
	return l.pinMaps()
}

// pinMaps pins the steering maps under PinDir/IFNAME. With the default
// PinDir it is best effort: no bpf file system there (as inside `ip netns
// exec`, which mounts a fresh /sys) only costs `demixdp stat` its view.
func (l *LibOS) pinMaps() error {
	root := l.cfg.PinDir
	if root == "" {
		root = bpf.DefaultPinRoot
	}
	dir := bpf.PinDir(root, l.cfg.Interface)
	err := l.steer.Pin(dir)
	if err == nil {
		return nil
	}
	if l.cfg.PinDir == "" {
		l.logWarn("steering maps not pinned: demixdp stat cannot see this libOS", "dir", dir, "err", err,
			"fix", "mount a bpf file system at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf) or set Config.PinDir")
		return nil
	}
	if errors.Is(err, bpf.ErrNotBPFFS) {
		return fmt.Errorf("libos: Config.PinDir %s is not on a bpf file system: mount one there (mount -t bpf bpf DIR) "+
			"or leave PinDir empty (see docs/troubleshooting.md#pins): %w", root, err)
	}
	return fmt.Errorf("libos: pin the steering maps in %s (see docs/troubleshooting.md#pins): %w", dir, err)
}

// PinnedAt returns the directory the steering maps are pinned in (read by
// `demixdp stat`), or "" if they are not pinned.
func (l *LibOS) PinnedAt() string {
	if l.steer == nil {
		return ""
	}
	return l.steer.PinnedAt()
}

// XDPAttachMode reports how the kernel runs the steering program on the
// interface: "native" (in the driver), "generic" (after the driver built
// an skb: slower, copy mode only), or "unknown". It asks the kernel
// (netlink) in the calling thread's network namespace: do not call it on
// the datapath.
func (l *LibOS) XDPAttachMode() string {
	if l.closed {
		return "unknown"
	}
	lk, err := netlink.LinkByIndex(l.ifindex)
	if err != nil || lk.Attrs().Xdp == nil {
		return "unknown"
	}
	switch lk.Attrs().Xdp.AttachMode {
	case 1: // XDP_ATTACHED_DRV
		return "native"
	case 2: // XDP_ATTACHED_SKB
		return "generic"
	case 3: // XDP_ATTACHED_HW
		return "offload"
	}
	return "unknown"
}

// logStarted logs the outcome of New: the modes obtained and why.
func (l *LibOS) logStarted() {
	log := l.mon.log
	if log == nil {
		return
	}
	xdpMode, why := "copy", "copy mode requested (Config.XDPMode)"
	switch {
	case l.ZeroCopy():
		xdpMode, why = "zerocopy", "the driver granted zero-copy"
	case l.sock.ZeroCopyRefusal() != nil:
		why = "the driver refused zero-copy: " + l.sock.ZeroCopyRefusal().Error() + " (see docs/nics.md)"
	}
	log.Info("attached",
		"iface", l.cfg.Interface, "ifindex", l.ifindex, "queue", l.cfg.Queue,
		"addr", l.cfg.Addr.String(), "mode", l.cfg.Mode.String(),
		"xdp", xdpMode, "xdp_reason", why, "xdp_attach", l.XDPAttachMode(),
		"frames", l.cfg.Frames, "frame_size", l.cfg.FrameSize, "mtu", l.mtu,
		"pinned", l.PinnedAt(), "capture", l.mon.cap != nil, "tx_checksum", l.csumWhy)
	if l.mon.ifaceMTU > l.mtu {
		log.Warn("interface MTU larger than a UMEM frame holds: the libOS uses a smaller MTU",
			"iface", l.cfg.Interface, "iface_mtu", l.mon.ifaceMTU, "mtu", l.mtu,
			"fix", "set Config.FrameSize to 4096, or lower the interface's MTU")
	}
	l.mon.seen = l.watch()
	l.mon.nextCheck = l.link.Now() + int64(checkEvery)
}

// logClosed logs the end of Close.
func (l *LibOS) logClosed(rx, tx uint64) {
	if l.mon.log == nil {
		return
	}
	l.mon.log.Info("detached", "iface", l.cfg.Interface, "queue", l.cfg.Queue, "rx_frames", rx, "tx_frames", tx)
}

func (l *LibOS) logWarn(msg string, args ...any) {
	if l.mon.log != nil {
		l.mon.log.Warn(msg, args...)
	}
}

// checkEvery is how often the loop looks for trouble to log: each kind of
// event is logged at most once per period, however often the network
// makes it happen.
const checkEvery = time.Second

// watched are the counters whose growth is worth a log line.
type watched struct {
	arpFailed, arpPendingFull                             uint64
	fillStarved, sgaNoBufs, txNoBufs, tcpNoBufs, pressure uint64
	captureErrs, kickErrs, pollErrs                       uint64
	rxDropped, rxRingFull, txInvalid                      uint64
}

func (l *LibOS) watch() watched {
	st, tc := l.stack.Counters(), l.stack.TCP().Counters()
	w := watched{
		arpFailed: st.ARPFailed, arpPendingFull: st.ARPPendingFull,
		fillStarved: l.ctr.FillStarved, sgaNoBufs: l.ctr.SGANoBufs, txNoBufs: st.TxNoBufs,
		tcpNoBufs: tc.NoBufs, pressure: tc.RcvPressureDrops,
		captureErrs: l.ctr.CaptureErrors, kickErrs: l.ctr.KickErrors, pollErrs: l.ctr.PollErrors,
	}
	if xs, err := l.sock.Stats(); err == nil {
		w.rxDropped, w.rxRingFull, w.txInvalid = xs.RxDropped, xs.RxRingFull, xs.TxInvalidDescs
	}
	return w
}

// checkEvents logs what went wrong since the last check. It runs from
// poll at most once per checkEvery, and only with a logger.
func (l *LibOS) checkEvents(now int64) {
	l.mon.nextCheck = now + int64(checkEvery)
	w, p := l.watch(), l.mon.seen
	l.mon.seen = w
	log, ctx := l.mon.log, context.Background()
	iface := slog.String("iface", l.cfg.Interface)
	if w.arpFailed != p.arpFailed || w.arpPendingFull != p.arpPendingFull {
		log.LogAttrs(ctx, slog.LevelWarn, "ARP resolution failed: datagrams completed with EHOSTUNREACH", iface,
			slog.Uint64("failures", w.arpFailed-p.arpFailed), slog.Uint64("pending_full", w.arpPendingFull-p.arpPendingFull),
			slog.String("fix", "check that the peer or Config.Gateway is on the link and answers ARP"))
	}
	if w.fillStarved != p.fillStarved || w.sgaNoBufs != p.sgaNoBufs || w.txNoBufs != p.txNoBufs ||
		w.tcpNoBufs != p.tcpNoBufs || w.pressure != p.pressure {
		log.LogAttrs(ctx, slog.LevelWarn, "UMEM frames exhausted", iface,
			slog.Uint64("fill_starved", w.fillStarved-p.fillStarved), slog.Uint64("sga_nobufs", w.sgaNoBufs-p.sgaNoBufs),
			slog.Uint64("stack_tx_nobufs", w.txNoBufs-p.txNoBufs), slog.Uint64("tcp_nobufs", w.tcpNoBufs-p.tcpNoBufs),
			slog.Uint64("tcp_rcv_pressure_drops", w.pressure-p.pressure), slog.Int("frames", l.cfg.Frames),
			slog.String("fix", "free popped SGAs sooner, or raise Config.Frames"))
	}
	if w.rxDropped != p.rxDropped || w.rxRingFull != p.rxRingFull || w.txInvalid != p.txInvalid {
		log.LogAttrs(ctx, slog.LevelWarn, "the kernel dropped frames of this socket", iface,
			slog.Uint64("rx_dropped", w.rxDropped-p.rxDropped), slog.Uint64("rx_ring_full", w.rxRingFull-p.rxRingFull),
			slog.Uint64("tx_invalid_descs", w.txInvalid-p.txInvalid),
			slog.String("fix", "call Wait more often, or raise Config.RingSize and Config.Batch"))
	}
	if w.captureErrs != p.captureErrs {
		log.LogAttrs(ctx, slog.LevelWarn, "capture failed", iface,
			slog.Uint64("frames", w.captureErrs-p.captureErrs), slog.Any("err", l.mon.lastCaptureErr))
	}
	if w.kickErrs != p.kickErrs || w.pollErrs != p.pollErrs {
		log.LogAttrs(ctx, slog.LevelWarn, "socket system calls failed", iface,
			slog.Uint64("kick_errors", w.kickErrs-p.kickErrs), slog.Uint64("poll_errors", w.pollErrs-p.pollErrs))
	}
}
