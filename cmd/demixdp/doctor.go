package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/demixdp/demixdp/bpf"
	"github.com/demixdp/demixdp/xdp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Status of one doctor check.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
)

// check is one line of the doctor's report.
type check struct {
	Name   string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// report is what -json prints.
type report struct {
	Interface string  `json:"interface"`
	Queue     int     `json:"queue"`
	Usable    bool    `json:"usable"`
	Checks    []check `json:"checks"`
}

// doctorOptions are doctor's flags.
type doctorOptions struct {
	iface     string
	queue     int
	frames    int
	frameSize int
	json      bool
	noProbe   bool
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o doctorOptions
	fs.StringVar(&o.iface, "iface", "", "interface to examine (required)")
	fs.IntVar(&o.queue, "queue", 0, "queue the libOS would take")
	fs.IntVar(&o.frames, "frames", 4096, "UMEM frames the libOS would map (libos.Config.Frames)")
	fs.IntVar(&o.frameSize, "frame-size", 2048, "UMEM frame size, 2048 or 4096 (libos.Config.FrameSize)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.noProbe, "no-probe", false, "do not attach a test XDP program nor bind test AF_XDP sockets (on a zero-copy NIC a bind briefly reconfigures the queue)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.iface == "" || o.queue < 0 || (o.frameSize != 2048 && o.frameSize != 4096) || o.frames <= 0 {
		fmt.Fprintln(stderr, "demixdp doctor: need -iface IF, -queue >= 0, -frame-size 2048 or 4096 and -frames > 0")
		return 2
	}
	d := &doctor{o: o}
	d.run()
	r := report{Interface: o.iface, Queue: o.queue, Usable: true, Checks: d.checks}
	for _, c := range d.checks {
		if c.Status == statusFail {
			r.Usable = false
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		for _, c := range d.checks {
			fmt.Fprintf(stdout, "%-4s  %-15s %s\n", c.Status, c.Name, c.Detail)
			if c.Fix != "" {
				fmt.Fprintf(stdout, "      %-15s fix: %s\n", "", c.Fix)
			}
		}
		if r.Usable {
			fmt.Fprintf(stdout, "%s can run the demixdp libOS on queue %d.\n", o.iface, o.queue)
		} else {
			fmt.Fprintf(stdout, "%s cannot run the demixdp libOS on queue %d: see the fail lines above.\n", o.iface, o.queue)
		}
	}
	if !r.Usable {
		return 1
	}
	return 0
}

// doctor runs the checks in order; later ones use what earlier ones found.
type doctor struct {
	o      doctorOptions
	checks []check

	link       netlink.Link
	driver     string
	canProbe   bool // no program attached and probing allowed
	nativeXDP  bool
	queues     int
	hasCapLock bool
}

func (d *doctor) add(name, status, detail, fix string) {
	d.checks = append(d.checks, check{Name: name, Status: status, Detail: detail, Fix: fix})
}

func (d *doctor) run() {
	d.kernel()
	d.capabilities()
	d.memlock()
	d.jit()
	d.afxdpSocket()
	if !d.iface() {
		return
	}
	d.driverInfo()
	d.channels()
	d.rss()
	d.mtu()
	d.offloads()
	d.attached()
	d.nativeProbe()
	d.bindProbe()
	d.hugePages()
	d.bpffs()
}

// kernel checks the release: AF_XDP needs 4.18, need_wakeup 5.4, shared
// UMEM across queues 5.10.
func (d *doctor) kernel() {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		d.add("kernel", statusWarn, "uname: "+err.Error(), "")
		return
	}
	rel := unix.ByteSliceToString(u.Release[:])
	maj, min := parseRelease(rel)
	switch {
	case maj == 0:
		d.add("kernel", statusWarn, "cannot read the version of "+rel, "")
	case maj < 4 || maj == 4 && min < 18:
		d.add("kernel", statusFail, "Linux "+rel+" has no AF_XDP (4.18+)", "run Linux 5.10 or later")
	case maj < 5 || maj == 5 && min < 10:
		d.add("kernel", statusWarn, "Linux "+rel+": AF_XDP, but need_wakeup needs 5.4 and shared UMEM across queues 5.10",
			"run Linux 5.10 or later")
	default:
		d.add("kernel", statusOK, "Linux "+rel+": AF_XDP with need_wakeup and shared UMEM across queues (5.10+)", "")
	}
}

func parseRelease(rel string) (maj, min int) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	maj, _ = strconv.Atoi(parts[0])
	min, _ = strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return maj, min
}

// capabilities reads the effective set: AF_XDP sockets need CAP_NET_RAW,
// XDP attach CAP_NET_ADMIN, the program and maps CAP_BPF (or
// CAP_SYS_ADMIN); CAP_IPC_LOCK spares the UMEM from RLIMIT_MEMLOCK.
func (d *doctor) capabilities() {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		d.add("capabilities", statusWarn, "capget: "+err.Error(), "")
		return
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(uint(c)%32)) != 0 }
	d.hasCapLock = has(unix.CAP_IPC_LOCK)
	var missing []string
	if !has(unix.CAP_NET_RAW) {
		missing = append(missing, "cap_net_raw")
	}
	if !has(unix.CAP_NET_ADMIN) {
		missing = append(missing, "cap_net_admin")
	}
	if !has(unix.CAP_BPF) && !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "cap_bpf")
	}
	if len(missing) > 0 {
		d.add("capabilities", statusFail, "missing "+strings.Join(missing, ", "),
			"run as root, or: setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep BINARY (docs/troubleshooting.md#eperm)")
		return
	}
	detail := "cap_net_raw, cap_net_admin, cap_bpf"
	if d.hasCapLock {
		detail += ", cap_ipc_lock"
	}
	d.add("capabilities", statusOK, detail, "")
}

// memlock compares RLIMIT_MEMLOCK with the UMEM, which the kernel charges
// to it unless the process has CAP_IPC_LOCK.
func (d *doctor) memlock() {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		d.add("memlock", statusWarn, "getrlimit: "+err.Error(), "")
		return
	}
	need := uint64(d.o.frames) * uint64(d.o.frameSize)
	lim := "unlimited"
	if rl.Cur != unix.RLIM_INFINITY {
		lim = fmt.Sprintf("%d KiB", rl.Cur>>10)
	}
	switch {
	case d.hasCapLock:
		d.add("memlock", statusOK, fmt.Sprintf("RLIMIT_MEMLOCK %s; cap_ipc_lock: the %d KiB UMEM is not charged to it", lim, need>>10), "")
	case rl.Cur == unix.RLIM_INFINITY || rl.Cur >= need:
		d.add("memlock", statusOK, fmt.Sprintf("RLIMIT_MEMLOCK %s holds the %d KiB UMEM", lim, need>>10), "")
	default:
		d.add("memlock", statusFail, fmt.Sprintf("RLIMIT_MEMLOCK %s is less than the %d KiB UMEM, and no cap_ipc_lock", lim, need>>10),
			"ulimit -l unlimited (LimitMEMLOCK=infinity in a systemd unit), or grant cap_ipc_lock (docs/troubleshooting.md#memlock)")
	}
}

// jit checks that BPF programs are compiled to machine code: the steering
// program runs for every frame, and interpreted it costs several times
// more. net.core.bpf_jit_enable lives in the first network namespace only,
// so the check loads a test program and asks its JIT size instead.
func (d *doctor) jit() {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "dx_doctor", Type: ebpf.XDP, License: "MIT", Instructions: passInsns})
	if err != nil {
		d.add("bpf jit", statusWarn, "cannot load a test program: "+err.Error(), "")
		return
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		d.add("bpf jit", statusWarn, "program info: "+err.Error(), "")
		return
	}
	size, err := info.JitedSize()
	switch {
	case err != nil:
		d.add("bpf jit", statusWarn, "cannot read the JIT size: "+err.Error(), "")
	case size > 0:
		d.add("bpf jit", statusOK, fmt.Sprintf("enabled (a test program compiled to %d bytes)", size), "")
	default:
		d.add("bpf jit", statusWarn, "disabled: the steering program is interpreted, several times slower per frame",
			"sysctl -w net.core.bpf_jit_enable=1 (in the first network namespace)")
	}
}

// afxdpSocket creates (and closes) an AF_XDP socket.
func (d *doctor) afxdpSocket() {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	switch {
	case err == nil:
		unix.Close(fd)
		d.add("af_xdp", statusOK, "an AF_XDP socket can be created", "")
	case errors.Is(err, unix.EAFNOSUPPORT):
		d.add("af_xdp", statusFail, "the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)", "use a kernel built with CONFIG_XDP_SOCKETS=y (docs/troubleshooting.md#eafnosupport)")
	default:
		d.add("af_xdp", statusFail, "socket(AF_XDP): "+err.Error(), "run as root or grant cap_net_raw (docs/troubleshooting.md#eperm)")
	}
}

// iface finds the interface in this network namespace.
func (d *doctor) iface() bool {
	l, err := netlink.LinkByName(d.o.iface)
	if err != nil {
		d.add("interface", statusFail, fmt.Sprintf("%s not found in this network namespace: %v", d.o.iface, err),
			"check `ip link show`; run doctor inside the interface's namespace (ip netns exec NS demixdp doctor ...)")
		return false
	}
	d.link = l
	a := l.Attrs()
	if len(a.HardwareAddr) != 6 {
		d.add("interface", statusFail, fmt.Sprintf("%s (%s) is not Ethernet", a.Name, l.Type()), "use an Ethernet interface")
		return false
	}
	if a.Flags&net.FlagUp == 0 {
		d.add("interface", statusFail, fmt.Sprintf("%s (%s, index %d) is down", a.Name, l.Type(), a.Index),
			"ip link set dev "+a.Name+" up (docs/troubleshooting.md#enetdown)")
		return true
	}
	d.add("interface", statusOK, fmt.Sprintf("%s (%s, index %d, %s) is up, operstate %s", a.Name, l.Type(), a.Index, a.HardwareAddr, a.OperState), "")
	return true
}

// driverInfo names the driver (ETHTOOL_GDRVINFO) and what docs/nics.md
// knows about it.
func (d *doctor) driverInfo() {
	e, err := openEthtool()
	if err != nil {
		d.add("driver", statusWarn, err.Error(), "")
		return
	}
	defer e.close()
	name, version, bus, err := e.driver(d.o.iface)
	if err != nil {
		d.add("driver", statusWarn, "ETHTOOL_GDRVINFO: "+err.Error(), "")
		return
	}
	d.driver = name
	desc := name
	if version != "" {
		desc += " " + version
	}
	if bus != "" {
		desc += " at " + bus
	}
	info, known := drivers[name]
	switch {
	case !known:
		d.add("driver", statusWarn, desc+": not in docs/nics.md; the probes below tell what it does", "")
	case info.zeroCopy != "":
		d.add("driver", statusOK, fmt.Sprintf("%s: %s; native XDP since %s, AF_XDP zero-copy since %s", desc, info.note, info.native, info.zeroCopy), "")
	case info.native != "":
		d.add("driver", statusWarn, fmt.Sprintf("%s: %s; native XDP since %s, no AF_XDP zero-copy: copy mode", desc, info.note, info.native),
			"for zero-copy use a NIC from docs/nics.md (mlx5, ice, i40e, ixgbe, igc...)")
	default:
		d.add("driver", statusWarn, desc+": "+info.note, "for native XDP and zero-copy use a NIC from docs/nics.md")
	}
}

// channels reads the queue counts (ETHTOOL_GCHANNELS, else netlink): the
// libOS sees only the flows RSS hashes to its queue.
func (d *doctor) channels() {
	a := d.link.Attrs()
	rx, how := a.NumRxQueues, "netlink"
	if e, err := openEthtool(); err == nil {
		if ch, err := e.channels(d.o.iface); err == nil && ch.rxCount+ch.combinedCount > 0 {
			rx, how = int(ch.rxCount+ch.combinedCount), fmt.Sprintf("ETHTOOL_GCHANNELS: rx %d, tx %d, combined %d (max combined %d)",
				ch.rxCount, ch.txCount, ch.combinedCount, ch.maxCombined)
		}
		e.close()
	}
	d.queues = rx
	switch {
	case d.o.queue >= rx:
		d.add("queues", statusFail, fmt.Sprintf("%d receive queue(s) (%s): queue %d does not exist", rx, how, d.o.queue),
			fmt.Sprintf("use -queue 0..%d (docs/troubleshooting.md#no-queue)", rx-1))
	case rx > 1:
		d.add("queues", statusWarn, fmt.Sprintf("%d receive queues (%s): the libOS on queue %d sees only the flows RSS hashes to it", rx, how, d.o.queue),
			fmt.Sprintf("ethtool -L %s combined 1, or steer the libOS's traffic to queue %d with ethtool -N %s flow-type udp4 dst-port PORT action %d",
				d.o.iface, d.o.queue, d.o.iface, d.o.queue))
	default:
		d.add("queues", statusOK, fmt.Sprintf("1 receive queue (%s): every flow reaches queue 0", how), "")
	}
}

// rss reads how the NIC hashes TCP and UDP flows over its rings
// (ETHTOOL_GRXRINGS, ETHTOOL_GRXFH): which flows reach the libOS's queue.
func (d *doctor) rss() {
	e, err := openEthtool()
	if err != nil {
		return
	}
	defer e.close()
	rings, err := e.rxRings(d.o.iface)
	if err != nil {
		d.add("rss", statusOK, fmt.Sprintf("no RSS configuration on this driver (%v): nothing to check", err), "")
		return
	}
	fields := func(flow uint32) string {
		v, err := e.rxHashFields(d.o.iface, flow)
		if err != nil {
			return "n/a"
		}
		var f []string
		for _, x := range []struct {
			bit  uint64
			name string
		}{{rxhIPSrc, "src ip"}, {rxhIPDst, "dst ip"}, {rxhL4Src, "src port"}, {rxhL4Dst, "dst port"}} {
			if v&x.bit != 0 {
				f = append(f, x.name)
			}
		}
		if len(f) == 0 {
			return "nothing"
		}
		return strings.Join(f, "+")
	}
	detail := fmt.Sprintf("%d RSS ring(s); tcp4 hashed on %s, udp4 on %s", rings, fields(tcpV4Flow), fields(udpV4Flow))
	if rings > 1 {
		d.add("rss", statusWarn, detail+": flows land on any of the rings, the libOS sees those of its queue",
			fmt.Sprintf("ethtool -X %s equal 1 sends every hashed flow to queue 0; ethtool -x %s shows the indirection table", d.o.iface, d.o.iface))
		return
	}
	d.add("rss", statusOK, detail, "")
}

// mtu compares the MTU with what a frame holds after the kernel's 256
// bytes of XDP headroom and the Ethernet header.
func (d *doctor) mtu() {
	mtu := d.link.Attrs().MTU
	max := d.o.frameSize - 256 - 14
	switch {
	case mtu <= max:
		d.add("mtu", statusOK, fmt.Sprintf("MTU %d fits a %d-byte frame (up to %d)", mtu, d.o.frameSize, max), "")
	case mtu <= 4096-256-14:
		d.add("mtu", statusWarn, fmt.Sprintf("MTU %d exceeds a %d-byte frame (%d): the libOS uses MTU %d", mtu, d.o.frameSize, max, max),
			fmt.Sprintf("set libos.Config.FrameSize 4096, or ip link set dev %s mtu %d", d.o.iface, max))
	default:
		d.add("mtu", statusFail, fmt.Sprintf("MTU %d exceeds even a 4096-byte frame: jumbo frames need AF_XDP multi-buffer, which demixdp lacks", mtu),
			fmt.Sprintf("ip link set dev %s mtu %d", d.o.iface, 4096-256-14))
	}
}

// offloads reads the offloads that matter: LRO breaks native XDP, and
// generic XDP sees GRO's merged packets.
func (d *doctor) offloads() {
	e, err := openEthtool()
	if err != nil {
		return
	}
	defer e.close()
	get := func(cmd uint32) string {
		v, err := e.value(d.o.iface, cmd)
		switch {
		case err != nil:
			return "n/a"
		case v != 0:
			return "on"
		}
		return "off"
	}
	lro := "n/a"
	if f, err := e.value(d.o.iface, unix.ETHTOOL_GFLAGS); err == nil {
		lro = map[bool]string{true: "on", false: "off"}[f&ethFlagLRO != 0]
	}
	gro, tso, rxc, txc := get(unix.ETHTOOL_GGRO), get(unix.ETHTOOL_GTSO), get(unix.ETHTOOL_GRXCSUM), get(unix.ETHTOOL_GTXCSUM)
	detail := fmt.Sprintf("lro %s, gro %s, tso %s, rx-checksum %s, tx-checksum %s (the libOS computes and checks its own checksums)", lro, gro, tso, rxc, txc)
	switch {
	case lro == "on":
		d.add("offloads", statusWarn, detail+"; LRO is on: drivers refuse native XDP with it", "ethtool -K "+d.o.iface+" lro off")
	case gro == "on" && d.driver != "" && drivers[d.driver].native == "":
		d.add("offloads", statusWarn, detail+"; GRO on with generic XDP: merged packets larger than a frame are dropped", "ethtool -K "+d.o.iface+" gro off")
	default:
		d.add("offloads", statusOK, detail, "")
	}
}

// attached reports an XDP program already on the interface, and who
// holds it.
func (d *doctor) attached() {
	x := d.link.Attrs().Xdp
	d.canProbe = !d.o.noProbe
	if x == nil || !x.Attached || x.ProgId == 0 {
		d.add("xdp program", statusOK, "none attached", "")
		return
	}
	d.canProbe = false
	desc := fmt.Sprintf("id %d", x.ProgId)
	name := ""
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId)); err == nil {
		if info, err := p.Info(); err == nil {
			name = info.Name
			desc += fmt.Sprintf(", name %q", name)
		}
		p.Close()
	}
	desc += ", " + attachModeName(x.AttachMode) + " mode"
	if holders := progHolders(x.ProgId); len(holders) > 0 {
		desc += ", held by " + strings.Join(holders, ", ")
	}
	if strings.HasPrefix(name, "dxb_steer") {
		d.add("xdp program", statusFail, "a demixdp libOS runs on this interface ("+desc+")",
			"one libOS per interface: stop it first (demixdp stat -iface "+d.o.iface+" shows its counters)")
		return
	}
	d.add("xdp program", statusFail, "another XDP program is attached ("+desc+")",
		"detach it: ip link set dev "+d.o.iface+" xdp off, or stop the process holding its link (docs/troubleshooting.md#xdp-attached)")
}

func attachModeName(m uint32) string {
	switch m {
	case 1:
		return "native"
	case 2:
		return "generic"
	case 3:
		return "offload"
	case 4:
		return "multi"
	}
	return "unknown"
}

// progHolders lists the processes holding a file descriptor of program
// id, or of a bpf_link to it: "pid 123 (udp-echo)". It reads /proc, as
// bpftool does without BPF iterators.
func progHolders(id uint32) []string {
	want := fmt.Sprintf("prog_id:\t%d\n", id)
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		kind := ""
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil || (target != "anon_inode:bpf_link" && target != "anon_inode:bpf-link" && target != "anon_inode:bpf-prog") {
				continue
			}
			info, err := os.ReadFile(filepath.Join("/proc", p.Name(), "fdinfo", fd.Name()))
			if err != nil || !strings.Contains(string(info)+"\n", want) {
				continue
			}
			if target != "anon_inode:bpf-prog" {
				kind = "bpf_link" // what keeps it attached: say that rather than a program fd
			} else if kind == "" {
				kind = "program fd"
			}
		}
		if kind != "" {
			comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
			out = append(out, fmt.Sprintf("pid %d (%s, %s)", pid, strings.TrimSpace(string(comm)), kind))
		}
	}
	return out
}

// passInsns is an XDP program that passes every frame.
var passInsns = asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}

// nativeProbe attaches an XDP_PASS program in driver mode and detaches it
// at once (a bpf_link: gone with the process too).
func (d *doctor) nativeProbe() {
	if !d.canProbe {
		d.nativeXDP = d.driver != "" && drivers[d.driver].native != ""
		d.add("native xdp", statusWarn, "not probed ("+d.probeSkipReason()+")", "")
		return
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "dx_doctor", Type: ebpf.XDP, License: "MIT", Instructions: passInsns})
	if err != nil {
		d.add("native xdp", statusFail, "cannot load an XDP program: "+err.Error(), "run as root or grant cap_bpf (docs/troubleshooting.md#eperm)")
		return
	}
	defer prog.Close()
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: d.link.Attrs().Index, Flags: link.XDPDriverMode})
	if err == nil {
		l.Close()
		d.nativeXDP = true
		d.add("native xdp", statusOK, "the driver runs XDP itself (native mode): attached and detached a test program", "")
		return
	}
	l, gerr := link.AttachXDP(link.XDPOptions{Program: prog, Interface: d.link.Attrs().Index, Flags: link.XDPGenericMode})
	if gerr == nil {
		l.Close()
		d.add("native xdp", statusWarn, "no native XDP ("+err.Error()+"): generic mode only, slower, copy mode",
			"use a driver with native XDP (docs/nics.md)")
		return
	}
	d.add("native xdp", statusFail, "cannot attach XDP in native ("+err.Error()+") nor generic mode ("+gerr.Error()+")",
		"docs/troubleshooting.md#xdp-attached")
}

func (d *doctor) probeSkipReason() string {
	if d.o.noProbe {
		return "-no-probe"
	}
	return "an XDP program is attached"
}

// bindProbe binds AF_XDP sockets on the queue: zero-copy if the driver
// grants it, else copy; need_wakeup; a second socket sharing the UMEM.
// Everything is closed before it returns.
func (d *doctor) bindProbe() {
	if !d.canProbe {
		d.add("af_xdp bind", statusWarn, "not probed ("+d.probeSkipReason()+")", "")
		return
	}
	const frames = 64
	mem, err := unix.Mmap(-1, 0, frames*d.o.frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		d.add("af_xdp bind", statusWarn, "mmap: "+err.Error(), "")
		return
	}
	defer unix.Munmap(mem)
	cfg := xdp.Config{
		Ifindex: d.link.Attrs().Index, QueueID: d.o.queue, Umem: mem, FrameSize: uint32(d.o.frameSize),
		FillSize: 32, CompletionSize: 32, RXSize: 32, TXSize: 32,
		// The probe of a doctor run a moment ago (or a libOS that just
		// exited) holds the queue until the kernel's deferred release.
		BusyWait: 3 * time.Second,
	}
	s, err := xdp.Open(cfg)
	if err != nil {
		fix := "docs/troubleshooting.md"
		if errors.Is(err, unix.EBUSY) {
			fix = "another AF_XDP socket holds the queue: stop it or use another -queue (docs/troubleshooting.md#ebusy-queue)"
		}
		d.add("af_xdp bind", statusFail, fmt.Sprintf("cannot bind queue %d: %v", d.o.queue, err), fix)
		return
	}
	defer s.Close()
	if s.ZeroCopy() {
		d.add("zero-copy", statusOK, fmt.Sprintf("queue %d binds in zero-copy mode: the NIC DMAs into the UMEM", d.o.queue), "")
	} else {
		why := "copy mode requested"
		if r := s.ZeroCopyRefusal(); r != nil {
			why = "the driver refused zero-copy: " + r.Error()
		}
		d.add("zero-copy", statusWarn, fmt.Sprintf("queue %d binds in copy mode only (%s): the kernel copies each frame between "+
			"its buffers and the UMEM, and every transmit batch needs a sendto; the libOS works, with less throughput", d.o.queue, why),
			"for zero-copy use a NIC whose driver does it (docs/nics.md)")
	}
	if s.NeedWakeupEnabled() {
		d.add("need_wakeup", statusOK, "bound with XDP_USE_NEED_WAKEUP: the libOS can sleep in poll(2) and spare system calls", "")
	} else {
		d.add("need_wakeup", statusWarn, "need_wakeup not granted", "run Linux 5.4 or later")
	}
	sh, err := xdp.Open(xdp.Config{Ifindex: cfg.Ifindex, QueueID: d.o.queue, Shared: s, RXSize: 32, TXSize: 32})
	if err != nil {
		d.add("shared umem", statusWarn, "a second socket cannot share the UMEM: "+err.Error(), "run Linux 5.10 or later")
		return
	}
	sh.Close()
	d.add("shared umem", statusOK, "a second socket shares the UMEM (XDP_SHARED_UMEM), as one libOS per queue does", "")
}

// hugePages reports the huge pages Config.HugePages could back the UMEM
// with.
func (d *doctor) hugePages() {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return
	}
	vals := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) > 0 {
			vals[k], _ = strconv.Atoi(f[0])
		}
	}
	need := d.o.frames * d.o.frameSize
	size := vals["Hugepagesize"] << 10
	free := vals["HugePages_Free"] * size
	if size > 0 && free >= need {
		d.add("huge pages", statusOK, fmt.Sprintf("%d free huge pages of %d KiB: libos.Config.HugePages can back the %d KiB UMEM",
			vals["HugePages_Free"], size>>10, need>>10), "")
		return
	}
	pages := 0
	if size > 0 {
		pages = (need + size - 1) / size
	}
	d.add("huge pages", statusOK, fmt.Sprintf("%d free huge pages: the UMEM uses 4 KiB pages (fine; huge pages save TLB misses)", vals["HugePages_Free"]),
		fmt.Sprintf("optional: sysctl -w vm.nr_hugepages=%d and libos.Config.HugePages", pages))
}

// bpffs checks that demixdp stat will find the pinned maps.
func (d *doctor) bpffs() {
	ok, err := bpf.IsBPFFS("/sys/fs/bpf")
	if err == nil && ok {
		d.add("bpffs", statusOK, "/sys/fs/bpf is a bpf file system: the libOS pins its maps in "+bpf.PinDir(bpf.DefaultPinRoot, d.o.iface)+" for demixdp stat", "")
		return
	}
	d.add("bpffs", statusWarn, "/sys/fs/bpf is not a bpf file system (inside ip netns exec it never is): demixdp stat will not find the libOS's maps",
		"mount -t bpf bpf /sys/fs/bpf, or give the libOS and demixdp stat the same -pin-dir on a bpffs (docs/troubleshooting.md#pins)")
}
