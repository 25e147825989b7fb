#pragma once
// The JSON form of a process snapshot, one object on one line: what `orderly doctor --json`
// prints. Field names are stable; docs/doctor.md documents each. Every field is always present
// (null when unknown). Text is valid UTF-8: bytes of a Unix socket name that are not print as
// U+FFFD.

#include <string>

#include "orderly/diag/process_snapshot.hpp"

namespace orderly::diag {

std::string to_json(const process_snapshot& p);
std::string to_json(const socket_info& s);
std::string to_json(const finding& f);

}  // namespace orderly::diag
