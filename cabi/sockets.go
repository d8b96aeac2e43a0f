package main

// demi_socket, demi_bind, demi_listen, demi_accept, demi_connect,
// demi_close, demi_getpeername, demi_setsockopt and demi_getsockopt.

/*
#include <sys/socket.h>
#include <demi/types.h>
*/
import "C"

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/libos"
)

// tcpDefaults are the TCP socket options of the configuration
// (tcp_socket_options, NODELAY, LINGER), applied to every TCP queue as
// Demikernel applies them; nil fields leave libos's defaults.
type tcpDefaults struct {
	noDelay, keepAlive *bool
	linger             *int // seconds; -1 off
}

var sockDefaults tcpDefaults

// apply sets the options on a new TCP queue.
func (d *tcpDefaults) apply(qd libos.QD) {
	if d.noDelay != nil {
		lib.SetNoDelay(qd, *d.noDelay)
	}
	d.applyAccepted(qd)
}

// applyAccepted sets the options an accepted queue does not inherit from
// its listener (Nagle's setting it does).
func (d *tcpDefaults) applyAccepted(qd libos.QD) {
	if d.keepAlive != nil {
		lib.SetKeepAlive(qd, *d.keepAlive)
	}
	if d.linger != nil {
		lib.SetLinger(qd, *d.linger)
	}
}

// cabiSocket implements demi_socket.
//
//export cabiSocket
func cabiSocket(qdOut *C.int, domain, typ, proto C.int) C.int {
	if qdOut == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	qd, err := lib.Socket(int(domain), int(typ), int(proto))
	if err != nil {
		return errno(err)
	}
	if typ == unix.SOCK_STREAM {
		sockDefaults.apply(qd)
	}
	*qdOut = C.int(qd)
	return 0
}

// cabiBind implements demi_bind.
//
//export cabiBind
func cabiBind(qd C.int, addr unsafe.Pointer, size C.socklen_t) C.int {
	if lib == nil {
		return eNOSYS
	}
	a, rc := readSockaddr4(addr, size)
	if rc != 0 {
		return rc
	}
	return errno(lib.Bind(libos.QD(qd), a))
}

// maxBacklog is libos's largest listen backlog; a larger one is truncated
// to it, as listen(2) truncates to somaxconn.
const maxBacklog = 4096

// cabiListen implements demi_listen.
//
//export cabiListen
func cabiListen(qd, backlog C.int) C.int {
	if lib == nil {
		return eNOSYS
	}
	return errno(lib.Listen(libos.QD(qd), min(int(backlog), maxBacklog)))
}

// cabiAccept implements demi_accept.
//
//export cabiAccept
func cabiAccept(qtOut *C.demi_qtoken_t, qd C.int) C.int {
	if qtOut == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	qt, err := lib.Accept(libos.QD(qd))
	if err != nil {
		return errno(err)
	}
	*qtOut = C.demi_qtoken_t(qt)
	return 0
}

// cabiConnect implements demi_connect.
//
//export cabiConnect
func cabiConnect(qtOut *C.demi_qtoken_t, qd C.int, addr unsafe.Pointer, size C.socklen_t) C.int {
	if qtOut == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	a, rc := readSockaddr4(addr, size)
	if rc != 0 {
		return rc
	}
	qt, err := lib.Connect(libos.QD(qd), a)
	if err != nil {
		return errno(err)
	}
	*qtOut = C.demi_qtoken_t(qt)
	return 0
}

// cabiClose implements demi_close.
//
//export cabiClose
func cabiClose(qd C.int) C.int {
	if lib == nil {
		return eNOSYS
	}
	return errno(lib.CloseQueue(libos.QD(qd)))
}

// cabiGetPeerName implements demi_getpeername: the peer of a connected
// queue, truncated to *addrlen bytes as getpeername(2) does, with
// *addrlen set to sizeof(struct sockaddr_in).
//
//export cabiGetPeerName
func cabiGetPeerName(qd C.int, addr unsafe.Pointer, addrlen *C.socklen_t) C.int {
	if addr == nil || addrlen == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	peer, err := lib.RemoteAddr(libos.QD(qd))
	if err != nil {
		return errno(err)
	}
	if !peer.IsValid() {
		return eNOTCONN
	}
	var sa [sizeSockaddr4]byte
	putSockaddr4(sa[:], peer)
	copy(view(addr, int(min(*addrlen, sizeSockaddr4))), sa[:])
	*addrlen = sizeSockaddr4
	return 0
}

// Option sizes: an int, and struct linger (two ints).
const (
	sizeInt    = 4
	sizeLinger = 8
)

// cabiSetSockOpt implements demi_setsockopt.
//
//export cabiSetSockOpt
func cabiSetSockOpt(qd, level, name C.int, val unsafe.Pointer, size C.socklen_t) C.int {
	if val == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	q := libos.QD(qd)
	if _, err := lib.LocalAddr(q); err != nil {
		return errno(err) // EBADF before anything about the option
	}
	switch {
	case level == unix.SOL_SOCKET && name == unix.SO_LINGER:
		if size < sizeLinger {
			return eINVAL
		}
		b := view(val, sizeLinger)
		sec := -1
		if int32(ne.Uint32(b[0:])) != 0 {
			sec = int(int32(ne.Uint32(b[4:])))
			if sec < 0 {
				return eINVAL
			}
		}
		return errno(lib.SetLinger(q, sec))
	case level == unix.SOL_SOCKET && name == unix.SO_KEEPALIVE:
		if size < sizeInt {
			return eINVAL
		}
		return errno(lib.SetKeepAlive(q, ne.Uint32(view(val, sizeInt)) != 0))
	case level == unix.IPPROTO_TCP && name == unix.TCP_NODELAY:
		if size < sizeInt {
			return eINVAL
		}
		return errno(lib.SetNoDelay(q, ne.Uint32(view(val, sizeInt)) != 0))
	}
	return eNOPROTOOPT
}

// cabiGetSockOpt implements demi_getsockopt.
//
//export cabiGetSockOpt
func cabiGetSockOpt(qd, level, name C.int, val unsafe.Pointer, size *C.socklen_t) C.int {
	if val == nil || size == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	q := libos.QD(qd)
	if _, err := lib.LocalAddr(q); err != nil {
		return errno(err) // EBADF before anything about the option
	}
	putBool := func(on bool, err error) C.int {
		if err != nil {
			return errno(err)
		}
		if *size < sizeInt {
			return eINVAL
		}
		v := uint32(0)
		if on {
			v = 1
		}
		ne.PutUint32(view(val, sizeInt), v)
		*size = sizeInt
		return 0
	}
	switch {
	case level == unix.SOL_SOCKET && name == unix.SO_LINGER:
		sec, err := lib.Linger(q)
		if err != nil {
			return errno(err)
		}
		if *size < sizeLinger {
			return eINVAL
		}
		b := view(val, sizeLinger)
		on := uint32(0)
		if sec >= 0 {
			on = 1
		}
		ne.PutUint32(b[0:], on)
		ne.PutUint32(b[4:], uint32(int32(max(sec, 0))))
		*size = sizeLinger
		return 0
	case level == unix.SOL_SOCKET && name == unix.SO_KEEPALIVE:
		return putBool(lib.KeepAlive(q))
	case level == unix.IPPROTO_TCP && name == unix.TCP_NODELAY:
		return putBool(lib.NoDelay(q))
	}
	return eNOPROTOOPT
}
