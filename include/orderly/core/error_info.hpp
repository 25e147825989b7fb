#pragma once
// An error code plus a sentence for humans. Used where the code alone cannot say what went wrong
// (which part of an address did not parse, which host did not resolve); hot paths use a bare
// std::error_code instead.

#include <string>
#include <system_error>
#include <utility>

// orderly needs C++20 or later. Neither the package's pkg-config flags nor its CMake target pin a
// standard (the target asks for cxx_std_20 as a minimum), so a consumer chooses 20, 23, ...
#if __cplusplus < 202002L
#error "orderly needs C++20 or later: compile with -std=c++20 (or a newer standard)"
#endif

namespace orderly {

struct error_info {
    std::error_code code;
    std::string detail;  // names the offending input and, where there is one, what to do

    error_info() = default;
    error_info(std::error_code c, std::string d = {}) : code(c), detail(std::move(d)) {}  // NOLINT

    // "detail" when given, otherwise the code's own message.
    [[nodiscard]] std::string message() const { return detail.empty() ? code.message() : detail; }
    friend bool operator==(const error_info& a, const std::error_code& b) { return a.code == b; }
};

}  // namespace orderly
