// The six workloads, one file each (docs/benchmarks.md describes them). Each runs to the end or
// to `hard_deadline` (seconds, monotonic), adds its fields to out() and reports failures with
// set_error.
#pragma once

#include "options.hpp"

namespace load {

void run_latency(const options& o, double hard_deadline);   // W1, latency.cpp
void run_pingpong(const options& o, double hard_deadline);  // W2, pingpong.cpp
void run_bulk(const options& o, double hard_deadline);      // W3, bulk.cpp
void run_churn(const options& o, double hard_deadline);     // W4, churn.cpp
void run_idle(const options& o, double hard_deadline);      // W5, idle.cpp
void run_stop(const options& o, double hard_deadline);      // W6, stop.cpp

}  // namespace load
