// The WSGI bridge (PEP 3333): environ, wsgi.input, start_response, the
// write() callable, wsgi.file_wrapper, iteration and close(). It knows
// nothing of sockets: the worker hands it a BodySource and a Sink.
#ifndef CUNICORN_WSGI_H
#define CUNICORN_WSGI_H

#include "cunicorn/http_parser.h"
#include "cunicorn/http_writer.h"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

struct _object;

namespace cunicorn {
struct Config;
}

namespace cunicorn::wsgi {

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

struct RequestContext {
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
};

struct Outcome {
    bool keep_alive = false;    // the connection may serve another request
    bool client_gone = false;   // writing failed
    bool body_error = false;    // the request body was malformed or cut short
};

// Imports the application (cfg.wsgi_app) in this process and prepares the
// bridge. Returns 0, or the worker exit status gunicorn uses: 3 when the
// import itself failed (WORKER_BOOT_ERROR), 4 when the module loaded but
// the app object is unusable (APP_LOAD_ERROR). The reason is logged.
int load_app(const Config &cfg);
// True once load_app succeeded in this process (or in the master, with --preload).
bool app_loaded();

// gunicorn's debug.spew() (the spew setting): from now on every line of
// Python this thread runs is printed to stdout as "module:lineno: line".
// Called in the master, as gunicorn does; the workers it forks inherit
// the tracer with the thread state.
void spew();

// Let other Python threads run while the worker sleeps in its event loop.
void release_gil(void *);
void acquire_gil(void *);

// Loads the settings that shape every environ; call once per worker
// after the app is imported (and on reload). `app` is borrowed and kept.
// False, with the Python error set, when the objects cannot be made.
bool setup(_object *app, const Config &cfg);

// Runs one request through the app and writes the whole response (the
// sink may still hold unsent bytes on return). Never throws; Python errors
// are logged and become a 500 or a closed connection.
Outcome handle(RequestContext &ctx, http::Response &resp);

// Writes the bytes of an interim "100 Continue" when the request asked.
void send_continue(RequestContext &ctx);

}  // namespace cunicorn::wsgi

#endif
