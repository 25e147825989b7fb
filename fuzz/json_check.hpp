#pragma once
// is_valid_json(text): a strict checker of one JSON value (RFC 8259) with nothing after it but
// whitespace, whose strings are valid UTF-8 — what a consumer's parser (Python's json, jq) needs.
// For fuzz targets that print JSON from arbitrary input.

#include <cstddef>
#include <string_view>

namespace orderly::fuzz {

class json_checker {
  public:
    explicit json_checker(std::string_view s) : s_(s) {}

    bool check() {
        if (!value(0)) return false;
        space();
        return i_ == s_.size();
    }

  private:
    static constexpr int max_depth = 64;

    [[nodiscard]] bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
    void space() {
        while (i_ < s_.size() &&
               (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }
    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }
    bool digits() {
        const std::size_t start = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
            ++i_;
        return i_ > start;
    }
    bool number() {
        if (at('-')) ++i_;
        if (at('0')) {
            ++i_;
        } else if (!digits()) {
            return false;
        }
        if (at('.')) {
            ++i_;
            if (!digits()) return false;
        }
        if (at('e') || at('E')) {
            ++i_;
            if (at('+') || at('-')) ++i_;
            if (!digits()) return false;
        }
        return true;
    }
    bool hex4() {
        for (int k = 0; k < 4; ++k, ++i_) {
            if (i_ >= s_.size()) return false;
            const char c = s_[i_];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                return false;
        }
        return true;
    }
    // One UTF-8 sequence at i_ (not ASCII), by the table of RFC 3629.
    bool utf8() {
        const auto b = [&](std::size_t k) {
            return i_ + k < s_.size() ? static_cast<unsigned char>(s_[i_ + k]) : 0U;
        };
        const auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
            return b(k) >= lo && b(k) <= hi;
        };
        const unsigned c = b(0);
        std::size_t n = 0;
        if (c >= 0xc2 && c <= 0xdf) {
            n = cont(1) ? 2 : 0;
        } else if (c == 0xe0) {
            n = cont(1, 0xa0) && cont(2) ? 3 : 0;
        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
            n = cont(1) && cont(2) ? 3 : 0;
        } else if (c == 0xed) {
            n = cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
        } else if (c == 0xf0) {
            n = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
        } else if (c >= 0xf1 && c <= 0xf3) {
            n = cont(1) && cont(2) && cont(3) ? 4 : 0;
        } else if (c == 0xf4) {
            n = cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
        }
        i_ += n;
        return n != 0;
    }
    bool string() {
        if (!at('"')) return false;
        ++i_;
        while (i_ < s_.size()) {
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                ++i_;
                if (i_ >= s_.size()) return false;
                const char e = s_[i_++];
                if (e == 'u') {
                    if (!hex4()) return false;
                } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                    return false;
                }
            } else if (c < 0x80) {
                ++i_;
            } else if (!utf8()) {
                return false;
            }
        }
        return false;
    }
    template <class Element>
    bool sequence(char close, Element&& element) {
        ++i_;
        space();
        if (at(close)) {
            ++i_;
            return true;
        }
        for (;;) {
            if (!element()) return false;
            space();
            if (at(close)) {
                ++i_;
                return true;
            }
            if (!at(',')) return false;
            ++i_;
            space();
        }
    }
    bool value(int depth) {
        if (depth > max_depth) return false;
        space();
        if (at('{')) {
            return sequence('}', [&] {
                if (!string()) return false;
                space();
                if (!at(':')) return false;
                ++i_;
                return value(depth + 1);
            });
        }
        if (at('[')) return sequence(']', [&] { return value(depth + 1); });
        if (at('"')) return string();
        if (at('t')) return literal("true");
        if (at('f')) return literal("false");
        if (at('n')) return literal("null");
        return number();
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

inline bool is_valid_json(std::string_view text) {
    return json_checker(text).check();
}

}  // namespace orderly::fuzz
