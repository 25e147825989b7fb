#!/bin/sh
# Builds one review program against the public headers and build/dev/liborderly.a.
# usage: review/build.sh name   (review/name.cpp -> build/review/name)
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mkdir -p "$root/build/review"
nice -n 10 g++ -std=c++20 -g -O0 -Wall -Wextra -I"$root/include" "$here/$1.cpp" \
    "$root/build/dev/liborderly.a" -luring -pthread -o "$root/build/review/$1"
