// TLS through the embedded interpreter's ssl module.
//
// The context is an ssl.SSLContext built from the SSL settings (or by the
// ssl_context hook); each connection gets an ssl.SSLObject over two
// MemoryBIOs. The worker's event loop keeps doing every socket read and
// write itself, non-blocking, and only hands bytes to OpenSSL and back, so
// TLS adds no dependency (libssl comes with the interpreter's _ssl module)
// and no thread, and a slow TLS client holds the worker no more than a
// slow plain one.
//
// No Python.h here: the worker includes this header. Every call takes the
// GIL itself, since the worker calls some of them from code that runs
// with the GIL released (the application's blocking reads and writes).
#ifndef CUNICORN_TLS_H
#define CUNICORN_TLS_H

#include "cunicorn/config.h"

#include <cstddef>
#include <memory>
#include <string>

namespace cunicorn::tls {

// Builds cfg.tls_context when cfg.is_ssl(): the default context (gunicorn's
// default_ssl_context_factory: create_default_context(CLIENT_AUTH,
// cafile=ca_certs), load_cert_chain(certfile, keyfile), verify_mode =
// cert_reqs, set_ciphers(ciphers), ALPN "http/1.1"), or what the
// ssl_context(config, default_ssl_context_factory) hook returns.
//
// Called by the master when the configuration is loaded (start-up,
// --check-config, each HUP) rather than by the worker for each connection
// as gunicorn does: key files are read before the workers drop privileges,
// a bad certificate or a failing hook stops the start (or the reload)
// with the reason instead of failing every connection, and the workers
// inherit one context. A HUP therefore picks up renewed certificates.
// Throws ConfigError with a one-line reason, or the hook's traceback.
void load_context(Config &cfg);

// One TLS connection. Ciphertext goes in with feed() and comes out with
// take_output(); plaintext comes out with read() and goes in with write().
class Session {
public:
    // cfg.tls_context must be set.
    explicit Session(const Config &cfg);
    ~Session();
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    // The SSLObject could be created (else error() says why).
    bool ok() const { return obj_ != nullptr; }

    // Ciphertext received from the peer; the peer closed its side.
    bool feed(const char *p, size_t n);
    void feed_eof();

    enum : long { WANT_MORE = -1, FAILED = -2 };
    // Finishes the handshake first. Returns plaintext bytes (> 0), 0 when
    // the peer ended the session (close_notify, or a bare EOF when
    // suppress_ragged_eofs), WANT_MORE when more ciphertext is needed, or
    // FAILED (error() says why).
    long read(char *dst, size_t n);

    // Encrypts all of p into the output. False on failure.
    bool write(const char *p, size_t n);

    // Queues a close_notify alert (the response is complete).
    void close_notify();

    // Moves the ciphertext waiting for the peer to the end of `out`.
    void take_output(std::string &out);

    bool handshake_done() const { return handshake_done_; }
    const std::string &error() const { return error_; }

private:
    bool fail(const char *what);
    long classify(const char *what);
    long ragged_eof();
    bool nothing_buffered();

    PyObject *obj_ = nullptr;       // ssl.SSLObject (its _ssl object)
    PyObject *incoming_ = nullptr;  // ssl.MemoryBIO
    PyObject *outgoing_ = nullptr;  // ssl.MemoryBIO
    bool suppress_ragged_eofs_ = true;
    bool handshake_done_ = false;
    bool eof_fed_ = false;
    bool input_waiting_ = true;     // fed since read() last ran dry
    std::string error_;
};

}  // namespace cunicorn::tls

#endif
