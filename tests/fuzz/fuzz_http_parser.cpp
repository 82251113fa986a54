// libFuzzer target: PROXY header, request heads and bodies on one
// connection. The first two bytes pick Options (so limits, folding, header
// map, trust and PROXY mode are all explored), the rest is the wire. Besides
// ASan/UBSan findings it traps on broken invariants: views outside the input,
// consumed past the end, and a head parsed in two calls (resume path) giving
// a different answer than in one.
#include "cunicorn/http_parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace fuzz_http_parser {

using namespace cunicorn::http;

inline void require(bool ok) {
    if (!ok) std::abort();
}

inline bool inside(std::string_view v, const char *b, size_t n, const std::string &store) {
    if (v.empty()) return true;
    const char *p = v.data();
    if (p >= b && p <= b + n && v.size() <= size_t(b + n - p)) return true;
    const char *s = store.data();
    return p >= s && p <= s + store.size() && v.size() <= size_t(s + store.size() - p);
}

inline void check_views(const Request &r, const char *b, size_t n) {
    require(inside(r.method, b, n, r.storage) && inside(r.target, b, n, r.storage));
    require(inside(r.path, b, n, r.storage) && inside(r.query, b, n, r.storage));
    require(inside(r.fragment, b, n, r.storage));
    for (const Header &h : r.headers) require(inside(h.name, b, n, r.storage) && inside(h.value, b, n, r.storage));
}

inline Options options_from(uint8_t f, uint8_t g) {
    static const size_t lines[] = {4094, 0, 16, 100};
    static const size_t fields[] = {100, 1, 3, 32768};
    static const size_t sizes[] = {8190, 10, 64, 200};
    Options o = Options::from_settings(long(lines[(g >> 1) & 3]), long(fields[(g >> 3) & 3]),
                                       long(sizes[(f >> 6) & 3]));
    o.permit_obsolete_folding = f & 1;
    o.strip_header_spaces = f & 2;
    o.permit_unconventional_http_method = f & 4;
    o.permit_unconventional_http_version = f & 8;
    o.casefold_http_method = f & 16;
    o.header_map = (f & 32) ? ((g & 32) ? HeaderMap::DANGEROUS : HeaderMap::REFUSE) : HeaderMap::DROP;
    return o;
}

inline bool same_request(const Request &a, const Request &b) {
    if (a.method != b.method || a.target != b.target || a.path != b.path || a.query != b.query ||
        a.fragment != b.fragment || a.version_major != b.version_major ||
        a.version_minor != b.version_minor || a.body != b.body || a.content_length != b.content_length ||
        a.keep_alive != b.keep_alive || a.expect_continue != b.expect_continue ||
        a.must_close != b.must_close || a.scheme != b.scheme || a.headers.size() != b.headers.size())
        return false;
    for (size_t i = 0; i < a.headers.size(); ++i)
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) return false;
    return true;
}

inline int one(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const Options opt = options_from(data[0], data[1]);
    const bool trusted = data[1] & 1;
    const ProxyProtocol pp = static_cast<ProxyProtocol>(data[1] >> 6);
    const std::string wire(reinterpret_cast<const char *>(data) + 2, size - 2);
    size_t pos = 0;
    if (pp != ProxyProtocol::OFF) {
        std::vector<char> c(wire.begin(), wire.end());
        ProxyResult pr = parse_proxy(c.data(), c.size(), pp, trusted);
        require(pr.consumed <= c.size());
        if (pr.status != Status::DONE) return 0;
        pos = pr.consumed;
    }
    Request req, req2;
    ChunkedDecoder dec(&opt);
    for (int n = 0; n < 64 && pos < wire.size(); ++n) {
        // Exact-size heap copies: ASan sees any read past the end.
        const size_t len = wire.size() - pos;
        std::vector<char> c(wire.begin() + long(pos), wire.end());
        HeadResult hr = parse_head(c.data(), len, opt, trusted, req);
        require(hr.consumed <= len);
        if (hr.status == Status::ERROR) {
            require(hr.error != Error::NONE && !hr.message.empty());
            require(error_status(hr.error) >= 400);
        }
        if (hr.status == Status::DONE) {
            require(hr.consumed > 0);
            check_views(req, c.data(), len);
        }

        // The same head in two reads, through the resume hint.
        size_t k = (size_t(data[0]) * 131 + pos * 7 + size) % (len + 1);
        std::vector<char> first(c.begin(), c.begin() + long(k));
        HeadResult a = parse_head(first.data(), k, opt, trusted, req2);
        if (a.status == Status::ERROR) {
            require(hr.status == Status::ERROR && hr.error == a.error);
        } else if (a.status == Status::DONE) {
            require(hr.status == Status::DONE && hr.consumed == a.consumed);
        } else {
            HeadResult b = parse_head(c.data(), len, opt, trusted, req2);
            require(b.status == hr.status && b.error == hr.error && b.consumed == hr.consumed);
            if (b.error != Error::LIMIT_REQUEST_LINE) require(b.message == hr.message);
            if (b.status == Status::DONE) require(same_request(req, req2));
        }
        req2.clear();

        if (hr.status != Status::DONE) break;
        pos += hr.consumed;
        bool keep = req.keep_alive;
        if (req.body == BodyKind::LENGTH) {
            uint64_t left = wire.size() - pos;
            pos += size_t(req.content_length < left ? req.content_length : left);
        } else if (req.body == BodyKind::CHUNKED) {
            dec.reset();
            std::vector<char> body(wire.begin() + long(pos), wire.end());
            size_t at = 0;
            for (;;) {
                ChunkedDecoder::Step s = dec.step(body.data() + at, body.size() - at);
                require(s.consumed <= body.size() - at);
                if (s.data) require(s.data >= body.data() + at && s.data + s.data_len <= body.data() + at + s.consumed);
                at += s.consumed;
                if (s.status == Status::ERROR) {
                    require(!dec.message().empty());
                    return 0;
                }
                if (s.status == Status::DONE) break;
                if (at == body.size()) {
                    require(dec.at_eof() != Error::NONE);
                    return 0;
                }
            }
            pos += at;
        }
        req.clear();
        if (!keep) break;
    }
    return 0;
}

}  // namespace fuzz_http_parser

#ifndef CUNICORN_FUZZ_NO_ENTRY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_http_parser::one(data, size);
}
#endif
