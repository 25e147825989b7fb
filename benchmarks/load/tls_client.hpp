// The TLS side of orderly_load (--tls): OpenSSL clients for W1 latency, W2 pingpong, W3 bulk
// (tls_echo.cpp) and W4 churn (tls_churn.cpp) against the TLS peers.
//
// TLS 1.3 only, and one cipher suite offered (TLS_AES_128_GCM_SHA256), so that every server
// negotiates the same one whatever its defaults. The server's certificate is NOT verified: this
// is a benchmark against throwaway certificates on loopback, and verification would only add the
// same client cost to every peer. No session resumption: every churn connection does a full
// handshake. Non-blocking sockets, SSL on the descriptor, level-triggered epoll.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>

#include "options.hpp"

namespace load {

// The client context (nullptr with set_error when OpenSSL refuses).
[[nodiscard]] SSL_CTX* tls_client_ctx();

// What SSL_get_error says for a call that returned r <= 0: EPOLLIN or EPOLLOUT to wait for,
// or 0 for a failure (its reason in `why`).
[[nodiscard]] std::uint32_t tls_wants(SSL* ssl, int r, std::string& why);

// Adds tls_version, tls_cipher and tls_verify to the output (from the first connection).
void put_tls_info(SSL* ssl);

void run_tls_echo(const options& o, double hard_deadline);  // latency, pingpong, bulk
void run_tls_churn(const options& o, double hard_deadline);

}  // namespace load
