// Parser rules beyond gunicorn's corpus, as tables: request line and target
// forms, header fields and policy, body framing and smuggling, limits at
// their exact boundaries, pipelining, the chunked decoder and the PROXY
// header. Each input is parsed whole and then again one byte at a time (the
// head parser re-entered on every prefix, the decoder and PROXY parser fed
// piecewise), always flush against a PROT_NONE page (pico's test.c).
#include "cunicorn/http_parser.h"
#include "harness.h"

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

// The fuzzers' regression inputs replayed with a plain function call, so
// that hosts without clang/libFuzzer run them (see tests/fuzz/run.sh).
#define CUNICORN_REPLAY_NO_MAIN
#include "../fuzz/replay_main.cpp"

namespace http = cunicorn::http;
using http::BodyKind;
using http::Error;
using http::Status;
using namespace std::string_literals;

namespace {

// ---------------------------------------------------------------------------
// Input placed so that its last byte is the last one before a PROT_NONE page.

class Guard {
public:
    explicit Guard(size_t cap) {
        long pg = sysconf(_SC_PAGESIZE);
        page_ = size_t(pg > 0 ? pg : 4096);
        cap_ = (cap / page_ + 1) * page_;
        void *m = mmap(nullptr, cap_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        base_ = m == MAP_FAILED ? nullptr : static_cast<char *>(m);
        if (base_) mprotect(base_ + cap_, page_, PROT_NONE);
    }
    const char *place(const char *data, size_t len) {
        if (!base_ || len > cap_) return nullptr;
        char *dst = base_ + cap_ - len;
        if (len) std::memmove(dst, data, len);
        return dst;
    }
    const char *place(const std::string &s) { return place(s.data(), s.size()); }

private:
    size_t page_ = 4096, cap_ = 0;
    char *base_ = nullptr;
};

Guard &guard() {
    static Guard g(1 << 20);
    return g;
}

using Fields = std::vector<std::pair<std::string, std::string>>;

std::string show(const Fields &f) {
    std::string s = "[";
    for (const auto &kv : f) s += "(" + kv.first + ": " + kv.second + ")";
    return s + "]";
}

const char *status_name(Status s) {
    return s == Status::DONE ? "DONE" : s == Status::NEED_MORE ? "NEED_MORE" : "ERROR";
}

// ---------------------------------------------------------------------------
// parse_head tables.

struct Exp {
    Status status = Status::DONE;
    Error error = Error::NONE;
    std::optional<std::string> message, method, target, path, query, fragment, scheme;
    std::optional<std::pair<int, int>> version;
    std::optional<Fields> headers;
    std::optional<BodyKind> body;
    std::optional<uint64_t> content_length;
    std::optional<bool> keep_alive, expect_continue, must_close;
    std::optional<size_t> consumed;

    Exp m(std::string v) const { Exp c = *this; c.method = v; return c; }
    Exp t(std::string v) const { Exp c = *this; c.target = v; return c; }
    Exp p(std::string v) const { Exp c = *this; c.path = v; return c; }
    Exp q(std::string v) const { Exp c = *this; c.query = v; return c; }
    Exp f(std::string v) const { Exp c = *this; c.fragment = v; return c; }
    Exp v(int a, int b) const { Exp c = *this; c.version = {a, b}; return c; }
    Exp h(Fields v) const { Exp c = *this; c.headers = v; return c; }
    Exp b(BodyKind v) const { Exp c = *this; c.body = v; return c; }
    Exp cl(uint64_t v) const { Exp c = *this; c.body = BodyKind::LENGTH; c.content_length = v; return c; }
    Exp ka(bool v) const { Exp c = *this; c.keep_alive = v; return c; }
    Exp ec(bool v) const { Exp c = *this; c.expect_continue = v; return c; }
    Exp mc(bool v) const { Exp c = *this; c.must_close = v; return c; }
    Exp sch(std::string v) const { Exp c = *this; c.scheme = v; return c; }
    Exp n(size_t v) const { Exp c = *this; c.consumed = v; return c; }
};

Exp ok() { return Exp{}; }
Exp need_more() {
    Exp e;
    e.status = Status::NEED_MORE;
    return e;
}
Exp err(Error e, std::string msg = {}) {
    Exp x;
    x.status = Status::ERROR;
    x.error = e;
    if (!msg.empty()) x.message = msg;
    return x;
}

using Config = void (*)(http::Options &);

struct HeadCase {
    const char *name;
    std::string wire;
    Exp exp;
    Config cfg = nullptr;
    bool trusted = true;
};

std::string to_s(std::string_view v) { return std::string(v); }

// Compares one result with the expectation; returns "" or what differs.
std::string compare(const http::Request &q, const http::HeadResult &r, const Exp &e) {
    if (r.status != e.status)
        return std::string("status ") + status_name(r.status) + " (" + http::error_name(r.error) + ": " +
               r.message + "), expected " + status_name(e.status);
    if (r.error != e.error)
        return std::string("error ") + http::error_name(r.error) + ", expected " + http::error_name(e.error);
    if (e.message && r.message != *e.message) return "message '" + r.message + "' expected '" + *e.message + "'";
    if (r.status == Status::ERROR && r.message.empty()) return "error without message";
    if (r.status != Status::DONE) return "";
    if (e.consumed && r.consumed != *e.consumed) return "consumed " + std::to_string(r.consumed);
    if (e.method && q.method != *e.method) return "method " + to_s(q.method);
    if (e.target && q.target != *e.target) return "target " + to_s(q.target);
    if (e.path && q.path != *e.path) return "path '" + to_s(q.path) + "'";
    if (e.query && q.query != *e.query) return "query '" + to_s(q.query) + "'";
    if (e.fragment && q.fragment != *e.fragment) return "fragment '" + to_s(q.fragment) + "'";
    if (e.version && (q.version_major != e.version->first || q.version_minor != e.version->second))
        return "version " + std::to_string(q.version_major) + "." + std::to_string(q.version_minor);
    if (e.headers) {
        Fields got;
        for (const auto &hd : q.headers) got.emplace_back(to_s(hd.name), to_s(hd.value));
        if (got != *e.headers) return "headers " + show(got) + " expected " + show(*e.headers);
    }
    if (e.body && q.body != *e.body) return "body kind " + std::to_string(int(q.body));
    if (e.content_length && q.content_length != *e.content_length)
        return "content_length " + std::to_string(q.content_length);
    if (e.keep_alive && q.keep_alive != *e.keep_alive) return "keep_alive " + std::to_string(q.keep_alive);
    if (e.expect_continue && q.expect_continue != *e.expect_continue) return "expect_continue";
    if (e.must_close && q.must_close != *e.must_close) return "must_close";
    if (e.scheme && q.scheme != *e.scheme) return "scheme '" + to_s(q.scheme) + "'";
    return "";
}

void run_head(const HeadCase &c) {
    http::Options opt;
    // Most inputs below leave Host out to stay short; the RFC 9112 3.2 rule
    // is tested in http_host with cfg_host_required, which turns it back on.
    opt.permit_missing_host = true;
    if (c.cfg) c.cfg(opt);
    auto bad = [&](const char *how, const std::string &what) {
        harness::fail(__FILE__, __LINE__, std::string(c.name) + " [" + how + "]: " + what);
    };
    http::Request q;
    const size_t n = c.wire.size();
    http::HeadResult whole = http::parse_head(guard().place(c.wire), n, opt, c.trusted, q);
    std::string d = compare(q, whole, c.exp);
    if (!d.empty()) return bad("whole", d);

    // Every prefix, one Request throughout (the resume path): a prefix may
    // only say NEED_MORE, or already what the whole input says.
    http::Request q2;
    bool errored = false;
    for (size_t k = 0; k <= n; ++k) {
        http::HeadResult r = http::parse_head(guard().place(c.wire.data(), k), k, opt, c.trusted, q2);
        if (k == n) {
            d = compare(q2, r, c.exp);
            if (d.empty() && r.message != whole.message) d = "message " + r.message;
            if (!d.empty()) bad("byte-by-byte", d);
            break;
        }
        std::string at = "prefix " + std::to_string(k);
        if (r.status == Status::ERROR) {
            if (whole.status != Status::ERROR || r.error != whole.error)
                return bad(at.c_str(), std::string("early ") + http::error_name(r.error) + ": " + r.message);
            errored = true;
        } else if (r.status == Status::DONE) {
            if (whole.status != Status::DONE || r.consumed != whole.consumed) return bad(at.c_str(), "early DONE");
        } else if (errored) {
            return bad(at.c_str(), "NEED_MORE after an error on a shorter prefix");
        }
    }
}

void run_heads(const std::vector<HeadCase> &cases) {
    for (const HeadCase &c : cases) run_head(c);
}

const std::string GET = "GET / HTTP/1.1\r\n";

std::string head(const std::string &fields, const std::string &line = GET) { return line + fields + "\r\n"; }

void cfg_permit_method(http::Options &o) { o.permit_unconventional_http_method = true; }
void cfg_casefold(http::Options &o) {
    o.permit_unconventional_http_method = true;
    o.casefold_http_method = true;
}
void cfg_version(http::Options &o) { o.permit_unconventional_http_version = true; }
void cfg_fold(http::Options &o) { o.permit_obsolete_folding = true; }
void cfg_strip(http::Options &o) { o.strip_header_spaces = true; }
void cfg_refuse(http::Options &o) { o.header_map = http::HeaderMap::REFUSE; }
void cfg_dangerous(http::Options &o) { o.header_map = http::HeaderMap::DANGEROUS; }
void cfg_forward_all(http::Options &o) { o.forwarder_headers = {"*"}; }
void cfg_fields3(http::Options &o) { o.limit_request_fields = 3; }
void cfg_fields1(http::Options &o) { o.limit_request_fields = 1; }
void cfg_size10(http::Options &o) { o.limit_request_field_size = 10; }
void cfg_fold_size10(http::Options &o) {
    o.permit_obsolete_folding = true;
    o.limit_request_field_size = 10;
}
void cfg_tiny_buffer(http::Options &o) {  // max_buffer_headers = 1 * (10 + 2) + 4
    o.limit_request_fields = 1;
    o.limit_request_field_size = 10;
}
void cfg_line20(http::Options &o) { o.limit_request_line = 20; }
void cfg_line0(http::Options &o) { o.limit_request_line = 0; }
void cfg_line_clamped(http::Options &o) {
    o.limit_request_line = http::Options::from_settings(100000, 100, 8190).limit_request_line;
}
void cfg_head40(http::Options &o) { o.limit_request_header_size = 40; }
void cfg_head40_line0(http::Options &o) {
    o.limit_request_line = 0;
    o.limit_request_header_size = 40;
}
void cfg_head40_line20(http::Options &o) {
    o.limit_request_line = 20;
    o.limit_request_header_size = 40;
}
void cfg_head_over_buffer(http::Options &o) {  // max_buffer_headers 16 is the smaller bound
    o.limit_request_fields = 1;
    o.limit_request_field_size = 10;
    o.limit_request_header_size = 100;
}
void cfg_body10(http::Options &o) { o.limit_request_body = 10; }
void cfg_host_required(http::Options &o) { o.permit_missing_host = false; }

}  // namespace

TEST(http_request_line) {
    run_heads({
        {"simple", head(""), ok().m("GET").t("/").p("/").q("").f("").v(1, 1).ka(true).b(BodyKind::NONE).n(18)},
        {"http10_closes", head("", "GET / HTTP/1.0\r\n"), ok().v(1, 0).ka(false)},
        {"http09_has_no_version", "GET /\r\n\r\n", err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET /'")},
        {"bare_lf_is_an_ordinary_byte", "GET / HTTP/1.1\n\r\n\r\n",
         err(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: 'HTTP/1.1\\n'")},
        {"bare_lf_never_ends_a_line", "GET / HTTP/1.1\n\n", need_more()},
        {"bare_cr_in_target", "GET /a\rb HTTP/1.1\r\n\r\n",
         err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET /a\\rb HTTP/1.1'")},
        {"bare_lf_in_target", "GET /a\nb HTTP/1.1\r\n\r\n",
         err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET /a\\nb HTTP/1.1'")},
        {"tab_in_target_left_out_of_path", "GET /a\tb HTTP/1.1\r\n\r\n", ok().t("/a\tb").p("/ab")},
        {"ctl_in_target_kept", "GET /a\x01 HTTP/1.1\r\n\r\n", ok().p("/a\x01")},
        {"obs_text_in_target", "GET /\xe9t\xe9 HTTP/1.1\r\n\r\n", ok().p("/\xe9t\xe9")},
        {"two_spaces", "GET  / HTTP/1.1\r\n\r\n",
         err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET  / HTTP/1.1'")},
        {"space_after_version", "GET / HTTP/1.1 \r\n\r\n",
         err(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: 'HTTP/1.1 '")},
        {"tab_is_not_a_separator", "GET\t/ HTTP/1.1\r\n\r\n",
         err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET\\t/ HTTP/1.1'")},
        {"lowercase_method", head("", "get / HTTP/1.1\r\n"), err(Error::INVALID_REQUEST_METHOD, "Invalid HTTP method: 'get'")},
        {"lowercase_permitted", head("", "get / HTTP/1.1\r\n"), ok().m("get"), cfg_permit_method},
        {"casefold", head("", "get / HTTP/1.1\r\n"), ok().m("GET"), cfg_casefold},
        {"method_too_short", head("", "GE / HTTP/1.1\r\n"), err(Error::INVALID_REQUEST_METHOD, "Invalid HTTP method: 'GE'")},
        {"method_20_chars", head("", "ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\n"), ok().m("ABCDEFGHIJKLMNOPQRST")},
        {"method_21_chars", head("", "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n"), err(Error::INVALID_REQUEST_METHOD)},
        {"method_hash", head("", "G#T / HTTP/1.1\r\n"), err(Error::INVALID_REQUEST_METHOD, "Invalid HTTP method: 'G#T'")},
        {"method_hash_permitted", head("", "G#T / HTTP/1.1\r\n"), ok().m("G#T"), cfg_permit_method},
        {"method_not_token", head("", "GE(T / HTTP/1.1\r\n"), err(Error::INVALID_REQUEST_METHOD, "Invalid HTTP method: 'GE(T'")},
        {"method_repr_quotes", head("", "G'\x01T / HTTP/1.1\r\n"),
         err(Error::INVALID_REQUEST_METHOD, "Invalid HTTP method: \"G'\\x01T\"")},
        {"method_repr_latin1", head("", "G\xa0\xad\xe9 / HTTP/1.1\r\n"),
         err(Error::INVALID_REQUEST_METHOD, "Invalid HTTP method: 'G\\xa0\\xad\xe9'")},
        {"version_two_digits", head("", "GET / HTTP/1.10\r\n"), err(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: 'HTTP/1.10'")},
        {"version_2", head("", "GET / HTTP/2.0\r\n"), err(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: (2, 0)")},
        {"version_2_permitted", head("", "GET / HTTP/2.0\r\n"), ok().v(2, 0).ka(true), cfg_version},
        {"version_09_permitted", head("", "GET / HTTP/0.9\r\n"), ok().v(0, 9).ka(false), cfg_version},
        {"version_0_9", head("", "GET / HTTP/0.9\r\n"), err(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: (0, 9)")},
        {"version_1_9", head("", "GET / HTTP/1.9\r\n"), ok().v(1, 9).ka(true)},
        {"version_lowercase", head("", "GET / http/1.1\r\n"), err(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: 'http/1.1'")},
        {"one_empty_line_skipped", "\r\n" + head(""), ok().n(20)},
        {"two_empty_lines", "\r\n\r\n" + head(""), err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: ''")},
        {"lone_cr", "\r", need_more()},
        {"nothing", "", need_more()},
    });
}

TEST(http_request_target_forms) {
    auto line = [](const char *l) { return std::string(l) + "\r\n\r\n"; };
    run_heads({
        {"asterisk_options", line("OPTIONS * HTTP/1.1"), ok().t("*").p("*")},
        {"asterisk_get", line("GET * HTTP/1.1"), err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET * HTTP/1.1'")},
        {"asterisk_casefolded_options", line("options * HTTP/1.1"), ok().m("OPTIONS").p("*"), cfg_casefold},
        {"authority_connect", line("CONNECT example.com:443 HTTP/1.1"), ok().t("example.com:443").p("443")},
        {"authority_connect_ipv6", line("CONNECT [::1]:443 HTTP/1.1"), ok().p("[::1]:443")},
        {"authority_not_connect", line("GET example.com:443 HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"absolute", line("GET http://h:8080/p/a?x=1#frag HTTP/1.1"), ok().p("/p/a").q("x=1").f("frag")},
        {"absolute_no_path", line("GET http://h HTTP/1.1"), ok().p("").q("")},
        {"absolute_userinfo", line("GET http://u:p@h/x HTTP/1.1"), ok().p("/x")},
        {"double_slash_is_a_path", line("GET //h/p?q HTTP/1.1"), ok().p("//h/p").q("q")},
        {"fragment_before_query", line("GET /a#b?c HTTP/1.1"), ok().p("/a").q("").f("b?c")},
        {"query_then_fragment", line("GET /a?b#c HTTP/1.1"), ok().p("/a").q("b").f("c")},
        {"relative", line("GET a/b HTTP/1.1"), err(Error::INVALID_REQUEST_LINE, "Invalid HTTP request line: 'GET a/b HTTP/1.1'")},
        {"relative_with_scheme_text", line("GET a?u=http://x HTTP/1.1"), ok().p("a").q("u=http://x")},
        {"scheme_must_start_alpha", line("GET 1http://x/y HTTP/1.1"), ok().p("1http://x/y")},
        {"ipv6_unbalanced", line("GET http://[::1/ HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"ipv6_close_only", line("GET http://::1]/ HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"ipv6", line("GET http://[::1]:80/x HTTP/1.1"), ok().p("/x")},
        {"ipv6_scope", line("GET http://[fe80::1%25eth0]/x HTTP/1.1"), ok().p("/x")},
        {"ipv4_in_brackets", line("GET http://[127.0.0.1]/ HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"ipvfuture", line("GET http://[v1.fe]/x HTTP/1.1"), ok().p("/x")},
        {"ipvfuture_bad", line("GET http://[v.fe]/x HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"data_before_bracket", line("GET http://a[::1]/ HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"junk_after_bracket", line("GET http://[::1]x/ HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"brackets_in_userinfo", line("GET http://[x]@h/ HTTP/1.1"), err(Error::INVALID_REQUEST_LINE)},
        {"percent_escapes_kept", line("GET /a%20b%zz HTTP/1.1"), ok().p("/a%20b%zz")},
    });
}

TEST(http_header_fields) {
    auto get10 = [](const std::string &f) { return head(f, "GET / HTTP/1.0\r\n"); };
    run_heads({
        {"name_as_sent_value_trimmed", head("X-Mixed-Case: \t v \t\r\n"), ok().h({{"X-Mixed-Case", "v"}})},
        {"empty_value", head("X:\r\n"), ok().h({{"X", ""}})},
        {"htab_inside_value", head("X: a\tb\r\n"), ok().h({{"X", "a\tb"}})},
        {"obs_text_value", head("X: caf\xe9\r\n"), ok().h({{"X", "caf\xe9"}})},
        {"nul_in_value", head("X: a\0b\r\n"s), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'X'")},
        {"bare_cr_in_value", head("x-a: a\rb\r\n"), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'X-A'")},
        {"bare_lf_in_value", head("X: a\nb\r\n"), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'X'")},
        {"vt_in_value", head("X: a\x0b\r\n"), err(Error::INVALID_HEADER)},
        {"bare_lf_in_name", head("X\nY: a\r\n"), err(Error::INVALID_HEADER_NAME, "Invalid HTTP header name: 'X\\nY'")},
        {"space_before_colon", head("X : a\r\n"), err(Error::INVALID_HEADER_NAME, "Invalid HTTP header name: 'X '")},
        {"space_before_colon_stripped", head("X \t: a\r\n"), ok().h({{"X", "a"}}), cfg_strip},
        {"no_colon", head("Xa\r\n"), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'Xa'")},
        {"empty_name", head(": a\r\n"), err(Error::INVALID_HEADER, "Invalid HTTP Header: ': a'")},
        {"first_line_indented", head(" X: a\r\n"), err(Error::INVALID_HEADER_NAME, "Invalid HTTP header name: ' X'")},
        {"obs_fold_refused", head("x: a\r\n b\r\n"), err(Error::OBSOLETE_FOLDING, "Obsolete line folding is unacceptable: 'X'")},
        {"obs_fold_joined", head("X: a\r\n b \r\n\tc\r\nY: d\r\n"), ok().h({{"X", "a b c"}, {"Y", "d"}}), cfg_fold},
        {"obs_fold_blank_continuation", head("X: a\r\n \r\nY: d\r\n"), ok().h({{"X", "a "}, {"Y", "d"}}), cfg_fold},
        {"obs_fold_ctl", head("X: a\r\n b\x01\r\n"), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'X'"), cfg_fold},
        {"obs_fold_counts_towards_size", head("X: a\r\n bbbbbb\r\n"),
         err(Error::LIMIT_REQUEST_HEADERS, "limit request headers fields size"), cfg_fold_size10},
        {"duplicate_host", head("Host: a\r\nhost: b\r\n"), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'HOST'")},
        {"duplicate_content_type", head("content-type: a\r\nContent-Type: b\r\n"),
         err(Error::INVALID_HEADER, "Invalid HTTP Header: 'CONTENT-TYPE'")},
        {"duplicates_kept_in_order", head("A: 1\r\nB: 2\r\nA: 3\r\n"), ok().h({{"A", "1"}, {"B", "2"}, {"A", "3"}})},
        {"underscore_dropped", head("X_A: 1\r\nY: 2\r\n"), ok().h({{"Y", "2"}})},
        {"underscore_refused", head("x_a: 1\r\n"), err(Error::INVALID_HEADER_NAME, "Invalid HTTP header name: 'X_A'"), cfg_refuse},
        {"underscore_dangerous", head("X_A: 1\r\nY: 2\r\n"), ok().h({{"X_A", "1"}, {"Y", "2"}}), cfg_dangerous},
        {"forwarder_from_trusted", head("Script_Name: /app\r\n"), ok().h({{"Script_Name", "/app"}})},
        {"forwarder_from_untrusted", head("SCRIPT_NAME: /app\r\n"), ok().h({}), nullptr, false},
        {"forwarder_refused_untrusted", head("SCRIPT_NAME: /app\r\n"), err(Error::INVALID_HEADER_NAME), cfg_refuse, false},
        {"forwarder_star", head("X_A: 1\r\n"), ok().h({{"X_A", "1"}}), cfg_forward_all},
        {"expect_100", head("Expect: 100-Continue\r\n"), ok().ec(true)},
        {"expect_100_http10_ignored", get10("Expect: 100-continue\r\n"), ok().ec(false)},
        {"expect_other", head("Expect: foo\r\n"), err(Error::EXPECTATION_FAILED, "Unable to comply with expectation: 'foo'")},
        {"expect_other_http10", get10("Expect: 100-continue, foo\r\n"), err(Error::EXPECTATION_FAILED)},
        {"scheme_trusted", head("X-Forwarded-Proto: https\r\n"), ok().sch("https")},
        {"scheme_untrusted", head("X-Forwarded-Proto: https\r\n"), ok().sch(""), nullptr, false},
        {"scheme_value_case_sensitive", head("X-Forwarded-Proto: HTTPS\r\n"), ok().sch("http")},
        {"scheme_conflict", head("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n"),
         err(Error::INVALID_SCHEME_HEADERS, "Contradictory scheme headers")},
        {"scheme_agree", head("x-forwarded-proto: https\r\nX-Forwarded-Ssl: on\r\n"), ok().sch("https")},
        {"no_host_with_permit_missing_host", head(""), ok()},
        {"connection_close", head("Connection: CLOSE\r\n"), ok().ka(false)},
        {"connection_list_http10", get10("Connection: keep-alive, Upgrade\r\n"), ok().ka(false)},
        {"connection_keep_alive_http10", get10("Connection: Keep-Alive\r\n"), ok().ka(true)},
        // RFC 9112 9.6: "close" anywhere ends the connection; gunicorn reads
        // only the first field's whole value.
        {"connection_close_in_a_later_field", head("Connection: upgrade\r\nConnection: close\r\n"), ok().ka(false)},
        {"connection_close_in_a_list", head("Connection: keep-alive, close\r\n"), ok().ka(false)},
        {"connection_close_in_a_list_http10", get10("Connection: keep-alive,CLOSE \r\n"), ok().ka(false)},
        {"connection_keep_alive_first_only", get10("Connection: upgrade\r\nConnection: keep-alive\r\n"),
         ok().ka(false)},
        {"connection_closer_is_not_close", head("Connection: closer\r\n"), ok().ka(true)},
    });
}

// RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, with two, or
// with an invalid one (gunicorn refuses only two).
TEST(http_host) {
    const std::string MISSING = "Missing HTTP Header: 'HOST'", BAD = "Invalid HTTP Header: 'HOST'";
    auto host = [](const std::string &v, const std::string &line = GET) { return head("Host: " + v + "\r\n", line); };
    const Config H = cfg_host_required;
    run_heads({
        {"missing_http11", head(""), err(Error::INVALID_HEADER, MISSING), H},
        {"missing_http12", head("", "GET / HTTP/1.2\r\n"), err(Error::INVALID_HEADER, MISSING), H},
        {"missing_http10_is_fine", head("", "GET / HTTP/1.0\r\n"), ok(), H},
        {"missing_absolute_form", head("", "GET http://a/ HTTP/1.1\r\n"), err(Error::INVALID_HEADER, MISSING), H},
        {"missing_permitted", head(""), ok()},
        {"underscore_name_is_not_host", head("Ho_st: a\r\n"), err(Error::INVALID_HEADER, MISSING), H},
        {"twice", head("Host: a\r\nhost: a\r\n"), err(Error::INVALID_HEADER, BAD), H},
        {"empty", host(""), ok(), H},
        {"name", host("example.com"), ok(), H},
        {"name_port", host("Example.COM:8080"), ok(), H},
        {"empty_port", host("a:"), ok(), H},
        {"ipv4_port", host("127.0.0.1:80"), ok(), H},
        {"ipv6", host("[::1]:80"), ok(), H},
        {"ipvfuture", host("[v7.a]"), ok(), H},
        {"sub_delims_and_pct", host("a-b_c~d!$&'()*+,;=%41"), ok(), H},
        {"space", host("a b"), err(Error::INVALID_HEADER, BAD), H},
        {"slash", host("a/b"), err(Error::INVALID_HEADER, BAD), H},
        {"userinfo", host("u@a"), err(Error::INVALID_HEADER, BAD), H},
        {"two_colons", host("a:1:2"), err(Error::INVALID_HEADER, BAD), H},
        {"port_not_digits", host("a:8o"), err(Error::INVALID_HEADER, BAD), H},
        {"bad_pct", host("a%4"), err(Error::INVALID_HEADER, BAD), H},
        {"ipv6_unbracketed", host("::1"), err(Error::INVALID_HEADER, BAD), H},
        {"ipv6_bad", host("[::g]"), err(Error::INVALID_HEADER, BAD), H},
        {"ipv6_unclosed", host("[::1"), err(Error::INVALID_HEADER, BAD), H},
        {"ipv6_junk_after", host("[::1]x"), err(Error::INVALID_HEADER, BAD), H},
        {"obs_text", host("caf\xe9"), err(Error::INVALID_HEADER, BAD), H},
        // An invalid value is refused even when a missing one is permitted,
        // and in HTTP/1.0.
        {"invalid_with_permit", host("a b"), err(Error::INVALID_HEADER, BAD)},
        {"invalid_http10", host("a b", "GET / HTTP/1.0\r\n"), err(Error::INVALID_HEADER, BAD), H},
        // gunicorn's errors come first.
        {"framing_error_first", head("Transfer-Encoding: identity\r\n"),
         err(Error::INVALID_HEADER, "Invalid HTTP Header: 'TRANSFER-ENCODING'"), H},
    });
}

TEST(http_target_authority) {
    CHECK(http::target_authority("/p?q") == "");
    CHECK(http::target_authority("*") == "");
    CHECK(http::target_authority("example.com:443") == "");  // authority-form (CONNECT)
    CHECK(http::target_authority("http://example.com") == "example.com");
    CHECK(http::target_authority("http://example.com:8080/p?q") == "example.com:8080");
    CHECK(http::target_authority("https://u:pw@[::1]:8443?q") == "[::1]:8443");
    CHECK(http::target_authority("http://h#f") == "h");
}

TEST(http_body_framing) {
    auto te = [](const std::string &v) { return head("Transfer-Encoding: " + v + "\r\n", "POST / HTTP/1.1\r\n"); };
    auto cl = [](const std::string &v) { return head("Content-Length: " + v + "\r\n", "POST / HTTP/1.1\r\n"); };
    const std::string CL_HDR = "Invalid HTTP Header: 'CONTENT-LENGTH'";
    const std::string TE_HDR = "Invalid HTTP Header: 'TRANSFER-ENCODING'";
    run_heads({
        {"cl_then_te", head("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), err(Error::INVALID_HEADER, CL_HDR)},
        {"te_then_cl", head("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), err(Error::INVALID_HEADER, CL_HDR)},
        {"chunked_chunked", te("chunked, chunked"), err(Error::INVALID_HEADER, TE_HDR)},
        {"chunked_twice", head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), err(Error::INVALID_HEADER, TE_HDR)},
        {"chunked_not_last", te("chunked, gzip"), err(Error::INVALID_HEADER, TE_HDR)},
        {"chunked_then_identity", te("chunked, identity"), err(Error::INVALID_HEADER, TE_HDR)},
        {"gzip_chunked", te("gzip, chunked"), ok().b(BodyKind::CHUNKED).mc(true).ka(false)},
        // RFC 9112 6.3 item 4: chunked must be the final coding, else 400
        // (gunicorn reads no body, or Content-Length, and closes).
        {"gzip_only", te("gzip"), err(Error::INVALID_HEADER, TE_HDR)},
        {"identity_only", te("identity"), err(Error::INVALID_HEADER, TE_HDR)},
        {"identity_with_length", head("Transfer-Encoding: identity\r\nContent-Length: 5\r\n", "POST / HTTP/1.1\r\n"),
         err(Error::INVALID_HEADER, TE_HDR)},
        {"length_with_gzip", head("Content-Length: 5\r\nTransfer-Encoding: gzip\r\n", "POST / HTTP/1.1\r\n"),
         err(Error::INVALID_HEADER, TE_HDR)},
        {"identity_identity", te("identity, identity"), err(Error::INVALID_HEADER, TE_HDR)},
        {"identity_then_chunked", te("identity, chunked"), ok().b(BodyKind::CHUNKED).ka(true)},
        {"identity_then_chunked_in_two_fields", head("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"),
         ok().b(BodyKind::CHUNKED)},
        // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        {"http10_identity", head("Transfer-Encoding: identity\r\n", "POST / HTTP/1.0\r\n"), err(Error::INVALID_HEADER, TE_HDR)},
        {"http10_gzip_length", head("Transfer-Encoding: gzip\r\nContent-Length: 1\r\n", "POST / HTTP/1.0\r\n"),
         err(Error::INVALID_HEADER, TE_HDR)},
        {"http10_chunked", head("Transfer-Encoding: chunked\r\n", "POST / HTTP/1.0\r\n"), err(Error::INVALID_HEADER, TE_HDR)},
        {"chunked", te("chunked"), ok().b(BodyKind::CHUNKED).ka(true)},
        {"chunked_case_and_ows", te("\tCHUNKED \t"), ok().b(BodyKind::CHUNKED)},
        {"ows_around_comma", te("gzip ,\tchunked"), ok().b(BodyKind::CHUNKED)},
        {"unknown_coding", te("xchunked"), err(Error::UNSUPPORTED_TRANSFER_CODING, "Unsupported transfer coding: 'xchunked'")},
        {"nbsp_is_not_ows", te("chunked\xa0"), err(Error::UNSUPPORTED_TRANSFER_CODING, "Unsupported transfer coding: 'chunked\\xa0'")},
        {"nel_is_not_ows", te("\x85" "chunked"), err(Error::UNSUPPORTED_TRANSFER_CODING)},
        {"vt_is_a_ctl", te("chunked\x0b"), err(Error::INVALID_HEADER, TE_HDR)},
        {"empty_element", te("chunked,"), err(Error::UNSUPPORTED_TRANSFER_CODING, "Unsupported transfer coding: 'chunked,'")},
        {"empty_value", te(""), err(Error::UNSUPPORTED_TRANSFER_CODING, "Unsupported transfer coding: ''")},
        {"chunked_http10", head("Transfer-Encoding: chunked\r\n", "POST / HTTP/1.0\r\n"), err(Error::INVALID_HEADER, TE_HDR)},
        {"cl_plus", cl("+1"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_minus", cl("-1"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_inner_space", cl("1 2"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_list", cl("5, 5"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_comma", cl("1,1"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_hex", cl("0x10"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_underscore", cl("1_0"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_empty", cl(""), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_superscript_two", cl("\xb2"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_bare_cr", cl("1\r2"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_huge", cl("99999999999999999999"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_19_digits", cl("1000000000000000000"), err(Error::INVALID_HEADER, CL_HDR)},
        {"cl_18_digits", cl("999999999999999999"), ok().cl(999999999999999999ull)},
        {"cl_leading_zeros", cl("00000000000000000000000000042"), ok().cl(42)},
        {"cl_ows", cl(" \t7 "), ok().cl(7)},
        {"cl_zero", cl("0"), ok().cl(0)},
        {"cl_on_get", head("Content-Length: 5\r\n"), ok().cl(5)},
        {"cl_twice_same", head("Content-Length: 5\r\nContent-Length: 5\r\n"), err(Error::INVALID_HEADER, CL_HDR)},
        {"no_framing", head("", "POST / HTTP/1.1\r\n"), ok().b(BodyKind::NONE)},
    });
}

TEST(http_limits) {
    std::string long_target(10000, 'a');
    long_target[0] = '/';
    std::string line8190 = "GET /" + std::string(8190 - 14, 'a') + " HTTP/1.1\r\n";
    std::string line8191 = "GET /" + std::string(8191 - 14, 'a') + " HTTP/1.1\r\n";
    std::string hdrs3 = head("A: 1\r\nB: 2\r\nC: 3\r\n"), hdrs4 = head("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n");
    run_heads({
        {"line_at_limit", head("", "GET /123456 HTTP/1.1\r\n"), ok(), cfg_line20},
        {"line_over_limit", head("", "GET /1234567 HTTP/1.1\r\n"),
         err(Error::LIMIT_REQUEST_LINE, "Request Line is too large (21 > 20)"), cfg_line20},
        {"line_no_crlf_at_limit_plus_2", "GET /12345678901234567", need_more(), cfg_line20},
        {"line_no_crlf_over", "GET /123456789012345678",
         err(Error::LIMIT_REQUEST_LINE, "Request Line is too large (23 > 20)"), cfg_line20},
        {"line_unlimited", head("", "GET " + long_target + " HTTP/1.1\r\n"), ok().p(long_target), cfg_line0},
        {"line_clamped_8190", head("", line8190), ok(), cfg_line_clamped},
        {"line_clamped_8191", head("", line8191),
         err(Error::LIMIT_REQUEST_LINE, "Request Line is too large (8191 > 8190)"), cfg_line_clamped},
        {"fields_at_limit", hdrs3, ok(), cfg_fields3},
        {"fields_over_limit", hdrs4, err(Error::LIMIT_REQUEST_HEADERS, "limit request headers fields"), cfg_fields3},
        {"dropped_fields_not_counted", head("X_B: 2\r\nX_C: 3\r\nA: 1\r\n"), ok().h({{"A", "1"}}), cfg_fields1},
        // The count is checked before each line, whatever becomes of it.
        {"line_after_limit_even_if_dropped", head("A: 1\r\nX_B: 2\r\n"),
         err(Error::LIMIT_REQUEST_HEADERS, "limit request headers fields"), cfg_fields1},
        {"field_size_at_limit", head("Ab: 1234\r\n"), ok(), cfg_size10},
        {"field_size_over", head("Ab: 12345\r\n"), err(Error::LIMIT_REQUEST_HEADERS, "limit request headers fields size"), cfg_size10},
        {"max_buffer_unterminated", GET + "X_: 0123456789abcdef",
         err(Error::LIMIT_REQUEST_HEADERS, "max buffer headers"), cfg_tiny_buffer},
        {"max_buffer_terminated_beyond", GET + "X_: 0123456789a\r\n\r\n",
         err(Error::LIMIT_REQUEST_HEADERS, "max buffer headers"), cfg_tiny_buffer},
        {"max_buffer_within", head("A: 1\r\n"), ok(), cfg_tiny_buffer},
        {"request_line_error_before_buffer_limit", "GET / HTTP/9.9\r\n" + std::string(20, 'x'),
         err(Error::INVALID_HTTP_VERSION), cfg_tiny_buffer},
    });
}

// limit_request_header_size: the head from the request line to the final
// CRLF (a skipped empty line before it not counted). GET + "X: 12345\r\n"
// + CRLF is 16 + 10 + 2 = 28 bytes.
TEST(http_limit_request_header_size) {
    const std::string HS = "limit request header size";
    run_heads({
        {"off_by_default", head(std::string(100, 'X') + ": 1\r\n"), ok()},
        {"head_at_limit", head("X: " + std::string(17, 'a') + "\r\n"), ok().n(40), cfg_head40},
        {"head_over_limit", head("X: " + std::string(18, 'a') + "\r\n"),
         err(Error::LIMIT_REQUEST_HEADERS, HS), cfg_head40},
        {"empty_line_before_not_counted", "\r\n" + head("X: " + std::string(17, 'a') + "\r\n"), ok().n(42),
         cfg_head40},
        {"counted_over_several_fields", head("A: 1234567\r\nB: 1234567\r\n"),
         err(Error::LIMIT_REQUEST_HEADERS, HS), cfg_head40},
        {"unterminated_over_limit", GET + "X: " + std::string(30, 'a'),
         err(Error::LIMIT_REQUEST_HEADERS, HS), cfg_head40},
        {"unterminated_within_limit", GET + "X: " + std::string(21, 'a'), need_more(), cfg_head40},
        // A request line longer than the head may be: refused before it
        // is looked at, as a head over the limit.
        {"line_alone_over_limit", "BAD\x01 /" + std::string(40, 'a') + " HTTP/1.1\r\n\r\n",
         err(Error::LIMIT_REQUEST_HEADERS, HS), cfg_head40},
        {"unlimited_line_stopped", "GET /" + std::string(60, 'a'), err(Error::LIMIT_REQUEST_HEADERS, HS),
         cfg_head40_line0},
        {"limited_line_waits_for_its_limit", "GET /" + std::string(30, 'a'),
         err(Error::LIMIT_REQUEST_LINE, "Request Line is too large (35 > 20)"), cfg_head40_line20},
        {"line_limit_first", "GET /" + std::string(30, 'a') + " HTTP/1.1\r\n\r\n",
         err(Error::LIMIT_REQUEST_LINE, "Request Line is too large (44 > 20)"), cfg_head40_line20},
        {"invalid_line_first", "GET / HTTP/9.9\r\nX: " + std::string(40, 'a'), err(Error::INVALID_HTTP_VERSION),
         cfg_head40},
        {"max_buffer_still_applies", GET + "X_: 0123456789abcdef",
         err(Error::LIMIT_REQUEST_HEADERS, "max buffer headers"), cfg_head_over_buffer},
    });
}

TEST(http_limit_request_body) {
    auto cl = [](const std::string &v) { return head("Content-Length: " + v + "\r\n", "POST / HTTP/1.1\r\n"); };
    run_heads({
        {"off_by_default", cl("999999999999999999"), ok().cl(999999999999999999ull)},
        {"at_limit", cl("10"), ok().cl(10), cfg_body10},
        {"leading_zeros_at_limit", cl("00010"), ok().cl(10), cfg_body10},
        {"over_limit", cl("11"), err(Error::LIMIT_REQUEST_BODY, "Request body is too large (11 > 10)"), cfg_body10},
        {"invalid_length_first", cl("+11"), err(Error::INVALID_HEADER, "Invalid HTTP Header: 'CONTENT-LENGTH'"),
         cfg_body10},
        {"chunked_is_checked_as_it_comes", head("Transfer-Encoding: chunked\r\n", "POST / HTTP/1.1\r\n"),
         ok().b(BodyKind::CHUNKED), cfg_body10},
    });
}

TEST(http_head_eof_message) {
    auto msg = [](const std::string &s) { return http::head_eof_message(guard().place(s), s.size()); };
    CHECK_EQ(msg(""), std::string("No more data after: b''"));
    CHECK_EQ(msg("GET / HT"), std::string("No more data after: b'GET / HT'"));
    CHECK_EQ(msg("GET / HTTP/1.0\r\nbaz"), std::string("No more data after: b'baz'"));
    CHECK_EQ(msg("GET / HTTP/1.0\r\nX: 1\r\n"), std::string("No more data after: b'X: 1\\r\\n'"));
    CHECK_EQ(msg("\r\nGET / HTTP/1.0\r\nX\xff"), std::string("No more data after: b'X\\xff'"));
}

TEST(http_options_from_settings) {
    http::Options a = http::Options::from_settings(-1, 0, 0);
    CHECK_EQ(a.limit_request_line, size_t(8190));
    CHECK_EQ(a.limit_request_fields, size_t(32768));
    CHECK_EQ(a.limit_request_field_size, size_t(8190));
    http::Options b = http::Options::from_settings(0, -5, -1);
    CHECK_EQ(b.limit_request_line, size_t(0));
    CHECK_EQ(b.limit_request_fields, size_t(32768));
    CHECK_EQ(b.limit_request_field_size, size_t(8190));
    http::Options c = http::Options::from_settings(8190, 32769, 10);
    CHECK_EQ(c.limit_request_line, size_t(8190));
    CHECK_EQ(c.limit_request_fields, size_t(32768));
    CHECK_EQ(c.limit_request_field_size, size_t(10));
    http::Options d = http::Options::from_settings(8189, 1, 99999);
    CHECK_EQ(d.limit_request_line, size_t(8189));
    CHECK_EQ(d.limit_request_fields, size_t(1));
    CHECK_EQ(d.limit_request_field_size, size_t(99999));
}

TEST(http_pipelined_requests) {
    const std::string wire =
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
        "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    http::Options opt;
    http::Request q;
    http::ChunkedDecoder dec(&opt);
    size_t pos = 0;
    std::vector<std::string> paths, bodies;
    while (pos < wire.size()) {
        const char *p = guard().place(wire.data() + pos, wire.size() - pos);
        http::HeadResult r = http::parse_head(p, wire.size() - pos, opt, true, q);
        CHECK(r.status == Status::DONE);
        if (r.status != Status::DONE) return;
        paths.emplace_back(q.path);
        pos += r.consumed;
        std::string body;
        if (q.body == BodyKind::LENGTH) {
            body = wire.substr(pos, q.content_length);
            pos += q.content_length;
        } else if (q.body == BodyKind::CHUNKED) {
            dec.reset();
            for (;;) {
                const char *b = guard().place(wire.data() + pos, wire.size() - pos);
                http::ChunkedDecoder::Step s = dec.step(b, wire.size() - pos);
                if (s.data) body.append(s.data, s.data_len);
                pos += s.consumed;
                if (s.status != Status::NEED_MORE) break;
            }
            CHECK_EQ(dec.trailers().size(), size_t(1));
        }
        bodies.push_back(body);
        bool keep = q.keep_alive;
        q.clear();
        if (!keep) break;
    }
    CHECK_EQ(pos, wire.size());
    CHECK((paths == std::vector<std::string>{"/a", "/b", "/c", "/d"}));
    CHECK((bodies == std::vector<std::string>{"", "hello", "abc", ""}));
}

TEST(http_request_reuse_does_not_grow) {
    // The common path allocates nothing once a Request has been used: the
    // headers vector and storage keep their capacity across clear().
    http::Options opt;
    opt.casefold_http_method = true;
    opt.permit_unconventional_http_method = true;
    const std::string wire = "get /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX: 1\r\n\r\n";
    http::Request q;
    const char *p = guard().place(wire);
    CHECK(http::parse_head(p, wire.size(), opt, true, q).status == Status::DONE);
    const void *hdata = q.headers.data();
    size_t hcap = q.headers.capacity(), scap = q.storage.capacity();
    const char *sdata = q.storage.data();
    for (int i = 0; i < 3; ++i) {
        q.clear();
        CHECK(http::parse_head(p, wire.size(), opt, true, q).status == Status::DONE);
        CHECK_EQ(q.method, std::string_view("GET"));
        CHECK(q.headers.data() == hdata);
        CHECK_EQ(q.headers.capacity(), hcap);
        CHECK_EQ(q.storage.capacity(), scap);
        CHECK(q.storage.data() == sdata);
    }
    const http::Header *h = q.find("accept");
    CHECK(h != nullptr);
    if (h) CHECK_EQ(h->value, std::string_view("*/*"));
    CHECK(q.find("Missing") == nullptr);
    CHECK(http::iequals("Content-Length", "content-LENGTH"));
    CHECK(!http::iequals("Content-Length", "Content-Lengt"));
    CHECK(!http::iequals("\xc9", "\xe9"));
}

// ---------------------------------------------------------------------------
// Chunked decoder.

namespace {

enum class End { DONE, ERROR, AT_EOF };

struct ChunkCase {
    const char *name;
    std::string input;
    End end;
    Error error = Error::NONE;
    std::string message{};  // checked when not empty
    std::string body{};
    Fields trailers{};
    size_t consumed = size_t(-1);  // -1: all of the input, or unchecked for ERROR
    Config cfg = nullptr;
};

struct ChunkRun {
    std::string body;
    End end = End::AT_EOF;
    Error error = Error::NONE;
    std::string message;
    size_t consumed = 0;
    Fields trailers;
    std::string problem;
};

// Feeds `in` in pieces of `piece` bytes (0 = whole), each flush against the
// guard page; every data span must point into its piece.
ChunkRun decode(const http::Options &opt, const std::string &in, size_t piece) {
    ChunkRun r;
    http::ChunkedDecoder dec(&opt);
    dec.reset();
    size_t pos = 0;
    bool stop = false;
    while (!stop) {
        size_t len = piece ? std::min(piece, in.size() - pos) : in.size() - pos;
        const char *p = guard().place(in.data() + pos, len);
        size_t at = 0;
        for (;;) {
            http::ChunkedDecoder::Step s = dec.step(p + at, len - at);
            if (s.consumed > len - at) r.problem = "consumed past the input";
            if (s.data) {
                if (s.data < p + at || s.data + s.data_len > p + at + s.consumed) r.problem = "span outside input";
                r.body.append(s.data, s.data_len);
            }
            at += s.consumed;
            if (s.status == Status::DONE || s.status == Status::ERROR) {
                r.end = s.status == Status::DONE ? End::DONE : End::ERROR;
                r.error = s.error;
                stop = true;
                break;
            }
            if (at == len) break;
        }
        pos += at;
        if (!stop && pos == in.size()) {
            r.end = End::AT_EOF;
            r.error = dec.at_eof();
            stop = true;
        }
    }
    r.consumed = pos;
    if (r.end == End::DONE && dec.at_eof() != Error::NONE) r.problem = "at_eof after DONE";
    if (r.error != Error::NONE) r.message = dec.message();
    for (const auto &t : dec.trailers()) r.trailers.push_back(t);
    return r;
}

void run_chunk(const ChunkCase &c) {
    http::Options opt;
    if (c.cfg) c.cfg(opt);
    for (size_t piece : {size_t(0), size_t(1), size_t(2), size_t(3)}) {
        ChunkRun r = decode(opt, c.input, piece);
        std::string how = piece ? std::to_string(piece) + "-byte pieces" : "whole";
        std::string d;
        size_t want_consumed = c.consumed == size_t(-1) ? c.input.size() : c.consumed;
        if (!r.problem.empty()) d = r.problem;
        else if (r.end != c.end) d = "ended " + std::to_string(int(r.end)) + " (" + http::error_name(r.error) + ": " + r.message + ")";
        else if (r.error != c.error) d = std::string("error ") + http::error_name(r.error) + ": " + r.message;
        else if (!c.message.empty() && r.message != c.message) d = "message '" + r.message + "' expected '" + c.message + "'";
        else if (r.error != Error::NONE && r.message.empty()) d = "error without message";
        else if (r.body != c.body) d = "body '" + r.body + "'";
        else if (r.trailers != c.trailers) d = "trailers " + show(r.trailers);
        else if (r.consumed != want_consumed && !(c.end == End::ERROR && c.consumed == size_t(-1)))
            d = "consumed " + std::to_string(r.consumed);
        if (!d.empty()) {
            harness::fail(__FILE__, __LINE__, std::string(c.name) + " [" + how + "]: " + d);
            return;
        }
    }
}

void cfg_line16(http::Options &o) { o.limit_request_field_size = 16; }

std::string bad_size(const std::string &repr) { return "Invalid chunk size: " + repr; }

}  // namespace

TEST(http_chunked) {
    const std::string TERM = "Invalid chunk terminator is not '\\r\\n': ";
    const std::string EXT_NAME = "Invalid chunk extension: name is not a token";
    const std::string EXT_VALUE = "Invalid chunk extension: value is not a token or quoted-string";
    const std::string EXT_QUOTE = "Invalid chunk extension: quoted-string not closed before the end of the line";
    const std::string NMD = "No more data after: None";
    std::vector<ChunkCase> cases = {
        {"one_chunk", "5\r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"leaves_the_next_request", "1\r\na\r\n0\r\n\r\nGET", End::DONE, Error::NONE, "", "a", {}, 11},
        {"hex_both_cases", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", End::DONE, Error::NONE, "",
         "01234567890123456789"},
        {"leading_zeros", "0005\r\nhello\r\n0000\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"extensions", "5;a=b;c=\"d;e\\\"\"\r\nhello\r\n0;last\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"bws_before_extension", "5 \t;x\r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"ws_without_extension", "5 \r\nhello\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'5 '")},
        {"leading_ws", " 5\r\nhello\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b' 5'")},
        {"hex_prefix", "0x5\r\nhello\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'0x5'")},
        {"plus", "+5\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'+5'")},
        {"minus", "-5\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'-5'")},
        {"underscore", "5_0\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'5_0'")},
        {"empty_size", "\r\nhello\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b''")},
        {"empty_size_with_extension", " ;x\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b''")},
        {"size_quote_repr", "5'\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b\"5'\"")},
        {"seventeen_hex_digits", "10000000000000000\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE,
         bad_size("b'10000000000000000'")},
        {"sixteen_hex_digits", "ffffffffffffffff\r\nab", End::AT_EOF, Error::NO_MORE_DATA, NMD, "ab"},
        {"bare_cr_in_extension", "5;a\rb\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION,
         "Invalid chunk extension: bare CR not allowed"},
        // Stricter than gunicorn, which skips a bare LF in an extension: a
        // hop ending lines at LF would take "x" for the chunk's first byte.
        {"bare_lf_in_extension", "5;a\nx\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION,
         "Invalid chunk extension: b'\\n' not allowed"},
        {"nul_in_extension", "5;a=\"\0\"\r\nhello\r\n0\r\n\r\n"s, End::ERROR, Error::INVALID_CHUNK_EXTENSION,
         "Invalid chunk extension: b'\\x00' not allowed"},
        {"del_in_extension", "5;a\x7f\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION},
        {"htab_in_extension", "5;\ta=\"b\tc\"\r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"obs_text_in_extension", "5;a=\"\xe9\"\r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        // RFC 9112 7.1.1 / RFC 9110 5.6.4 grammar (gunicorn skips the bytes).
        {"ext_bws_everywhere", "5 ; a = b ;\tc=\"d\" ; e \r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"ext_quoted_pair", "5;a=\"\\\"\\\\\"\r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "hello"},
        {"ext_name_not_token", "5;a(b)=c\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_NAME},
        {"ext_name_quoted", "5;\"a\"\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_NAME},
        {"ext_name_empty", "5;\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_NAME},
        {"ext_name_empty_between", "5;a;;b\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_NAME},
        {"ext_name_with_space", "5;a b\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_NAME},
        {"ext_name_obs_text", "5;\xe9\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_NAME},
        {"ext_value_empty", "5;a=\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_VALUE},
        {"ext_value_not_token", "5;a=b/c\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_VALUE},
        {"ext_value_two_tokens", "5;a=b c\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_VALUE},
        {"ext_text_after_quoted", "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_VALUE},
        {"ext_quote_inside_token", "5;a=b\"c\"\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_VALUE},
        {"ext_quoted_unclosed", "5;a=\"b\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_QUOTE},
        {"ext_quoted_escaped_close", "5;a=\"b\\\"\r\nhello\r\n0\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_QUOTE},
        {"ext_on_last_chunk", "5\r\nhello\r\n0;a=\"\r\n\r\n", End::ERROR, Error::INVALID_CHUNK_EXTENSION, EXT_QUOTE, "hello"},
        {"ext_bad_size_first", "5x;\"\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'5x'")},
        {"bare_cr_in_size", "5\r5\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'5\\r5'")},
        {"bare_lf_in_size", "5\n\r\n", End::ERROR, Error::INVALID_CHUNK_SIZE, bad_size("b'5\\n'")},
        {"data_not_followed_by_crlf", "5\r\nhelloXY0\r\n\r\n", End::ERROR, Error::CHUNK_MISSING_TERMINATOR,
         TERM + "b'XY'", "hello", {}, 10},
        {"data_followed_by_lf", "5\r\nhello\n0\r\n\r\n", End::ERROR, Error::CHUNK_MISSING_TERMINATOR, TERM + "b'\\n0'",
         "hello", {}, 10},
        {"chunk_longer_than_said", "3\r\nhello\r\n", End::ERROR, Error::CHUNK_MISSING_TERMINATOR, TERM + "b'lo'",
         "hel", {}, 8},
        {"trailers", "0\r\nX-A: 1\r\nx-b: \t2 \r\n\r\n", End::DONE, Error::NONE, "", "", {{"X-A", "1"}, {"x-b", "2"}}},
        {"trailer_host", "0\r\nhost: x\r\n\r\n", End::ERROR, Error::INVALID_HEADER_NAME, "Invalid HTTP header name: 'HOST'"},
        {"trailer_content_length", "0\r\nContent-Length: 1\r\n\r\n", End::ERROR, Error::INVALID_HEADER_NAME,
         "Invalid HTTP header name: 'CONTENT-LENGTH'"},
        {"trailer_transfer_encoding", "0\r\nTransfer-Encoding: chunked\r\n\r\n", End::ERROR, Error::INVALID_HEADER_NAME},
        {"trailer_trailer", "0\r\nTrailer: x\r\n\r\n", End::ERROR, Error::INVALID_HEADER_NAME, "Invalid HTTP header name: 'TRAILER'"},
        {"trailer_authorization", "0\r\nAuthorization: x\r\n\r\n", End::ERROR, Error::INVALID_HEADER_NAME},
        {"trailer_te", "0\r\nte: trailers\r\n\r\n", End::ERROR, Error::INVALID_HEADER_NAME, "Invalid HTTP header name: 'TE'"},
        {"trailer_expect_is_just_a_field", "0\r\nExpect: foo\r\n\r\n", End::DONE, Error::NONE, "", "", {{"Expect", "foo"}}},
        {"trailer_underscore_dropped", "0\r\nX_A: 1\r\nB: 2\r\n\r\n", End::DONE, Error::NONE, "", "", {{"B", "2"}}},
        {"trailer_obs_fold", "0\r\nX: a\r\n b\r\n\r\n", End::ERROR, Error::OBSOLETE_FOLDING},
        {"trailer_obs_fold_permitted", "0\r\nX: a\r\n b\r\n\r\n", End::DONE, Error::NONE, "", "", {{"X", "a b"}}, size_t(-1),
         cfg_fold},
        {"trailer_ctl", "0\r\nX: a\x01\r\n\r\n", End::ERROR, Error::INVALID_HEADER, "Invalid HTTP Header: 'X'"},
        {"trailer_no_colon", "0\r\nX\r\n\r\n", End::ERROR, Error::INVALID_HEADER, "Invalid HTTP Header: 'X'"},
        {"trailer_fields_limit", "0\r\nA: 1\r\nB: 2\r\n\r\n", End::ERROR, Error::LIMIT_REQUEST_HEADERS,
         "limit request headers fields", "", {}, size_t(-1), cfg_fields1},
        {"trailer_section_limit", "0\r\nX_: " + std::string(20, 'a'), End::ERROR, Error::LIMIT_REQUEST_HEADERS,
         "limit request trailer section size", "", {}, 20, cfg_tiny_buffer},
        {"size_line_over_limit", "5;" + std::string(20, 'x') + "\r\nhello\r\n0\r\n\r\n", End::ERROR,
         Error::INVALID_CHUNK_SIZE, bad_size("b'line over 16 bytes with no terminator'"), "", {}, 17, cfg_line16},
        {"size_line_at_limit", "5;" + std::string(14, 'x') + "\r\nhello\r\n0\r\n\r\n", End::DONE, Error::NONE, "",
         "hello", {}, size_t(-1), cfg_line16},
        {"eof_at_start", "", End::AT_EOF, Error::NO_MORE_DATA, NMD},
        {"eof_in_size", "5", End::AT_EOF, Error::NO_MORE_DATA, NMD},
        {"eof_after_size_cr", "5\r", End::AT_EOF, Error::NO_MORE_DATA, NMD},
        {"eof_in_data", "5\r\nhel", End::AT_EOF, Error::NO_MORE_DATA, NMD, "hel"},
        {"eof_after_data", "5\r\nhello", End::AT_EOF, Error::CHUNK_MISSING_TERMINATOR, TERM + "b''", "hello"},
        {"eof_after_data_cr", "5\r\nhello\r", End::AT_EOF, Error::CHUNK_MISSING_TERMINATOR, TERM + "b'\\r'", "hello"},
        {"eof_after_last_chunk", "0\r\n", End::AT_EOF, Error::CHUNK_MISSING_TERMINATOR, TERM + "b''"},
        {"eof_in_trailers", "0\r\nX: 1\r\n", End::AT_EOF, Error::CHUNK_MISSING_TERMINATOR, TERM + "b''"},
        // limit_request_body (10): checked at each chunk-size line against
        // the total announced so far.
        {"body_at_limit", "4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "abcdefghij", {},
         size_t(-1), cfg_body10},
        {"body_over_limit", "4\r\nabcd\r\n7\r\nefghijk\r\n0\r\n\r\n", End::ERROR, Error::LIMIT_REQUEST_BODY,
         "Request body is too large (more than 10 bytes)", "abcd", {}, 12, cfg_body10},
        {"huge_chunk_over_limit", "ffffffffffffffff\r\n", End::ERROR, Error::LIMIT_REQUEST_BODY,
         "Request body is too large (more than 10 bytes)", "", {}, 18, cfg_body10},
        {"zero_chunks_at_limit", "a\r\n0123456789\r\n0\r\n\r\n", End::DONE, Error::NONE, "", "0123456789", {},
         size_t(-1), cfg_body10},
    };
    for (const ChunkCase &c : cases) run_chunk(c);
}

TEST(http_chunked_reuse_and_defaults) {
    http::ChunkedDecoder dec;  // no Options: gunicorn's defaults
    const std::string a = "3\r\nabc\r\n0\r\nX: 1\r\n\r\n";
    const char *p = guard().place(a);
    std::string body;
    size_t at = 0;
    for (;;) {
        http::ChunkedDecoder::Step s = dec.step(p + at, a.size() - at);
        if (s.data) body.append(s.data, s.data_len);
        at += s.consumed;
        if (s.status != Status::NEED_MORE) {
            CHECK(s.status == Status::DONE);
            break;
        }
    }
    CHECK_EQ(body, std::string("abc"));
    CHECK_EQ(dec.trailers().size(), size_t(1));
    CHECK(dec.at_eof() == Error::NONE);
    // Done stays done and consumes nothing more.
    http::ChunkedDecoder::Step again = dec.step(p, a.size());
    CHECK(again.status == Status::DONE);
    CHECK_EQ(again.consumed, size_t(0));
    dec.reset();
    CHECK(dec.trailers().empty());
    CHECK(dec.at_eof() == Error::NO_MORE_DATA);
    http::ChunkedDecoder::Step s = dec.step(guard().place("0\r\n\r\n", 5), 5);
    CHECK(s.status == Status::DONE);
    CHECK_EQ(s.consumed, size_t(5));
    // An error sticks.
    dec.reset();
    s = dec.step(guard().place("x\r\n", 3), 3);
    CHECK(s.status == Status::ERROR);
    s = dec.step(guard().place("0\r\n\r\n", 5), 5);
    CHECK(s.status == Status::ERROR);
    CHECK(s.error == Error::INVALID_CHUNK_SIZE);
    CHECK(dec.at_eof() == Error::INVALID_CHUNK_SIZE);
}

// ---------------------------------------------------------------------------
// PROXY protocol.

namespace {

struct ProxyCase {
    const char *name;
    std::string input;
    http::ProxyProtocol mode;
    Status status;
    bool present = false;
    Error error = Error::NONE;
    std::string message{};
    size_t consumed = 0;
    std::string protocol{}, client_addr{};
    int client_port = -1;
    std::string proxy_addr{};
    int proxy_port = -1;
    bool allowed = true;
};

std::string pp_diff(const http::ProxyResult &r, const ProxyCase &c) {
    if (r.status != c.status)
        return std::string("status ") + status_name(r.status) + " " + http::error_name(r.error) + ": " + r.message;
    if (r.error != c.error) return std::string("error ") + http::error_name(r.error) + ": " + r.message;
    if (!c.message.empty() && r.message != c.message) return "message '" + r.message + "'";
    if (r.status == Status::ERROR && r.message.empty()) return "error without message";
    if (r.status != Status::DONE) return "";
    if (r.present != c.present) return "present";
    if (r.consumed != c.consumed) return "consumed " + std::to_string(r.consumed);
    const http::ProxyInfo &i = r.info;
    if (i.protocol != c.protocol || i.client_addr != c.client_addr || i.client_port != c.client_port ||
        i.proxy_addr != c.proxy_addr || i.proxy_port != c.proxy_port)
        return "info " + i.protocol + " " + i.client_addr + ":" + std::to_string(i.client_port) + " " + i.proxy_addr +
               ":" + std::to_string(i.proxy_port);
    return "";
}

void run_proxy(const ProxyCase &c) {
    auto parse = [&](size_t k) {
        return http::parse_proxy(guard().place(c.input.data(), k), k, c.mode, c.allowed, "10.0.0.1");
    };
    http::ProxyResult whole = parse(c.input.size());
    std::string d = pp_diff(whole, c);
    if (!d.empty()) return harness::fail(__FILE__, __LINE__, std::string(c.name) + " [whole]: " + d);
    for (size_t k = 0; k < c.input.size(); ++k) {
        http::ProxyResult r = parse(k);
        if (r.status == Status::NEED_MORE) continue;
        if (r.status != whole.status || r.error != whole.error || r.present != whole.present ||
            r.consumed != whole.consumed || r.message != whole.message)
            return harness::fail(__FILE__, __LINE__,
                                 std::string(c.name) + " [prefix " + std::to_string(k) + "]: " + status_name(r.status));
    }
}

const std::string SIG = "\r\n\r\n\0\r\nQUIT\n"s;

}  // namespace

TEST(http_proxy_protocol) {
    using PP = http::ProxyProtocol;
    const std::string v1 = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    const std::string v4addr = "\xc0\xa8\x01\x0a\xc0\xa8\x01\x01\x30\x39\x01\xbb"s;
    const std::string v6addr = "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01" + "\x20\x01\x0d\xb8"s +
                               std::string(11, '\0') + "\x02" + "\xd4\x31\x00\x50"s;
    std::vector<ProxyCase> cases = {
        {"v1_tcp4", v1 + "GET", PP::AUTO, Status::DONE, true, Error::NONE, "", v1.size(), "TCP4", "192.168.0.1", 56324,
         "192.168.0.11", 443},
        {"v1_tcp6", "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", PP::V1, Status::DONE, true, Error::NONE, "", 36, "TCP6",
         "2001:db8::1", 0, "::1", 65535},
        {"v1_in_v2_mode", v1, PP::V2, Status::DONE},
        {"off", v1, PP::OFF, Status::DONE},
        {"v1_unknown", "PROXY UNKNOWN\r\n", PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE,
         "Invalid PROXY line: 'PROXY UNKNOWN'"},
        {"v1_unknown_six_fields", "PROXY UNKNOWN a b 1 2\r\n", PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE,
         "Invalid PROXY line: \"protocol 'UNKNOWN' not supported\""},
        {"v1_family_mismatch", "PROXY TCP4 ::1 ::1 1 2\r\n", PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE,
         "Invalid PROXY line: 'PROXY TCP4 ::1 ::1 1 2'"},
        {"v1_leading_zero_octet", "PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", PP::AUTO, Status::ERROR, true,
         Error::INVALID_PROXY_LINE},
        {"v1_port_over", "PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n", PP::AUTO, Status::ERROR, true,
         Error::INVALID_PROXY_LINE, "Invalid PROXY line: 'invalid port PROXY TCP4 1.2.3.4 1.2.3.4 65536 1'"},
        {"v1_port_negative", "PROXY TCP4 1.2.3.4 1.2.3.4 -1 1\r\n", PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE},
        {"v1_port_not_digits", "PROXY TCP4 1.2.3.4 1.2.3.4 8a 1\r\n", PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE},
        {"v1_port_python_int", "PROXY TCP4 1.2.3.4 5.6.7.8 -0 8_0\r\n", PP::AUTO, Status::DONE, true, Error::NONE, "",
         35, "TCP4", "1.2.3.4", 0, "5.6.7.8", 80},
        {"v1_double_space", "PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE,
         "Invalid PROXY line: 'PROXY TCP4  1.2.3.4 1.2.3.4 1 2'"},
        {"v1_unterminated", "PROXY TCP4 1.2.3.4", PP::AUTO, Status::NEED_MORE},
        {"v1_too_long", "PROXY " + std::string(101, 'x'), PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_LINE},
        {"v1_prefix", "PROX", PP::V1, Status::NEED_MORE},
        {"empty", "", PP::AUTO, Status::NEED_MORE},
        {"plain_http", "GET / HTTP/1.1\r\n\r\n", PP::AUTO, Status::DONE},
        {"almost_proxy", "PROXZ", PP::AUTO, Status::DONE},
        {"forbidden", v1, PP::AUTO, Status::ERROR, true, Error::FORBIDDEN_PROXY_REQUEST,
         "Proxy request from '10.0.0.1' not allowed", 0, "", "", -1, "", -1, false},
        {"v2_tcp4", SIG + "\x21\x11\x00\x0c"s + v4addr + "GET", PP::AUTO, Status::DONE, true, Error::NONE, "", 28, "TCP4",
         "192.168.1.10", 12345, "192.168.1.1", 443},
        {"v2_tcp6", SIG + "\x21\x21\x00\x24"s + v6addr, PP::V2, Status::DONE, true, Error::NONE, "", 52, "TCP6",
         "2001:db8::1", 54321, "2001:db8::2", 80},
        {"v2_local", SIG + "\x20\x00\x00\x00"s + "GET", PP::AUTO, Status::DONE, true, Error::NONE, "", 16, "LOCAL"},
        {"v2_local_with_tlv", SIG + "\x20\x00\x00\x03" "abc"s, PP::AUTO, Status::DONE, true, Error::NONE, "", 19, "LOCAL"},
        {"v2_unspec", SIG + "\x21\x01\x00\x00"s, PP::AUTO, Status::DONE, true, Error::NONE, "", 16, "UNSPEC"},
        {"v2_tlvs_after_ipv4", SIG + "\x21\x11\x00\x14"s + v4addr + "12345678", PP::AUTO, Status::DONE, true, Error::NONE,
         "", 36, "TCP4", "192.168.1.10", 12345, "192.168.1.1", 443},
        {"v2_udp", SIG + "\x21\x12\x00\x0c"s + v4addr, PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_HEADER,
         "Invalid PROXY header: only TCP protocol is supported"},
        {"v2_transport_unspec", SIG + "\x21\x00\x00\x00"s, PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_HEADER},
        {"v2_version_1", SIG + "\x11\x11\x00\x0c"s + v4addr, PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_HEADER,
         "Invalid PROXY header: unsupported version 1"},
        {"v2_command_2", SIG + "\x22\x11\x00\x0c"s + v4addr, PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_HEADER,
         "Invalid PROXY header: unsupported command 2"},
        {"v2_unix", SIG + "\x21\x31\x00\x00"s, PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_HEADER,
         "Invalid PROXY header: unsupported address family 3"},
        {"v2_short_ipv4", SIG + "\x21\x11\x00\x08"s + v4addr.substr(0, 8), PP::AUTO, Status::ERROR, true,
         Error::INVALID_PROXY_HEADER, "Invalid PROXY header: insufficient address data for IPv4"},
        {"v2_short_ipv6", SIG + "\x21\x21\x00\x0c"s + v4addr, PP::AUTO, Status::ERROR, true, Error::INVALID_PROXY_HEADER,
         "Invalid PROXY header: insufficient address data for IPv6"},
        {"v2_partial", SIG + "\x21\x11\x00\x0c"s + v4addr.substr(0, 5), PP::AUTO, Status::NEED_MORE},
        {"v2_signature_prefix", SIG.substr(0, 7), PP::V2, Status::NEED_MORE},
        {"v2_in_v1_mode", SIG + "\x20\x00\x00\x00"s, PP::V1, Status::DONE},
        {"v2_forbidden", SIG + "\x20\x00\x00\x00"s, PP::V2, Status::ERROR, true, Error::FORBIDDEN_PROXY_REQUEST, "", 0, "",
         "", -1, "", -1, false},
    };
    for (const ProxyCase &c : cases) run_proxy(c);
}

TEST(http_error_table) {
    struct Row {
        Error e;
        const char *name;
        int status;
        const char *reason;
    };
    const Row rows[] = {
        {Error::INVALID_REQUEST_LINE, "InvalidRequestLine", 400, "Bad Request"},
        {Error::INVALID_REQUEST_METHOD, "InvalidRequestMethod", 400, "Bad Request"},
        {Error::INVALID_HTTP_VERSION, "InvalidHTTPVersion", 400, "Bad Request"},
        {Error::INVALID_HEADER, "InvalidHeader", 400, "Bad Request"},
        {Error::INVALID_HEADER_NAME, "InvalidHeaderName", 400, "Bad Request"},
        {Error::OBSOLETE_FOLDING, "ObsoleteFolding", 400, "Bad Request"},
        {Error::LIMIT_REQUEST_LINE, "LimitRequestLine", 414, "URI Too Long"},  // RFC 9112 3; gunicorn 400
        {Error::LIMIT_REQUEST_HEADERS, "LimitRequestHeaders", 431, "Request Header Fields Too Large"},
        {Error::UNSUPPORTED_TRANSFER_CODING, "UnsupportedTransferCoding", 501, "Bad Request"},
        {Error::EXPECTATION_FAILED, "ExpectationFailed", 417, "Expectation Failed"},
        {Error::INVALID_SCHEME_HEADERS, "InvalidSchemeHeaders", 400, "Bad Request"},
        {Error::INVALID_PROXY_LINE, "InvalidProxyLine", 400, "Bad Request"},
        {Error::INVALID_PROXY_HEADER, "InvalidProxyHeader", 500, "Internal Server Error"},
        {Error::FORBIDDEN_PROXY_REQUEST, "ForbiddenProxyRequest", 403, "Forbidden"},
        {Error::INVALID_CHUNK_SIZE, "InvalidChunkSize", 400, "Bad Request"},
        {Error::CHUNK_MISSING_TERMINATOR, "ChunkMissingTerminator", 400, "Bad Request"},
        {Error::INVALID_CHUNK_EXTENSION, "InvalidChunkExtension", 400, "Bad Request"},
        {Error::NO_MORE_DATA, "NoMoreData", 400, "Bad Request"},
        {Error::LIMIT_REQUEST_BODY, "LimitRequestBody", 413, "Content Too Large"},
    };
    for (const Row &r : rows) {
        CHECK_EQ(std::string(http::error_name(r.e)), std::string(r.name));
        CHECK_EQ(http::error_status(r.e), r.status);
        CHECK_EQ(std::string(http::error_reason(r.e)), std::string(r.reason));
    }
}

TEST(http_fuzz_regressions) {
    // A regression aborts the run, as it would the fuzzer. The targets'
    // corpora (conformance seeds plus what the fuzzers found, merged to
    // the inputs that add coverage) replay too: every path the fuzzers
    // reached runs in each unit-test run, under the sanitizers in make check.
    int total = 0;
    for (const char *dir : {"tests/fuzz/corpus/regressions", "tests/fuzz/corpus/fuzz_http_parser",
                            "tests/fuzz/corpus/fuzz_chunked", "tests/fuzz/corpus/fuzz_proxy"}) {
        int n = replay_regressions(dir);
        CHECK(n > 0);
        total += n;
    }
    std::printf("# fuzz inputs replayed: %d\n", total);
}
