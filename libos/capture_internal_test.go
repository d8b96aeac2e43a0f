package libos

import (
	"reflect"
	"testing"

	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/tcp"
)

// snakeNames are the counter names the commands print (internal/cli.Snake)
// of the fields the drop reasons read.
var snakeNames = map[string]string{
	"EthTruncated": "eth_truncated", "EthNotOurs": "eth_not_ours", "EthUnsupported": "eth_unsupported",
	"ARPMalformed": "arp_malformed", "ARPNotOurs": "arp_not_ours", "IPMalformed": "ip_malformed",
	"IPChecksum": "ip_checksum", "IPOptions": "ip_options", "IPFragments": "ip_fragments",
	"IPTTLExpired": "ip_ttl_expired", "IPNotOurs": "ip_not_ours", "IPUnknownProto": "ip_unknown_proto",
	"ICMPMalformed": "icmp_malformed", "ICMPIgnored": "icmp_ignored", "UDPMalformed": "udp_malformed",
	"UDPChecksum": "udp_checksum", "UDPNoPort": "udp_no_port", "UDPQueueFull": "udp_queue_full",
	"Malformed": "malformed", "BadChecksum": "bad_checksum", "NoACK": "no_ack", "NoPort": "no_port",
	"OutOfWindow": "out_of_window", "PAWSDropped": "paws_dropped", "BadACK": "bad_ack",
	"OOODropped": "ooo_dropped", "RcvQueueFull": "rcv_queue_full", "RcvPressureDrops": "rcv_pressure_drops",
	"SynCookiesBad": "syn_cookies_bad",
}

// Every drop reason names the counter its getter reads: moving that one
// field (and no other) makes dropReason return the name.
func TestDropReasonNamesItsCounter(t *testing.T) {
	for _, d := range stackDrops {
		var a, b stack.Counters
		field := fieldFor(t, "stack.", d.name, reflect.TypeOf(b))
		reflect.ValueOf(&b).Elem().FieldByName(field).SetUint(1)
		if got := dropReason(&a, &b, &tcp.Counters{}, &tcp.Counters{}); got != d.name {
			t.Errorf("stack.%s moved: dropReason = %q, want %q", field, got, d.name)
		}
	}
	for _, d := range tcpDrops {
		var a, b tcp.Counters
		field := fieldFor(t, "tcp.", d.name, reflect.TypeOf(b))
		reflect.ValueOf(&b).Elem().FieldByName(field).SetUint(1)
		if got := dropReason(&stack.Counters{}, &stack.Counters{}, &a, &b); got != d.name {
			t.Errorf("tcp.%s moved: dropReason = %q, want %q", field, got, d.name)
		}
	}
	if got := dropReason(&stack.Counters{RxFrames: 1, UDPDelivered: 1}, &stack.Counters{}, &tcp.Counters{SegsIn: 1}, &tcp.Counters{}); got != "" {
		t.Errorf("no drop counter moved: dropReason = %q", got)
	}
}

// fieldFor finds the field of typ whose snake-case name is name without
// prefix.
func fieldFor(t *testing.T, prefix, name string, typ reflect.Type) string {
	t.Helper()
	for i := range typ.NumField() {
		f := typ.Field(i).Name
		if prefix+snakeNames[f] == name {
			return f
		}
	}
	t.Fatalf("%s names no field of %v", name, typ)
	return ""
}
