// The load generator's one JSON object on stdout, its first error, and the watchdog's fallback
// output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace load {

// A flat JSON object, keys in insertion order (a repeated key overwrites). Numbers that are not
// finite become null so the driver never has to parse "inf".
class json_object {
  public:
    void raw(std::string_view key, std::string value);
    void num(std::string_view key, double v);
    void num(std::string_view key, std::optional<double> v);
    void integer(std::string_view key, std::int64_t v);
    void integer(std::string_view key, std::uint64_t v);
    void boolean(std::string_view key, bool v);
    void str(std::string_view key, std::string_view v);
    [[nodiscard]] std::string dump() const;

  private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

// The object main() prints at the end; every workload adds its fields to it.
json_object& out();

// Records an error (printed to stderr at once). The first one wins: later ones are usually its
// consequences.
void set_error(std::string msg);
[[nodiscard]] bool has_error();
[[nodiscard]] const std::string& first_error();

// Arms alarm(seconds): when it fires, a minimal JSON object naming `workload` is written to stdout
// and the process exits with status 3. The last line of defence against a bug in a loop: every
// loop is bounded by its own hard cap already, but a hung process would stall the whole run.
void arm_watchdog(std::string_view workload, double seconds);
void disarm_watchdog();

}  // namespace load
