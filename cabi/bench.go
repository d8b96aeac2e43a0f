package main

// C loops over the ABI for the package's benchmarks and allocation tests:
// they make many calls across the C-Go boundary from C, as an application
// does, so the measurements include it. Unused by the library itself.

/*
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <netinet/in.h>
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

extern int cabiSGAFree(void *);

// n calls that enter Go and return at once (EINVAL for NULL).
static int cabi_loop_boundary(int n) {
	int rc = 0;
	for (int i = 0; i < n; i++)
		rc |= cabiSGAFree(NULL);
	return rc == EINVAL ? 0 : rc;
}

struct cabi_loop_arg { int n, rc; };

static void *cabi_loop_thread(void *p) {
	struct cabi_loop_arg *a = p;
	a->rc = cabi_loop_boundary(a->n);
	return NULL;
}

// cabi_loop_boundary from a thread C created, as an application's
// threads are: the path where Go must find an M for a foreign thread.
static int cabi_loop_boundary_cthread(int n) {
	struct cabi_loop_arg a = {n, 0};
	pthread_t t;
	if (pthread_create(&t, NULL, cabi_loop_thread, &a) != 0)
		return EAGAIN;
	pthread_join(t, NULL);
	return a.rc;
}

static const struct timespec cabi_loop_timeout = {5, 0};

static int cabi_loop_open(int type, int *qd) {
	struct sockaddr_in any;
	memset(&any, 0, sizeof any);
	any.sin_family = AF_INET;
	int rc = demi_socket(qd, AF_INET, type, 0);
	if (rc == 0 && type == SOCK_DGRAM)
		rc = demi_bind(*qd, (struct sockaddr *)&any, sizeof any);
	return rc;
}

static int cabi_loop_connect(int qd, uint32_t ip, uint16_t port) {
	struct sockaddr_in to;
	demi_qtoken_t qt;
	demi_qresult_t qr;
	int one = 1;
	memset(&to, 0, sizeof to);
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = ip;
	to.sin_port = port;
	int rc = demi_setsockopt(qd, IPPROTO_TCP, 1, &one, sizeof one);
	if (rc == 0)
		rc = demi_connect(&qt, qd, (struct sockaddr *)&to, sizeof to);
	if (rc == 0)
		rc = demi_wait(&qr, qt, &cabi_loop_timeout);
	if (rc == 0 && qr.qr_opcode != DEMI_OPC_CONNECT)
		rc = (int)qr.qr_ret;
	return rc;
}

// n UDP round trips of size bytes to ip:port (network order), one array
// reused: pushto, pop, both waits, the reply checked and freed.
static int cabi_loop_udp(int qd, uint32_t ip, uint16_t port, int size, int n) {
	struct sockaddr_in to;
	demi_qtoken_t push, pop;
	demi_qresult_t qr;
	memset(&to, 0, sizeof to);
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = ip;
	to.sin_port = port;
	demi_sgarray_t sga = demi_sgaalloc(size);
	if (sga.sga_numsegs != 1)
		return ENOMEM;
	memset(sga.sga_segs[0].sgaseg_buf, 'u', size);
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		if ((rc = demi_pushto(&push, qd, &sga, (struct sockaddr *)&to, sizeof to)) != 0)
			break;
		if ((rc = demi_pop(&pop, qd)) != 0)
			break;
		if ((rc = demi_wait(&qr, push, &cabi_loop_timeout)) != 0)
			break;
		if ((rc = demi_wait(&qr, pop, &cabi_loop_timeout)) != 0)
			break;
		if (qr.qr_opcode != DEMI_OPC_POP || qr.qr_value.sga.sga_segs[0].sgaseg_len != (uint32_t)size)
			rc = EIO;
		demi_sgarray_t got = qr.qr_value.sga;
		demi_sgafree(&got);
	}
	demi_sgafree(&sga);
	return rc;
}

// n TCP round trips of size bytes on a connected queue: a new array per
// request, freed at once; pops until the echo is complete.
static int cabi_loop_tcp(int qd, int size, int n) {
	demi_qtoken_t push, pop;
	demi_qresult_t qr;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		demi_sgarray_t sga = demi_sgaalloc(size);
		if (sga.sga_numsegs != 1)
			return ENOMEM;
		memset(sga.sga_segs[0].sgaseg_buf, 't', size);
		rc = demi_push(&push, qd, &sga);
		demi_sgafree(&sga);
		for (int got = 0; rc == 0 && got < size;) {
			if ((rc = demi_pop(&pop, qd)) != 0 || (rc = demi_wait(&qr, pop, &cabi_loop_timeout)) != 0)
				break;
			if (qr.qr_opcode != DEMI_OPC_POP || qr.qr_value.sga.sga_segs[0].sgaseg_len == 0) {
				rc = EIO;
				break;
			}
			got += qr.qr_value.sga.sga_segs[0].sgaseg_len;
			demi_sgarray_t r = qr.qr_value.sga;
			demi_sgafree(&r);
		}
		if (rc == 0)
			rc = demi_wait(&qr, push, &cabi_loop_timeout);
	}
	return rc;
}
*/
import "C"

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// loopBoundary makes n calls from C into Go that return at once.
func loopBoundary(n int) error { return errnoErr(C.cabi_loop_boundary(C.int(n))) }

// loopBoundaryCThread is loopBoundary from a thread that C created.
func loopBoundaryCThread(n int) error { return errnoErr(C.cabi_loop_boundary_cthread(C.int(n))) }

// loopInit runs demi_init (the configuration comes from the environment).
func loopInit() error { return errnoErr(C.demi_init(nil)) }

// loopOpen opens a UDP (bound to INADDR_ANY:0) or TCP queue.
func loopOpen(typ int) (int, error) {
	var qd C.int
	err := errnoErr(C.cabi_loop_open(C.int(typ), &qd))
	return int(qd), err
}

// loopConnect connects a TCP queue to to, with TCP_NODELAY.
func loopConnect(qd int, to netip.AddrPort) error {
	ip, port := beAddr(to)
	return errnoErr(C.cabi_loop_connect(C.int(qd), ip, port))
}

// loopUDP makes n UDP round trips of size bytes with to from C.
func loopUDP(qd int, to netip.AddrPort, size, n int) error {
	ip, port := beAddr(to)
	return errnoErr(C.cabi_loop_udp(C.int(qd), ip, port, C.int(size), C.int(n)))
}

// loopTCP makes n TCP round trips of size bytes from C.
func loopTCP(qd, size, n int) error {
	return errnoErr(C.cabi_loop_tcp(C.int(qd), C.int(size), C.int(n)))
}

// loopClose closes a queue.
func loopClose(qd int) error { return errnoErr(C.demi_close(C.int(qd))) }

func errnoErr(rc C.int) error {
	if rc == 0 {
		return nil
	}
	return unix.Errno(rc)
}

// beAddr returns to's address and port in network byte order, as
// sockaddr_in holds them.
func beAddr(to netip.AddrPort) (C.uint32_t, C.uint16_t) {
	a := to.Addr().As4()
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], to.Port())
	return C.uint32_t(ne.Uint32(a[:])), C.uint16_t(ne.Uint16(p[:]))
}
