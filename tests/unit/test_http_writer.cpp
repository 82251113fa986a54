// Response framing, header filtering and error pages.
#include "cunicorn/http_writer.h"

#include "harness.h"

using namespace cunicorn::http;

static Request make_request(const char *method, int major, int minor) {
    Request r;
    r.method = method;
    r.version_major = major;
    r.version_minor = minor;
    r.keep_alive = !(major == 1 && minor == 0);
    return r;
}

TEST(writer_error_page_matches_gunicorn_bytes) {
    // invalid/004 in the conformance corpus: the exact bytes gunicorn 26.1 writes.
    std::string expected =
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 195\r\n\r\n"
        "<html>\n  <head>\n    <title>Bad Request</title>\n  </head>\n  <body>\n"
        "    <h1><p>Bad Request</p></h1>\n"
        "    Invalid HTTP Version &#x27;Invalid HTTP Version: &#x27;FTP/1.1&#x27;&#x27;\n"
        "  </body>\n</html>\n";
    CHECK_EQ(error_response(Error::INVALID_HTTP_VERSION, "Invalid HTTP Version: 'FTP/1.1'"), expected);
}

TEST(writer_431_page) {
    std::string page = error_response(Error::LIMIT_REQUEST_HEADERS, "limit request headers fields size");
    CHECK(page.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0) == 0);
    CHECK(page.find("Error parsing headers: &#x27;limit request headers fields size&#x27;") != std::string::npos);
}

TEST(writer_413_page) {
    // limit_request_body, cunicorn's own: gunicorn's page shape, RFC 9110's reason phrase.
    std::string page = error_response(Error::LIMIT_REQUEST_BODY, "Request body is too large (11 > 10)");
    CHECK(page.rfind("HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n", 0) == 0);
    CHECK(page.find("<title>Content Too Large</title>") != std::string::npos);
    CHECK(page.find("\n    Request body is too large (11 &gt; 10)\n") != std::string::npos);
}

TEST(writer_chunked_when_no_length_on_http11) {
    Response r;
    r.status = "200 OK";
    r.status_code = 200;
    Request req = make_request("GET", 1, 1);
    decide_framing(r, req, false);
    CHECK(r.chunked);
    CHECK(!r.must_close);
    std::string head;
    serialize_head(r, req, head);
    CHECK(head.rfind("HTTP/1.1 200 OK\r\nServer: cunicorn\r\nDate: ", 0) == 0);
    CHECK(head.find("\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n") != std::string::npos);
}

TEST(writer_close_delimited_on_http10) {
    Response r;
    r.status = "200 OK";
    r.status_code = 200;
    Request req = make_request("GET", 1, 0);
    req.keep_alive = true;  // Connection: keep-alive, but no length is known
    decide_framing(r, req, false);
    CHECK(!r.chunked);
    CHECK(r.must_close);
}

TEST(writer_no_body_statuses) {
    for (int code : {101, 204, 304}) {
        Response r;
        r.status = std::to_string(code) + " X";
        r.status_code = code;
        CHECK(add_app_header(r, "Content-Length", "5") == nullptr);
        Request req = make_request("GET", 1, 1);
        decide_framing(r, req, false);
        CHECK(r.no_body);
        CHECK(!r.chunked);
        bool has_cl = false;
        for (auto &h : r.headers) has_cl = has_cl || iequals(h.first, "content-length");
        CHECK_EQ(has_cl, code == 304);  // RFC 9110 8.6: never in 1xx/204
    }
    Response head;
    head.status = "200 OK";
    head.status_code = 200;
    Request req = make_request("HEAD", 1, 1);
    decide_framing(head, req, false);
    CHECK(head.no_body);
    CHECK(!head.chunked);
}

TEST(writer_hop_by_hop_dropped) {
    Response r;
    for (const char *name : {"Connection", "Keep-Alive", "Transfer-Encoding", "Server", "Date", "TE", "Trailers",
                             "Proxy-Authenticate", "Upgrade"})
        CHECK(add_app_header(r, name, "x") == nullptr);
    CHECK_EQ(r.headers.size(), size_t(0));
    CHECK(add_app_header(r, "Connection", "Upgrade") == nullptr);
    CHECK(r.upgrade);
    CHECK(add_app_header(r, "X-Kept", "  v  ") == nullptr);
    CHECK_EQ(r.headers.size(), size_t(1));
    CHECK_EQ(r.headers[0].second, std::string("v"));
}

TEST(writer_rejects_injection) {
    Response r;
    CHECK(add_app_header(r, "X-A", "a\r\nSet-Cookie: x") != nullptr);
    CHECK(add_app_header(r, "X-A", std::string("a\0b", 3)) != nullptr);
    CHECK(add_app_header(r, "X A", "v") != nullptr);
    CHECK(add_app_header(r, "", "v") != nullptr);
    CHECK(add_app_header(r, "Content-Length", "12a") != nullptr);
    CHECK(add_app_header(r, "Content-Length", "-1") != nullptr);
    int code = 0;
    CHECK(parse_status("200 OK", code));
    CHECK_EQ(code, 200);
    CHECK(!parse_status("200 OK\r\nX: y", code));
    CHECK(!parse_status("20 OK", code));
    CHECK(!parse_status("abc", code));
}

TEST(writer_chunk_size_line) {
    std::string s;
    append_chunk_size(s, 0);
    append_chunk_size(s, 255);
    append_chunk_size(s, 65536);
    CHECK_EQ(s, std::string("0\r\nFF\r\n10000\r\n"));
}

TEST(writer_force_close) {
    Response r;
    r.status = "200 OK";
    r.status_code = 200;
    CHECK(add_app_header(r, "Content-Length", "3") == nullptr);
    Request req = make_request("GET", 1, 1);
    decide_framing(r, req, true);
    CHECK(r.must_close);
    std::string head;
    serialize_head(r, req, head);
    CHECK(head.find("Connection: close\r\n") != std::string::npos);
}
