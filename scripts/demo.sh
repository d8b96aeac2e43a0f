#!/usr/bin/env bash
# demo.sh: UDP echo servers side by side on a throwaway veth lab (two
# network namespaces; the root namespace is never touched): the bare AF_XDP
# reflector, the libOS's udp-echo (shared-address mode) and the kernel's own
# UDP socket in namespace A, each driven from namespace B by the kernel
# client (kudp client); udp-echo also by the libOS client (udp-pingpong, on
# PINGADDR, an address the kernel in B does not have). Needs root, Go and
# iproute2.
#
#   N=100000 SIZE=64 WINDOW=32 REFLECT_FLAGS=-busy ECHO_FLAGS="-spin 1ms" scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}            # round trips per run
SIZE=${SIZE:-64}          # UDP payload bytes
WINDOW=${WINDOW:-32}      # datagrams in flight for the throughput run
REFLECT_FLAGS=${REFLECT_FLAGS:-}
ECHO_FLAGS=${ECHO_FLAGS:-}  # extra udp-echo flags
PING_FLAGS=${PING_FLAGS:-}  # extra udp-pingpong flags
PINGADDR=198.51.100.3       # udp-pingpong's own address in B (B's kernel has ADDRB)
PORT=7777

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces, eBPF, AF_XDP)" >&2
	exit 1
fi
command -v ip >/dev/null || { echo "demo: needs iproute2 (ip)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/demixdp-demo.XXXXXX")
lab="dxdemo$(printf '%04x%04x' $RANDOM $RANDOM)"
lab_up=0
bgpid=""

cleanup() {
	rc=$?
	if [ -n "$bgpid" ] && kill -0 "$bgpid" 2>/dev/null; then
		kill -INT "$bgpid" 2>/dev/null || true
		sleep 0.5
		kill -KILL "$bgpid" 2>/dev/null || true
		wait "$bgpid" 2>/dev/null || true
	fi
	if [ "$lab_up" = 1 ]; then
		"$work/vethlab" down -name "$lab" 2>/dev/null || {
			ip netns del "$lab-a" 2>/dev/null || true
			ip netns del "$lab-b" 2>/dev/null || true
		}
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building"
go build -o "$work/" ./cmd/vethlab ./cmd/xdp-reflect ./cmd/kudp ./cmd/udp-echo ./cmd/udp-pingpong

echo "== lab $lab (shared-address mode: the kernel in A keeps ARP/ICMP and owns ADDRA too)"
lab_up=1
vars=$("$work/vethlab" up -shared -name "$lab")
eval "$vars"
echo "$vars" | sed 's/^/   /'
A=${ADDRA%/*}

# wait_for FILE PATTERN: until PATTERN shows in FILE (10 s at most).
wait_for() {
	for _ in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		if [ -n "$bgpid" ] && ! kill -0 "$bgpid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "demo: '$2' never appeared in $1:" >&2
	cat "$1" >&2
	return 1
}

# stop_bg: SIGINT the background server and wait for it.
stop_bg() {
	kill -INT "$bgpid"
	wait "$bgpid" || { echo "demo: server exited with $?" >&2; return 1; }
	bgpid=""
}

get() { # get KEY LINE
	local k=$1 line=$2
	for kv in $line; do
		[ "${kv%%=*}" = "$k" ] && { echo "${kv#*=}"; return; }
	done
	echo "?"
}

declare -A R
# run_client TAG OUTSTANDING: kudp client from namespace B against A:PORT.
run_client() {
	local tag=$1 k=$2 out
	out=$(ip netns exec "$NSB" "$work/kudp" client -remote "$A:$PORT" -n "$N" -size "$SIZE" -outstanding "$k")
	echo "   $tag outstanding=$k: $out"
	R[$tag,$k]=$out
}

echo "== xdp-reflect in $NSA on $IFA (port $PORT) $REFLECT_FLAGS"
# shellcheck disable=SC2086
ip netns exec "$NSA" "$work/xdp-reflect" -iface "$IFA" -port "$PORT" -addr "$A" $REFLECT_FLAGS >"$work/reflect.log" 2>&1 &
bgpid=$!
wait_for "$work/reflect.log" listening
sed 's/^/   /' "$work/reflect.log"
run_client xdp 1
run_client xdp "$WINDOW"
stop_bg
echo "   reflector counters:"
grep -v listening "$work/reflect.log" | sed 's/^/     /'

echo "== udp-echo (libOS, shared address) in $NSA on $A:$PORT $ECHO_FLAGS"
# shellcheck disable=SC2086
ip netns exec "$NSA" "$work/udp-echo" -iface "$IFA" -addr "$A:$PORT" -mode shared $ECHO_FLAGS >"$work/udpecho.log" 2>&1 &
bgpid=$!
wait_for "$work/udpecho.log" listening
sed 's/^/   /' "$work/udpecho.log"
run_client libos 1
run_client libos "$WINDOW"
# shellcheck disable=SC2086
out=$(ip netns exec "$NSB" "$work/udp-pingpong" -iface "$IFB" -local "$PINGADDR:9000" -remote "$A:$PORT" -n "$N" -size "$SIZE" $PING_FLAGS 2>"$work/pingpong.err") ||
	{ cat "$work/pingpong.err" >&2; echo "demo: udp-pingpong failed: $out" >&2; exit 1; }
sed 's/^/   /' "$work/pingpong.err"
echo "   udp-pingpong ($PINGADDR, libOS) outstanding=1: $out"
R[pingpong,1]=$out
stop_bg
echo "   udp-echo counters (selection):"
grep -E '^(echo|queue|libos|libos.steering):' "$work/udpecho.log" | sed 's/^/     /'

echo "== kudp echo (kernel UDP socket) in $NSA on $A:$PORT"
ip netns exec "$NSA" "$work/kudp" echo -addr "$A:$PORT" >"$work/echo.log" 2>&1 &
bgpid=$!
wait_for "$work/echo.log" listening
run_client kernel 1
run_client kernel "$WINDOW"
stop_bg

echo
echo "== $N round trips of $SIZE-byte UDP payloads between namespaces $NSB (client) and $NSA (server)"
row() { # row SERVER CLIENT OUTSTANDING LINE
	printf '%-24s %-24s %11s %9s %9s %9s %9s\n' "$1" "$2" "$3" "$(get rtt_p50_us "$4")" \
		"$(get rtt_p99_us "$4")" "$(get pps "$4")" "$(( $(get lost "$4") + $(get bad "$4") ))"
}
printf '%-24s %-24s %11s %9s %9s %9s %9s\n' "server (in A)" "client (in B)" outstanding p50_us p99_us pps lost+bad
for k in 1 "$WINDOW"; do row "xdp-reflect (AF_XDP)" "kudp client (kernel)" "$k" "${R[xdp,$k]}"; done
for k in 1 "$WINDOW"; do row "udp-echo (libOS)" "kudp client (kernel)" "$k" "${R[libos,$k]}"; done
row "udp-echo (libOS)" "udp-pingpong (libOS)" 1 "${R[pingpong,1]}"
for k in 1 "$WINDOW"; do row "kudp echo (kernel UDP)" "kudp client (kernel)" "$k" "${R[kernel,$k]}"; done
echo "(a kernel client's latency includes its own send/receive path; veth runs AF_XDP in copy mode;"
echo " on a small VM, spinning processes compete for cores, which shows in p99)"
