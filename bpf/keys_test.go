package bpf

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf/asm"
)

func TestAddrKeyIsNetworkOrder(t *testing.T) {
	k, err := addrKey(netip.MustParseAddr("198.51.100.7"))
	if err != nil {
		t.Fatal(err)
	}
	if k != [4]byte{198, 51, 100, 7} {
		t.Fatalf("key = %v", k)
	}
}

func TestAddrKeyRejectsNonIPv4(t *testing.T) {
	for _, a := range []netip.Addr{
		{},
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:198.51.100.7"),
	} {
		if _, err := addrKey(a); !errors.Is(err, ErrNotIPv4) {
			t.Errorf("addrKey(%v) err = %v, want ErrNotIPv4", a, err)
		}
	}
}

func TestPortKeyLayout(t *testing.T) {
	k, err := portKey(17, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	if k != [4]byte{17, 0, 0x12, 0x34} {
		t.Fatalf("key = %v", k)
	}
	k, err = portKey(6, 80)
	if err != nil || k != [4]byte{6, 0, 0, 80} {
		t.Fatalf("key = %v, %v", k, err)
	}
}

func TestPortKeyRejectsOtherProtocols(t *testing.T) {
	for _, p := range []uint8{0, 1, 58, 132, 255} {
		if _, err := portKey(p, 80); !errors.Is(err, ErrProtocol) {
			t.Errorf("portKey(%d) err = %v, want ErrProtocol", p, err)
		}
	}
}

func TestLoadRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Mode: 2},
		{MaxQueues: -1},
		{MaxAddrs: -5},
		{MaxPorts: 1 << 30},
	} {
		if s, err := Load(cfg); !errors.Is(err, ErrInvalidConfig) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Load(%+v) err = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestModeString(t *testing.T) {
	if Dedicated.String() != "dedicated" || Shared.String() != "shared" || Mode(7).String() != "Mode(7)" {
		t.Fatal(Dedicated, Shared, Mode(7))
	}
}

// Every jump in the assembled program must reach a defined label, in both
// modes; a typo would otherwise only show up as a load failure.
func TestProgramLabelsResolve(t *testing.T) {
	for _, m := range []Mode{Dedicated, Shared} {
		insns, err := steeringProgram(m, mapFDs{3, 4, 5, 6, 7, 1})
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		syms, err := insns.SymbolOffsets()
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		for _, in := range insns {
			if ref := in.Reference(); ref != "" && in.OpCode.JumpOp() != asm.Call {
				if _, ok := syms[ref]; !ok {
					t.Errorf("%v: jump to undefined label %q", m, ref)
				}
			}
		}
		if last := insns[len(insns)-1]; last.OpCode.JumpOp() != asm.Exit {
			t.Errorf("%v: program does not end in exit: %v", m, last)
		}
	}
}
