#!/usr/bin/env bash
# demo.sh: UDP echo servers side by side on a throwaway veth lab (two
# network namespaces; the root namespace is never touched): the bare AF_XDP
# reflector, the libOS's udp-echo (shared-address mode) and the kernel's own
# UDP socket in namespace A, each driven from namespace B by the kernel
# client (kudp client); udp-echo also by the libOS client (udp-pingpong, on
# PINGADDR, an address the kernel in B does not have). Then TCP: the
# libOS's tcp-echo (shared-address mode) beside the kernel's TCP echo
# (ktcp echo), each driven by the kernel client (ktcp pingpong) and
# tcp-echo also by the libOS client (tcp-pingpong); and a bulk transfer
# into a kernel sink in A from the libOS (tcp-bulk) and from the kernel
# (ktcp bulk), SHA-256 checked against the sink's. Needs root, Go and
# iproute2.
#
#   N=100000 SIZE=64 WINDOW=32 REFLECT_FLAGS=-busy ECHO_FLAGS="-spin 1ms" \
#   TCPN=20000 TCPCONNS=16 BULK=200M scripts/demo.sh
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
TCPN=${TCPN:-20000}         # TCP round trips per run
TCPCONNS=${TCPCONNS:-16}    # connections of the concurrent TCP runs
BULK=${BULK:-200M}          # bytes per bulk transfer (K, M, G suffixes)
TCPPORT=7000
SINKPORT=9000

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
go build -o "$work/" ./cmd/vethlab ./cmd/xdp-reflect ./cmd/kudp ./cmd/udp-echo ./cmd/udp-pingpong \
	./cmd/ktcp ./cmd/tcp-echo ./cmd/tcp-pingpong ./cmd/tcp-bulk

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

declare -A T
# run_tcp TAG CONNS: ktcp pingpong (kernel client) from B against A:TCPPORT.
run_tcp() {
	local tag=$1 c=$2 out
	out=$(ip netns exec "$NSB" "$work/ktcp" pingpong -remote "$A:$TCPPORT" -n "$TCPN" -size "$SIZE" -conns "$c")
	echo "   $tag conns=$c: $out"
	T[$tag,$c]=$out
}
# run_tcpping TAG CONNS: tcp-pingpong (libOS client on PINGADDR) from B.
run_tcpping() {
	local tag=$1 c=$2 out
	out=$(ip netns exec "$NSB" "$work/tcp-pingpong" -iface "$IFB" -local "$PINGADDR" -remote "$A:$TCPPORT" -n "$TCPN" -size "$SIZE" -conns "$c" 2>"$work/tcpping.err") ||
		{ cat "$work/tcpping.err" >&2; echo "demo: tcp-pingpong failed: $out" >&2; exit 1; }
	echo "   $tag conns=$c: $out"
	T[$tag,$c]=$out
}

echo "== tcp-echo (libOS, shared address) in $NSA on $A:$TCPPORT $ECHO_FLAGS"
# shellcheck disable=SC2086
ip netns exec "$NSA" "$work/tcp-echo" -iface "$IFA" -addr "$A:$TCPPORT" -mode shared $ECHO_FLAGS >"$work/tcpecho.log" 2>&1 &
bgpid=$!
wait_for "$work/tcpecho.log" listening
sed 's/^/   /' "$work/tcpecho.log"
run_tcp libos 1
run_tcp libos "$TCPCONNS"
run_tcpping pingpong 1
run_tcpping pingpong "$TCPCONNS"
stop_bg
echo "   tcp-echo counters (selection):"
grep -E '^(echo|libos|libos.tcp):' "$work/tcpecho.log" | sed 's/^/     /'

echo "== ktcp echo (kernel TCP socket) in $NSA on $A:$TCPPORT"
ip netns exec "$NSA" "$work/ktcp" echo -addr "$A:$TCPPORT" >"$work/ktcpecho.log" 2>&1 &
bgpid=$!
wait_for "$work/ktcpecho.log" listening
run_tcp kernel 1
run_tcp kernel "$TCPCONNS"
stop_bg

echo "== bulk transfers of $BULK into ktcp sink (kernel TCP) in $NSA on $A:$SINKPORT"
ip netns exec "$NSA" "$work/ktcp" sink -addr "$A:$SINKPORT" >"$work/sink.log" 2>&1 &
bgpid=$!
wait_for "$work/sink.log" listening
declare -A BK
out=$(ip netns exec "$NSB" "$work/tcp-bulk" -iface "$IFB" -local "$PINGADDR" -remote "$A:$SINKPORT" -bytes "$BULK" 2>"$work/bulk.err") ||
	{ cat "$work/bulk.err" >&2; echo "demo: tcp-bulk failed: $out" >&2; exit 1; }
echo "   tcp-bulk ($PINGADDR, libOS): $out"
BK[libos]=$out
bytes=$(get bytes "$out")
out=$(ip netns exec "$NSB" "$work/ktcp" bulk -remote "$A:$SINKPORT" -bytes "$bytes")
echo "   ktcp bulk (kernel): $out"
BK[kernel]=$out
sleep 0.2
stop_bg
mapfile -t sunk < <(grep '^sha256=' "$work/sink.log")
for i in 0 1; do echo "   sink: ${sunk[$i]:-none}"; done
check_sha() { # check_sha TAG INDEX
	local want got
	want=$(get sha256 "${BK[$1]}")
	got=$(get sha256 "${sunk[$2]:-}")
	if [ "$want" = "$got" ]; then echo "equal"; else echo "DIFFERENT"; fi
}
SHA_LIBOS=$(check_sha libos 0)
SHA_KERNEL=$(check_sha kernel 1)
if [ "$SHA_LIBOS" != equal ] || [ "$SHA_KERNEL" != equal ]; then
	echo "demo: the sink's SHA-256 differs from the sender's" >&2
	exit 1
fi

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

echo
echo "== $TCPN TCP round trips of $SIZE-byte requests between $NSB (client) and $NSA (server), one outstanding per connection"
trow() { # trow SERVER CLIENT CONNS LINE
	printf '%-24s %-24s %6s %9s %9s %9s %9s %5s\n' "$1" "$2" "$3" "$(get rtt_p50_us "$4")" \
		"$(get rtt_p99_us "$4")" "$(get rtt_p999_us "$4")" "$(get rps "$4")" "$(get bad "$4")"
}
printf '%-24s %-24s %6s %9s %9s %9s %9s %5s\n' "server (in A)" "client (in B)" conns p50_us p99_us p999_us rps bad
for c in 1 "$TCPCONNS"; do trow "tcp-echo (libOS)" "ktcp pingpong (kernel)" "$c" "${T[libos,$c]}"; done
for c in 1 "$TCPCONNS"; do trow "tcp-echo (libOS)" "tcp-pingpong (libOS)" "$c" "${T[pingpong,$c]}"; done
for c in 1 "$TCPCONNS"; do trow "ktcp echo (kernel TCP)" "ktcp pingpong (kernel)" "$c" "${T[kernel,$c]}"; done

echo
echo "== bulk TCP transfer of $bytes bytes from $NSB into ktcp sink (kernel) in $NSA"
printf '%-24s %9s %10s %s\n' "sender (in B)" gbps elapsed_s "sha256 vs sink"
printf '%-24s %9s %10s %s\n' "tcp-bulk (libOS)" "$(get gbps "${BK[libos]}")" "$(get elapsed_s "${BK[libos]}")" "$SHA_LIBOS"
printf '%-24s %9s %10s %s\n' "ktcp bulk (kernel)" "$(get gbps "${BK[kernel]}")" "$(get elapsed_s "${BK[kernel]}")" "$SHA_KERNEL"
echo "(the libOS runs its TCP over AF_XDP in copy mode on veth; offloads are off on the lab's veth,"
echo " so the kernel sends one MTU-sized segment per packet too)"
