// libFuzzer target: the PROXY protocol header. The first byte picks the mode
// and whether the peer is allowed, the rest is the start of a connection.
// Every prefix must answer NEED_MORE or exactly what the whole input does.
#include "cunicorn/http_parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace fuzz_proxy {

using namespace cunicorn::http;

inline void require(bool ok) {
    if (!ok) std::abort();
}

inline bool same(const ProxyResult &a, const ProxyResult &b) {
    return a.status == b.status && a.error == b.error && a.present == b.present && a.consumed == b.consumed &&
           a.message == b.message && a.info.protocol == b.info.protocol &&
           a.info.client_addr == b.info.client_addr && a.info.proxy_addr == b.info.proxy_addr &&
           a.info.client_port == b.info.client_port && a.info.proxy_port == b.info.proxy_port;
}

inline int one(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const ProxyProtocol mode = static_cast<ProxyProtocol>(data[0] & 3);
    const bool allowed = !(data[0] & 4);
    const std::string in(reinterpret_cast<const char *>(data) + 1, size - 1);
    std::vector<char> c(in.begin(), in.end());
    ProxyResult whole = parse_proxy(c.data(), c.size(), mode, allowed, "10.0.0.1");
    require(whole.consumed <= c.size());
    if (whole.status == Status::ERROR) require(!whole.message.empty() && error_status(whole.error) >= 400);
    if (whole.status == Status::DONE && whole.present) {
        require(whole.consumed > 0);
        const std::string &p = whole.info.protocol;
        require(p == "TCP4" || p == "TCP6" || p == "LOCAL" || p == "UNSPEC");
        if (p == "TCP4" || p == "TCP6")
            require(whole.info.client_port >= 0 && whole.info.client_port <= 65535 && whole.info.proxy_port >= 0 &&
                    whole.info.proxy_port <= 65535);
    }
    if (whole.status != Status::DONE || whole.present) require(mode != ProxyProtocol::OFF);
    // Prefixes: every one up to the v2 fixed header, the ends around the
    // result, and a few spread over the rest.
    std::vector<size_t> ks;
    for (size_t k = 0; k < 20 && k < in.size(); ++k) ks.push_back(k);
    for (size_t k : {whole.consumed, whole.consumed + 1, in.size() - 1, in.size() / 2})
        if (k < in.size()) ks.push_back(k);
    uint32_t seed = uint32_t(size) * 2654435761u;
    for (int i = 0; i < 8 && !in.empty(); ++i) {
        seed = seed * 1103515245u + 12345u;
        ks.push_back((seed >> 8) % in.size());
    }
    for (size_t k : ks) {
        std::vector<char> p(in.begin(), in.begin() + long(k));
        ProxyResult r = parse_proxy(p.data(), k, mode, allowed, "10.0.0.1");
        require(r.status == Status::NEED_MORE || same(r, whole));
    }
    return 0;
}

}  // namespace fuzz_proxy

#ifndef CUNICORN_FUZZ_NO_ENTRY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_proxy::one(data, size);
}
#endif
