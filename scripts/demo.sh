#!/usr/bin/env bash
# demo.sh: the bare AF_XDP reflector against the kernel's own UDP, side by
# side, on a throwaway veth lab (two network namespaces; the root namespace
# is never touched). Needs root, Go and iproute2.
#
#   N=100000 SIZE=64 WINDOW=32 REFLECT_FLAGS=-busy scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}            # round trips per run
SIZE=${SIZE:-64}          # UDP payload bytes
WINDOW=${WINDOW:-32}      # datagrams in flight for the throughput run
REFLECT_FLAGS=${REFLECT_FLAGS:-}
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
go build -o "$work/" ./cmd/vethlab ./cmd/xdp-reflect ./cmd/kudp

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

echo "== kudp echo (kernel UDP socket) in $NSA on $A:$PORT"
ip netns exec "$NSA" "$work/kudp" echo -addr "$A:$PORT" >"$work/echo.log" 2>&1 &
bgpid=$!
wait_for "$work/echo.log" listening
run_client kernel 1
run_client kernel "$WINDOW"
stop_bg

echo
echo "== $N round trips of $SIZE-byte UDP payloads, client: kudp (kernel socket) in $NSB"
printf '%-26s %12s %12s %12s %12s %10s\n' "server (in $NSA)" outstanding p50_us p99_us pps lost+bad
for tag in xdp kernel; do
	name="xdp-reflect (AF_XDP)"
	[ "$tag" = kernel ] && name="kudp echo (kernel UDP)"
	for k in 1 "$WINDOW"; do
		line=${R[$tag,$k]}
		printf '%-26s %12s %12s %12s %12s %10s\n' "$name" "$k" "$(get rtt_p50_us "$line")" \
			"$(get rtt_p99_us "$line")" "$(get pps "$line")" \
			"$(( $(get lost "$line") + $(get bad "$line") ))"
	done
done
echo "(latency includes the kernel client's own send/receive path in $NSB; veth runs AF_XDP in copy mode)"
