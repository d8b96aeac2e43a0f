// Package rss computes receive-side scaling as a NIC does, so that a
// program can tell which receive queue a flow's packets will arrive on, and
// reads a NIC's RSS configuration from the kernel.
//
// A NIC with RSS hashes fields of each received packet (for TCP over IPv4:
// source and destination address and port) with the Toeplitz function
// under a secret key, looks the hash up in an indirection table, and
// delivers the packet to the queue the table names. The hash is linear in
// its input (the hash of a XOR b is the hash of a XOR the hash of b), so
// the part of a reply's hash that depends on the local port can be
// precomputed, and a Chooser can find, for a given peer, local ports whose
// replies land on a given queue with two table lookups per port.
//
// Read asks the kernel for the key, the indirection table and the fields
// hashed (ETHTOOL_GRSSH, ETHTOOL_GRXFH); Channels for the number of
// receive queues (ETHTOOL_GCHANNELS). Many virtual devices (veth among
// them) have no RSS configuration to read: Read then fails with
// ErrUnavailable and the caller must find another way to bring replies
// home.
package rss
