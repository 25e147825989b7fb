#pragma once
// unique_fd: the single owner of a file descriptor. Move-only; closes exactly once.

#include <utility>

namespace orderly {

class unique_fd {
  public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership without closing; the caller now owns the returned descriptor.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the current descriptor (if any) and takes ownership of `fd`. Never throws.
    void reset(int fd = -1) noexcept;

    // Closes now and reports close(2)'s errno (0 on success, also when there was nothing to close).
    // The descriptor is released even when close(2) fails (Linux semantics; EINTR is not retried).
    int close() noexcept;

  private:
    int fd_ = -1;
};

}  // namespace orderly
