// Response side of HTTP/1.x: the app's status and headers validated and
// filtered, framing decided (Content-Length, chunked, close-delimited, no
// body), the head serialised, gunicorn's error pages. Pure: no I/O.
#ifndef CUNICORN_HTTP_WRITER_H
#define CUNICORN_HTTP_WRITER_H

#include "cunicorn/http_parser.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cunicorn::http {

struct Response {
    std::string status;       // as the app gave it, e.g. "200 OK"
    int status_code = 0;      // first token as an int, 0 when not numeric
    std::vector<std::pair<std::string, std::string>> headers;  // kept app headers
    int64_t content_length = -1;   // -1: the app gave none
    bool chunked = false;
    bool no_body = false;     // HEAD, 1xx, 204, 304
    bool upgrade = false;     // Connection: upgrade from the app
    bool must_close = false;  // the connection closes after this response
    bool headers_sent = false;
    uint64_t sent = 0;        // body bytes written (after truncation)

    void clear();
};

// RFC 9110 section 5.1 field-name (token); section 5.5 field-value without
// CR, LF, NUL or other controls but HTAB (gunicorn's value rule).
bool valid_token(std::string_view s);
bool valid_field_value(std::string_view s);
// Status must be "NNN reason" with a 3-digit code; returns false otherwise.
bool parse_status(std::string_view status, int &code);

// Adds one app header, as gunicorn's Response.process_headers: returns
// nullptr on success or a message for the 500 that follows. Hop-by-hop
// and server-owned headers are dropped; Content-Length is parsed.
const char *add_app_header(Response &r, std::string name, std::string value);

// Decides no_body, chunked and must_close from the request and the
// app's headers (f.2, f.3). `force_close` covers worker shutdown,
// max_requests and keep-alive disabled.
void decide_framing(Response &r, const Request &req, bool force_close);

// Appends the status line ("HTTP/1.1" whatever the request's version,
// RFC 9110 2.5) and headers (f.3), with Server and Date.
void serialize_head(const Response &r, const Request &req, std::string &out);

// The whole error response gunicorn's handle_error writes for a parse
// error: status line, Connection: close, Content-Type, Content-Length and
// the HTML body with the HTML-escaped message.
std::string error_response(Error e, std::string_view message);
// Same shape for an arbitrary status (500 for app errors: empty message).
std::string error_response(int status, std::string_view reason, std::string_view message);

// IMF-fixdate of the current second, cached (RFC 9110 section 5.6.7).
std::string_view http_date();

// "<HEX>\r\n" chunk-size line (RFC 9112 section 7.1).
void append_chunk_size(std::string &out, uint64_t n);

}  // namespace cunicorn::http

#endif
