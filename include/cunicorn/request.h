// The request object: one request in flight, from its complete head to
// the end of its response. The connection engine (conn.h) fills it and
// hands it to an executor, which runs the application on it (wsgi.h); the
// application side reads the body from its BodySource and writes the
// response into its Sink. Everything that belongs to one request lives
// here, not in process globals, so that several can be in flight in one
// process (one per connection, at most).
#ifndef CUNICORN_REQUEST_H
#define CUNICORN_REQUEST_H

#include "cunicorn/hooks.h"
#include "cunicorn/http_parser.h"
#include "cunicorn/http_writer.h"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace cunicorn {

struct WorkerStatus;

// The decoded request body, read on demand while the app runs.
class BodySource {
public:
    virtual ~BodySource() = default;
    // Reads up to n decoded body bytes, blocking (with the GIL released)
    // until at least one byte, the end of the body (0) or an error (-1,
    // with error() telling what).
    virtual long read(char *dst, size_t n) = 0;
    virtual const std::string &error() const = 0;
    // The parser error behind error(), or NONE for an I/O failure.
    virtual http::Error error_code() const = 0;
};

// Where response bytes go. The bridge frames them (head, chunks); the sink
// buffers and writes, blocking only when its buffer is full.
class Sink {
public:
    virtual ~Sink() = default;
    // Queues bytes; returns false once the client is gone.
    virtual bool write(const char *p, size_t n) = 0;
    // Hands every queued byte to the socket, waiting for the client as
    // long as it takes it in time (a streamed block must not wait for the
    // next one); returns false once the client is gone. A queued file
    // (send_file) is left to the sink's own pace.
    virtual bool flush() = 0;
    // Sends n bytes of fd starting at offset (sendfile where possible).
    virtual bool send_file(int fd, off_t offset, size_t n) = 0;
};

// How the response ended, as the application side reports it.
struct Outcome {
    bool keep_alive = false;    // the connection may serve another request
    bool client_gone = false;   // writing failed
    bool body_error = false;    // the request body was malformed or cut short
};

struct Exchange {
    // The request, as the engine hands it over. The views stay valid
    // until complete().
    const http::Request *req = nullptr;
    std::string_view remote_addr;   // "" for unix-socket peers
    int remote_port = -1;           // -1 for unix-socket peers
    std::string_view server_name;
    std::string_view server_port;
    std::string_view url_scheme = "http";
    bool peer_trusted = false;      // forwarded_allow_ips said yes
    const http::ProxyInfo *proxy = nullptr;  // from a PROXY protocol header
    bool force_close = false;       // worker stopping, max_requests, keepalive 0
    BodySource *body = nullptr;
    Sink *sink = nullptr;
    int64_t submitted_ms = 0;       // CLOCK_MONOTONIC, when handed to the executor
    int req_number = 0;             // the request's number on its connection, from 1
    uint64_t nr_before = 0;         // requests the worker took before this one

    // pre_request's req object; post_request takes it.
    hooks::RequestRef hook_req;
    // The status page slot that shows this request while the application
    // runs it (chosen by the executor; null without a status page).
    WorkerStatus *status = nullptr;

    // The response, as the application side leaves it.
    http::Response resp;
    Outcome outcome;

    // The executor calls this once the response is complete (every byte
    // handed to the sink): an inline executor on the loop thread, a relayed
    // one (conn.h) from wherever the application ran; the engine then
    // decides, on the loop thread, what the connection does next.
    void complete() { on_complete(*this); }
    void (*on_complete)(Exchange &) = nullptr;  // set by the engine
    void *owner = nullptr;                      // the engine's connection
};

}  // namespace cunicorn

#endif
