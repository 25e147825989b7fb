// Built against an installed orderly::tls: makes a self-signed certificate.
#include <cstdio>
#include <orderly/tls/self_signed.hpp>

int main() {
    auto pem = orderly::make_self_signed();
    if (!pem) {
        std::fprintf(stderr, "%s\n", pem.error().message().c_str());
        return 1;
    }
    std::printf("%zu bytes of certificate\n", pem->cert.size());
    return pem->cert.find("BEGIN CERTIFICATE") != std::string::npos ? 0 : 1;
}
