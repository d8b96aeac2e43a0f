package bpf

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

func errorsIsKeyNotExist(err error) bool { return errors.Is(err, ebpf.ErrKeyNotExist) }

func TestMethodsValidateArguments(t *testing.T) {
	s := loadForTest(t, Shared)
	if err := s.AddAddr(netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrNotIPv4) {
		t.Errorf("AddAddr(IPv6) = %v", err)
	}
	if err := s.RemoveAddr(netip.Addr{}); !errors.Is(err, ErrNotIPv4) {
		t.Errorf("RemoveAddr(zero) = %v", err)
	}
	if err := s.AddPort(1, 7); !errors.Is(err, ErrProtocol) {
		t.Errorf("AddPort(ICMP) = %v", err)
	}
	if err := s.RemovePort(132, 7); !errors.Is(err, ErrProtocol) {
		t.Errorf("RemovePort(SCTP) = %v", err)
	}
	if err := s.RegisterSocket(0, -1); err == nil {
		t.Error("RegisterSocket(fd -1) succeeded")
	}
	// An XSKMAP accepts only AF_XDP sockets.
	if err := s.RegisterSocket(0, s.Program().FD()); err == nil {
		t.Error("RegisterSocket(non-XSK fd) succeeded")
	}
	if err := s.RegisterSocket(64, 0); err == nil {
		t.Error("RegisterSocket(queue beyond MaxQueues) succeeded")
	}
	if err := s.UnregisterSocket(0); err != nil {
		t.Errorf("UnregisterSocket(empty slot) = %v, want nil", err)
	}
	if err := s.UnregisterSocket(64); err == nil {
		t.Error("UnregisterSocket(queue beyond MaxQueues) succeeded")
	}
	if err := s.Detach(); err != nil {
		t.Errorf("Detach when not attached = %v", err)
	}
}

func TestClosedSteering(t *testing.T) {
	s := loadForTest(t, Dedicated)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{
		"AddAddr":          s.AddAddr(ourAddr),
		"RemoveAddr":       s.RemoveAddr(ourAddr),
		"AddPort":          s.AddPort(6, 80),
		"RemovePort":       s.RemovePort(6, 80),
		"RegisterSocket":   s.RegisterSocket(0, 0),
		"UnregisterSocket": s.UnregisterSocket(0),
		"Attach":           s.Attach(1),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := s.Counters(); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close = %v", err)
	}
	if err := s.Detach(); err != nil {
		t.Errorf("Detach after Close = %v", err)
	}
}

func TestMapSizesFromConfig(t *testing.T) {
	loadForTest(t, Dedicated) // privilege check and a sanity load
	s, err := Load(Config{Mode: Shared, MaxQueues: 2, MaxAddrs: 1, MaxPorts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddAddr(ourAddr); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddr(otherAddr); err == nil {
		t.Error("second address fit in a one-entry map")
	}
	if err := s.AddPort(6, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPort(6, 2); err == nil {
		t.Error("second port fit in a one-entry map")
	}
	if err := s.UnregisterSocket(2); err == nil {
		t.Error("queue 2 exists in a two-queue XSKMAP")
	}
	// The wildcard does not take an address slot.
	if err := s.AddAddr(netip.IPv4Unspecified()); err != nil {
		t.Fatal(err)
	}
}
