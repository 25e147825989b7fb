#pragma once
// FUZZ_CHECK(cond): an assertion that stays on in optimised builds (the fuzz preset defines
// NDEBUG) and in the replay tests, and that a fuzzer reports as a crash with its input.

#include <cstdio>
#include <cstdlib>

namespace orderly::fuzz {

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", file, line, what);
    std::abort();
}

}  // namespace orderly::fuzz

#define FUZZ_CHECK(cond) \
    ((cond) ? static_cast<void>(0) : ::orderly::fuzz::check_failed(#cond, __FILE__, __LINE__))
