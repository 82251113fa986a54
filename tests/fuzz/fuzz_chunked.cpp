// libFuzzer target: the chunked decoder. The first byte picks the limits and
// header map used for the chunk-size line and the trailer section, the rest
// is a chunked body. The body is decoded whole and again in pieces whose
// sizes come from the input; both must agree on data, trailers, outcome,
// message and bytes consumed, and every data span must lie in its input.
#include "cunicorn/http_parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace fuzz_chunked {

using namespace cunicorn::http;

inline void require(bool ok) {
    if (!ok) std::abort();
}

struct Result {
    std::string body;
    Status status = Status::NEED_MORE;
    Error error = Error::NONE;
    std::string message;
    size_t consumed = 0;
    std::vector<std::pair<std::string, std::string>> trailers;
};

// Feeds `in` in pieces of the given sizes (0 = everything left).
inline Result decode(const Options &opt, const std::string &in, uint32_t seed) {
    Result r;
    ChunkedDecoder dec(&opt);
    size_t pos = 0;
    while (pos < in.size() && r.status == Status::NEED_MORE) {
        size_t piece = in.size() - pos;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % 7;
            if (piece > in.size() - pos) piece = in.size() - pos;
        }
        std::vector<char> c(in.begin() + long(pos), in.begin() + long(pos + piece));
        size_t at = 0;
        for (;;) {
            ChunkedDecoder::Step s = dec.step(c.data() + at, c.size() - at);
            require(s.consumed <= c.size() - at);
            if (s.data) {
                require(s.data_len > 0);
                require(s.data >= c.data() + at && s.data + s.data_len <= c.data() + at + s.consumed);
                r.body.append(s.data, s.data_len);
            } else {
                require(s.data_len == 0);
            }
            at += s.consumed;
            if (s.status != Status::NEED_MORE) {
                r.status = s.status;
                r.error = s.error;
                break;
            }
            if (at == c.size()) break;
        }
        pos += at;
    }
    r.consumed = pos;
    if (r.status == Status::NEED_MORE) {
        r.error = dec.at_eof();
        require(r.error != Error::NONE);
    }
    if (r.status == Status::DONE) {
        require(dec.at_eof() == Error::NONE);
        r.trailers = dec.trailers();
    }
    if (r.error != Error::NONE) {
        r.message = dec.message();
        require(!r.message.empty());
    }
    return r;
}

inline int one(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const long sizes[] = {8190, 1, 16, 64};
    static const long fields[] = {100, 1, 2, 5};
    Options opt = Options::from_settings(4094, fields[(data[0] >> 2) & 3], sizes[data[0] & 3]);
    opt.permit_obsolete_folding = data[0] & 16;
    opt.strip_header_spaces = data[0] & 32;
    opt.header_map = (data[0] & 64) ? HeaderMap::REFUSE : (data[0] & 128) ? HeaderMap::DANGEROUS : HeaderMap::DROP;
    std::string in(reinterpret_cast<const char *>(data) + 1, size - 1);
    Result whole = decode(opt, in, 0);
    Result pieces = decode(opt, in, uint32_t(size * 2654435761u) | 1u);
    require(whole.body == pieces.body);
    require(whole.status == pieces.status && whole.error == pieces.error);
    require(whole.message == pieces.message);
    require(whole.consumed == pieces.consumed);
    require(whole.trailers == pieces.trailers);
    return 0;
}

}  // namespace fuzz_chunked

#ifndef CUNICORN_FUZZ_NO_ENTRY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_chunked::one(data, size);
}
#endif
