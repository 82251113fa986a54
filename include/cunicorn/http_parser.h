// HTTP/1.x request parser: request line, header section, body framing,
// chunked decoder and PROXY protocol header. Pure: no I/O, no Python, no
// allocation on the common path. Behaviour and error classes mirror
// gunicorn/http/{message,body,errors}.py; RFC 9112 where gunicorn is lax.
//
// Where cunicorn differs from gunicorn 26.1 on purpose (see the comments in
// http_parser.cpp): one empty line before a request line is skipped (RFC
// 9112 2.2); a bare CR or LF in the request-target is InvalidRequestLine
// (RFC 9112 2.2); Transfer-Encoding elements are trimmed of SP/HTAB only, so
// "chunked\xa0" is an unknown coding (501); Content-Length over 18
// significant digits is InvalidHeader and a chunk size over 16 hex digits
// InvalidChunkSize instead of a bignum; a bare LF or other control byte but
// HTAB in a chunk extension is InvalidChunkExtension (RFC 9112 7.1.1; gunicorn
// refuses only a bare CR); a PROXY v1 line is bounded to 107
// bytes (the PROXY spec); a Transfer-Encoding whose final coding is not
// chunked, or any in HTTP/1.0, is InvalidHeader (RFC 9112 6.1, 6.3); an
// HTTP/1.1 request without Host, or any with an invalid Host, is
// InvalidHeader (RFC 9112 3.2; permit_missing_host lets the first through);
// a "close" option anywhere in Connection ends the connection (RFC 9112
// 9.6); a chunk extension must follow its grammar (RFC 9112 7.1.1);
// LimitRequestLine is answered 414 (RFC 9112 3); limits (line, max_buffer_headers, chunk-size line,
// trailer section) are applied to where the terminator is, so whether one
// is hit does not depend on how the bytes were split into reads.
#ifndef CUNICORN_HTTP_PARSER_H
#define CUNICORN_HTTP_PARSER_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cunicorn::http {

// One value per gunicorn exception class (gunicorn/http/errors.py).
enum class Error : uint8_t {
    NONE,
    INVALID_REQUEST_LINE,
    INVALID_REQUEST_METHOD,
    INVALID_HTTP_VERSION,
    INVALID_HEADER,
    INVALID_HEADER_NAME,
    OBSOLETE_FOLDING,
    LIMIT_REQUEST_LINE,
    LIMIT_REQUEST_HEADERS,
    UNSUPPORTED_TRANSFER_CODING,
    EXPECTATION_FAILED,
    INVALID_SCHEME_HEADERS,
    INVALID_PROXY_LINE,
    INVALID_PROXY_HEADER,
    FORBIDDEN_PROXY_REQUEST,
    INVALID_CHUNK_SIZE,
    CHUNK_MISSING_TERMINATOR,
    INVALID_CHUNK_EXTENSION,
    NO_MORE_DATA,
    // cunicorn's own: a body over limit_request_body (413). Head size over
    // limit_request_header_size is LIMIT_REQUEST_HEADERS, gunicorn's class
    // for every other header-section limit.
    LIMIT_REQUEST_BODY,
};

// gunicorn's class name, e.g. "InvalidHeader".
const char *error_name(Error e);
// Status gunicorn answers with (400, 431, 501, 417, 403, 500), 413
// (RFC 9110 15.5.14) for LIMIT_REQUEST_BODY and 414 (RFC 9112 3, where
// gunicorn sends 400) for LIMIT_REQUEST_LINE; body-phase
// errors (chunked framing, truncation) return 400: gunicorn sends nothing
// for them, but RFC 9112 section 6.3 wants the server to reject the message,
// and we still can when the response has not started.
int error_status(Error e);
// Reason phrase gunicorn puts on the status line for this error (note the
// "Bad Request" it uses with 501).
const char *error_reason(Error e);

enum class Status : uint8_t { DONE, NEED_MORE, ERROR };

enum class HeaderMap : uint8_t { DROP, REFUSE, DANGEROUS };

enum class ProxyProtocol : uint8_t { OFF, V1, V2, AUTO };

// The parser-relevant settings, already normalised the way gunicorn's
// message.py clamps them (see Options::from_settings).
struct Options {
    size_t limit_request_line = 4094;        // 0 = unlimited
    size_t limit_request_fields = 100;
    size_t limit_request_field_size = 8190;
    bool permit_obsolete_folding = false;
    bool strip_header_spaces = false;
    bool permit_unconventional_http_method = false;
    bool permit_unconventional_http_version = false;
    bool casefold_http_method = false;
    // cunicorn's own: accept an HTTP/1.1 request without Host, which RFC
    // 9112 3.2 makes a 400 (gunicorn accepts it).
    bool permit_missing_host = false;
    HeaderMap header_map = HeaderMap::DROP;
    // cunicorn's own limits, which gunicorn does not have; 0 = none.
    // The request head from the request line to the empty line ending the
    // header section, CRLFs included; without it the head is still bounded
    // by limit_request_line + max_buffer_headers.
    size_t limit_request_header_size = 0;
    // A Content-Length above it is refused with the head; a chunked body
    // fails at the chunk-size line that would take it past the limit.
    uint64_t limit_request_body = 0;
    // Underscore header names a trusted peer may pass (upper-case, "*" = all).
    std::vector<std::string> forwarder_headers{"SCRIPT_NAME", "PATH_INFO"};
    // Upper-case header name -> value meaning https, from trusted peers only.
    std::vector<std::pair<std::string, std::string>> secure_scheme_headers{
        {"X-FORWARDED-PROTOCOL", "ssl"},
        {"X-FORWARDED-PROTO", "https"},
        {"X-FORWARDED-SSL", "on"},
    };

    // Applies gunicorn's clamping of the three limit settings as given by
    // the user: line <0 or >=8190 -> 8190, 0 -> unlimited; fields <=0 or
    // >32768 -> 32768; field_size <=0 -> 8190.
    static Options from_settings(long long limit_request_line,
                                 long long limit_request_fields,
                                 long long limit_request_field_size);
};

struct Header {
    std::string_view name;   // as sent (case preserved); compare with iequals
    std::string_view value;  // leading/trailing SP and HTAB removed
};

enum class BodyKind : uint8_t { NONE, LENGTH, CHUNKED };

struct Request {
    std::string_view method;    // after casefold_http_method when set
    std::string_view target;    // request-target exactly as sent (RAW_URI)
    std::string_view path;      // not percent-decoded; "" when absent
    std::string_view query;     // after the first '?', before '#'
    std::string_view fragment;  // after '#'
    int version_major = 1;
    int version_minor = 1;
    std::vector<Header> headers;  // kept headers in arrival order

    BodyKind body = BodyKind::NONE;
    uint64_t content_length = 0;  // when body == LENGTH

    bool keep_alive = true;       // e.7: first Connection header, else version default
    bool expect_continue = false; // Expect: 100-continue on HTTP/1.1+
    bool must_close = false;      // e.g. a gzip transfer-coding we do not decode
    // "https"/"http" when a trusted secure-scheme header decided it, else
    // empty (the listener's scheme applies).
    std::string_view scheme;

    // Backing store for values the parser had to build (casefolded method,
    // obs-folded values). Views above may point into it; reserved once so
    // that it never reallocates while a head is parsed.
    std::string storage;

    // Parser bookkeeping between calls that returned NEED_MORE on the same
    // buffer: offset of the request line's CRLF once that line is known to
    // be valid, and how far the search for the end of the head got. Lets a
    // head that arrives in many small reads be scanned once in total
    // (pico's last_len). parse_head resets it on DONE and ERROR; clear()
    // resets it too, so call clear() before reusing a Request for a buffer
    // that does not start with the same bytes.
    struct Resume {
        size_t line_end = 0;
        size_t scanned = 0;
    } resume;

    void clear();
    // First header with this name (case-insensitive), or nullptr.
    const Header *find(std::string_view name) const;
};

struct HeadResult {
    Status status = Status::NEED_MORE;
    size_t consumed = 0;      // bytes of the head incl. the final CRLF (DONE)
    Error error = Error::NONE;
    std::string message;      // str(exc) as gunicorn words it (ERROR only)
};

// Parses one request head from buf[0..len). Re-entrant from the start on
// every call (the caller passes the whole buffered head each time; cost is
// bounded by the limits). Views in `out` point into buf. `peer_trusted`
// decides secure-scheme and forwarder-header handling (gunicorn's
// forwarded_allow_ips check, done by the caller).
HeadResult parse_head(const char *buf, size_t len, const Options &opt,
                      bool peer_trusted, Request &out);

// str(NoMoreData) for a connection that ended inside a request head (after
// parse_head said NEED_MORE on these bytes), which gunicorn's worker logs as
// "Ignored premature client disconnection. %s": the buffered bytes after the
// request line once that line is complete, else all of them.
std::string head_eof_message(const char *buf, size_t len);

// Resumable chunked transfer-coding decoder (RFC 9112 section 7.1).
class ChunkedDecoder {
public:
    struct Step {
        Status status;        // NEED_MORE: give more input; DONE: body ended
        size_t consumed;      // input bytes used by this step
        const char *data;     // decoded body bytes inside the input, or nullptr
        size_t data_len;
        Error error;
    };

    explicit ChunkedDecoder(const Options *opt = nullptr) : opt_(opt) {}
    void reset();
    // Decodes from p[0..len). Returns at most one span of body data per
    // call; callers loop until NEED_MORE with consumed == len, DONE or ERROR.
    Step step(const char *p, size_t len);
    // Call at end of input: Error::NONE if the body had ended, else the
    // error gunicorn raises for that truncation (NoMoreData or
    // ChunkMissingTerminator).
    Error at_eof() const;
    // str(exc) as gunicorn words it for the last ERROR of step() or at_eof(),
    // e.g. "Invalid chunk size: b'6_0'"; for errors in the trailer section
    // (InvalidHeaderName, LimitRequestHeaders, ...) it is what the error
    // response is built from, as with HeadResult::message.
    const std::string &message() const { return msg_; }
    const std::vector<std::pair<std::string, std::string>> &trailers() const { return trailers_; }

private:
    const Options *opt_;
    // Implementation state; see http_parser.cpp.
    int state_ = 0;
    uint64_t remaining_ = 0;
    std::string line_;   // partial size or trailer line being assembled
    std::vector<std::pair<std::string, std::string>> trailers_;
    Error error_ = Error::NONE;
    uint64_t received_ = 0;     // chunk-data bytes announced so far (limit_request_body)
    uint32_t line_len_ = 0;     // bytes of the current chunk-size line
    bool ext_ = false;          // a ';' started a chunk extension
    bool ext_cr_ = false;       // a bare CR was seen inside the extension
    int ext_ctl_ = -1;          // first other control byte in it (bare LF, NUL...)
    uint8_t ext_state_ = 0;     // where the extension's grammar is (http_parser.cpp)
    mutable std::string msg_;   // set by step() and at_eof() on error
};

struct ProxyInfo {
    std::string protocol;    // TCP4, TCP6, LOCAL, UNSPEC
    std::string client_addr, proxy_addr;
    int client_port = -1, proxy_port = -1;  // -1 when absent
};

struct ProxyResult {
    Status status = Status::NEED_MORE;
    size_t consumed = 0;   // 0 and DONE when no PROXY header is present
    bool present = false;
    Error error = Error::NONE;
    std::string message;
    ProxyInfo info;
};

// PROXY protocol v1/v2 header at the start of a connection (e.1).
// `peer_allowed` is the proxy_allow_ips decision for this peer; `peer_ip`
// only goes into the ForbiddenProxyRequest message
// ("Proxy request from '10.0.0.1' not allowed").
ProxyResult parse_proxy(const char *buf, size_t len, ProxyProtocol mode, bool peer_allowed,
                        std::string_view peer_ip = {});

// ASCII case-insensitive comparison, used wherever header names are matched.
bool iequals(std::string_view a, std::string_view b);

// RFC 9112 3.2.2: the authority of an absolute-form request-target
// ("http://user@example.com:8080/p" gives "example.com:8080"), which the
// server uses instead of the Host field; "" for every other form.
std::string_view target_authority(std::string_view target);

}  // namespace cunicorn::http

#endif
