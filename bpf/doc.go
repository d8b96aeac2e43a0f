// Package bpf is demixdp's XDP steering program: it decides, for every frame
// an interface receives, whether the frame belongs to the libOS (redirect it
// into the AF_XDP socket of the receive queue) or to the kernel (XDP_PASS).
//
// The program is assembled in Go with github.com/cilium/ebpf/asm, so the
// package builds with plain `go build` (no clang), is loaded with cilium/ebpf
// and is attached as a bpf_link: when the process dies the kernel detaches it
// and the interface is left clean.
//
// # What the program does
//
// Ethernet:
//   - A frame shorter than 14 bytes is passed and counted Malformed.
//   - 802.1Q/802.1ad tagged frames are passed: VLANs are not supported, so a
//     tagged frame is never ours. IPv6 and every ethertype other than IPv4
//     and ARP are passed.
//
// Dedicated mode (the libOS owns addresses the kernel does not have):
//   - ARP with a complete 28-byte Ethernet/IPv4 body (htype 1, ptype 0x0800,
//     hlen 6, plen 4) whose target protocol address is ours is redirected.
//     An ARP body shorter than 28 bytes, or an ARP for another hardware
//     or protocol type (nonsense on an Ethernet link), is passed and counted
//     Malformed.
//   - IPv4 to an address of ours is redirected, including packets with IP
//     options and fragments: the netstack drops and counts those. The L4
//     header is not looked at.
//
// Shared mode (the libOS uses the kernel's address):
//   - ARP, ICMP and every IPv4 protocol other than TCP and UDP are passed.
//   - TCP/UDP to an address of ours whose (protocol, destination port) is in
//     the port map is redirected, but only when the packet is not a fragment
//     (MF clear, offset 0). Fragments go to the kernel: only the first one
//     carries the ports, so the later ones cannot be matched, and splitting
//     one datagram between the kernel and the libOS would lose it; the
//     kernel reassembles what it gets whole.
//   - TCP/UDP whose 4 port bytes are missing after the IPv4 header is passed
//     and counted Malformed.
//
// Both modes treat a malformed IPv4 header as Malformed and pass it: fewer
// than 20 bytes, version other than 4, IHL below 5, IHL*4 beyond the end of
// the frame, or a total length below IHL*4. (A total length beyond the frame
// is not checked here; the netstack drops such truncated packets.)
//
// Adding the address 0.0.0.0 sets a wildcard flag: every destination address
// is then ours (a reflector, or a libOS bound to 0.0.0.0 in shared mode). In
// dedicated mode this claims all ARP and all IPv4 on the interface.
//
// A claimed frame is counted Redirected and handed to bpf_redirect_map on the
// XSKMAP slot of the frame's rx_queue_index with XDP_PASS as the fallback: a
// queue without a registered socket gives its frames to the kernel (they are
// still counted Redirected). Every other frame is counted Passed, so
// Redirected+Passed is the number of frames seen and Malformed is a subset of
// Passed. Every packet access is bounds-checked against data_end.
//
// # Maps
//
//   - addrs: hash, key = IPv4 address (4 bytes, network order).
//   - ports: hash, key = {protocol u8, 0 u8, port u16 network order}.
//   - xsks: XSKMAP, key = queue index, value = AF_XDP socket fd.
//   - config: array of one u32; bit 0 is the 0.0.0.0 wildcard.
//   - counters: per-CPU array of u64, one row of three (Redirected, Passed,
//     Malformed) per receive queue 0..MaxQueues-1 and a last row shared by
//     the queues beyond; Counters sums the rows, QueueCounters keeps them
//     apart.
//
// Pin pins every map but the XSKMAP under a directory of a bpf file system
// (DefaultPinRoot/IFNAME for a libOS) so that another process can read the
// counters, addresses and ports with OpenPinned; Close removes the pins.
//
// The mode is baked into the program at Load, so the datapath never looks
// it up.
package bpf
