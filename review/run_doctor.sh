#!/bin/sh
# usage: review/run_doctor.sh MODE [ARG] [doctor options...]: starts leaky2.py MODE, waits for
# "ready" plus 1.2 s (the default --min-age), runs orderly doctor on it, prints the exit code.
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../build/dev/tools/orderly/orderly
mode=$1; shift
arg=1
case $mode in cw-pile) arg=$1; shift;; esac
fifo=$(mktemp -u); mkfifo "$fifo"
python3 "$here/leaky2.py" "$mode" "$arg" 30 > "$fifo" &
pid=$!
exec 3< "$fifo"
read -r _ port <&3; read -r ready <&3
sleep 1.2
"$bin" doctor "$@" $pid; echo "exit $?"
ss -tanpie | grep "pid=$pid," | sed 's/^/ss: /'
kill $pid; rm -f "$fifo"
