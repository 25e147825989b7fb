#pragma once
// result<T, E>: a value or an error, shaped like C++23 std::expected so that code can move to it
// later. value() on an error throws std::system_error (for an error_info, error_info_exception,
// whose what() is the error's message()); everything else is noexcept-friendly so hot
// paths can branch on has_value() without exceptions.

#include <cassert>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

#include "orderly/core/error_info.hpp"

namespace orderly {

// Wraps an error so it converts into any result<T, E> (like std::unexpected).
template <class E>
struct failure {
    E error;
};
template <class E>
failure(E) -> failure<E>;

inline failure<std::error_code> fail(std::error_code ec) {
    return {ec};
}
inline failure<error_info> fail(std::error_code ec, std::string detail) {
    return {error_info{ec, std::move(detail)}};
}

// What value() throws for an error_info: a std::system_error whose what() is exactly
// error_info::message(). std::system_error(code, detail) would append the code's message to a
// detail that already ends with it ("connect to ...: Connection refused: Connection refused").
class error_info_exception : public std::system_error {
  public:
    explicit error_info_exception(const error_info& e)
        : std::system_error(e.code), message_(e.message()) {}
    [[nodiscard]] const char* what() const noexcept override { return message_.what(); }

  private:
    std::runtime_error message_;  // copies without throwing, unlike a std::string
};

namespace detail {
[[noreturn]] inline void throw_error(const std::error_code& ec) {
    throw std::system_error(ec);
}
[[noreturn]] inline void throw_error(const error_info& e) {
    throw error_info_exception(e);
}
}  // namespace detail

template <class T, class E = std::error_code>
class [[nodiscard]] result {
    static_assert(!std::is_reference_v<T>, "result<T&> is not supported");

  public:
    using value_type = T;
    using error_type = E;

    template <class U = T,
              class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                       !std::is_same_v<std::remove_cvref_t<U>, result>>>
    result(U&& v) : ok_(true) {  // NOLINT(google-explicit-constructor)
        ::new (&value_) T(std::forward<U>(v));
    }
    template <class G, class = std::enable_if_t<std::is_constructible_v<E, const G&>>>
    result(const failure<G>& f) : ok_(false) {  // NOLINT(google-explicit-constructor)
        ::new (&error_) E(f.error);
    }
    template <class G, class = std::enable_if_t<std::is_constructible_v<E, G&&>>>
    result(failure<G>&& f) : ok_(false) {  // NOLINT(google-explicit-constructor)
        ::new (&error_) E(std::move(f.error));
    }

    result(const result& o) : ok_(o.ok_) { construct_from(o); }
    result(result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(o.ok_) {
        construct_from(std::move(o));
    }
    result& operator=(const result& o) {
        if (this != &o) {
            destroy();
            ok_ = o.ok_;
            construct_from(o);
        }
        return *this;
    }
    result& operator=(result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
        if (this != &o) {
            destroy();
            ok_ = o.ok_;
            construct_from(std::move(o));
        }
        return *this;
    }
    ~result() { destroy(); }

    [[nodiscard]] bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }

    // Throws std::system_error carrying the error when there is no value.
    T& value() & {
        if (!ok_) detail::throw_error(error_);
        return value_;
    }
    const T& value() const& {
        if (!ok_) detail::throw_error(error_);
        return value_;
    }
    T&& value() && {
        if (!ok_) detail::throw_error(error_);
        return std::move(value_);
    }
    template <class U>
    T value_or(U&& fallback) const& {
        return ok_ ? value_ : static_cast<T>(std::forward<U>(fallback));
    }

    // Precondition: has_value() / !has_value() respectively.
    T& operator*() & noexcept { return assert(ok_), value_; }
    const T& operator*() const& noexcept { return assert(ok_), value_; }
    T&& operator*() && noexcept { return assert(ok_), std::move(value_); }
    T* operator->() noexcept { return assert(ok_), &value_; }
    const T* operator->() const noexcept { return assert(ok_), &value_; }
    const E& error() const& noexcept { return assert(!ok_), error_; }
    E& error() & noexcept { return assert(!ok_), error_; }

  private:
    // Precondition: ok_ already equals o.ok_ and no member is alive.
    template <class R>
    void construct_from(R&& o) {
        if (ok_) {
            ::new (&value_) T(std::forward<R>(o).value_);
        } else {
            ::new (&error_) E(std::forward<R>(o).error_);
        }
    }
    void destroy() noexcept {
        if (ok_) {
            value_.~T();
        } else {
            error_.~E();
        }
    }
    union {
        T value_;
        E error_;
    };
    bool ok_;
};

template <class E>
class [[nodiscard]] result<void, E> {
  public:
    using value_type = void;
    using error_type = E;

    result() = default;
    template <class G, class = std::enable_if_t<std::is_constructible_v<E, const G&>>>
    result(const failure<G>& f) : error_(f.error), ok_(false) {}  // NOLINT
    template <class G, class = std::enable_if_t<std::is_constructible_v<E, G&&>>>
    result(failure<G>&& f) : error_(std::move(f.error)), ok_(false) {}  // NOLINT

    [[nodiscard]] bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    void value() const {
        if (!ok_) detail::throw_error(error_);
    }
    void operator*() const noexcept { assert(ok_); }
    const E& error() const& noexcept { return assert(!ok_), error_; }

  private:
    E error_{};
    bool ok_ = true;
};

}  // namespace orderly
