#pragma once
// The event loops' backend for orderly serve: --backend, else ORDERLY_BACKEND, else automatic.

#include <string>

#include "orderly/event/loop.hpp"

namespace orderly::cli {

struct backend_choice {
    loop_backend backend = loop_backend::automatic;
    bool fell_back = false;  // automatic, and io_uring is not usable here
    std::string error;       // io_uring was asked for and cannot run here
};

// `flag` is --backend's value (empty: not given). Unsets ORDERLY_BACKEND so that the library
// does not read it again: call before any loop thread runs.
backend_choice choose_backend(const std::string& flag);

}  // namespace orderly::cli
