// Response framing and error pages (gunicorn/http/wsgi.py Response,
// gunicorn/workers/base.py handle_error).
#include "cunicorn/http_writer.h"

#include <cstring>
#include <ctime>

namespace cunicorn::http {

void Response::clear() {
    status.clear();
    status_code = 0;
    headers.clear();
    content_length = -1;
    chunked = no_body = upgrade = must_close = headers_sent = false;
    sent = 0;
}

static bool is_tchar(unsigned char c) {
    // RFC 9110 section 5.6.2: tchar.
    static const char *specials = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && std::strchr(specials, c) != nullptr);
}

bool valid_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(static_cast<unsigned char>(c))) return false;
    return true;
}

bool valid_field_value(std::string_view s) {
    // gunicorn's response rule: [ \t\x21-\x7e\x80-\xff]*
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || c >= 0x80) continue;
        return false;
    }
    return true;
}

bool parse_status(std::string_view status, int &code) {
    // RFC 9112 section 4: status-code is exactly three digits.
    if (status.size() < 3) return false;
    for (int i = 0; i < 3; ++i)
        if (status[static_cast<size_t>(i)] < '0' || status[static_cast<size_t>(i)] > '9') return false;
    if (status.size() > 3 && status[3] != ' ') return false;
    if (!valid_field_value(status)) return false;
    code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    return code >= 100;
}

static std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

const char *add_app_header(Response &r, std::string name, std::string value) {
    if (!valid_token(name)) return "invalid header name";
    if (!valid_field_value(value)) return "invalid header value";
    std::string_view v = trim(value);
    if (v.size() != value.size()) value = std::string(v);
    if (iequals(name, "content-length")) {
        if (value.empty() || value.size() > 18) return "invalid Content-Length";
        int64_t n = 0;
        for (char c : value) {
            if (c < '0' || c > '9') return "invalid Content-Length";
            n = n * 10 + (c - '0');
        }
        r.content_length = n;
    } else if (iequals(name, "connection")) {
        // Hop-by-hop: the server owns Connection (RFC 9110 section 7.6.1);
        // only an upgrade request from the app survives, as in gunicorn.
        if (iequals(trim(value), "upgrade")) r.upgrade = true;
        return nullptr;
    } else if (iequals(name, "upgrade")) {
        if (!iequals(value, "websocket")) return nullptr;
    } else if (iequals(name, "keep-alive") || iequals(name, "proxy-authenticate") ||
               iequals(name, "proxy-authorization") || iequals(name, "te") ||
               iequals(name, "trailers") || iequals(name, "transfer-encoding") ||
               iequals(name, "server") || iequals(name, "date")) {
        return nullptr;
    }
    r.headers.emplace_back(std::move(name), std::move(value));
    return nullptr;
}

void decide_framing(Response &r, const Request &req, bool force_close) {
    int code = r.status_code;
    bool informational_or_204 = (code >= 100 && code < 200) || code == 204;
    r.no_body = req.method == "HEAD" || informational_or_204 || code == 304;
    if (informational_or_204 && r.content_length >= 0) {
        // RFC 9110 section 8.6: no Content-Length in 1xx or 204.
        for (auto it = r.headers.begin(); it != r.headers.end();) {
            if (iequals(it->first, "content-length")) it = r.headers.erase(it);
            else ++it;
        }
        r.content_length = -1;
    }
    bool http11 = req.version_major > 1 || (req.version_major == 1 && req.version_minor >= 1);
    if (req.method == "CONNECT" && code >= 200 && code < 300) {
        // RFC 9110 9.3.6 and 8.6, RFC 9112 6.1: no Content-Length or
        // Transfer-Encoding in a 2xx to CONNECT; what the app sends is
        // the tunnel's first bytes, delimited by the close.
        for (auto it = r.headers.begin(); it != r.headers.end();) {
            if (iequals(it->first, "content-length")) it = r.headers.erase(it);
            else ++it;
        }
        r.content_length = -1;
        http11 = false;
    }
    r.chunked = r.content_length < 0 && http11 && !r.no_body;
    bool length_known = r.content_length >= 0 || r.chunked || r.no_body;
    r.must_close = force_close || req.must_close || !req.keep_alive || !length_known;
}

void serialize_head(const Response &r, const Request &, std::string &out) {
    // RFC 9110 2.5: the highest version the server conforms to with a major
    // version not above the request's, and never one it does not conform
    // to. gunicorn echoes the request's ("HTTP/1.0", "HTTP/1.2", and with
    // permit_unconventional_http_version "HTTP/2.0" or "HTTP/0.9" over
    // HTTP/1.1 framing); cunicorn speaks HTTP/1.1 to all of them, as the
    // framing decided above already does for an HTTP/1.0 client.
    out.append("HTTP/1.1 ");
    out.append(r.status);
    out.append("\r\nServer: cunicorn\r\nDate: ");
    out.append(http_date());
    out.append(r.upgrade ? "\r\nConnection: upgrade\r\n"
                         : r.must_close ? "\r\nConnection: close\r\n" : "\r\nConnection: keep-alive\r\n");
    if (r.chunked) out.append("Transfer-Encoding: chunked\r\n");
    for (const auto &h : r.headers) {
        out.append(h.first);
        out.append(": ");
        out.append(h.second);
        out.append("\r\n");
    }
    out.append("\r\n");
}

static void html_escape(std::string &out, std::string_view s) {
    // Python's html.escape(s, quote=True), which handle_error uses.
    for (char c : s) {
        switch (c) {
        case '&': out.append("&amp;"); break;
        case '<': out.append("&lt;"); break;
        case '>': out.append("&gt;"); break;
        case '"': out.append("&quot;"); break;
        case '\'': out.append("&#x27;"); break;
        default: out.push_back(c);
        }
    }
}

std::string error_response(int status, std::string_view reason, std::string_view message) {
    std::string body;
    body.reserve(256 + message.size());
    body.append("<html>\n  <head>\n    <title>");
    body.append(reason);
    body.append("</title>\n  </head>\n  <body>\n    <h1><p>");
    body.append(reason);
    body.append("</p></h1>\n    ");
    html_escape(body, message);
    body.append("\n  </body>\n</html>\n");
    std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
    out.append(reason);
    out.append("\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: ");
    out.append(std::to_string(body.size()));
    out.append("\r\n\r\n");
    out.append(body);
    return out;
}

std::string error_response(Error e, std::string_view message) {
    // The body text is handle_error's `mesg` for each exception class.
    std::string mesg;
    switch (e) {
    case Error::INVALID_REQUEST_LINE: mesg = "Invalid Request Line '" + std::string(message) + "'"; break;
    case Error::INVALID_REQUEST_METHOD: mesg = "Invalid Method '" + std::string(message) + "'"; break;
    case Error::INVALID_HTTP_VERSION: mesg = "Invalid HTTP Version '" + std::string(message) + "'"; break;
    case Error::LIMIT_REQUEST_HEADERS: mesg = "Error parsing headers: '" + std::string(message) + "'"; break;
    case Error::INVALID_PROXY_LINE: mesg = "'" + std::string(message) + "'"; break;
    case Error::FORBIDDEN_PROXY_REQUEST: mesg = "Request forbidden"; break;
    case Error::INVALID_PROXY_HEADER: mesg = ""; break;
    default: mesg = std::string(message); break;
    }
    return error_response(error_status(e), error_reason(e), mesg);
}

std::string_view http_date() {
    static thread_local time_t cached_second = 0;
    static thread_local char buf[40];
    static thread_local size_t len = 0;
    time_t now = time(nullptr);
    if (now != cached_second) {
        static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        gmtime_r(&now, &tm);
        int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                              tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                              tm.tm_sec);
        len = n > 0 ? static_cast<size_t>(n) : 0;
        cached_second = now;
    }
    return std::string_view(buf, len);
}

void append_chunk_size(std::string &out, uint64_t n) {
    char tmp[24];
    int i = static_cast<int>(sizeof tmp);
    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do {
        tmp[--i] = "0123456789ABCDEF"[n & 15];
        n >>= 4;
    } while (n);
    out.append(tmp + i, sizeof tmp - static_cast<size_t>(i));
}

}  // namespace cunicorn::http
