// HTTP/1.x request parser: request line, header section, body framing,
// chunked decoder and PROXY protocol header (see http_parser.h).
//
// Behaviour mirrors gunicorn 26.1 (gunicorn/http/message.py, body.py,
// errors.py, util.split_request_uri); the error messages are str(exc) of the
// exception gunicorn raises, byte for byte, because the server builds
// gunicorn's error page from them. Where gunicorn is lax by RFC 9112 the RFC
// wins and a comment says so. No allocation on the success path: output is
// views into the caller's buffer, plus Request::storage for the rare values
// the parser has to build.
#include "cunicorn/http_parser.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace cunicorn::http {

namespace {

// ---------------------------------------------------------------------------
// Character classes: one table lookup per byte.

enum : uint8_t {
    C_TCHAR = 1,      // RFC 9110 5.6.2 tchar
    C_VALUE_BAD = 2,  // gunicorn RFC9110_5_5_INVALID_AND_DANGEROUS: 00-08 0A-1F 7F
    C_HEX = 4,        // HEXDIG
    C_SCHEME = 8,     // urllib.parse scheme_chars
    C_URL_DROP = 16,  // urlsplit removes TAB, CR, LF anywhere in the URL
};

struct CharTable {
    uint8_t v[256];
};

constexpr bool in_set(int c, const char *set) {
    for (; *set; ++set)
        if (*set == c) return true;
    return false;
}

constexpr CharTable make_table() {
    CharTable t{};
    for (int c = 0; c < 256; ++c) {
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool digit = c >= '0' && c <= '9';
        uint8_t f = 0;
        if (alpha || digit || in_set(c, "!#$%&'*+-.^_`|~")) f |= C_TCHAR;
        if ((c <= 0x08) || (c >= 0x0a && c <= 0x1f) || c == 0x7f) f |= C_VALUE_BAD;
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) f |= C_HEX;
        if (alpha || digit || c == '+' || c == '-' || c == '.') f |= C_SCHEME;
        if (c == '\t' || c == '\r' || c == '\n') f |= C_URL_DROP;
        t.v[c] = f;
    }
    return t;
}

constexpr CharTable CHARS = make_table();

inline bool has(unsigned char c, uint8_t cls) { return (CHARS.v[c] & cls) != 0; }

inline bool all_of(std::string_view s, uint8_t cls) {
    for (unsigned char c : s)
        if (!has(c, cls)) return false;
    return true;
}

inline bool any_of(std::string_view s, uint8_t cls) {
    for (unsigned char c : s)
        if (has(c, cls)) return true;
    return false;
}

// RFC 9110 5.5 field-value check, 8 bytes at a time: a word can only hold
// a forbidden byte if it holds one below 0x20 or a DEL; such words (HTAB is
// below 0x20 too, and allowed) are looked at byte by byte. Values are most
// of a request head, so this is the parser's hottest loop.
inline bool value_has_ctl(std::string_view s) {
    const unsigned char *p = reinterpret_cast<const unsigned char *>(s.data());
    size_t n = s.size(), i = 0;
    constexpr uint64_t ONES = 0x0101010101010101ull, HIGH = 0x8080808080808080ull;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        uint64_t below_20 = (w - ONES * 0x20) & ~w & HIGH;
        uint64_t x = w ^ (ONES * 0x7f);
        uint64_t del = (x - ONES) & ~x & HIGH;
        if ((below_20 | del) == 0) continue;
        for (size_t k = i; k < i + 8; ++k)
            if (has(p[k], C_VALUE_BAD)) return true;
    }
    for (; i < n; ++i)
        if (has(p[i], C_VALUE_BAD)) return true;
    return false;
}

inline char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? char(c - 32) : c; }
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

// str.strip(" \t"): RFC 9110 5.5 OWS around a field value.
inline std::string_view trim_ows(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && is_ows(s[b])) ++b;
    while (e > b && is_ows(s[e - 1])) --e;
    return s.substr(b, e - b);
}

inline std::string_view rtrim_ows(std::string_view s) {
    size_t e = s.size();
    while (e > 0 && is_ows(s[e - 1])) --e;
    return s.substr(0, e);
}

// First CR in [p, end), or end. Header lines are short, where a libc call
// costs more than the scan, so the first 64 bytes are looked at 8 at a time
// here and only longer lines (cookies) go to memchr.
inline const char *find_cr(const char *p, const char *end) {
    constexpr uint64_t ONES = 0x0101010101010101ull, HIGH = 0x8080808080808080ull;
    const char *stop = end - p > 64 ? p + 64 : end;
    while (stop - p >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        uint64_t x = w ^ (ONES * '\r');
        if (((x - ONES) & ~x & HIGH) != 0) break;
        p += 8;
    }
    for (; p < stop; ++p)
        if (*p == '\r') return p;
    if (p == end) return end;
    const void *q = std::memchr(p, '\r', size_t(end - p));
    return q ? static_cast<const char *>(q) : end;
}

// First CRLF in [p, end), or end. RFC 9112 2.2: only CRLF ends a line here;
// a bare CR or LF is an ordinary byte that later fails validation.
inline const char *find_crlf(const char *p, const char *end) {
    while (p < end) {
        const char *r = find_cr(p, end);
        if (r == end) return end;
        if (r + 1 < end && r[1] == '\n') return r;
        p = r + 1;
    }
    return end;
}

// First CRLFCRLF in [p, end), or nullptr (also when only part of it is in),
// found line by line.
inline const char *find_crlfcrlf(const char *p, const char *end) {
    while (end - p >= 4) {
        const char *r = find_crlf(p, end);
        if (end - r < 4) return nullptr;
        if (r[2] == '\r' && r[3] == '\n') return r;
        p = r + 2;
    }
    return nullptr;
}

// ---------------------------------------------------------------------------
// Messages: str(exc) of gunicorn's exceptions. Error path only.

void append_hex_escape(std::string &out, unsigned char c) {
    static const char HEXD[] = "0123456789abcdef";
    out += "\\x";
    out += HEXD[c >> 4];
    out += HEXD[c & 15];
}

// repr() of a latin-1 decoded str, as CPython's unicode_repr writes it:
// single quotes unless the text has ' and no ", \t \n \r escaped, other
// non-printable code points (C0, DEL, C1, NBSP, SOFT HYPHEN) as \xNN.
std::string py_repr(std::string_view s) {
    bool sq = s.find('\'') != std::string_view::npos;
    bool dq = s.find('"') != std::string_view::npos;
    char quote = (sq && !dq) ? '"' : '\'';
    std::string out;
    out.reserve(s.size() + 2);
    out += quote;
    for (unsigned char c : s) {
        if (c == static_cast<unsigned char>(quote) || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) {
            append_hex_escape(out, c);
        } else {
            out += char(c);
        }
    }
    out += quote;
    return out;
}

// repr() of a bytes object (chunk errors carry bytes, not str).
std::string py_bytes_repr(std::string_view s) {
    bool sq = s.find('\'') != std::string_view::npos;
    bool dq = s.find('"') != std::string_view::npos;
    char quote = (sq && !dq) ? '"' : '\'';
    std::string out = "b";
    out += quote;
    for (unsigned char c : s) {
        if (c == static_cast<unsigned char>(quote) || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c >= 0x7f) {
            append_hex_escape(out, c);
        } else {
            out += char(c);
        }
    }
    out += quote;
    return out;
}

std::string upper(std::string_view s) {
    std::string u(s);
    for (char &c : u) c = ascii_upper(c);
    return u;
}

std::string msg_invalid_request_line(std::string_view line) {
    return "Invalid HTTP request line: " + py_repr(line);
}
std::string msg_invalid_method(std::string_view m) { return "Invalid HTTP method: " + py_repr(m); }
std::string msg_invalid_header(std::string_view h) { return "Invalid HTTP Header: " + py_repr(h); }
std::string msg_invalid_header_name(std::string_view h) {
    return "Invalid HTTP header name: " + py_repr(h);
}

// ---------------------------------------------------------------------------
// Limits, normalised as message.py does in Message.__init__ / Request.__init__.

constexpr size_t MAX_REQUEST_LINE = 8190;
constexpr size_t MAX_HEADERS = 32768;
constexpr size_t DEFAULT_MAX_HEADERFIELD_SIZE = 8190;

struct Limits {
    size_t line;        // 0 = unlimited
    size_t fields;
    size_t field_size;  // per line incl. CRLF and folded continuations
    size_t max_buffer;  // max_buffer_headers
    size_t head;        // limit_request_header_size: whole head, 0 = none
};

// LimitRequestHeaders' message for limit_request_header_size, worded like
// gunicorn's own ones for that class.
constexpr const char *MSG_HEAD_SIZE = "limit request header size";

Limits limits_of(const Options &o) {
    Limits l{};
    l.line = o.limit_request_line >= MAX_REQUEST_LINE ? MAX_REQUEST_LINE : o.limit_request_line;
    l.fields = (o.limit_request_fields == 0 || o.limit_request_fields > MAX_HEADERS)
                   ? MAX_HEADERS
                   : o.limit_request_fields;
    l.field_size = o.limit_request_field_size ? o.limit_request_field_size
                                              : DEFAULT_MAX_HEADERFIELD_SIZE;
    // fields * (field_size + 2) + 4, saturating: field_size has no upper clamp.
    size_t per = l.field_size + 2;
    if (per < l.field_size || per > (SIZE_MAX - 4) / l.fields)
        l.max_buffer = SIZE_MAX;
    else
        l.max_buffer = l.fields * per + 4;
    l.head = o.limit_request_header_size;
    return l;
}

const Options &default_options() {
    static const Options o;
    return o;
}

// ---------------------------------------------------------------------------
// Header / trailer fields (Message.parse_headers and the header policy).

enum class Section : uint8_t { HEADERS, TRAILERS };

struct FieldError {
    Error error = Error::NONE;
    std::string message;
};

inline bool fail(FieldError &fe, Error e, std::string msg) {
    fe.error = e;
    fe.message = std::move(msg);
    return false;
}

// Cross-field state of HeaderPolicy._apply_header_policy.
struct Policy {
    bool seen_host = false;
    bool seen_content_type = false;
    bool scheme_set = false;
    bool expect_continue = false;
    std::string_view scheme;
};

// RFC 9110 6.5.1: fields a sender must not put in a trailer; gunicorn's
// RFC9110_6_5_1_FORBIDDEN_TRAILER.
bool forbidden_trailer(std::string_view name) {
    return iequals(name, "HOST") || iequals(name, "CONTENT-LENGTH") ||
           iequals(name, "TRANSFER-ENCODING") || iequals(name, "TRAILER") ||
           iequals(name, "AUTHORIZATION") || iequals(name, "TE");
}

bool forwarder_allows(const Options &opt, std::string_view name) {
    for (const std::string &f : opt.forwarder_headers)
        if (f == "*" || iequals(f, name)) return true;
    return false;
}

// Checks the continuation lines [b, e) (CRLF separated) for bytes RFC 9110
// 5.5 forbids in a field value.
bool folded_value_bad(const char *b, const char *e) {
    while (b < e) {
        const char *eol = find_crlf(b, e);
        if (value_has_ctl(std::string_view(b, size_t(eol - b)))) return true;
        b = eol == e ? e : eol + 2;
    }
    return false;
}

// " ".join of the stripped first value and continuation lines, as
// parse_headers builds an obs-folded value.
template <class Out>
void append_folded(Out &dst, std::string_view first, const char *b, const char *e) {
    dst.append(first.data(), first.size());
    while (b < e) {
        const char *eol = find_crlf(b, e);
        std::string_view part = trim_ows(std::string_view(b, size_t(eol - b)));
        dst.push_back(' ');
        dst.append(part.data(), part.size());
        b = eol == e ? e : eol + 2;
    }
}

// Parses the field lines in [p, end) (the section without its final CRLF,
// as parse_headers gets data[:idx]) in gunicorn's order of checks. The Sink
// stores kept fields: add(name, value), and fold(first, b, e) returning a
// stable view of the joined obs-folded value.
template <class Sink>
bool parse_fields(const char *p, const char *end, Section sec, const Options &opt,
                  const Limits &lim, bool trusted, bool http11, Sink &sink, Policy &pol,
                  FieldError &fe) {
    size_t kept = 0;
    const char *line = p;
    while (line < end) {
        // Counted before the line is looked at: "already limit fields kept".
        if (kept >= lim.fields)
            return fail(fe, Error::LIMIT_REQUEST_HEADERS, "limit request headers fields");
        const char *eol = find_crlf(line, end);
        size_t header_length = size_t(eol - line) + 2;
        std::string_view whole(line, size_t(eol - line));
        // The name is usually all tchar up to the ':', found in one scan
        // that also notes a '_'.
        size_t colon = 0;
        bool underscore = false;
        for (; colon < whole.size(); ++colon) {
            unsigned char c = static_cast<unsigned char>(whole[colon]);
            if (!has(c, C_TCHAR)) break;
            underscore |= c == '_';
        }
        bool token = colon > 0 && colon < whole.size() && whole[colon] == ':';
        if (!token) colon = whole.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return fail(fe, Error::INVALID_HEADER, msg_invalid_header(whole));
        std::string_view name = whole.substr(0, colon);
        // strip_header_spaces is gunicorn's unsafe compatibility switch;
        // RFC 9112 5.1 says whitespace before ':' must be rejected.
        if (!token && opt.strip_header_spaces) {
            name = rtrim_ows(name);
            token = !name.empty() && all_of(name, C_TCHAR);
        }
        if (!token) return fail(fe, Error::INVALID_HEADER_NAME, msg_invalid_header_name(name));
        if (sec == Section::TRAILERS && forbidden_trailer(name))
            return fail(fe, Error::INVALID_HEADER_NAME, msg_invalid_header_name(upper(name)));
        std::string_view value = trim_ows(whole.substr(colon + 1));

        // RFC 9112 5.2: obs-fold is rejected unless permitted.
        const char *next = eol == end ? end : eol + 2;
        const char *fold_b = next, *fold_e = next;
        while (next < end && is_ows(*next)) {
            if (!opt.permit_obsolete_folding)
                return fail(fe, Error::OBSOLETE_FOLDING,
                            "Obsolete line folding is unacceptable: " + py_repr(upper(name)));
            const char *ceol = find_crlf(next, end);
            header_length += size_t(ceol - next) + 2;
            if (header_length > lim.field_size)
                return fail(fe, Error::LIMIT_REQUEST_HEADERS, "limit request headers fields size");
            fold_e = ceol;
            next = ceol == end ? end : ceol + 2;
        }
        bool folded = fold_e != fold_b;

        // RFC 9110 5.5: CTLs other than HTAB (bare CR and LF included) make
        // the field invalid; obs-text (80-FF) is allowed.
        if (value_has_ctl(value) || (folded && folded_value_bad(fold_b, fold_e)))
            return fail(fe, Error::INVALID_HEADER, msg_invalid_header(upper(name)));
        if (header_length > lim.field_size)
            return fail(fe, Error::LIMIT_REQUEST_HEADERS, "limit request headers fields size");
        if (folded) value = sink.fold(value, fold_b, fold_e);

        // HeaderPolicy._apply_header_policy.
        if (iequals(name, "HOST")) {
            // RFC 9110 7.2 / RFC 9112 3.2: exactly one Host.
            if (pol.seen_host) return fail(fe, Error::INVALID_HEADER, msg_invalid_header("HOST"));
            pol.seen_host = true;
        } else if (iequals(name, "CONTENT-TYPE")) {
            if (pol.seen_content_type)
                return fail(fe, Error::INVALID_HEADER, msg_invalid_header("CONTENT-TYPE"));
            pol.seen_content_type = true;
        } else if (sec == Section::HEADERS && iequals(name, "EXPECT")) {
            // RFC 9110 10.1.1: 100-continue is the only expectation; it
            // means nothing to an HTTP/1.0 server, so 1.0 clients get none.
            if (iequals(value, "100-continue")) {
                if (http11) pol.expect_continue = true;
            } else {
                return fail(fe, Error::EXPECTATION_FAILED,
                            "Unable to comply with expectation: " + py_repr(value));
            }
        }
        if (sec == Section::HEADERS && trusted) {
            for (const auto &kv : opt.secure_scheme_headers) {
                if (!iequals(name, kv.first)) continue;
                std::string_view scheme = value == kv.second ? "https" : "http";
                if (pol.scheme_set) {
                    if (scheme != pol.scheme)
                        return fail(fe, Error::INVALID_SCHEME_HEADERS, "Contradictory scheme headers");
                } else {
                    pol.scheme_set = true;
                    pol.scheme = scheme;
                }
                break;
            }
        }
        // '_' and '-' both map to '_' in a WSGI environ key, so
        // X_Forwarded_For could pose as X-Forwarded-For.
        if (underscore && !(sec == Section::HEADERS && trusted && forwarder_allows(opt, name))) {
            if (opt.header_map == HeaderMap::DROP) {
                line = next;  // dropped: does not count towards the limit
                continue;
            }
            if (opt.header_map == HeaderMap::REFUSE)
                return fail(fe, Error::INVALID_HEADER_NAME, msg_invalid_header_name(upper(name)));
        }
        sink.add(name, value);
        ++kept;
        line = next;
    }
    return true;
}

struct RequestSink {
    Request &out;
    size_t cap;  // head length: bounds everything put in out.storage
    std::string_view fold(std::string_view first, const char *b, const char *e) {
        std::string &st = out.storage;
        if (st.empty() && st.capacity() < cap) st.reserve(cap);
        size_t at = st.size();
        append_folded(st, first, b, e);
        return std::string_view(st.data() + at, st.size() - at);
    }
    void add(std::string_view name, std::string_view value) { out.headers.push_back({name, value}); }
};

struct TrailerSink {
    std::vector<std::pair<std::string, std::string>> &out;
    std::string scratch;
    std::string_view fold(std::string_view first, const char *b, const char *e) {
        scratch.clear();
        append_folded(scratch, first, b, e);
        return scratch;
    }
    void add(std::string_view name, std::string_view value) {
        out.emplace_back(std::string(name), std::string(value));
    }
};

// ---------------------------------------------------------------------------
// Request target: gunicorn's util.split_request_uri over urllib.parse.urlsplit
// (CPython 3.12), reproduced because PATH_INFO and QUERY_STRING come from it.

struct TargetParts {
    std::string_view path, query, fragment;
};

bool valid_ipv6_literal(std::string_view host) {
    // ipaddress.ip_address: an IPv6 address, optionally with a non-empty
    // %scope_id (no second '%'); an IPv4 address is rejected by the caller.
    size_t pct = host.find('%');
    if (pct != std::string_view::npos) {
        std::string_view scope = host.substr(pct + 1);
        if (scope.empty() || scope.find('%') != std::string_view::npos) return false;
        host = host.substr(0, pct);
    }
    char tmp[64];
    if (host.empty() || host.size() >= sizeof tmp || host.find('\0') != std::string_view::npos)
        return false;
    std::memcpy(tmp, host.data(), host.size());
    tmp[host.size()] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET6, tmp, addr) == 1;
}

// urllib.parse._check_bracketed_host: IPvFuture or an IPv6 address.
bool check_bracketed_host(std::string_view host) {
    if (!host.empty() && host[0] == 'v') {
        // \Av[a-fA-F0-9]+\..+\z
        size_t i = 1;
        while (i < host.size() && has(static_cast<unsigned char>(host[i]), C_HEX)) ++i;
        return i > 1 && i < host.size() && host[i] == '.' && i + 1 < host.size();
    }
    return valid_ipv6_literal(host);
}

// urllib.parse._check_bracketed_netloc plus the '[' / ']' balance check.
bool check_netloc(std::string_view netloc) {
    bool ob = netloc.find('[') != std::string_view::npos;
    bool cb = netloc.find(']') != std::string_view::npos;
    if (ob != cb) return false;  // "Invalid IPv6 URL"
    if (!ob) return true;
    size_t at = netloc.rfind('@');
    std::string_view hp = at == std::string_view::npos ? netloc : netloc.substr(at + 1);
    std::string_view hostname;
    size_t b = hp.find('[');
    if (b != std::string_view::npos) {
        if (b > 0) return false;  // no data before the bracket
        std::string_view br = hp.substr(1);
        size_t e = br.find(']');
        hostname = br.substr(0, e);
        std::string_view port = e == std::string_view::npos ? std::string_view() : br.substr(e + 1);
        if (!port.empty() && port[0] != ':') return false;
    } else {
        hostname = hp.substr(0, hp.find(':'));
    }
    return check_bracketed_host(hostname);
}

void split_query_fragment(std::string_view u, TargetParts &tp) {
    size_t h = u.find('#');
    if (h != std::string_view::npos) {
        tp.fragment = u.substr(h + 1);
        u = u.substr(0, h);
    }
    size_t q = u.find('?');
    if (q != std::string_view::npos) {
        tp.query = u.substr(q + 1);
        u = u.substr(0, q);
    }
    tp.path = u;
}

// `u` is the target with TAB/CR/LF already removed (urlsplit does that first);
// `raw_double_slash` tells whether the raw target started with "//".
bool split_target(std::string_view u, bool raw_double_slash, TargetParts &tp) {
    tp = TargetParts{};
    if (raw_double_slash) {
        // split_request_uri parses "." + uri so that "//x" stays a path
        // (RFC 9112 3.2.1 origin-form), then drops the dot again.
        split_query_fragment(u, tp);
        return true;
    }
    // Leading C0 controls and spaces are stripped (WHATWG, CPython 3.12).
    size_t s = 0;
    while (s < u.size() && static_cast<unsigned char>(u[s]) <= 0x20) ++s;
    u = u.substr(s);
    size_t colon = u.find(':');
    if (colon != std::string_view::npos && colon > 0) {
        char c0 = u[0];
        bool alpha = (c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z');
        if (alpha && all_of(u.substr(0, colon), C_SCHEME)) u = u.substr(colon + 1);
    }
    if (u.size() >= 2 && u[0] == '/' && u[1] == '/') {
        size_t delim = u.find_first_of("/?#", 2);
        std::string_view netloc = u.substr(2, delim == std::string_view::npos ? delim : delim - 2);
        if (!check_netloc(netloc)) return false;
        u = delim == std::string_view::npos ? std::string_view() : u.substr(delim);
    }
    split_query_fragment(u, tp);
    return true;
}

// ---------------------------------------------------------------------------
// Request line (Request.parse_request_line).

struct RequestLine {
    std::string_view method, target;
    TargetParts parts;
    int major = 1, minor = 1;
};

inline bool fail_head(HeadResult &r, Error e, std::string msg) {
    r.status = Status::ERROR;
    r.error = e;
    r.consumed = 0;
    r.message = std::move(msg);
    return false;
}

// Validates the request line [p, p+n) and fills `rl`. With `store` set, views
// that need building (casefolded method, target without TAB/CR/LF) go there;
// without it they go to a local string and are only checked.
bool parse_request_line(const char *p, size_t n, const Options &opt, std::string *store,
                        size_t store_cap, RequestLine &rl, HeadResult &r) {
    std::string_view line(p, n);
    // line.split(b" ", 2): exactly three parts; SP only (RFC 9112 3).
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos)
        return fail_head(r, Error::INVALID_REQUEST_LINE, msg_invalid_request_line(line));
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);

    // Method: RFC 9110 9.1 token; gunicorn's own stricter convention
    // (3..20 chars, no lowercase, no '#') unless permitted.
    if (!opt.permit_unconventional_http_method) {
        for (char c : method)
            if ((c >= 'a' && c <= 'z') || c == '#')
                return fail_head(r, Error::INVALID_REQUEST_METHOD, msg_invalid_method(method));
        if (method.size() < 3 || method.size() > 20)
            return fail_head(r, Error::INVALID_REQUEST_METHOD, msg_invalid_method(method));
    }
    if (method.empty() || !all_of(method, C_TCHAR))
        return fail_head(r, Error::INVALID_REQUEST_METHOD, msg_invalid_method(method));
    bool fold_method = false;
    if (opt.casefold_http_method)
        for (char c : method)
            if (c >= 'a' && c <= 'z') fold_method = true;
    auto method_is = [&](std::string_view m) {
        return opt.casefold_http_method ? iequals(method, m) : method == m;
    };

    // Target: RFC 9112 3.2 allows origin-, absolute-, authority- (CONNECT
    // only) and asterisk-form (OPTIONS only); anything else is rejected.
    if (target.empty())
        return fail_head(r, Error::INVALID_REQUEST_LINE, msg_invalid_request_line(line));
    if (target == "*") {
        if (!method_is("OPTIONS"))
            return fail_head(r, Error::INVALID_REQUEST_LINE, msg_invalid_request_line(line));
    } else if (!method_is("CONNECT") && target[0] != '/' &&
               target.find("://") == std::string_view::npos) {
        return fail_head(r, Error::INVALID_REQUEST_LINE, msg_invalid_request_line(line));
    }
    std::string local;
    std::string *st = store ? store : &local;
    if (store && st->empty() && st->capacity() < store_cap) st->reserve(store_cap);
    std::string_view cleaned = target;
    const bool drop = any_of(target, C_URL_DROP);
    if (drop) {
        size_t at = st->size();
        for (char c : target)
            if (!has(static_cast<unsigned char>(c), C_URL_DROP)) st->push_back(c);
        cleaned = std::string_view(st->data() + at, st->size() - at);
    }
    bool dslash = target.size() >= 2 && target[0] == '/' && target[1] == '/';
    if (!split_target(cleaned, dslash, rl.parts))
        return fail_head(r, Error::INVALID_REQUEST_LINE, msg_invalid_request_line(line));

    // Version: HTTP/DIGIT.DIGIT (RFC 9112 2.3), then 1.x only.
    if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return fail_head(r, Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: " + py_repr(version));
    rl.major = version[5] - '0';
    rl.minor = version[7] - '0';
    if (rl.major != 1 && !opt.permit_unconventional_http_version) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "Invalid HTTP Version: (%d, %d)", rl.major, rl.minor);
        return fail_head(r, Error::INVALID_HTTP_VERSION, buf);
    }

    // RFC 9112 2.2: a bare CR MUST make the element invalid. gunicorn
    // accepts it (and a bare LF) in the target, dropping both from PATH_INFO
    // via urlsplit while RAW_URI keeps them; a hop that ends lines at a bare
    // LF would see a different request, so both are refused. Checked last so
    // that lines gunicorn rejects keep gunicorn's error.
    if (drop && target.find_first_of("\r\n") != std::string_view::npos)
        return fail_head(r, Error::INVALID_REQUEST_LINE, msg_invalid_request_line(line));

    rl.target = target;
    rl.method = method;
    if (fold_method) {
        size_t at = st->size();
        for (char c : method) st->push_back(ascii_upper(c));
        rl.method = std::string_view(st->data() + at, method.size());
    }
    return true;
}

// ---------------------------------------------------------------------------
// Body framing (Message.set_body_reader) and keep-alive (should_close).

bool set_body_framing(Request &out, const Options &opt, HeadResult &r) {
    bool chunked = false;
    bool te = false;
    const Header *cl = nullptr;
    for (const Header &h : out.headers) {
        char c = ascii_upper(h.name.empty() ? '\0' : h.name[0]);
        if (c == 'C' && iequals(h.name, "CONTENT-LENGTH")) {
            // RFC 9112 6.3 lets a recipient merge identical values; gunicorn
            // refuses any second Content-Length, which is safer.
            if (cl) return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("CONTENT-LENGTH"));
            cl = &h;
        } else if (c == 'T' && iequals(h.name, "TRANSFER-ENCODING")) {
            // RFC 9112 6.1: a list of codings, chunked last and only once.
            te = true;
            std::string_view v = h.value;
            for (;;) {
                size_t comma = v.find(',');
                // Elements are trimmed of OWS only. gunicorn uses str.strip(),
                // which also removes U+0085 and U+00A0 so that "chunked\xa0"
                // counts as chunked; RFC 9112 7 makes a coding a token, so
                // here such an element is an unknown coding.
                std::string_view e = trim_ows(v.substr(0, comma));
                if (iequals(e, "chunked")) {
                    if (chunked)
                        return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("TRANSFER-ENCODING"));
                    chunked = true;
                } else if (iequals(e, "identity")) {
                    if (chunked)
                        return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("TRANSFER-ENCODING"));
                } else if (iequals(e, "gzip") || iequals(e, "deflate") || iequals(e, "compress")) {
                    if (chunked)
                        return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("TRANSFER-ENCODING"));
                    // Not decoded: the body length is unknown, so the
                    // connection cannot be reused (RFC 9112 6.3 item 4).
                    out.must_close = true;
                } else {
                    // RFC 9112 6.1: 501 for a coding we do not understand.
                    return fail_head(r, Error::UNSUPPORTED_TRANSFER_CODING,
                                     "Unsupported transfer coding: " + py_repr(h.value));
                }
                if (comma == std::string_view::npos) break;
                v = v.substr(comma + 1);
            }
        }
    }
    if (te) {
        // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means the
        // framing is faulty. RFC 9112 6.3 item 4: when chunked is not the
        // final coding the body length cannot be determined, so 400 and
        // close. gunicorn takes a lone identity (or gzip) as "no body" or
        // falls back to Content-Length, which was safe only because its
        // sync worker closes every connection; a front end that honours
        // Transfer-Encoding reads the bytes after the head differently.
        if (out.version_major < 1 || (out.version_major == 1 && out.version_minor < 1) || !chunked)
            return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("TRANSFER-ENCODING"));
    }
    if (chunked) {
        // CL + TE is the classic smuggling vector, so reject rather than
        // let TE win (RFC 9112 6.1 allows either, and closing after).
        if (cl) return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("CONTENT-LENGTH"));
        out.body = BodyKind::CHUNKED;
    } else if (cl) {
        // RFC 9110 8.6: 1*DIGIT. Leading zeros are fine; more than 18
        // significant digits (1 EB) is refused instead of overflowing.
        std::string_view v = cl->value;
        if (v.empty()) return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("CONTENT-LENGTH"));
        uint64_t n = 0;
        int sig = 0;
        for (char c : v) {
            if (c < '0' || c > '9')
                return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("CONTENT-LENGTH"));
            if (sig || c != '0') ++sig;
            if (sig > 18)
                return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("CONTENT-LENGTH"));
            n = n * 10 + uint64_t(c - '0');
        }
        // limit_request_body: refused before the app runs or a byte of
        // the body is read (RFC 9110 15.5.14).
        if (opt.limit_request_body && n > opt.limit_request_body) {
            char m[96];
            std::snprintf(m, sizeof m, "Request body is too large (%llu > %llu)", (unsigned long long)n,
                          (unsigned long long)opt.limit_request_body);
            return fail_head(r, Error::LIMIT_REQUEST_BODY, m);
        }
        out.body = BodyKind::LENGTH;
        out.content_length = n;
    }
    return true;
}

// RFC 9112 3.2 / RFC 9110 7.2: Host = uri-host [ ":" port ] (RFC 3986
// 3.2.2), uri-host an IP-literal in brackets or a reg-name (which covers
// IPv4 addresses): unreserved, pct-encoded and sub-delims only. Empty is
// valid (a target without an authority).
bool valid_host(std::string_view v) {
    std::string_view port;
    if (!v.empty() && v[0] == '[') {
        size_t close = v.find(']');
        if (close == std::string_view::npos || !check_bracketed_host(v.substr(1, close - 1))) return false;
        port = v.substr(close + 1);
    } else {
        size_t colon = v.find(':');
        if (colon != std::string_view::npos) {
            port = v.substr(colon);
            v = v.substr(0, colon);
        }
        for (size_t i = 0; i < v.size(); ++i) {
            char c = v[i];
            if (c == '%') {
                if (i + 2 >= v.size() || !has(static_cast<unsigned char>(v[i + 1]), C_HEX) ||
                    !has(static_cast<unsigned char>(v[i + 2]), C_HEX))
                    return false;
                i += 2;
            } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         in_set(c, "-._~!$&'()*+,;="))) {
                return false;
            }
        }
    }
    if (port.empty()) return true;
    if (port[0] != ':') return false;
    for (char c : port.substr(1))
        if (c < '0' || c > '9') return false;
    return true;
}

// RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without
// Host and to one whose Host is invalid (a second Host is refused while
// the fields are parsed). gunicorn accepts both; permit_missing_host lets
// clients that leave Host out of HTTP/1.1 requests through.
bool check_host(const Request &out, const Options &opt, HeadResult &r) {
    const Header *host = out.find("HOST");
    if (host) {
        if (!valid_host(host->value)) return fail_head(r, Error::INVALID_HEADER, msg_invalid_header("HOST"));
        return true;
    }
    bool http11 = out.version_major > 1 || (out.version_major == 1 && out.version_minor >= 1);
    if (http11 && !opt.permit_missing_host)
        return fail_head(r, Error::INVALID_HEADER, "Missing HTTP Header: 'HOST'");
    return true;
}

// Whether any Connection field lists the "close" option.
bool close_option(const Request &out) {
    for (const Header &h : out.headers) {
        if (!iequals(h.name, "CONNECTION")) continue;
        std::string_view v = h.value;
        for (;;) {
            size_t comma = v.find(',');
            if (iequals(trim_ows(v.substr(0, comma)), "close")) return true;
            if (comma == std::string_view::npos) break;
            v = v.substr(comma + 1);
        }
    }
    return false;
}

// Message.should_close: forced close, else the first Connection header
// decides when it is exactly close / keep-alive, else the version does.
// RFC 9112 9.6: a "close" option anywhere (in a list, or in a later
// Connection field) means no further request on this connection is
// processed; gunicorn looks at the first field's whole value only, which
// its sync worker makes harmless by closing anyway.
bool keep_alive(const Request &out) {
    if (out.must_close || close_option(out)) return false;
    for (const Header &h : out.headers) {
        if (!iequals(h.name, "CONNECTION")) continue;
        if (iequals(trim_ows(h.value), "keep-alive")) return true;
        break;
    }
    return out.version_major > 1 || (out.version_major == 1 && out.version_minor >= 1);
}

}  // namespace

// ---------------------------------------------------------------------------

const char *error_name(Error e) {
    switch (e) {
    case Error::NONE: return "NoError";
    case Error::INVALID_REQUEST_LINE: return "InvalidRequestLine";
    case Error::INVALID_REQUEST_METHOD: return "InvalidRequestMethod";
    case Error::INVALID_HTTP_VERSION: return "InvalidHTTPVersion";
    case Error::INVALID_HEADER: return "InvalidHeader";
    case Error::INVALID_HEADER_NAME: return "InvalidHeaderName";
    case Error::OBSOLETE_FOLDING: return "ObsoleteFolding";
    case Error::LIMIT_REQUEST_LINE: return "LimitRequestLine";
    case Error::LIMIT_REQUEST_HEADERS: return "LimitRequestHeaders";
    case Error::UNSUPPORTED_TRANSFER_CODING: return "UnsupportedTransferCoding";
    case Error::EXPECTATION_FAILED: return "ExpectationFailed";
    case Error::INVALID_SCHEME_HEADERS: return "InvalidSchemeHeaders";
    case Error::INVALID_PROXY_LINE: return "InvalidProxyLine";
    case Error::INVALID_PROXY_HEADER: return "InvalidProxyHeader";
    case Error::FORBIDDEN_PROXY_REQUEST: return "ForbiddenProxyRequest";
    case Error::INVALID_CHUNK_SIZE: return "InvalidChunkSize";
    case Error::CHUNK_MISSING_TERMINATOR: return "ChunkMissingTerminator";
    case Error::INVALID_CHUNK_EXTENSION: return "InvalidChunkExtension";
    case Error::NO_MORE_DATA: return "NoMoreData";
    case Error::LIMIT_REQUEST_BODY: return "LimitRequestBody";
    }
    return "UnknownError";
}

// Worker.handle_error: the listed parse errors answer 400, LimitRequestHeaders
// 431, the newer UnsupportedTransferCoding 501 and ExpectationFailed 417,
// ForbiddenProxyRequest 403; InvalidProxyHeader is not in the list and ends
// as a generic 500. cunicorn's LimitRequestBody is 413 (RFC 9110 15.5.14).
// LimitRequestLine is 414 here: RFC 9112 3 says a server MUST answer a
// request-target longer than it wishes to parse with 414; gunicorn sends
// 400 although the exception's .code is 414.
int error_status(Error e) {
    switch (e) {
    case Error::NONE: return 0;
    case Error::LIMIT_REQUEST_LINE: return 414;
    case Error::LIMIT_REQUEST_HEADERS: return 431;
    case Error::LIMIT_REQUEST_BODY: return 413;
    case Error::UNSUPPORTED_TRANSFER_CODING: return 501;
    case Error::EXPECTATION_FAILED: return 417;
    case Error::FORBIDDEN_PROXY_REQUEST: return 403;
    case Error::INVALID_PROXY_HEADER: return 500;
    default: return 400;
    }
}

const char *error_reason(Error e) {
    switch (e) {
    case Error::NONE: return "";
    case Error::LIMIT_REQUEST_HEADERS: return "Request Header Fields Too Large";
    case Error::LIMIT_REQUEST_BODY: return "Content Too Large";
    case Error::LIMIT_REQUEST_LINE: return "URI Too Long";
    case Error::EXPECTATION_FAILED: return "Expectation Failed";
    case Error::FORBIDDEN_PROXY_REQUEST: return "Forbidden";
    case Error::INVALID_PROXY_HEADER: return "Internal Server Error";
    default: return "Bad Request";  // includes 501, as gunicorn writes it
    }
}

Options Options::from_settings(long long limit_request_line, long long limit_request_fields,
                               long long limit_request_field_size) {
    Options o;
    o.limit_request_line = (limit_request_line < 0 || limit_request_line >= (long long)MAX_REQUEST_LINE)
                               ? MAX_REQUEST_LINE
                               : size_t(limit_request_line);
    o.limit_request_fields = (limit_request_fields <= 0 || limit_request_fields > (long long)MAX_HEADERS)
                                 ? MAX_HEADERS
                                 : size_t(limit_request_fields);
    o.limit_request_field_size = limit_request_field_size <= 0
                                     ? DEFAULT_MAX_HEADERFIELD_SIZE
                                     : size_t(limit_request_field_size);
    return o;
}

std::string_view target_authority(std::string_view target) {
    if (target.empty() || target[0] == '/') return {};  // origin-form, the usual case
    size_t sep = target.find("://");
    if (sep == std::string_view::npos) return {};       // authority- or asterisk-form
    std::string_view netloc = target.substr(sep + 3);
    netloc = netloc.substr(0, netloc.find_first_of("/?#"));
    size_t at = netloc.rfind('@');
    return at == std::string_view::npos ? netloc : netloc.substr(at + 1);
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

void Request::clear() {
    method = target = path = query = fragment = {};
    version_major = version_minor = 1;
    headers.clear();
    body = BodyKind::NONE;
    content_length = 0;
    keep_alive = true;
    expect_continue = false;
    must_close = false;
    scheme = {};
    storage.clear();
    resume = Resume{};
}

const Header *Request::find(std::string_view name) const {
    for (const Header &h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

// Request.parse: request line (read_line), headers up to CRLFCRLF, then
// parse_headers and set_body_reader. Errors are reported in that order and
// only once they are certain: a request-line error when the line is complete
// (or too long), a header-section error when the section is complete (or
// over max_buffer_headers), because until then gunicorn could still end
// with a different one.
HeadResult parse_head(const char *buf, size_t len, const Options &opt, bool peer_trusted,
                      Request &out) {
    Request::Resume hint = out.resume;
    out.clear();
    if (hint.scanned > len || hint.line_end >= len) hint = Request::Resume{};
    HeadResult r;
    const Limits lim = limits_of(opt);
    const char *end = buf + len;

    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before
    // the request-line (clients that add CRLF after a POST body). gunicorn
    // answers it with InvalidRequestLine(''); we skip one.
    size_t start = 0;
    if (len >= 1 && buf[0] == '\r') {
        if (len == 1) return r;
        if (buf[1] == '\n') start = 2;
    }

    // Request line: read_line with the limit_request_line checks.
    size_t line_end = hint.line_end;  // index of its CR, once known valid
    bool line_checked = line_end != 0;
    if (!line_checked) {
        size_t from = hint.scanned > start + 1 ? hint.scanned - 1 : start;
        const char *crlf = find_crlf(buf + from, end);
        if (crlf == end) {
            size_t have = len - start;
            if (lim.line && have > lim.line + 2) {
                char m[80];
                std::snprintf(m, sizeof m, "Request Line is too large (%zu > %zu)", have, lim.line);
                fail_head(r, Error::LIMIT_REQUEST_LINE, m);
                return r;
            }
            // Only an unlimited line is stopped by the head size before
            // its CRLF: a limited one is short, and waiting for its CRLF
            // keeps LimitRequestLine first however the bytes were split.
            if (!lim.line && lim.head && have > lim.head) {
                fail_head(r, Error::LIMIT_REQUEST_HEADERS, MSG_HEAD_SIZE);
                return r;
            }
            out.resume.scanned = len;
            return r;
        }
        size_t idx = size_t(crlf - (buf + start));
        if (lim.line && idx > lim.line) {
            char m[80];
            std::snprintf(m, sizeof m, "Request Line is too large (%zu > %zu)", idx, lim.line);
            fail_head(r, Error::LIMIT_REQUEST_LINE, m);
            return r;
        }
        if (lim.head && idx + 2 > lim.head) {
            fail_head(r, Error::LIMIT_REQUEST_HEADERS, MSG_HEAD_SIZE);
            return r;
        }
        line_end = size_t(crlf - buf);
    }

    // Header section: up to CRLFCRLF, or just CRLF when there is none.
    const size_t hstart = line_end + 2;
    const char *hdr_end = nullptr;  // end of the field lines
    size_t head_len = 0;
    if (len - hstart >= 2 && buf[hstart] == '\r' && buf[hstart + 1] == '\n') {
        hdr_end = buf + hstart;
        head_len = hstart + 2;
    } else {
        size_t from = hint.scanned > hstart + 3 ? hint.scanned - 3 : hstart;
        hdr_end = find_crlfcrlf(buf + from, end);
        if (hdr_end) head_len = size_t(hdr_end - buf) + 4;
    }

    // The section is bounded by max_buffer_headers and by what
    // limit_request_header_size leaves after the request line, whichever
    // is smaller; one bound, so that which message is sent does not depend
    // on how the bytes were split.
    size_t section_cap = lim.max_buffer;
    const char *section_msg = "max buffer headers";
    if (lim.head) {
        size_t line_bytes = hstart - start;
        size_t room = lim.head > line_bytes ? lim.head - line_bytes : 0;
        if (room < section_cap) {
            section_cap = room;
            section_msg = MSG_HEAD_SIZE;
        }
    }
    if (!hdr_end) {
        if (!line_checked) {
            RequestLine rl;
            if (!parse_request_line(buf + start, line_end - start, opt, nullptr, 0, rl, r)) return r;
        }
        // Applied to the section as soon as it is certain that its
        // terminator lies beyond the bound.
        if (len - hstart > section_cap) {
            fail_head(r, Error::LIMIT_REQUEST_HEADERS, section_msg);
            return r;
        }
        out.resume.line_end = line_end;
        out.resume.scanned = len;
        return r;
    }
    if (head_len - hstart > section_cap) {
        // The same bound when the terminator came in one read with the rest:
        // gunicorn fed byte by byte would have stopped at the limit.
        if (!line_checked) {
            RequestLine rl;
            if (!parse_request_line(buf + start, line_end - start, opt, nullptr, 0, rl, r)) return r;
        }
        fail_head(r, Error::LIMIT_REQUEST_HEADERS, section_msg);
        return r;
    }

    // The whole head is here: build the request.
    RequestLine rl;
    if (!parse_request_line(buf + start, line_end - start, opt, &out.storage, head_len, rl, r)) return r;
    out.method = rl.method;
    out.target = rl.target;
    out.path = rl.parts.path;
    out.query = rl.parts.query;
    out.fragment = rl.parts.fragment;
    out.version_major = rl.major;
    out.version_minor = rl.minor;

    if (out.headers.capacity() < 16) out.headers.reserve(16);
    RequestSink sink{out, head_len};
    Policy pol;
    FieldError fe;
    bool http11 = rl.major > 1 || (rl.major == 1 && rl.minor >= 1);
    if (!parse_fields(buf + hstart, hdr_end, Section::HEADERS, opt, lim, peer_trusted, http11, sink,
                      pol, fe)) {
        fail_head(r, fe.error, std::move(fe.message));
        return r;
    }
    out.expect_continue = pol.expect_continue;
    if (pol.scheme_set) out.scheme = pol.scheme;
    if (!set_body_framing(out, opt, r) || !check_host(out, opt, r)) return r;
    out.keep_alive = keep_alive(out);
    r.status = Status::DONE;
    r.consumed = head_len;
    return r;
}

// Request.read_line / parse raise NoMoreData(buf) with the buffer they were
// filling: the whole input while the request line is incomplete, then the
// bytes after it.
std::string head_eof_message(const char *buf, size_t len) {
    const char *end = buf + len;
    const char *crlf = find_crlf(buf, end);
    if (crlf == buf && len >= 2) crlf = find_crlf(buf + 2, end);  // skipped empty line
    std::string_view rest = crlf == end ? std::string_view(buf, len)
                                        : std::string_view(crlf + 2, size_t(end - crlf - 2));
    return "No more data after: " + py_bytes_repr(rest);
}

// ---------------------------------------------------------------------------
// Chunked decoder (ChunkedReader.parse_chunked / parse_chunk_size /
// parse_trailers), one byte of state at a time so input may be split anywhere.

namespace {

enum class ChunkState : int {
    SIZE,      // chunk-size, before ';' or CRLF (kept in line_ for messages)
    SIZE_CR,   // CR seen in the size part
    EXT,       // chunk-ext after ';', skipped
    EXT_CR,    // CR seen in the extension
    DATA,      // remaining_ bytes of chunk-data
    DATA_CR,   // first byte after the data (kept in line_)
    DATA_LF,   // second byte after the data
    TRAILERS,  // trailer section bytes, kept in line_
    DONE,
    FAILED,
};

// RFC 9112 7.1.1 chunk-ext = *( BWS ";" BWS chunk-ext-name
// [ BWS "=" BWS chunk-ext-val ] ), name a token, value a token or a
// quoted-string (RFC 9110 5.6.4), followed through one byte at a time.
// Control bytes are judged apart (ext_cr_, ext_ctl_).
enum ExtState : uint8_t {
    EXT_BEFORE_NAME,   // after ';'
    EXT_NAME,
    EXT_AFTER_NAME,    // BWS after the name
    EXT_BEFORE_VALUE,  // after '='
    EXT_TOKEN,
    EXT_QUOTED,        // inside the quotes
    EXT_QUOTED_PAIR,   // after a backslash inside them
    EXT_AFTER_VALUE,   // after the value: BWS, then ';' or the end
    EXT_BAD_NAME,      // the rest is not looked at: the line is refused
    EXT_BAD_VALUE,
};

ExtState ext_next(ExtState st, unsigned char c) {
    bool tchar = has(c, C_TCHAR), ws = c == ' ' || c == '\t';
    switch (st) {
    case EXT_BEFORE_NAME:
        return ws ? st : tchar ? EXT_NAME : EXT_BAD_NAME;
    case EXT_NAME:
    case EXT_AFTER_NAME:
        if (c == '=') return EXT_BEFORE_VALUE;
        if (c == ';') return EXT_BEFORE_NAME;
        if (ws) return EXT_AFTER_NAME;
        return st == EXT_NAME && tchar ? EXT_NAME : EXT_BAD_NAME;
    case EXT_BEFORE_VALUE:
        return ws ? st : c == '"' ? EXT_QUOTED : tchar ? EXT_TOKEN : EXT_BAD_VALUE;
    case EXT_TOKEN:
        if (tchar) return st;
        [[fallthrough]];
    case EXT_AFTER_VALUE:
        return ws ? EXT_AFTER_VALUE : c == ';' ? EXT_BEFORE_NAME : EXT_BAD_VALUE;
    case EXT_QUOTED:
        return c == '"' ? EXT_AFTER_VALUE : c == '\\' ? EXT_QUOTED_PAIR : st;
    case EXT_QUOTED_PAIR:
        return EXT_QUOTED;
    default:
        return st;
    }
}

// Why a complete chunk-ext is not one, or nullptr. Trailing BWS after the
// last extension is let through: it cannot end a line anywhere.
const char *ext_error(ExtState st) {
    switch (st) {
    case EXT_NAME:
    case EXT_AFTER_NAME:
    case EXT_TOKEN:
    case EXT_AFTER_VALUE:
        return nullptr;
    case EXT_BEFORE_NAME:
    case EXT_BAD_NAME:
        return "Invalid chunk extension: name is not a token";
    case EXT_QUOTED:
    case EXT_QUOTED_PAIR:
        return "Invalid chunk extension: quoted-string not closed before the end of the line";
    default:
        return "Invalid chunk extension: value is not a token or quoted-string";
    }
}

}  // namespace

void ChunkedDecoder::reset() {
    state_ = static_cast<int>(ChunkState::SIZE);
    remaining_ = 0;
    line_.clear();
    trailers_.clear();
    error_ = Error::NONE;
    received_ = 0;
    line_len_ = 0;
    ext_ = ext_cr_ = false;
    ext_ctl_ = -1;
    ext_state_ = EXT_BEFORE_NAME;
    msg_.clear();
}

ChunkedDecoder::Step ChunkedDecoder::step(const char *p, size_t len) {
    Step s{Status::NEED_MORE, 0, nullptr, 0, Error::NONE};
    const Options &opt = opt_ ? *opt_ : default_options();
    ChunkState st = static_cast<ChunkState>(state_);
    size_t i = 0;

    auto failed = [&](Error e, std::string msg) {
        st = ChunkState::FAILED;
        error_ = e;
        msg_ = std::move(msg);
        s.status = Status::ERROR;
        s.error = e;
    };
    // gunicorn bounds the chunk-size line by limit_request_field_size
    // (default 8190) and raises InvalidChunkSize past it; an extension is
    // skipped, not stored, but scanning it must end somewhere too.
    auto grow_line = [&]() {
        if (++line_len_ <= limits_of(opt).field_size) return true;
        char m[64];
        std::snprintf(m, sizeof m, "line over %zu bytes with no terminator", limits_of(opt).field_size);
        failed(Error::INVALID_CHUNK_SIZE, "Invalid chunk size: " + py_bytes_repr(m));
        return false;
    };
    // The whole chunk-size line is in: RFC 9112 7.1 chunk-size [ chunk-ext ].
    auto end_of_size_line = [&]() {
        if (ext_ && ext_cr_) {
            // RFC 9112 7.1.1 and 2.2: a bare CR in chunk-ext is invalid.
            failed(Error::INVALID_CHUNK_EXTENSION, "Invalid chunk extension: bare CR not allowed");
            return false;
        }
        if (ext_ && ext_ctl_ >= 0) {
            std::string byte(1, char(ext_ctl_));
            failed(Error::INVALID_CHUNK_EXTENSION, "Invalid chunk extension: " + py_bytes_repr(byte) + " not allowed");
            return false;
        }
        // BWS before ';' only when an extension follows (RFC 9112 7.1.1).
        std::string_view size = line_;
        if (ext_) size = rtrim_ows(size);
        // 1*HEXDIG: no sign, no 0x, no '_', no whitespace.
        if (size.empty() || !all_of(size, C_HEX)) {
            failed(Error::INVALID_CHUNK_SIZE, "Invalid chunk size: " + py_bytes_repr(size));
            return false;
        }
        size_t z = 0;
        while (z < size.size() && size[z] == '0') ++z;
        // Counted before it can overflow (pico): gunicorn has no bound, a
        // uint64 has 16 hex digits.
        if (size.size() - z > 16) {
            failed(Error::INVALID_CHUNK_SIZE, "Invalid chunk size: " + py_bytes_repr(size));
            return false;
        }
        // RFC 9112 7.1.1, RFC 9110 5.6.4: gunicorn skips the extension
        // unread; a hop that parses it would not agree on where an unclosed
        // quoted-string or a stray byte ends it. Checked after the size, so
        // that a bad size keeps gunicorn's error.
        if (const char *why = ext_ ? ext_error(ExtState(ext_state_)) : nullptr) {
            failed(Error::INVALID_CHUNK_EXTENSION, why);
            return false;
        }
        uint64_t v = 0;
        for (size_t k = z; k < size.size(); ++k) {
            char c = size[k];
            v = (v << 4) | uint64_t(c <= '9' ? c - '0' : (ascii_lower(c) - 'a' + 10));
        }
        // limit_request_body: refused at the size line that would take the
        // body past it, so the app never gets a byte beyond the limit.
        if (opt.limit_request_body && v > opt.limit_request_body - received_) {
            char m[96];
            std::snprintf(m, sizeof m, "Request body is too large (more than %llu bytes)",
                          (unsigned long long)opt.limit_request_body);
            failed(Error::LIMIT_REQUEST_BODY, m);
            return false;
        }
        received_ += v;
        line_.clear();
        line_len_ = 0;
        ext_ = ext_cr_ = false;
        ext_ctl_ = -1;
        ext_state_ = EXT_BEFORE_NAME;
        if (v == 0) {
            st = ChunkState::TRAILERS;
        } else {
            remaining_ = v;
            st = ChunkState::DATA;
        }
        return true;
    };

    while (i < len && s.status == Status::NEED_MORE) {
        char c = p[i];
        switch (st) {
        case ChunkState::SIZE:
            if (c == '\r') {
                st = ChunkState::SIZE_CR;
                ++i;
                break;
            }
            if (c == ';') {
                ext_ = true;
                st = ChunkState::EXT;
                ++i;
                grow_line();
                break;
            }
            ++i;
            if (grow_line()) line_.push_back(c);
            break;
        case ChunkState::SIZE_CR:
            if (c == '\n') {
                ++i;
                end_of_size_line();
                break;
            }
            // A bare CR is part of the size (and makes it invalid); look at
            // this byte again as a size byte.
            st = ChunkState::SIZE;
            if (grow_line()) line_.push_back('\r');
            break;
        case ChunkState::EXT:
            // Extensions are ignored (RFC 9112 7.1.1 allows it) once their
            // grammar has been checked.
            if (c == '\r') {
                st = ChunkState::EXT_CR;
                ++i;
                break;
            }
            // RFC 9112 7.1.1: token or quoted-string, neither of which
            // holds a control byte other than HTAB. gunicorn lets a bare LF
            // through, which a hop that ends lines at LF reads as the end
            // of the size line: the chunk data would start elsewhere.
            if (ext_ctl_ < 0 && has(static_cast<unsigned char>(c), C_VALUE_BAD))
                ext_ctl_ = static_cast<unsigned char>(c);
            ext_state_ = ext_next(ExtState(ext_state_), static_cast<unsigned char>(c));
            ++i;
            grow_line();
            break;
        case ChunkState::EXT_CR:
            if (c == '\n') {
                ++i;
                end_of_size_line();
                break;
            }
            ext_cr_ = true;
            st = ChunkState::EXT;
            grow_line();
            break;
        case ChunkState::DATA: {
            size_t n = len - i;
            if (uint64_t(n) > remaining_) n = size_t(remaining_);
            s.data = p + i;
            s.data_len = n;
            i += n;
            remaining_ -= n;
            if (remaining_ == 0) st = ChunkState::DATA_CR;
            state_ = static_cast<int>(st);
            s.consumed = i;
            return s;  // one span per call, pointing into the input
        }
        case ChunkState::DATA_CR:
            // Both bytes are kept: ChunkMissingTerminator shows them.
            line_.push_back(c);
            ++i;
            st = ChunkState::DATA_LF;
            if (i == len) break;
            c = p[i];
            [[fallthrough]];
        case ChunkState::DATA_LF:
            line_.push_back(c);
            ++i;
            // RFC 9112 7.1: chunk-data is followed by exactly CRLF.
            if (line_ != "\r\n") {
                failed(Error::CHUNK_MISSING_TERMINATOR,
                       "Invalid chunk terminator is not '\\r\\n': " + py_bytes_repr(line_));
                break;
            }
            line_.clear();
            st = ChunkState::SIZE;
            break;
        case ChunkState::TRAILERS: {
            // RFC 9112 7.1.2: trailer-section CRLF. Bytes are kept until the
            // section ends, then parsed with the header rules.
            line_.push_back(c);
            ++i;
            size_t n = line_.size();
            if (n == 2 && line_[0] == '\r' && line_[1] == '\n') {
                line_.clear();
                st = ChunkState::DONE;
                s.status = Status::DONE;
                break;
            }
            if (n >= 4 && line_.compare(n - 4, 4, "\r\n\r\n") == 0) {
                Limits lim = limits_of(opt);
                TrailerSink sink{trailers_, {}};
                Policy pol;
                FieldError fe;
                const char *b = line_.data();
                if (!parse_fields(b, b + n - 4, Section::TRAILERS, opt, lim, false, true, sink, pol, fe)) {
                    trailers_.clear();
                    failed(fe.error, std::move(fe.message));
                    break;
                }
                line_.clear();
                st = ChunkState::DONE;
                s.status = Status::DONE;
                break;
            }
            // Bounded like a head: gunicorn's limit_trailer_section is
            // max_buffer_headers.
            if (n > limits_of(opt).max_buffer)
                failed(Error::LIMIT_REQUEST_HEADERS, "limit request trailer section size");
            break;
        }
        case ChunkState::DONE:
            s.status = Status::DONE;
            break;
        case ChunkState::FAILED:
            s.status = Status::ERROR;
            s.error = error_;
            break;
        }
    }
    if (s.status == Status::NEED_MORE) {
        if (st == ChunkState::DONE) s.status = Status::DONE;
        else if (st == ChunkState::FAILED) {
            s.status = Status::ERROR;
            s.error = error_;
        }
    }
    state_ = static_cast<int>(st);
    s.consumed = i;
    return s;
}

Error ChunkedDecoder::at_eof() const {
    switch (static_cast<ChunkState>(state_)) {
    case ChunkState::DONE:
        return Error::NONE;
    case ChunkState::FAILED:
        return error_;
    case ChunkState::DATA_CR:
    case ChunkState::DATA_LF:
        // parse_chunked: fewer than two bytes after the data at EOF.
        msg_ = "Invalid chunk terminator is not '\\r\\n': " + py_bytes_repr(line_);
        return Error::CHUNK_MISSING_TERMINATOR;
    case ChunkState::TRAILERS:
        // RFC 9112 7.1.2: the last chunk must be followed by a trailer
        // section and CRLF; EOF before that is a truncated body.
        msg_ = "Invalid chunk terminator is not '\\r\\n': b''";
        return Error::CHUNK_MISSING_TERMINATOR;
    default:
        // In a chunk-size line or in chunk data: NoMoreData().
        msg_ = "No more data after: None";
        return Error::NO_MORE_DATA;
    }
}

// ---------------------------------------------------------------------------
// PROXY protocol (Request._handle_proxy_protocol and the v1/v2 parsers).

namespace {

const unsigned char PP_V2_SIGNATURE[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
// The PROXY v1 spec bounds the line at 107 bytes including CRLF; gunicorn
// reads until CRLF without a bound.
constexpr size_t PP_V1_MAX = 107;

bool fail_proxy(ProxyResult &r, Error e, std::string msg) {
    r.status = Status::ERROR;
    r.error = e;
    r.consumed = 0;
    r.present = true;
    r.message = std::move(msg);
    return false;
}

// int(s) for a latin-1 str, as the v1 port fields are converted: surrounding
// whitespace, a sign and single '_' between digits are accepted.
bool python_int(std::string_view s, long &out) {
    auto ws = [](unsigned char c) {
        return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
               c == 0xa0;
    };
    size_t b = 0, e = s.size();
    while (b < e && ws(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && ws(static_cast<unsigned char>(s[e - 1]))) --e;
    s = s.substr(b, e - b);
    bool neg = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.empty()) return false;
    long v = 0;
    bool prev_digit = false;
    for (char c : s) {
        if (c == '_') {
            if (!prev_digit) return false;
            prev_digit = false;
            continue;
        }
        if (c < '0' || c > '9') return false;
        prev_digit = true;
        if (v < 1000000) v = v * 10 + (c - '0');  // anything larger is out of range anyway
    }
    if (!prev_digit) return false;
    out = neg ? -v : v;
    return true;
}

bool valid_addr(int family, std::string_view a) {
    char tmp[64];
    if (a.empty() || a.size() >= sizeof tmp || a.find('\0') != std::string_view::npos) return false;
    std::memcpy(tmp, a.data(), a.size());
    tmp[a.size()] = '\0';
    unsigned char bin[16];
    return inet_pton(family, tmp, bin) == 1;
}

void parse_proxy_v1(const char *buf, size_t len, ProxyResult &r) {
    const char *crlf = find_crlf(buf, buf + (len < PP_V1_MAX ? len : PP_V1_MAX));
    if (crlf == buf + (len < PP_V1_MAX ? len : PP_V1_MAX)) {
        if (len >= PP_V1_MAX) {
            fail_proxy(r, Error::INVALID_PROXY_LINE,
                       "Invalid PROXY line: " + py_repr(std::string_view(buf, PP_V1_MAX)));
            return;
        }
        r.status = Status::NEED_MORE;
        return;
    }
    std::string_view line(buf, size_t(crlf - buf));
    // line.split(" "): exactly PROXY PROTO SRC DST SPORT DPORT.
    std::string_view bits[7];
    size_t n = 0, pos = 0;
    for (;;) {
        size_t sp = line.find(' ', pos);
        if (n == 7) {
            n = 8;
            break;
        }
        bits[n++] = line.substr(pos, sp == std::string_view::npos ? sp : sp - pos);
        if (sp == std::string_view::npos) break;
        pos = sp + 1;
    }
    if (n != 6) {
        fail_proxy(r, Error::INVALID_PROXY_LINE, "Invalid PROXY line: " + py_repr(line));
        return;
    }
    int family;
    if (bits[1] == "TCP4") {
        family = AF_INET;
    } else if (bits[1] == "TCP6") {
        family = AF_INET6;
    } else {
        std::string m = "protocol '";
        m.append(bits[1].data(), bits[1].size());
        m += "' not supported";
        fail_proxy(r, Error::INVALID_PROXY_LINE, "Invalid PROXY line: " + py_repr(m));
        return;
    }
    if (!valid_addr(family, bits[2]) || !valid_addr(family, bits[3])) {
        fail_proxy(r, Error::INVALID_PROXY_LINE, "Invalid PROXY line: " + py_repr(line));
        return;
    }
    long sport = 0, dport = 0;
    if (!python_int(bits[4], sport) || !python_int(bits[5], dport) || sport < 0 || sport > 65535 ||
        dport < 0 || dport > 65535) {
        std::string m = "invalid port ";
        m.append(line.data(), line.size());
        fail_proxy(r, Error::INVALID_PROXY_LINE, "Invalid PROXY line: " + py_repr(m));
        return;
    }
    r.status = Status::DONE;
    r.present = true;
    r.consumed = line.size() + 2;
    r.info.protocol = std::string(bits[1]);
    r.info.client_addr = std::string(bits[2]);
    r.info.proxy_addr = std::string(bits[3]);
    r.info.client_port = int(sport);
    r.info.proxy_port = int(dport);
}

void parse_proxy_v2(const unsigned char *b, size_t len, ProxyResult &r) {
    if (len < 16) {
        r.status = Status::NEED_MORE;
        return;
    }
    char m[64];
    int version = b[12] >> 4, command = b[12] & 15;
    if (version != 2) {
        std::snprintf(m, sizeof m, "Invalid PROXY header: unsupported version %d", version);
        fail_proxy(r, Error::INVALID_PROXY_HEADER, m);
        return;
    }
    if (command != 0 && command != 1) {
        std::snprintf(m, sizeof m, "Invalid PROXY header: unsupported command %d", command);
        fail_proxy(r, Error::INVALID_PROXY_HEADER, m);
        return;
    }
    size_t length = size_t(b[14]) << 8 | b[15];
    size_t total = 16 + length;
    if (len < total) {
        r.status = Status::NEED_MORE;
        return;
    }
    r.status = Status::DONE;
    r.present = true;
    r.consumed = total;
    if (command == 0) {  // LOCAL: the proxy's own connection, no addresses
        r.info.protocol = "LOCAL";
        return;
    }
    int family = b[13] >> 4, transport = b[13] & 15;
    if (transport != 1) {
        fail_proxy(r, Error::INVALID_PROXY_HEADER, "Invalid PROXY header: only TCP protocol is supported");
        return;
    }
    const unsigned char *a = b + 16;
    char s_addr[INET6_ADDRSTRLEN], d_addr[INET6_ADDRSTRLEN];
    if (family == 1) {
        if (length < 12) {
            fail_proxy(r, Error::INVALID_PROXY_HEADER,
                       "Invalid PROXY header: insufficient address data for IPv4");
            return;
        }
        inet_ntop(AF_INET, a, s_addr, sizeof s_addr);
        inet_ntop(AF_INET, a + 4, d_addr, sizeof d_addr);
        r.info.protocol = "TCP4";
        r.info.client_port = a[8] << 8 | a[9];
        r.info.proxy_port = a[10] << 8 | a[11];
    } else if (family == 2) {
        if (length < 36) {
            fail_proxy(r, Error::INVALID_PROXY_HEADER,
                       "Invalid PROXY header: insufficient address data for IPv6");
            return;
        }
        inet_ntop(AF_INET6, a, s_addr, sizeof s_addr);
        inet_ntop(AF_INET6, a + 16, d_addr, sizeof d_addr);
        r.info.protocol = "TCP6";
        r.info.client_port = a[32] << 8 | a[33];
        r.info.proxy_port = a[34] << 8 | a[35];
    } else if (family == 0) {
        r.info.protocol = "UNSPEC";
        return;
    } else {
        std::snprintf(m, sizeof m, "Invalid PROXY header: unsupported address family %d", family);
        fail_proxy(r, Error::INVALID_PROXY_HEADER, m);
        return;
    }
    r.info.client_addr = s_addr;
    r.info.proxy_addr = d_addr;
}

}  // namespace

ProxyResult parse_proxy(const char *buf, size_t len, ProxyProtocol mode, bool peer_allowed,
                        std::string_view peer_ip) {
    ProxyResult r;
    r.status = Status::DONE;
    if (mode == ProxyProtocol::OFF) return r;
    if (len == 0) {
        r.status = Status::NEED_MORE;
        return r;
    }
    const unsigned char *b = reinterpret_cast<const unsigned char *>(buf);
    bool v2 = mode == ProxyProtocol::V2 || mode == ProxyProtocol::AUTO;
    bool v1 = mode == ProxyProtocol::V1 || mode == ProxyProtocol::AUTO;
    bool maybe_v2 = v2 && std::memcmp(b, PP_V2_SIGNATURE, len < 12 ? len : 12) == 0;
    bool maybe_v1 = v1 && std::memcmp(buf, "PROXY ", len < 6 ? len : 6) == 0;
    // A prefix of either signature may still become one.
    if ((maybe_v2 && len < 12) || (maybe_v1 && len < 6)) {
        r.status = Status::NEED_MORE;
        return r;
    }
    if (!maybe_v2 && !maybe_v1) return r;  // plain HTTP: the header is optional
    if (!peer_allowed) {
        fail_proxy(r, Error::FORBIDDEN_PROXY_REQUEST,
                   "Proxy request from " + py_repr(peer_ip) + " not allowed");
        return r;
    }
    if (maybe_v2)
        parse_proxy_v2(b, len, r);
    else
        parse_proxy_v1(buf, len, r);
    return r;
}

}  // namespace cunicorn::http
