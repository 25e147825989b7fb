#!/bin/sh
# The main job of `./dev demo`: live experiments on loopback with real sockets.
# Usage: tools/demo.sh BUILD_DIR [lab arguments...]
set -eu
BUILD=$1
shift
CLI="$BUILD/tools/orderly/orderly"
if [ -x "$CLI" ]; then
  mkdir -p build/lab
  "$CLI" lab --svg build/lab "$@"
  echo
  echo "Ladder diagrams: build/lab/*.svg (open them in a browser)"
  exit 0
fi

# Before the CLI existed the demo was the examples; they still run when it is not built.
EX="$BUILD/examples"
echo "== naive close() vs close_gracefully(): a server that does not read the whole request"
"$EX/naive_vs_orderly"
echo
echo "== the tutorial clients against tutorial_server (2 connections)"
log=$(mktemp)
"$EX/tutorial_server" 127.0.0.1:0 2 2>"$log" &
pid=$!
i=0
while ! grep -q '^listening on ' "$log"; do
  i=$((i + 1))
  [ $i -gt 100 ] && { echo "tutorial_server did not start" >&2; kill $pid; exit 1; }
  sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$log" | head -n 1)
echo "-- half_close_client $addr"
"$EX/half_close_client" "$addr" "Hello, server"
echo "-- plain_client $addr"
"$EX/plain_client" "$addr" "Hello, world"
wait $pid
echo "-- server side:"
cat "$log"
rm -f "$log"
