package cli

import (
	"flag"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/demixdp/demixdp/libos"
)

func TestQueuesFlags(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	var f LibOSFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.Register(fs, FlagHelp{Queues: true})
	if f.Queues != 1 {
		t.Fatalf("-queues default %d, want 1", f.Queues)
	}
	if err := fs.Parse([]string{"-iface", "v0", "-queues", "2", "-cpus", "0, 1"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config(a)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Queues != 2 || !reflect.DeepEqual(cfg.CPUs, []int{0, 1}) {
		t.Fatalf("Queues %d CPUs %v", cfg.Queues, cfg.CPUs)
	}
	for _, c := range []struct {
		queues int
		cpus   string
		msg    string
	}{
		{-1, "", "-queues -1"},
		{libos.MaxQueues + 1, "", "-queues 65"},
		{2, "0", "1 CPUs for 2 queues"},
		{2, "0,x", "-cpus"},
		{1, "-1", "-cpus"},
	} {
		g := f
		g.Queues, g.CPUs = c.queues, c.cpus
		if _, err := g.Config(a); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("-queues %d -cpus %q: %v, want %q", c.queues, c.cpus, err, c.msg)
		}
	}
	var plain LibOSFlags
	plain.Register(flag.NewFlagSet("y", flag.ContinueOnError), FlagHelp{})
	if plain.Queues != 1 {
		t.Errorf("a command without -queues serves %d queues", plain.Queues)
	}
}

func TestAdd(t *testing.T) {
	type inner struct{ A, MaxB uint64 }
	type s struct {
		N    uint64
		I    int
		MaxQ uint64
		In   inner
	}
	sum := s{}
	Add(&sum, s{N: 1, I: -2, MaxQ: 5, In: inner{A: 3, MaxB: 9}})
	Add(&sum, s{N: 10, I: 4, MaxQ: 2, In: inner{A: 4, MaxB: 1}})
	if want := (s{N: 11, I: 2, MaxQ: 5, In: inner{A: 7, MaxB: 9}}); sum != want {
		t.Fatalf("sum %+v, want %+v", sum, want)
	}
}
