package libos

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/demixdp/demixdp/xdp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// New's errors say what went wrong and what to do, and name the section
// of docs/troubleshooting.md that explains it; each keeps the kernel's
// errno wrapped (errors.Is(err, unix.EBUSY) and so on).

const troubleshooting = "docs/troubleshooting.md"

// capsFix is the fix for a missing privilege.
const capsFix = "run as root, or give the binary the capabilities: " +
	"setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep BINARY"

// explainInterface explains a failed interface lookup.
func explainInterface(name string, err error) error {
	return fmt.Errorf("libos: interface %q not found in this network namespace: check `ip link show`, and run "+
		"inside the namespace that holds it (ip netns exec NS ...) (see %s#no-interface): %w", name, troubleshooting, err)
}

// explainSocket explains a failed xdp.Open.
func (l *LibOS) explainSocket(err error) error {
	ifname, q := l.cfg.Interface, l.cfg.Queue
	var oe *xdp.OpenError
	step := ""
	if errors.As(err, &oe) {
		step = oe.Step
	}
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("libos: not permitted to open an AF_XDP socket on %s (needs CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF): "+
			"%s (see %s#eperm): %w", ifname, capsFix, troubleshooting, err)
	case errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("libos: this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS): use Linux 5.10 or later built "+
			"with it; `demixdp doctor` checks (see %s#eafnosupport): %w", troubleshooting, err)
	case step == "register UMEM" && (errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EAGAIN)):
		var rl unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl)
		size := l.cfg.Frames * l.cfg.FrameSize
		return fmt.Errorf("libos: the UMEM (%d frames of %d bytes, %d KiB) does not fit in RLIMIT_MEMLOCK (%s) and the process "+
			"lacks CAP_IPC_LOCK: raise the limit (ulimit -l unlimited; LimitMEMLOCK=infinity in a systemd unit), grant "+
			"cap_ipc_lock, or use fewer Config.Frames (see %s#memlock): %w",
			l.cfg.Frames, l.cfg.FrameSize, size>>10, limitString(rl.Cur), troubleshooting, err)
	case step == "bind" && errors.Is(err, unix.EBUSY):
		return fmt.Errorf("libos: queue %d of %s is already bound by another AF_XDP socket (another libOS or AF_XDP "+
			"program on this queue; `demixdp doctor -iface %s` looks): stop it, or use another Config.Queue "+
			"(see %s#ebusy-queue): %w", q, ifname, ifname, troubleshooting, err)
	case step == "bind" && l.cfg.XDPMode == xdp.ModeZeroCopy && errorsIsAny(err, unix.EOPNOTSUPP, unix.EINVAL, unix.EPROTONOSUPPORT, unix.Errno(524)):
		return fmt.Errorf("libos: %s (driver %s) cannot bind queue %d in AF_XDP zero-copy mode: leave Config.XDPMode at "+
			"auto (copy mode fallback) or use copy, or use a NIC whose driver does zero-copy (see docs/nics.md and "+
			"%s#eopnotsupp): %w", ifname, driverName(ifname), q, troubleshooting, err)
	case step == "bind" && errors.Is(err, unix.EINVAL):
		if n := rxQueues(l.ifindex); n > 0 && q >= n {
			return fmt.Errorf("libos: queue %d does not exist on %s, which has %d receive queue(s): use Config.Queue "+
				"0..%d (see %s#no-queue): %w", q, ifname, n, n-1, troubleshooting, err)
		}
	case step == "bind" && errors.Is(err, unix.ENETDOWN):
		return fmt.Errorf("libos: %s is down: ip link set dev %s up (see %s#enetdown): %w", ifname, ifname, troubleshooting, err)
	}
	return fmt.Errorf("libos: AF_XDP socket on %s queue %d (see %s): %w", ifname, q, troubleshooting, err)
}

// explainLoad explains a failed bpf.Load.
func explainLoad(err error) error {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("libos: not permitted to load the steering program (needs CAP_BPF and CAP_NET_ADMIN): %s "+
			"(see %s#eperm): %w", capsFix, troubleshooting, err)
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("libos: the kernel refused memory for the steering program's maps (kernels before 5.11 charge "+
			"them to RLIMIT_MEMLOCK): raise it (ulimit -l unlimited) (see %s#memlock): %w", troubleshooting, err)
	}
	return fmt.Errorf("libos: load the steering program (see %s): %w", troubleshooting, err)
}

// explainAttach explains a failed Attach of the steering program.
func (l *LibOS) explainAttach(err error) error {
	ifname := l.cfg.Interface
	if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
		if who := attachedProgram(l.ifindex); who != "" {
			return fmt.Errorf("libos: interface %s already has an XDP program attached (%s); detach it "+
				"(ip link set dev %s xdp off, or stop the process that holds its link: `demixdp doctor -iface %s` "+
				"names it) (see %s#xdp-attached): %w", ifname, who, ifname, ifname, troubleshooting, err)
		}
		return fmt.Errorf("libos: interface %s already has an XDP program attached; detach it (ip link set dev %s "+
			"xdp off) (see %s#xdp-attached): %w", ifname, ifname, troubleshooting, err)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("libos: not permitted to attach XDP to %s (needs CAP_NET_ADMIN): %s (see %s#eperm): %w",
			ifname, capsFix, troubleshooting, err)
	}
	return fmt.Errorf("libos: attach the steering program to %s (see %s): %w", ifname, troubleshooting, err)
}

func errorsIsAny(err error, errnos ...unix.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprintf("%d KiB", v>>10)
}

// driverName asks the kernel (ETHTOOL_GDRVINFO) for ifname's driver.
func driverName(ifname string) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "unknown"
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname)
	if err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(info.Driver[:])
}

// rxQueues returns the interface's number of receive queues, or 0.
func rxQueues(ifindex int) int {
	lk, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0
	}
	return lk.Attrs().NumRxQueues
}

// attachedProgram describes the XDP program attached to the interface:
// "id 42, name foo" (and who loaded it when that is a demixdp libOS), or
// "" if there is none or it cannot be found.
func attachedProgram(ifindex int) string {
	lk, err := netlink.LinkByIndex(ifindex)
	if err != nil || lk.Attrs().Xdp == nil || lk.Attrs().Xdp.ProgId == 0 {
		return ""
	}
	id := lk.Attrs().Xdp.ProgId
	desc := fmt.Sprintf("id %d", id)
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return desc
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return desc
	}
	desc += fmt.Sprintf(", name %q", info.Name)
	if strings.HasPrefix(info.Name, "dxb_steer") {
		desc += ": another demixdp libOS"
	}
	return desc
}
