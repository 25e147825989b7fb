#!/bin/sh
# Runs the libFuzzer targets built by the `fuzz` preset.
# Usage: sh fuzz/run.sh BUILD_DIR [--seconds N] [TARGET...]
#   BUILD_DIR  the fuzz preset's build directory (build/fuzz)
#   --seconds  how long each target runs (default 60)
#   TARGET     fuzz_endpoint, fuzz_cli_args, fuzz_serve_request, fuzz_sock_diag,
#              fuzz_tls_handshake (default: all)
# Each target starts from a copy of fuzz/corpus/TARGET and fuzz/regressions/TARGET in
# BUILD_DIR/fuzz-work/TARGET (the corpus in the repository is never changed; new inputs worth
# keeping are copied back by hand). Prints one line per target: runs, coverage, corpus size and
# the result; exits 1 when any target crashed, naming the input that did it.
set -eu

die() {
  printf 'fuzz/run.sh: %s\n' "$*" >&2
  exit 2
}

[ $# -ge 1 ] || die "usage: sh fuzz/run.sh BUILD_DIR [--seconds N] [TARGET...]"
build=$1
shift
seconds=60
targets=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds)
      [ $# -ge 2 ] || die "--seconds needs a value"
      seconds=$2
      shift 2
      ;;
    --seconds=*)
      seconds=${1#--seconds=}
      shift
      ;;
    -*) die "unknown option '$1'" ;;
    *)
      targets="$targets $1"
      shift
      ;;
  esac
done
case "$seconds" in
  '' | *[!0-9]*) die "--seconds takes a whole number, not '$seconds'" ;;
esac
[ -n "$targets" ] || targets="fuzz_endpoint fuzz_cli_args fuzz_serve_request fuzz_sock_diag fuzz_tls_handshake"

src=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
work="$build/fuzz-work"
failed=0

# Longest input worth trying: an address is short, a command line a few hundred bytes, a request
# a few chunks, a sock_diag datagram a few dozen sockets (the seeds are up to 4 KB).
max_len() {
  case "$1" in
    fuzz_endpoint) echo 256 ;;
    fuzz_cli_args) echo 1024 ;;
    fuzz_sock_diag) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

printf '%-20s %10s %8s %8s %8s  %s\n' target runs cov ft corpus result
for t in $targets; do
  bin="$build/fuzz/$t"
  [ -x "$bin" ] || die "no $bin (build it: cmake --preset fuzz && cmake --build --preset fuzz)"
  [ -d "$src/corpus/$t" ] || die "no seed corpus fuzz/corpus/$t"
  dir="$work/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$src/corpus/$t"/* "$dir/corpus/"
  if [ -d "$src/regressions/$t" ]; then
    for f in "$src/regressions/$t"/*; do
      [ -f "$f" ] && cp "$f" "$dir/corpus/"
    done
  fi
  log="$dir/fuzz.log"
  rc=0
  "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corpus=$(find "$dir/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    failed=1
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    result="CRASH (exit $rc) input: ${crash:-see $log}"
  fi
  printf '%-20s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$result"
  if [ "$rc" -ne 0 ]; then
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|runtime error' "$log" | head -n 5 | sed 's/^/    /'
    printf '    log: %s\n' "$log"
  fi
done
exit "$failed"
