package stack

// Counters count what the stack did and, above all, what it dropped and why.
// Every frame Input receives is either delivered, answered, or counted under
// exactly one drop reason.
type Counters struct {
	RxFrames, RxBytes uint64 // frames handed to Input
	TxFrames, TxBytes uint64 // frames handed to the link

	EthTruncated   uint64 // shorter than an Ethernet header
	EthNotOurs     uint64 // destination MAC neither ours nor broadcast
	EthUnsupported uint64 // EtherType other than IPv4 and ARP (VLAN, IPv6...)

	ARPMalformed   uint64 // truncated or not Ethernet/IPv4 ARP
	ARPNotOurs     uint64 // target address is not ours
	ARPRequestsTx  uint64 // requests we sent (including gratuitous)
	ARPRepliesTx   uint64 // replies we sent
	ARPResolved    uint64 // neighbours learnt
	ARPFailed      uint64 // resolutions that gave up (datagrams completed with EHOSTUNREACH)
	ARPPendingFull uint64 // datagrams refused because too many wait for resolution

	IPMalformed    uint64 // truncated, bad version, bad header or total length
	IPChecksum     uint64 // bad header checksum
	IPOptions      uint64 // carries IP options (none are handled)
	IPFragments    uint64 // fragments (no reassembly)
	IPTTLExpired   uint64 // TTL 0 on arrival
	IPNotOurs      uint64 // destination is not our address
	IPUnknownProto uint64 // not ICMP or UDP (or TCP when present)

	ICMPMalformed   uint64 // truncated or bad checksum
	ICMPEchoReplies uint64 // echo requests answered
	ICMPIgnored     uint64 // other ICMP messages

	UDPMalformed uint64 // truncated or lying length
	UDPChecksum  uint64 // bad checksum
	UDPNoPort    uint64 // nobody bound to the destination port
	UDPQueueFull uint64 // the endpoint's receive queue was full (newest dropped)
	UDPDelivered uint64 // datagrams queued on an endpoint

	TxNoBufs uint64 // no frame for a packet the stack wanted to send
	TxFull   uint64 // the link refused a frame of the stack's own (ARP, ICMP)
}
