// Built with -std=c++23 and orderly.pc's flags: they must leave the consumer's standard alone.
#include <orderly/orderly.hpp>

static_assert(__cplusplus > 202002L, "orderly's flags downgraded a C++23 consumer");

int main() {
    return orderly::endpoint::parse("127.0.0.1:1") ? 0 : 1;
}
