#!/bin/bash
# Instructions (Ir) per echoed message of an echo peer, counted by callgrind: deterministic and
# insensitive to the machine's load, unlike msgs/s. The peer runs under callgrind; the load
# generator drives W2 pingpong against it twice, for SHORT and LONG seconds, and the answer is the
# slope (Ir_long - Ir_short) / (msgs_long - msgs_short), so start-up and the connections' set-up
# cancel out. Only user space is counted: the kernel's share is not in it.
# Usage: benchmarks/callgrind_per_msg.sh BUILD_DIR PEER [CONNECTIONS [SIZE]]
#   PEER: bench_orderly (backend from ORDERLY_BACKEND) or bench_raw_uring, bench_raw_epoll, ...
#   BUILD_DIR: configured with -DORDERLY_BUILD_BENCHMARKS=ON (Release, -g for the annotation).
set -eu
build=$1 peer=$2 conns=${3:-10} size=${4:-64}
short=${SHORT:-1} long=${LONG:-3}
dir=$(mktemp -d /tmp/callgrind_per_msg.XXXXXX)
one_run() {  # seconds -> "Ir messages"
    out=$dir/cg.$1
    # Valgrind 3.19 keeps its big lock while a thread waits in io_uring_enter, so a loop thread
    # that blocks before the main thread printed its line stalls it until a completion comes:
    # connect (and hang up) until the line is there. One file per run: the short run's line must
    # not stand for the long run's peer. A peer that exits first (its random port was taken:
    # "bind: Address already in use") is started again on another port, at most 5 times.
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 20000))
        valgrind --tool=callgrind --callgrind-out-file="$out" "$build/benchmarks/servers/$peer" \
            --port $port >"$dir/srv.$1.out" 2>"$dir/srv.$1.err" &
        vpid=$!
        i=0
        until grep -q listening "$dir/srv.$1.out" 2>/dev/null || ! kill -0 $vpid 2>/dev/null; do
            i=$((i + 1)); [ $i -lt 600 ] || { kill -9 $vpid; echo "no listening line" >&2; exit 1; }
            (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || true
            sleep 0.2
        done
        grep -q listening "$dir/srv.$1.out" 2>/dev/null && break
        wait $vpid 2>/dev/null || true
        rm -f "$out".*
        [ $attempt -lt 5 ] || { echo "the peer exited: $(grep -v '^==' "$dir/srv.$1.err")" >&2; exit 1; }
    done
    timeout 120 "$build/benchmarks/load/orderly_load" --target "127.0.0.1:$port" \
        --workload pingpong --client uring --connections "$conns" --size "$size" \
        --seconds "$1" --warmup 0 >"$dir/load.$1.json"
    # Under valgrind a peer blocked in the kernel may not see SIGINT: dump, then kill.
    timeout 60 callgrind_control -d $vpid >/dev/null
    kill -9 $vpid; wait $vpid 2>/dev/null || true
    ir=$(grep -h '^summary:' "$out".* | awk '{s += $2} END {print s}')
    msgs=$(grep -o '"messages": [0-9]*' "$dir/load.$1.json" | awk '{print $2}')
    [ "${msgs:-0}" -gt 0 ] || { echo "no message echoed: $(cat "$dir/load.$1.json")" >&2; exit 1; }
    echo "$ir $msgs"
}
a=$(one_run "$short")
b=$(one_run "$long")
echo "$a $b" | awk -v peer="$peer" -v be="${ORDERLY_BACKEND:-}" '{
    printf "%s%s: %.0f Ir/msg (short: %d Ir, %d msgs; long: %d Ir, %d msgs)\n",
        peer, be == "" ? "" : " (" be ")", ($3 - $1) / ($4 - $2), $1, $2, $3, $4 }'
echo "profiles in $dir (callgrind_annotate $dir/cg.$long.*)"
