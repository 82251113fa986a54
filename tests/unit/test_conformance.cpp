// gunicorn's request corpus (tests/data/conformance/requests/{valid,invalid},
// one JSON file per sample) run through parse_proxy, parse_head and the body
// readers, the way a worker drives them: the wire is fed whole, one byte at
// a time, in two pieces split at every byte, and split after every CRLF.
// Every call sees its input flush against a PROT_NONE page, so reading one
// byte past the end faults (pico's test.c).
#include "cunicorn/control.h"
#include "cunicorn/http_parser.h"
#include "harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace http = cunicorn::http;

namespace {

// ---------------------------------------------------------------------------
// JSON: the control socket's parser. The corpus's strings are latin-1,
// each code point U+0000..U+00FF one byte: read_json turns the parsed
// UTF-8 into that.

using Json = cunicorn::control::Json;

// The member `key` of an object when it is a string, else "".
std::string str(const Json &j, const char *key) {
    const Json *v = j.get(key);
    return v && v->kind == Json::STR ? v->s : std::string();
}

// Valid UTF-8 (parse checked it) to latin-1; false past U+00FF.
bool to_latin1(std::string &s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) out += char(c);
        else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size()) out += char(((c & 0x1f) << 6) | (s[++i] & 0x3f));
        else return false;
    }
    s.swap(out);
    return true;
}

bool latin1_tree(Json &j) {
    if (j.kind == Json::STR) return to_latin1(j.s);
    for (Json &v : j.arr)
        if (!latin1_tree(v)) return false;
    for (auto &kv : j.obj)
        if (!to_latin1(kv.first) || !latin1_tree(kv.second)) return false;
    return true;
}

bool read_json(const std::string &text, Json &out, std::string &error) {
    if (!cunicorn::control::parse(text, out, error)) return false;
    if (!latin1_tree(out)) return error = "non latin-1 character", false;
    return true;
}

bool read_file(const std::string &path, std::string &out) {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return true;
}

bool is_dir(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// requests/<kind> under $CUNICORN_CONFORMANCE_DIR (the conformance dir or its
// requests/ subdir), else under tests/data/conformance from the repo root.
std::string corpus_dir(const char *kind) {
    const char *env = std::getenv("CUNICORN_CONFORMANCE_DIR");
    std::string base = env && *env ? env : "tests/data/conformance";
    if (is_dir(base + "/requests/" + kind)) return base + "/requests/" + kind;
    return base + "/" + kind;
}

std::vector<std::string> json_files(const std::string &dir) {
    std::vector<std::string> out;
    DIR *d = opendir(dir.c_str());
    if (!d) return out;
    while (struct dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) out.push_back(dir + "/" + n);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

// ---------------------------------------------------------------------------
// Input placed so that its last byte is the last one before a PROT_NONE page.

class Guard {
public:
    explicit Guard(size_t max_len) {
        long pg = sysconf(_SC_PAGESIZE);
        page_ = size_t(pg > 0 ? pg : 4096);
        cap_ = (max_len / page_ + 1) * page_;
        void *m = mmap(nullptr, cap_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        base_ = m == MAP_FAILED ? nullptr : static_cast<char *>(m);
        if (base_) mprotect(base_ + cap_, page_, PROT_NONE);
    }
    ~Guard() {
        if (base_) munmap(base_, cap_ + page_);
    }
    Guard(const Guard &) = delete;
    Guard &operator=(const Guard &) = delete;
    bool ok() const { return base_ != nullptr; }
    const char *place(const char *data, size_t len) {
        char *dst = base_ + cap_ - len;
        if (len) std::memmove(dst, data, len);
        return dst;
    }

private:
    size_t page_ = 4096, cap_ = 0;
    char *base_ = nullptr;
};

// ---------------------------------------------------------------------------
// One connection: PROXY header, then requests and their bodies.

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Parsed {
    std::string method, raw, path, query, fragment, body;
    int major = 0, minor = 0;
    bool keep_alive = true;
    Fields headers, trailers;
    bool has_proxy = false;
    http::ProxyInfo proxy;
};

enum class Phase { NONE, HEAD, TRAILER, BODY };

struct Outcome {
    std::vector<Parsed> reqs;
    http::Error error = http::Error::NONE;
    Phase phase = Phase::NONE;
    std::string message;
};

std::string upper(std::string_view s) {
    std::string u(s);
    for (char &c : u)
        if (c >= 'a' && c <= 'z') c = char(c - 32);
    return u;
}

bool chunk_framing_error(http::Error e) {
    return e == http::Error::INVALID_CHUNK_SIZE || e == http::Error::CHUNK_MISSING_TERMINATOR ||
           e == http::Error::INVALID_CHUNK_EXTENSION || e == http::Error::NO_MORE_DATA;
}

// `ends` are the cumulative byte counts after each read; the last equals
// wire.size(). End of input follows the last read.
Outcome run_connection(const std::string &wire, const std::vector<size_t> &ends, const http::Options &opt,
                       http::ProxyProtocol pp, Guard &guard) {
    enum class St { PROXY, HEAD, LENGTH, CHUNKED } st = pp == http::ProxyProtocol::OFF ? St::HEAD : St::PROXY;
    Outcome out;
    http::Request req;
    http::ChunkedDecoder dec(&opt);
    Parsed cur;
    uint64_t remaining = 0;
    bool have_proxy = false;
    http::ProxyInfo proxy;
    size_t pos = 0, recv = 0;
    auto fail = [&](http::Error e, Phase ph, const std::string &m) {
        out.error = e;
        out.phase = ph;
        out.message = m;
        return out;
    };
    for (size_t ei = 0; ei <= ends.size(); ++ei) {
        const bool eof = ei == ends.size();
        if (!eof) recv = ends[ei];
        for (;;) {
            size_t avail = recv - pos;
            const char *p = guard.place(wire.data() + pos, avail);
            if (st == St::PROXY) {
                http::ProxyResult pr = http::parse_proxy(p, avail, pp, true);
                if (pr.status == http::Status::ERROR) return fail(pr.error, Phase::HEAD, pr.message);
                if (pr.status == http::Status::NEED_MORE) {
                    if (!eof) break;
                    if (avail == 0) return out;
                    return fail(http::Error::NO_MORE_DATA, Phase::BODY, "");
                }
                if (pr.present) {
                    have_proxy = true;
                    proxy = pr.info;
                    pos += pr.consumed;
                }
                st = St::HEAD;
                continue;
            }
            if (st == St::HEAD) {
                if (avail == 0 && eof) return out;  // clean end between requests
                http::HeadResult hr = http::parse_head(p, avail, opt, true, req);
                if (hr.status == http::Status::ERROR) return fail(hr.error, Phase::HEAD, hr.message);
                if (hr.status == http::Status::NEED_MORE) {
                    if (!eof) break;
                    return fail(http::Error::NO_MORE_DATA, Phase::BODY, http::head_eof_message(p, avail));
                }
                cur = Parsed{};
                cur.method = std::string(req.method);
                cur.raw = std::string(req.target);
                cur.path = std::string(req.path);
                cur.query = std::string(req.query);
                cur.fragment = std::string(req.fragment);
                cur.major = req.version_major;
                cur.minor = req.version_minor;
                cur.keep_alive = req.keep_alive;
                for (const auto &h : req.headers) cur.headers.emplace_back(upper(h.name), std::string(h.value));
                if (have_proxy && out.reqs.empty()) {
                    cur.has_proxy = true;
                    cur.proxy = proxy;
                }
                pos += hr.consumed;
                if (req.body == http::BodyKind::LENGTH) {
                    remaining = req.content_length;
                    st = St::LENGTH;
                } else if (req.body == http::BodyKind::CHUNKED) {
                    dec.reset();
                    st = St::CHUNKED;
                } else {
                    out.reqs.push_back(std::move(cur));
                    // Message.should_close: nothing after it is read.
                    if (!out.reqs.back().keep_alive) return out;
                }
                req.clear();
                continue;
            }
            if (st == St::LENGTH) {
                size_t take = avail < remaining ? avail : size_t(remaining);
                cur.body.append(p, take);
                pos += take;
                remaining -= take;
                if (remaining == 0 || eof) {
                    // A short body at EOF just ends early (LengthReader).
                    out.reqs.push_back(std::move(cur));
                    if (remaining || !out.reqs.back().keep_alive) return out;
                    st = St::HEAD;
                    continue;
                }
                break;
            }
            // St::CHUNKED
            http::ChunkedDecoder::Step s = dec.step(p, avail);
            if (s.data) cur.body.append(s.data, s.data_len);
            pos += s.consumed;
            if (s.status == http::Status::ERROR)
                return fail(s.error, chunk_framing_error(s.error) ? Phase::BODY : Phase::TRAILER, dec.message());
            if (s.status == http::Status::DONE) {
                for (const auto &t : dec.trailers()) cur.trailers.emplace_back(upper(t.first), t.second);
                out.reqs.push_back(std::move(cur));
                if (!out.reqs.back().keep_alive) return out;
                st = St::HEAD;
                continue;
            }
            if (s.consumed < avail) continue;
            if (!eof) break;
            http::Error e = dec.at_eof();
            return fail(e, Phase::BODY, dec.message());
        }
        if (eof) break;
    }
    return out;
}

// ---------------------------------------------------------------------------
// Samples.

struct Sample {
    std::string name, kind, wire;
    http::Options opt;
    http::ProxyProtocol pp = http::ProxyProtocol::OFF;
    Json json;
};

// Applies the sample's "config" (gunicorn setting names) to Options.
bool apply_config(const Json &cfg, Sample &s, std::string &why) {
    long long line = 4094, fields = 100, field_size = 8190;
    http::Options o;
    for (const auto &kv : cfg.obj) {
        const std::string &k = kv.first;
        const Json &v = kv.second;
        if (k == "limit_request_line") line = v.i;
        else if (k == "limit_request_fields") fields = v.i;
        else if (k == "limit_request_field_size") field_size = v.i;
        else if (k == "permit_obsolete_folding") o.permit_obsolete_folding = v.b;
        else if (k == "strip_header_spaces") o.strip_header_spaces = v.b;
        else if (k == "permit_unconventional_http_method") o.permit_unconventional_http_method = v.b;
        else if (k == "permit_unconventional_http_version") o.permit_unconventional_http_version = v.b;
        else if (k == "casefold_http_method") o.casefold_http_method = v.b;
        else if (k == "forwarded_allow_ips" || k == "proxy_allow_ips") {
            // The peer is trusted throughout (no peer address upstream).
        } else if (k == "header_map") {
            if (v.s == "drop") o.header_map = http::HeaderMap::DROP;
            else if (v.s == "refuse") o.header_map = http::HeaderMap::REFUSE;
            else if (v.s == "dangerous") o.header_map = http::HeaderMap::DANGEROUS;
            else return why = "header_map " + v.s, false;
        } else if (k == "proxy_protocol") {
            if (v.kind == Json::BOOL) s.pp = v.b ? http::ProxyProtocol::AUTO : http::ProxyProtocol::OFF;
            else if (v.s == "auto") s.pp = http::ProxyProtocol::AUTO;
            else if (v.s == "v1") s.pp = http::ProxyProtocol::V1;
            else if (v.s == "v2") s.pp = http::ProxyProtocol::V2;
            else if (v.s == "off") s.pp = http::ProxyProtocol::OFF;
            else return why = "proxy_protocol " + v.s, false;
        } else {
            return why = "unknown config key " + k, false;
        }
    }
    http::Options lim = http::Options::from_settings(line, fields, field_size);
    o.limit_request_line = lim.limit_request_line;
    o.limit_request_fields = lim.limit_request_fields;
    o.limit_request_field_size = lim.limit_request_field_size;
    s.opt = o;
    return true;
}

struct Feed {
    std::string name;
    std::vector<size_t> ends;
};

std::vector<Feed> feeds_for(const std::string &wire) {
    std::vector<Feed> f;
    size_t n = wire.size();
    f.push_back({"whole", {n}});
    Feed bytes{"byte-by-byte", {}};
    for (size_t i = 1; i <= n; ++i) bytes.ends.push_back(i);
    f.push_back(bytes);
    Feed crlf{"split-at-crlf", {}};
    for (size_t i = 0; i + 1 < n; ++i)
        if (wire[i] == '\r' && wire[i + 1] == '\n') crlf.ends.push_back(i + 2);
    if (crlf.ends.empty() || crlf.ends.back() != n) crlf.ends.push_back(n);
    f.push_back(crlf);
    for (size_t k = 1; k < n; ++k) f.push_back({"split-at-" + std::to_string(k), {k, n}});
    return f;
}

// Worker.handle_error + util.write_error: the bytes gunicorn sends.
std::string html_escape(const std::string &s) {
    std::string o;
    for (char c : s) {
        switch (c) {
        case '&': o += "&amp;"; break;
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '"': o += "&quot;"; break;
        case '\'': o += "&#x27;"; break;
        default: o += c;
        }
    }
    return o;
}

std::string error_response(http::Error e, const std::string &msg) {
    std::string mesg;
    switch (e) {
    case http::Error::INVALID_REQUEST_LINE: mesg = "Invalid Request Line '" + msg + "'"; break;
    case http::Error::INVALID_REQUEST_METHOD: mesg = "Invalid Method '" + msg + "'"; break;
    case http::Error::INVALID_HTTP_VERSION: mesg = "Invalid HTTP Version '" + msg + "'"; break;
    case http::Error::LIMIT_REQUEST_HEADERS: mesg = "Error parsing headers: '" + msg + "'"; break;
    case http::Error::INVALID_PROXY_LINE: mesg = "'" + msg + "'"; break;
    case http::Error::FORBIDDEN_PROXY_REQUEST: mesg = "Request forbidden"; break;
    case http::Error::INVALID_PROXY_HEADER: break;
    default: mesg = msg;
    }
    std::string reason = http::error_reason(e);
    std::string html = "<html>\n  <head>\n    <title>" + reason + "</title>\n  </head>\n  <body>\n    <h1><p>" +
                       reason + "</p></h1>\n    " + html_escape(mesg) + "\n  </body>\n</html>\n";
    return "HTTP/1.1 " + std::to_string(http::error_status(e)) + " " + reason +
           "\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(html.size()) +
           "\r\n\r\n" + html;
}

Fields fields_of(const Json *arr) {
    Fields f;
    if (!arr) return f;
    for (const Json &pair : arr->arr)
        if (pair.arr.size() == 2) f.emplace_back(pair.arr[0].s, pair.arr[1].s);
    return f;
}

std::string show(const Fields &f) {
    std::string s = "[";
    for (const auto &kv : f) s += "(" + kv.first + ": " + kv.second + ")";
    return s + "]";
}

// Compares one run with a valid sample; returns "" or what differs.
std::string check_valid(const Sample &s, const Outcome &o) {
    if (o.error != http::Error::NONE)
        return std::string("unexpected ") + http::error_name(o.error) + ": " + o.message;
    const Json *reqs = s.json.get("requests");
    if (!reqs) return "no requests in JSON";
    if (o.reqs.size() != reqs->arr.size())
        return "parsed " + std::to_string(o.reqs.size()) + " requests, expected " + std::to_string(reqs->arr.size());
    for (size_t i = 0; i < o.reqs.size(); ++i) {
        const Json &e = reqs->arr[i];
        const Parsed &g = o.reqs[i];
        std::string at = "request " + std::to_string(i) + ": ";
        const Json *uri = e.get("uri");
        if (g.method != str(e, "method")) return at + "method " + g.method;
        if (!uri || g.raw != str(*uri, "raw")) return at + "raw uri " + g.raw;
        if (g.path != str(*uri, "path")) return at + "path " + g.path;
        if (g.query != str(*uri, "query")) return at + "query " + g.query;
        if (g.fragment != str(*uri, "fragment")) return at + "fragment " + g.fragment;
        const Json *v = e.get("version");
        if (!v || v->arr.size() != 2 || g.major != v->arr[0].i || g.minor != v->arr[1].i) return at + "version";
        Fields eh = fields_of(e.get("headers"));
        if (g.headers != eh) return at + "headers " + show(g.headers) + " expected " + show(eh);
        if (g.body != str(e, "body"))
            return at + "body (" + std::to_string(g.body.size()) + " bytes) " + g.body.substr(0, 60);
        Fields et = fields_of(e.get("trailers"));
        if (g.trailers != et) return at + "trailers " + show(g.trailers) + " expected " + show(et);
        const Json *pi = e.get("proxy_protocol_info");
        if (bool(pi) != g.has_proxy) return at + "proxy_protocol_info presence";
        if (pi) {
            auto port = [](const Json *j) { return j && j->kind == Json::INT ? int(j->i) : -1; };
            if (g.proxy.protocol != str(*pi, "proxy_protocol") || g.proxy.client_addr != str(*pi, "client_addr") ||
                g.proxy.proxy_addr != str(*pi, "proxy_addr") || g.proxy.client_port != port(pi->get("client_port")) ||
                g.proxy.proxy_port != port(pi->get("proxy_port")))
                return at + "proxy info " + g.proxy.protocol + " " + g.proxy.client_addr;
        }
    }
    return "";
}

std::string check_invalid(const Sample &s, const Outcome &o, const std::string &feed) {
    std::string want = str(s.json, "error");
    std::string phase = str(s.json, "error_phase");
    if (o.error == http::Error::NONE) return "no error, expected " + want;
    if (want != http::error_name(o.error))
        return std::string("got ") + http::error_name(o.error) + " (" + o.message + "), expected " + want;
    // gunicorn parses a chunked body's trailer section with the header
    // rules; its errors are not I/O errors and get a response like head
    // errors, which is why the corpus files them under "head".
    bool phase_ok = phase == "head" ? (o.phase == Phase::HEAD || o.phase == Phase::TRAILER) : o.phase == Phase::BODY;
    if (!phase_ok) return "error in the wrong phase, expected " + phase;
    const Json *resp = s.json.get("response");
    std::string msg = str(s.json, "message");
    if (o.error == http::Error::LIMIT_REQUEST_LINE && feed != "whole") {
        // gunicorn reports how much it had buffered, which depends on the
        // reads; only the shape and the limit are fixed.
        std::string tail = msg.substr(msg.find(" > "));
        if (o.message.compare(0, 27, "Request Line is too large (") != 0 ||
            o.message.size() < tail.size() || o.message.compare(o.message.size() - tail.size(), tail.size(), tail) != 0)
            return "message " + o.message;
        return "";
    }
    if (o.message != msg) return "message '" + o.message + "' expected '" + msg + "'";
    if (resp && resp->kind == Json::STR) {
        std::string got = error_response(o.error, o.message);
        if (got != resp->s) return "response differs:\n" + got + "\n--- expected ---\n" + resp->s;
    }
    return "";
}

bool load_sample(const std::string &path, Sample &s, std::string &why) {
    std::string text;
    if (!read_file(path, text)) return why = "cannot read", false;
    std::string error;
    if (!read_json(text, s.json, error)) return why = "JSON: " + error, false;
    s.name = str(s.json, "name");
    s.kind = str(s.json, "kind");
    s.wire = str(s.json, "wire");
    const Json *wl = s.json.get("wire_length");
    if (!wl || size_t(wl->i) != s.wire.size()) return why = "wire_length mismatch", false;
    const Json *cfg = s.json.get("config");
    if (cfg && !apply_config(*cfg, s, why)) return false;
    return true;
}

// stricter.json, next to requests/: the samples whose Gunicorn behaviour
// RFC 9112 forbids and what cunicorn does instead.
bool load_stricter(const char *kind, Json &out, std::string &why) {
    std::string dir = corpus_dir(kind);
    for (int up = 0; up < 2; ++up) dir = dir.substr(0, dir.find_last_of('/'));
    std::string text;
    if (!read_file(dir + "/stricter.json", text)) return why = "cannot read " + dir + "/stricter.json", false;
    std::string error;
    if (!read_json(text, out, error)) return why = "stricter.json: " + error, false;
    return true;
}

// Runs a listed sample with permit_missing_host, or replaces its recorded
// expectation with cunicorn's (kind, error, status, message, response).
void apply_stricter(const Json &st, const std::string &key, Sample &s) {
    const Json *host = st.get("permit_missing_host");
    const Json *names = host ? host->get("samples") : nullptr;
    if (names)
        for (const Json &n : names->arr)
            if (n.s == key) s.opt.permit_missing_host = true;
    const Json *all = st.get("expect");
    const Json *exp = all ? all->get(key.c_str()) : nullptr;
    if (!exp) return;
    for (const auto &kv : exp->obj) {
        if (kv.first == "rfc" || kv.first == "why") continue;
        if (kv.first == "kind") s.kind = kv.second.s;
        bool replaced = false;
        for (auto &mine : s.json.obj)
            if (mine.first == kv.first) mine.second = kv.second, replaced = true;
        if (!replaced) s.json.obj.push_back(kv);
    }
}

int run_dir(const char *kind, size_t &count) {
    int failures = 0;
    std::vector<std::string> files = json_files(corpus_dir(kind));
    count = files.size();
    Json stricter;
    std::string stricter_why;
    if (!load_stricter(kind, stricter, stricter_why)) {
        harness::fail(__FILE__, __LINE__, stricter_why);
        ++failures;
    }
    for (const std::string &path : files) {
        Sample s;
        std::string why;
        if (!load_sample(path, s, why)) {
            harness::fail(__FILE__, __LINE__, path + ": " + why);
            ++failures;
            continue;
        }
        if (s.kind != kind) {
            harness::fail(__FILE__, __LINE__, path + ": kind " + s.kind);
            ++failures;
            continue;
        }
        apply_stricter(stricter, std::string(kind) + "/" + s.name, s);
        Guard guard(s.wire.size());
        if (!guard.ok()) {
            harness::fail(__FILE__, __LINE__, "mmap failed");
            return failures + 1;
        }
        for (const Feed &f : feeds_for(s.wire)) {
            Outcome o = run_connection(s.wire, f.ends, s.opt, s.pp, guard);
            std::string bad = s.kind == "valid" ? check_valid(s, o) : check_invalid(s, o, f.name);
            if (!bad.empty()) {
                harness::fail(__FILE__, __LINE__, std::string(kind) + "/" + s.name + " [" + f.name + "]: " + bad);
                ++failures;
                break;  // one report per sample
            }
        }
    }
    return failures;
}

}  // namespace

TEST(conformance_valid) {
    size_t n = 0;
    int failures = run_dir("valid", n);
    std::printf("# conformance valid: %zu samples, %d failed\n", n, failures);
    CHECK_EQ(n, size_t(63));
}

TEST(conformance_invalid) {
    size_t n = 0;
    int failures = run_dir("invalid", n);
    std::printf("# conformance invalid: %zu samples, %d failed\n", n, failures);
    CHECK_EQ(n, size_t(74));
}
