// Package vethlab builds the two-namespace veth lab that demixdp's
// integration tests, benchmarks and `make demo` run on.
//
// Topology:
//
//	[ns A: libOS side, IfA, AddrA]  <== veth ==>  [ns B: kernel peer, IfB, AddrB]
//
// Both ends of the veth pair live in network namespaces the lab creates; the
// root namespace is never touched. The pair is created directly inside
// namespace A with its peer placed in namespace B, so it never appears in the
// root namespace even for an instant. Namespace A is where a libOS attaches
// its XDP program and AF_XDP socket; namespace B holds the Linux kernel's
// own stack, the conformance peer.
//
// Addressing has two modes. In dedicated mode (the default) the libOS owns
// AddrA and the kernel in namespace A has no IPv4 address on IfA. In shared
// mode (Config.KernelAddrA) the kernel in A also holds AddrA, as on a host
// whose NIC the libOS shares. B always holds AddrB. Only 198.51.100.0/24 and
// 203.0.113.0/24 are accepted.
//
// Namespaces are named like `ip netns add` names them (a bind mount under
// /run/netns), so `ip netns exec` works on them, and their names start with
// "dx" so leftovers are recognisable and removable with Cleanup. A lab's
// names derive from its Name ("<name>-a", "<name>-b"), so a lab left up by
// one process can be found again by another with Open.
//
// Unless Config.Offloads is set, checksum offload, scatter-gather, TSO, GSO
// and GRO are turned off on both ends, so every frame on the wire carries a
// complete checksum and is at most one MTU long: what an AF_XDP socket must
// see. IPv6 is disabled in both namespaces unless Config.IPv6 is set, to keep
// router solicitations, DAD and MLD reports off the wire.
package vethlab
