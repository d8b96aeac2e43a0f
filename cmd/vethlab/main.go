// Command vethlab brings the demixdp veth lab up and down from a shell.
//
//	vethlab up [-name N] [-shared] [-mtu M] [-queues Q] [-offloads] [-ipv6] [-addra P] [-addrb P]
//	vethlab down -name N | -all
//	vethlab show -name N
//	vethlab exec -name N a|b -- cmd args...
//
// up creates a lab, prints it as KEY=VALUE lines (NAME, NSA, NSB, IFA, IFB,
// INDEXA, INDEXB, ADDRA, ADDRB, MACA, MACB; `eval $(vethlab up)` works) and
// leaves it up. With -name the lab is named exactly "dx-N" (or N if it
// already starts with "dx"), so `down -name N` finds it again; without it
// the name gets a random suffix. down -all removes every namespace whose
// name starts with "dx". exec runs a command in side a or b and exits with
// its status. Nothing outside the lab's own namespaces is touched.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"

	"github.com/demixdp/demixdp/internal/vethlab"
)

const usage = `usage:
  vethlab up [-name N] [-shared] [-mtu M] [-queues Q] [-offloads] [-ipv6] [-addra P] [-addrb P]
  vethlab down -name N | -all
  vethlab show -name N
  vethlab exec -name N a|b -- cmd args...
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one vethlab command and returns the process exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = up(args[1:], stdout, stderr)
	case "down":
		err = down(args[1:], stderr)
	case "show":
		err = show(args[1:], stdout, stderr)
	case "exec":
		var status int
		status, err = execIn(args[1:], stdin, stdout, stderr)
		if err == nil {
			return status
		}
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q: %w", args[0], errUsage)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "vethlab %s: %v\n", args[0], err)
		}
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("bad usage")

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vethlab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func printVars(w io.Writer, l *vethlab.Lab) {
	for _, v := range l.Vars() {
		fmt.Fprintln(w, v)
	}
}

func up(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", stderr)
	name := fs.String("name", "", "lab name (exact, prefixed with dx- unless it starts with dx); random if empty")
	shared := fs.Bool("shared", false, "give AddrA to the kernel in namespace A too (shared-address mode)")
	mtu := fs.Int("mtu", 0, "MTU of both ends (0 = 1500)")
	queues := fs.Int("queues", 0, "RX and TX queues of both ends (0 = 1); B's flows spread over A's queues")
	offloads := fs.Bool("offloads", false, "keep checksum/SG/TSO/GSO/GRO offloads on")
	ipv6 := fs.Bool("ipv6", false, "keep IPv6 enabled in both namespaces")
	addrA := fs.String("addra", vethlab.DefaultAddrA.String(), "address of side A (libOS)")
	addrB := fs.String("addrb", vethlab.DefaultAddrB.String(), "address of side B (kernel peer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	cfg := vethlab.Config{Name: *name, ExactName: *name != "", KernelAddrA: *shared, MTU: *mtu, Queues: *queues, Offloads: *offloads, IPv6: *ipv6}
	var err error
	if cfg.AddrA, err = netip.ParsePrefix(*addrA); err != nil {
		return fmt.Errorf("-addra: %w", err)
	}
	if cfg.AddrB, err = netip.ParsePrefix(*addrB); err != nil {
		return fmt.Errorf("-addrb: %w", err)
	}
	l, err := vethlab.New(cfg)
	if err != nil {
		return err
	}
	printVars(stdout, l)
	return nil
}

func down(args []string, stderr io.Writer) error {
	fs := newFlags("down", stderr)
	name := fs.String("name", "", "name of the lab to remove")
	all := fs.Bool("all", false, "remove every namespace whose name starts with \"dx\"")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*name == "") == !*all {
		return fmt.Errorf("need exactly one of -name N or -all: %w", errUsage)
	}
	if *all {
		return vethlab.Cleanup(vethlab.Prefix)
	}
	return vethlab.Remove(*name)
}

func show(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("show", stderr)
	name := fs.String("name", "", "name of the lab")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || fs.NArg() != 0 {
		return fmt.Errorf("need -name N: %w", errUsage)
	}
	l, err := vethlab.Open(*name)
	if err != nil {
		return err
	}
	printVars(stdout, l)
	return nil
}

// execIn runs a command in one side of a lab and returns its exit status.
func execIn(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := newFlags("exec", stderr)
	name := fs.String("name", "", "name of the lab")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	rest := fs.Args()
	if *name == "" || len(rest) < 2 {
		return 0, fmt.Errorf("need -name N, a side and a command: %w", errUsage)
	}
	side, rest := rest[0], rest[1:]
	if rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return 0, fmt.Errorf("no command: %w", errUsage)
	}
	l, err := vethlab.Open(*name)
	if err != nil {
		return 0, err
	}
	var cmd *exec.Cmd
	switch side {
	case "a", "A":
		cmd = l.CommandA(rest[0], rest[1:]...)
	case "b", "B":
		cmd = l.CommandB(rest[0], rest[1:]...)
	default:
		return 0, fmt.Errorf("side %q is neither a nor b: %w", side, errUsage)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
