// Package ethtool issues the legacy SIOCETHTOOL requests the project makes
// (offload features, channels, RSS): one ioctl on an AF_INET datagram
// socket, whose network namespace selects where the interface is looked
// up. Each caller keeps the request structs it needs; this package only
// carries them to the kernel.
package ethtool

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreqData is struct ifreq with ifr_data as its union member.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// value is struct ethtool_value from <linux/ethtool.h>.
type value struct {
	cmd  uint32
	data uint32
}

// Socket opens the datagram socket SIOCETHTOOL needs, in the calling
// thread's network namespace; the socket stays bound to it.
func Socket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("ethtool: socket: %w", err)
	}
	return fd, nil
}

// Ioctl issues one SIOCETHTOOL request for ifname on socket fd; data
// points to the request struct, whose first word is the ETHTOOL_ command,
// and which the kernel fills in. It fails with EINVAL for a name that
// does not fit, or with the kernel's errno.
func Ioctl(fd int, ifname string, data unsafe.Pointer) error {
	if len(ifname) == 0 || len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("ethtool: interface name %q: %w", ifname, unix.EINVAL)
	}
	ifr := &ifreqData{data: data}
	copy(ifr.name[:], ifname)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr))); e != 0 {
		return e
	}
	return nil
}

// Value issues a request that carries a struct ethtool_value (the legacy
// GET and SET commands of one feature, such as ETHTOOL_GTXCSUM) and
// returns the value the kernel wrote back.
func Value(fd int, ifname string, cmd, data uint32) (uint32, error) {
	v := &value{cmd: cmd, data: data}
	err := Ioctl(fd, ifname, unsafe.Pointer(v))
	return v.data, err
}

// Get opens a socket in the calling thread's namespace, issues one
// ethtool_value GET for ifname and closes the socket.
func Get(ifname string, cmd uint32) (uint32, error) {
	fd, err := Socket()
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return Value(fd, ifname, cmd, 0)
}
