// The sync worker (gunicorn/workers/sync.py, with keep-alive and
// pipelining it does not have). The loop owns every socket: it reads a
// request head, and a small body, before the app is called, so a slow
// client never holds the application; responses the socket cannot take at
// once are parked and flushed when it is writable.
#include "cunicorn/worker.h"

#include "cunicorn/config.h"
#include "cunicorn/ev.h"
#include "cunicorn/hooks.h"
#include "cunicorn/http_parser.h"
#include "cunicorn/http_writer.h"
#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/reloader.h"
#include "cunicorn/tls.h"
#include "cunicorn/wsgi.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <algorithm>
#include <random>

namespace cunicorn {

namespace {

constexpr size_t READ_CHUNK = 65536;
// Response bytes a connection may park before the app is made to wait.
constexpr size_t OUT_HIGH_WATER = 256 * 1024;
// Body bytes read before the app is called: small bodies never make the
// app wait on the network.
constexpr size_t BODY_PREBUFFER = 64 * 1024;
// Unread body the worker discards to keep a connection alive (gthread
// drains 64 KiB too); beyond that it closes.
constexpr uint64_t DRAIN_LIMIT = 1024 * 1024;
// Graceful close: how long to read and discard after shutdown(SHUT_WR).
constexpr int LINGER_MS = 2000;
constexpr int ACCEPT_BATCH = 1;
// An application call at least this long makes the worker check whether
// clients are queueing to connect (clients_queueing).
constexpr int64_t SLOW_APP_MS = 2;
// TLS: plaintext is encrypted in slices of this size, each only once the
// ciphertext of the previous one has gone to the socket, so a slow TLS
// reader costs at most this much extra memory.
constexpr size_t TLS_SLICE = 64 * 1024;

int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Input buffer with a read offset; compacted before it grows.
struct InBuf {
    std::unique_ptr<char[]> p;
    size_t cap = 0, start = 0, end = 0;

    size_t size() const { return end - start; }
    const char *data() const { return p.get() + start; }
    void consume(size_t n) {
        start += n;
        if (start == end) start = end = 0;
    }
    char *reserve(size_t n) {
        if (cap - end >= n) return p.get() + end;
        if (start > 0) {
            std::memmove(p.get(), p.get() + start, end - start);
            end -= start;
            start = 0;
        }
        if (cap - end < n) {
            size_t ncap = cap ? cap : 16384;
            while (ncap - end < n) ncap *= 2;
            std::unique_ptr<char[]> np(new char[ncap]);
            if (end) std::memcpy(np.get(), p.get(), end);
            p = std::move(np);
            cap = ncap;
        }
        return p.get() + end;
    }
    void commit(size_t n) { end += n; }
    // Idle keep-alive connections should not pin large buffers.
    void shrink() {
        if (size() == 0 && cap > 65536) {
            p.reset();
            cap = start = end = 0;
        }
    }
};

enum class Phase : uint8_t { READING, DRAINING, LINGERING };

struct Worker;

struct Conn {
    int fd = -1;
    Worker *w = nullptr;
    const Listener *listener = nullptr;
    char peer[INET6_ADDRSTRLEN] = "";
    int peer_port = -1;
    bool trusted = false;

    InBuf in;
    std::string out;
    size_t out_off = 0;
    http::Request req;
    http::Response resp;
    hooks::RequestRef hook_req;  // pre_request's req, until the app gets it

    Phase phase = Phase::READING;
    bool close_after_write = false;
    bool continue_sent = false;
    bool client_closing = false;  // the request asked to close (Connection: close, HTTP/1.0)
    bool peer_closed = false;   // read side saw EOF
    bool proxy_pending = false; // a PROXY header may still come first
    bool has_proxy = false;
    http::ProxyInfo proxy;      // what the PROXY header said
    int requests = 0;
    int64_t deadline = 0;       // idle / read / linger deadline (ms)

    // Unread body being discarded between requests.
    http::BodyKind drain_kind = http::BodyKind::NONE;
    uint64_t drain_left = 0;
    uint64_t drained = 0;
    http::ChunkedDecoder drain_dec;

    // A file queued behind `out` (wsgi.file_wrapper, sent with sendfile
    // from the loop so a slow reader does not hold the worker), and the
    // bytes that follow it (chunk framing).
    int file_fd = -1;
    off_t file_off = 0;
    size_t file_left = 0;
    std::string tail;

    // TLS connections only: the session, and the ciphertext it produced
    // that the socket has not taken yet (everything above is plaintext).
    std::unique_ptr<tls::Session> tls;
    std::string tls_out;
    size_t tls_out_off = 0;

    size_t out_pending() const { return out.size() - out_off; }
    size_t tls_pending() const { return tls_out.size() - tls_out_off; }
    size_t pending() const { return out_pending() + file_left + tail.size() + tls_pending(); }
};

struct Worker {
    const Config *cfg = nullptr;
    std::vector<Listener> *listeners = nullptr;
    WorkerInfo info;
    http::Options opts;
    ev::Loop *loop = nullptr;
    std::vector<Conn *> conns;   // by fd
    size_t nconns = 0;
    bool accepting = false;
    bool stopping = false;       // graceful: finish in-flight, then exit
    int64_t stop_deadline = 0;
    uint64_t nr = 0;             // requests served
    uint64_t max_requests = 0;   // 0 = unlimited
    int keepalive_ms = 0;
    int io_timeout_ms = 30000;
    int64_t last_beat = 0;
    int64_t last_app_ms = 0;     // how long the previous request held the app
    int64_t last_requeue_ms = 0; // the listener registration last moved to the back
    bool replacement_asked = false;  // max_requests is near
    bool reload_pending = false;     // the reloader saw a change; the replacement boots
    IpAllowList forwarded_allow;   // forwarded_allow_ips
    IpAllowList proxy_allow;       // proxy_allow_ips
    http::ProxyProtocol proxy_mode = http::ProxyProtocol::OFF;
};

Worker g_worker;
int g_sig_pipe[2] = {-1, -1};
volatile sig_atomic_t g_in_app = 0;
// INT or QUIT came during an application call: the worker's own blocking
// waits give up, so that the interpreter reaches the hooks soon.
volatile sig_atomic_t g_quit_requested = 0;

void on_signal(int sig) {
    int saved = errno;
    // QUIT and INT are quick. During an application call, the interpreter
    // runs worker_int and worker_exit inside it (hooks::signal_quit), as
    // gunicorn's handle_quit does; with neither hook set there is nothing
    // to wait for.
    if ((sig == SIGQUIT || sig == SIGINT) && g_in_app) {
        if (!hooks::signal_quit(sig)) _exit(0);
        g_quit_requested = 1;
    }
    // ABRT (the master's timeout): with worker_abort or worker_exit set,
    // the interpreter runs them at its next bytecode boundary, even inside
    // a stuck app, or the loop does on reading the pipe; the master's
    // SIGKILL is the backstop. Without them, exit at once.
    if (sig == SIGABRT && !hooks::signal_abort()) _exit(1);
    auto b = static_cast<unsigned char>(sig);
    (void)!write(g_sig_pipe[1], &b, 1);
    errno = saved;
}

void install_signals() {
    if (!platform::signal_pipe(g_sig_pipe)) LOG_ERROR("pipe: %s", std::strerror(errno));
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGABRT}) sigaction(sig, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    for (int sig : {SIGWINCH, SIGPIPE}) sigaction(sig, &sa, nullptr);
    sa.sa_handler = SIG_DFL;
    for (int sig : {SIGHUP, SIGUSR2, SIGCHLD}) sigaction(sig, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

void beat(Worker &w) {
    int64_t now = now_ms();
    if (now - w.last_beat < 1000) return;
    w.last_beat = now;
    heartbeat(w.info.heartbeat_fd);
}

// ---------------------------------------------------------------------
// Blocking helpers used while the app runs (the GIL is released by the
// bridge around them). They keep beating: a client that is slow to send
// or receive is not the application being stuck.
// ---------------------------------------------------------------------

bool wait_fd(Worker &w, int fd, short events) {
    int64_t deadline = now_ms() + w.io_timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, static_cast<int>(left < 1000 ? left : 1000));
        beat(w);
        if (r > 0) return true;
        if (g_quit_requested) {
            errno = EINTR;  // back to the interpreter, which is exiting
            return false;
        }
        if (r < 0 && errno != EINTR) return false;
    }
}

// One recv() from the client, waiting for data when `block`. Returns the
// byte count, 0 at EOF, or -1 (errno EAGAIN: nothing yet and !block).
ssize_t recv_some(Conn &c, char *dst, size_t cap, bool block) {
    for (;;) {
        ssize_t n = recv(c.fd, dst, cap, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (!block) {
            errno = EAGAIN;
            return -1;
        }
        if (!wait_fd(*c.w, c.fd, POLLIN)) return -1;
    }
}

// ---------------------------------------------------------------------
// TLS: the socket carries ciphertext; c.in, c.out and the queued file
// stay plaintext, and these convert at the socket's edge.
// ---------------------------------------------------------------------

// Sends the ciphertext the socket takes now. False when the connection is
// broken.
bool send_ciphertext(Conn &c) {
    while (c.tls_pending()) {
        ssize_t w = send(c.fd, c.tls_out.data() + c.tls_out_off, c.tls_pending(), platform::SEND_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c.tls_out_off += static_cast<size_t>(w);
    }
    c.tls_out.clear();
    c.tls_out_off = 0;
    return true;
}

bool encrypt(Conn &c, const char *p, size_t n) {
    if (!c.tls->write(p, n)) {
        LOG_DEBUG("TLS error from ip=%s: %s", c.peer, c.tls->error().c_str());
        return false;
    }
    c.tls->take_output(c.tls_out);
    return true;
}

// A client speaking plain HTTP to a TLS port gets a readable answer (in
// plain HTTP) instead of a failed handshake it cannot display.
bool looks_like_plain_http(const char *p, size_t n) {
    return n > 0 && p[0] >= 'A' && p[0] <= 'Z';
}

void answer_plain_http(Conn &c) {
    static const char PAGE[] =
        "HTTP/1.1 400 Bad Request\r\n"
        "Connection: close\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 55\r\n"
        "\r\n"
        "This port speaks HTTPS: the request was sent as HTTP.\r\n";
    (void)!send(c.fd, PAGE, sizeof PAGE - 1, platform::SEND_NOSIGNAL);
}

// fill() for a TLS connection: decrypts everything the ciphertext read so
// far holds (OpenSSL may hold a whole record of plaintext, which the
// socket's readiness would never announce again), reading from the socket
// only when that is used up.
long fill_tls(Conn &c, bool block) {
    long total = 0;
    for (;;) {
        char *dst = c.in.reserve(READ_CHUNK);
        long n = c.tls->read(dst, READ_CHUNK);
        if (n > 0) {
            c.in.commit(static_cast<size_t>(n));
            total += n;
            continue;
        }
        c.tls->take_output(c.tls_out);  // handshake flights, alerts, tickets
        if (!send_ciphertext(c)) return -1;
        if (n == 0) {
            c.peer_closed = true;
            return total;
        }
        if (n == tls::Session::FAILED) {
            LOG_DEBUG("TLS error from ip=%s: %s", c.peer, c.tls->error().c_str());
            if (total) return total;  // deliver what came before the failure
            errno = ECONNRESET;
            return -1;
        }
        if (total) return total;
        char raw[16384];
        ssize_t r = recv_some(c, raw, sizeof raw, block);
        if (r < 0) return -1;
        if (r == 0) {
            c.tls->feed_eof();  // read() now reports the end, clean or not
            continue;
        }
        if (!c.tls->handshake_done() && c.in.size() == 0 && c.requests == 0 &&
            looks_like_plain_http(raw, static_cast<size_t>(r))) {
            answer_plain_http(c);
            errno = EPROTO;
            return -1;
        }
        if (!c.tls->feed(raw, static_cast<size_t>(r))) return -1;
    }
}

// write_some() for a TLS connection: encrypts the next slice of plaintext
// once the socket has taken the ciphertext of the previous one.
bool write_some_tls(Conn &c, const char *&extra, size_t &extra_len) {
    for (;;) {
        if (!send_ciphertext(c)) return false;
        if (c.tls_pending()) return true;  // the socket is full
        if (c.out_pending()) {
            size_t take = std::min(c.out_pending(), TLS_SLICE);
            if (!encrypt(c, &c.out[c.out_off], take)) return false;
            c.out_off += take;
            if (c.out_pending() == 0) {
                c.out.clear();
                c.out_off = 0;
            }
        } else if (extra_len) {
            size_t take = std::min(extra_len, TLS_SLICE);
            if (!encrypt(c, extra, take)) return false;
            extra += take;
            extra_len -= take;
        } else {
            return true;
        }
    }
}

// send_file_some() for a TLS connection: the file is read and encrypted
// (sendfile cannot encrypt), a slice at a time as the socket drains.
// Returns false on error; the file is finished when c.file_left is 0.
bool send_file_slices_tls(Conn &c) {
    static char buf[TLS_SLICE];
    while (c.file_left > 0) {
        if (!send_ciphertext(c)) return false;
        if (c.tls_pending()) return true;
        ssize_t r = pread(c.file_fd, buf, std::min(c.file_left, sizeof buf), c.file_off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;  // the file shrank under us
        if (!encrypt(c, buf, static_cast<size_t>(r))) return false;
        c.file_off += r;
        c.file_left -= static_cast<size_t>(r);
    }
    return true;
}

// Reads more bytes into c.in. Returns >0 bytes, 0 at EOF, -1 on error.
long fill(Conn &c, bool block) {
    if (c.tls) return fill_tls(c, block);
    ssize_t n = recv_some(c, c.in.reserve(READ_CHUNK), READ_CHUNK, block);
    if (n > 0) c.in.commit(static_cast<size_t>(n));
    if (n == 0) c.peer_closed = true;
    return n;
}

// Writes what the socket takes now from the parked output and `extra`.
// Returns false when the connection is broken.
bool write_some(Conn &c, const char *&extra, size_t &extra_len) {
    if (c.tls) return write_some_tls(c, extra, extra_len);
    for (;;) {
        iovec iov[2];
        int n = 0;
        if (c.out_pending()) iov[n++] = {&c.out[c.out_off], c.out_pending()};
        if (extra_len) iov[n++] = {const_cast<char *>(extra), extra_len};
        if (n == 0) return true;
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(n);
        // SEND_MORE: the head goes out in one segment with the file after it.
        ssize_t w = sendmsg(c.fd, &msg, platform::SEND_NOSIGNAL | (c.file_left ? platform::SEND_MORE : 0));
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        auto done = static_cast<size_t>(w);
        size_t from_out = std::min(done, c.out_pending());
        c.out_off += from_out;
        done -= from_out;
        extra += done;
        extra_len -= done;
        if (c.out_pending() == 0) {
            c.out.clear();
            c.out_off = 0;
        }
        if (done == 0 && from_out == 0) return true;
    }
}

// Sends the queued file until the socket is full. Returns false on error.
bool send_file_some(Conn &c) {
    if (c.tls) {
        if (!send_file_slices_tls(c)) return false;
        if (c.file_left > 0) return true;  // the socket is full
    }
    while (c.file_left > 0) {
        ssize_t w = platform::send_file(c.fd, c.file_fd, &c.file_off, c.file_left);
        if (w > 0) {
            c.file_left -= static_cast<size_t>(w);
            continue;
        }
        if (w == 0) return false;  // the file shrank under us
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    close(c.file_fd);
    c.file_fd = -1;
    c.out.append(c.tail);
    c.tail.clear();
    return true;
}

class ConnSink : public wsgi::Sink {
public:
    explicit ConnSink(Conn &c) : c_(c) {}

    bool write(const char *p, size_t n) override {
        if (broken_) return false;
        if (c_.file_fd >= 0) {
            c_.tail.append(p, n);  // only framing follows a queued file
            return true;
        }
        if (c_.out_pending() + n <= OUT_HIGH_WATER) {
            c_.out.append(p, n);
            return true;
        }
        // Over the high-water mark: push bytes out, waiting for the socket
        // only until what is left fits in the parked buffer.
        if (!push(OUT_HIGH_WATER, p, n)) return false;
        c_.out.append(p, n);
        return true;
    }

    bool flush() override {
        if (broken_) return false;
        if (c_.file_fd >= 0) return true;  // only framing waits behind the file
        const char *none = nullptr;
        size_t zero = 0;
        return push(0, none, zero);
    }

    bool send_file(int fd, off_t offset, size_t n) override {
        if (broken_ || c_.file_fd >= 0) return fail();
        // The app closes its file when the response ends; the loop sends
        // from a duplicate of the descriptor.
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0) return fail();
        c_.file_fd = dup_fd;
        c_.file_off = offset;
        c_.file_left = n;
        return true;
    }

private:
    // Writes parked output, then p, waiting for the socket, until at most
    // `keep` bytes of them are left unsent (p and n say what is left).
    bool push(size_t keep, const char *&p, size_t &n) {
        for (;;) {
            if (!write_some(c_, p, n)) return fail();
            if (c_.out_pending() + c_.tls_pending() + n <= keep) return true;
            if (!wait_fd(*c_.w, c_.fd, POLLOUT)) return fail();
        }
    }
    bool fail() {
        broken_ = true;
        return false;
    }
    Conn &c_;
    bool broken_ = false;
};

// The request body as the app reads it: first what the loop buffered,
// then the socket.
class ConnBody : public wsgi::BodySource {
public:
    ConnBody(Conn &c, const Worker &w) : c_(c), dec_(&w.opts) {
        kind_ = c.req.body;
        left_ = c.req.content_length;
        done_ = kind_ == http::BodyKind::NONE || (kind_ == http::BodyKind::LENGTH && left_ == 0);
    }

    long read(char *dst, size_t n) override {
        while (!done_ && n > 0) {
            if (c_.in.size() == 0) {
                long r = fill(c_, true);
                if (r == 0) return at_eof();
                if (r < 0) {
                    err_ = std::string("error reading the request body: ") + std::strerror(errno);
                    failed_ = true;
                    return -1;
                }
            }
            if (kind_ == http::BodyKind::LENGTH) {
                size_t take = static_cast<size_t>(std::min<uint64_t>(std::min<uint64_t>(n, left_), c_.in.size()));
                std::memcpy(dst, c_.in.data(), take);
                c_.in.consume(take);
                left_ -= take;
                if (left_ == 0) done_ = true;
                return static_cast<long>(take);
            }
            auto step = dec_.step(c_.in.data(), std::min(c_.in.size(), n));
            if (step.status == http::Status::ERROR) {
                c_.in.consume(step.consumed);
                return fail(step.error);
            }
            if (step.data_len) std::memcpy(dst, step.data, step.data_len);
            c_.in.consume(step.consumed);
            if (step.status == http::Status::DONE) done_ = true;
            if (step.data_len) return static_cast<long>(step.data_len);
        }
        return 0;
    }

    const std::string &error() const override { return err_; }
    http::Error error_code() const override { return code_; }
    bool done() const { return done_; }
    bool failed() const { return failed_; }
    http::BodyKind kind() const { return kind_; }
    uint64_t left() const { return left_; }
    const http::ChunkedDecoder &decoder() const { return dec_; }

private:
    long at_eof() {
        done_ = true;
        if (kind_ == http::BodyKind::LENGTH) {
            // A short Content-Length body just ends early (gunicorn e.5);
            // the connection cannot carry another request.
            truncated_ = true;
            return 0;
        }
        http::Error e = dec_.at_eof();
        if (e == http::Error::NONE) return 0;
        return fail(e);
    }
    long fail(http::Error e) {
        failed_ = true;
        done_ = true;
        code_ = e;
        err_ = dec_.message().empty() ? std::string(http::error_name(e)) : dec_.message();
        return -1;
    }

    Conn &c_;
    http::ChunkedDecoder dec_;
    http::BodyKind kind_;
    uint64_t left_;
    bool done_ = false;
    bool failed_ = false;
    bool truncated_ = false;
    http::Error code_ = http::Error::NONE;
    std::string err_;
};

// ---------------------------------------------------------------------
// Connection lifecycle
// ---------------------------------------------------------------------

void on_conn_event(ev::Loop &loop, int fd, int mask, void *data);
void process(Conn &c);

void close_conn(Conn &c) {
    Worker &w = *c.w;
    w.loop->forget_closing(c.fd);
    close(c.fd);
    if (c.file_fd >= 0) close(c.file_fd);
    w.conns[static_cast<size_t>(c.fd)] = nullptr;
    --w.nconns;
    if (w.stopping == false && !w.accepting && w.nconns < static_cast<size_t>(w.cfg->worker_connections)) {
        for (Listener &l : *w.listeners) w.loop->add(l.fd, ev::READABLE | ev::EXCLUSIVE, on_conn_event, nullptr);
        w.accepting = true;
    }
    delete &c;
}

// Nothing the client sent is left unread, here or in the kernel (it may
// have closed already, having read the response).
bool nothing_unread(const Conn &c) {
    if (c.in.size() != 0) return false;
    char b;
    ssize_t n = recv(c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

// After the last response: stop sending, read and discard what the client
// still sends for a short while, then close. Closing with unread input
// would make the kernel send RST, which can destroy the response in flight
// (gunicorn's graceful close does the same). A client that asked to close
// and left nothing unread will send nothing more (nginx's "lingering_close
// auto" reasons the same way): it is closed at once, which spares it and
// the worker a round trip per connection. Not with TLS, whose client may
// answer close_notify with its own.
void start_linger(Conn &c) {
    if (c.peer_closed || (c.client_closing && !c.tls && nothing_unread(c))) {
        close_conn(c);
        return;
    }
    if (c.tls) {
        // The response is complete: say so (RFC 8446 6.1), so that a client
        // reading until close can tell the end from a truncation.
        c.tls->close_notify();
        c.tls->take_output(c.tls_out);
        (void)send_ciphertext(c);
    }
    shutdown(c.fd, SHUT_WR);
    c.phase = Phase::LINGERING;
    c.deadline = now_ms() + LINGER_MS;
    c.w->loop->remove(c.fd, ev::WRITABLE);
    c.w->loop->add(c.fd, ev::READABLE, on_conn_event, &c);
}

// Flushes parked output without blocking. Returns false if c was closed.
bool flush(Conn &c) {
    const char *none = nullptr;
    size_t zero = 0;
    for (;;) {
        if (!write_some(c, none, zero)) {
            close_conn(c);
            return false;
        }
        if (c.out_pending() || c.file_fd < 0) break;
        if (!send_file_some(c)) {
            close_conn(c);
            return false;
        }
        if (c.file_fd >= 0) break;  // the socket is full
    }
    if (c.pending()) {
        // A client that stops reading is dropped after the I/O timeout.
        c.deadline = now_ms() + c.w->io_timeout_ms;
        c.w->loop->add(c.fd, ev::WRITABLE, on_conn_event, &c);
        return true;
    }
    c.w->loop->remove(c.fd, ev::WRITABLE);
    if (c.close_after_write) {
        start_linger(c);
        return false;
    }
    return true;
}

// Unix-socket peers are always trusted (gunicorn: not an IP tuple).
bool peer_in(const IpAllowList &list, const Conn &c) {
    return c.listener->family == AF_UNIX || list.contains(c.peer);
}

void send_error(Conn &c, http::Error e, const std::string &message) {
    LOG_WARNING("Invalid request from ip=%s: %s", c.listener->family == AF_UNIX ? "" : c.peer, message.c_str());
    std::string page = http::error_response(e, message);
    c.out.append(page);
    c.close_after_write = true;
}

// Discards unread body bytes from the buffer. Returns true when the body
// is finished, false when more must come from the client, and sets
// close_after_write on a framing error or when too much is left.
bool drain_buffered(Conn &c) {
    if (c.drain_kind == http::BodyKind::LENGTH) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(c.drain_left, c.in.size()));
        c.in.consume(take);
        c.drain_left -= take;
        c.drained += take;
        if (c.drain_left == 0) c.drain_kind = http::BodyKind::NONE;
    } else if (c.drain_kind == http::BodyKind::CHUNKED) {
        while (c.in.size()) {
            auto step = c.drain_dec.step(c.in.data(), c.in.size());
            c.in.consume(step.consumed);
            c.drained += step.consumed;
            if (step.status == http::Status::ERROR) {
                c.close_after_write = true;
                c.drain_kind = http::BodyKind::NONE;
                return true;
            }
            if (step.status == http::Status::DONE) {
                c.drain_kind = http::BodyKind::NONE;
                break;
            }
            if (step.consumed == 0) break;
        }
    }
    if (c.drain_kind == http::BodyKind::NONE) return true;
    if (c.drained > DRAIN_LIMIT || c.peer_closed) {
        c.close_after_write = true;
        c.drain_kind = http::BodyKind::NONE;
        return true;
    }
    return false;
}

// Is the whole body (or BODY_PREBUFFER of it) in the buffer after the head?
bool body_ready(const Conn &c, size_t head_len) {
    size_t have = c.in.size() - head_len;
    if (have >= BODY_PREBUFFER || c.peer_closed) return true;
    if (c.req.body == http::BodyKind::LENGTH) return have >= c.req.content_length;
    if (c.req.body == http::BodyKind::CHUNKED) {
        http::ChunkedDecoder probe(&c.w->opts);
        const char *p = c.in.data() + head_len;
        size_t left = have;
        while (left) {
            auto step = probe.step(p, left);
            if (step.status != http::Status::NEED_MORE) return true;  // done, or an error to report now
            p += step.consumed;
            left -= step.consumed;
            if (step.consumed == 0) break;
        }
        return false;
    }
    return true;
}

void stop_accepting(Worker &w) {
    for (Listener &l : *w.listeners) {
        w.loop->remove(l.fd, ev::READABLE | ev::EXCLUSIVE);
        close(l.fd);
        l.fd = -1;
    }
    w.accepting = false;
}

// Retirement (TERM, a HUP's old generation, TTOU, max_requests, the
// reloader): no new connection; each response from now on closes its
// connection, so every client is told before its connection goes; an idle
// keep-alive connection stays open until its keep-alive deadline in case
// its client is already sending the next request (sweep); the loop ends
// when no connection is left, or at the graceful timeout.
void begin_graceful_stop(Worker &w) {
    if (w.stopping && !w.accepting) return;
    w.stopping = true;
    w.stop_deadline = now_ms() + static_cast<int64_t>(w.cfg->graceful_timeout) * 1000;
    stop_accepting(w);
}

// Connections other than `current` that may still bring a request: each
// gets at most one more once the worker retires.
uint64_t open_conns(const Worker &w, const Conn *current) {
    uint64_t n = 0;
    for (const Conn *c : w.conns)
        if (c && c != current && !c->close_after_write && c->phase != Phase::LINGERING) ++n;
    return n;
}

// Asks the master to start a worker that will take this one's place.
void ask_replacement(Worker &w) {
    w.replacement_asked = true;
    if (!w.info.status) return;
    ++w.info.status->retire_requested;
    kill(w.info.ppid, SIGCHLD);  // wake the master now, not at its next tick
}

// max_requests is a hard limit: a worker answers at most that many
// requests (its own limit, max_requests plus its jitter), and exactly that
// many unless it stops for another reason. It asks the master for its
// replacement a little before (a tenth of the limit, at most 100
// requests), so that with one worker a booted one is accepting when it
// goes; gunicorn stops at the limit and the listen queue waits for the
// respawn. It retires as soon as the requests it has answered, plus one
// more on every connection it holds, reach the limit: from then on it
// accepts nothing and closes each connection with its next response, so
// the count cannot pass the limit. (Retiring as soon as the replacement
// has booted would cut workers short of their limit, and the jitter range
// with it.) Called before every accept and before every application call
// (`current`: the connection whose request was just counted), and a few
// times a second. Returns false once the worker retires.
bool check_max_requests(Worker &w, const Conn *current) {
    if (!w.max_requests || w.stopping) return !w.stopping;
    uint64_t margin = std::max<uint64_t>(1, std::min<uint64_t>(w.max_requests / 10, 100));
    if (!w.replacement_asked && w.nr + w.nconns + margin >= w.max_requests) ask_replacement(w);
    if (w.nr + w.nconns < w.max_requests) return true;  // the cheap test first
    if (w.nr + open_conns(w, current) < w.max_requests) return true;
    LOG_INFO("Autorestarting worker after current request.");
    begin_graceful_stop(w);
    return false;
}

// Keep-alive fairness under overload. A worker accepts one connection per
// turn of its loop, and each turn serves every connection it holds, so
// with a slow application the clients waiting in the listen queue wait a
// whole turn each (seconds, with many connections) while the held ones are
// served again and again. Gunicorn's sync worker closes every connection,
// so its clients are served in the order they connected. Here, when the
// application is slow and clients are queueing, the response closes the
// connection: its client queues again behind those already waiting. The
// check costs a poll() only after slow application calls.
bool clients_queueing(Worker &w) {
    if (w.last_app_ms < SLOW_APP_MS || !w.accepting) return false;
    pollfd fds[8];
    nfds_t n = 0;
    for (const Listener &l : *w.listeners)
        if (l.fd >= 0 && n < 8) fds[n++] = pollfd{l.fd, POLLIN, 0};
    return n > 0 && ::poll(fds, n, 0) > 0;
}

void dispatch(Conn &c, size_t head_len) {
    Worker &w = *c.w;
    c.in.consume(head_len);
    ++w.nr;
    ++c.requests;
    check_max_requests(w, &c);

    ConnBody body(c, w);
    ConnSink sink(c);
    wsgi::RequestContext ctx;
    ctx.req = &c.req;
    bool unix_peer = c.listener->family == AF_UNIX;
    ctx.remote_addr = unix_peer ? std::string_view() : std::string_view(c.peer);
    ctx.remote_port = unix_peer ? -1 : c.peer_port;
    ctx.server_name = c.listener->server_name;
    ctx.server_port = c.listener->server_port;
    ctx.peer_trusted = c.trusted;
    ctx.proxy = c.has_proxy ? &c.proxy : nullptr;
    ctx.force_close = w.stopping || w.keepalive_ms == 0 || clients_queueing(w);
    if (c.tls) ctx.url_scheme = "https";
    ctx.body = &body;
    ctx.sink = &sink;
    if (c.continue_sent) c.req.expect_continue = false;  // the loop already answered it

    WorkerStatus *status = w.info.status;
    int64_t app_start = now_ms();
    if (status) {
        // Read by the master only if this request times out.
        auto copy = [](char *dst, size_t cap, std::string_view src) {
            size_t n = std::min(cap - 1, src.size());
            std::memcpy(dst, src.data(), n);
            dst[n] = '\0';
        };
        copy(status->method, sizeof status->method, c.req.method);
        copy(status->path, sizeof status->path, c.req.target);
        copy(status->peer, sizeof status->peer, c.peer);
        status->request_started_ms = app_start;
    }
    if (c.hook_req) hooks::begin_request(c.hook_req);  // post_request gets it
    g_in_app = 1;
    wsgi::Outcome outcome = wsgi::handle(ctx, c.resp);
    w.last_app_ms = now_ms() - app_start;
    g_in_app = 0;
    if (status) status->request_started_ms = 0;

    c.continue_sent = false;
    c.client_closing = !c.req.keep_alive;
    if (!outcome.keep_alive || outcome.client_gone) c.close_after_write = true;
    if (!body.done() && !c.close_after_write) {
        c.drain_kind = body.kind();
        c.drain_left = body.left();
        c.drain_dec = body.decoder();
        c.drained = 0;
        if (!drain_buffered(c)) c.phase = Phase::DRAINING;
    }
    if (body.failed()) c.close_after_write = true;
    beat(w);
}

void process(Conn &c) {
    Worker &w = *c.w;
    for (;;) {
        if (c.phase == Phase::DRAINING) {
            if (!drain_buffered(c)) break;
            c.phase = Phase::READING;
        }
        if (c.close_after_write) break;
        // Pipelined requests wait while the previous response is parked.
        if (c.pending() >= OUT_HIGH_WATER) break;
        if (c.in.size() == 0) break;
        if (c.proxy_pending) {
            // Only the first bytes of a connection may be a PROXY header (e.1).
            http::ProxyResult pr = http::parse_proxy(c.in.data(), c.in.size(), w.proxy_mode,
                                                     peer_in(w.proxy_allow, c), c.peer);
            if (pr.status == http::Status::NEED_MORE) {
                if (c.peer_closed) c.close_after_write = true;
                break;
            }
            if (pr.status == http::Status::ERROR) {
                send_error(c, pr.error, pr.message);
                break;
            }
            c.proxy_pending = false;
            c.in.consume(pr.consumed);
            if (pr.present) {
                c.has_proxy = true;
                c.proxy = std::move(pr.info);
            }
            continue;
        }
        // No clear(): parse_head resets its outputs and keeps the resume
        // hint of an earlier NEED_MORE, so a slowly arriving head is not
        // re-scanned from the start on every read.
        http::HeadResult hr = http::parse_head(c.in.data(), c.in.size(), w.opts, c.trusted, c.req);
        if (hr.status == http::Status::ERROR) {
            send_error(c, hr.error, hr.message);
            break;
        }
        if (hr.status == http::Status::NEED_MORE) {
            if (c.peer_closed) c.close_after_write = true;  // a truncated head: nothing to answer
            break;
        }
        if (hooks::request_hooks() && !c.hook_req) {
            // pre_request: once per request, before any 100 Continue.
            hooks::RequestInfo hi;
            hi.req = &c.req;
            hi.peer = c.listener->family == AF_UNIX ? std::string_view() : std::string_view(c.peer);
            hi.peer_port = c.peer_port;
            hi.req_number = c.requests + 1;
            hi.proxy = c.has_proxy ? &c.proxy : nullptr;
            hooks::pre_request(c.hook_req, hi);
        }
        if (c.req.expect_continue && !c.continue_sent && c.req.body != http::BodyKind::NONE &&
            !body_ready(c, hr.consumed)) {
            // RFC 9110 section 10.1.1: the client waits for this before sending.
            static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
            c.out.append(CONTINUE, sizeof CONTINUE - 1);
            c.continue_sent = true;
        }
        if (!body_ready(c, hr.consumed)) break;
        dispatch(c, hr.consumed);
        if (w.stopping) c.close_after_write = true;
    }
    if (!flush(c)) return;
    if (c.close_after_write && !c.pending()) {
        start_linger(c);
        return;
    }
    if (c.close_after_write) return;  // wait for the flush, then linger
    if (c.peer_closed && c.in.size() == 0) {
        close_conn(c);
        return;
    }
    c.in.shrink();
    c.deadline = now_ms() + (c.in.size() == 0 && c.phase == Phase::READING ? w.keepalive_ms : w.io_timeout_ms);
    if (c.pending() < OUT_HIGH_WATER) w.loop->add(c.fd, ev::READABLE, on_conn_event, &c);
}

void on_readable(Conn &c) {
    if (c.phase == Phase::LINGERING) {
        char sink[16384];
        for (;;) {
            ssize_t n = recv(c.fd, sink, sizeof sink, 0);
            if (n > 0) continue;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            close_conn(c);
            return;
        }
    }
    long n = fill(c, false);
    if (n < 0 && errno != EAGAIN) {
        close_conn(c);
        return;
    }
    if (n == 0 && c.in.size() == 0 && c.pending() == 0) {
        close_conn(c);  // the client closed between requests: no error
        return;
    }
    process(c);
}

void on_conn_event(ev::Loop &, int fd, int mask, void *data) {
    Worker &w = g_worker;
    if (!data) {
        // A listener: accept what is waiting.
        // One connection per wake-up: every worker woken by the listener
        // gets a fair chance, so keep-alive connections (which stay with
        // the worker that accepted them) spread evenly instead of the
        // first worker to wake taking a whole burst.
        for (int i = 0; i < ACCEPT_BATCH && w.accepting; ++i) {
            // A new connection may bring one more request: only within max_requests.
            if (!check_max_requests(w, nullptr)) return;
            const Listener *l = nullptr;
            for (Listener &cand : *w.listeners)
                if (cand.fd == fd) l = &cand;
            if (!l) return;
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            int cfd = platform::accept_nonblocking(fd, reinterpret_cast<sockaddr *>(&ss), &len);
            if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE)
                    LOG_ERROR("accept: %s", std::strerror(errno));
                return;  // EAGAIN: another worker took it
            }
            auto *c = new Conn;
            c->fd = cfd;
            c->w = &w;
            c->listener = l;
            if (ss.ss_family == AF_INET) {
                auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
                inet_ntop(AF_INET, &sin->sin_addr, c->peer, sizeof c->peer);
                c->peer_port = ntohs(sin->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
                inet_ntop(AF_INET6, &sin6->sin6_addr, c->peer, sizeof c->peer);
                c->peer_port = ntohs(sin6->sin6_port);
            }
            int64_t now = now_ms();
            if (now - w.last_requeue_ms >= 1) {
                // Let the other workers take the next connection (ev.h);
                // at most once a millisecond, so a loaded worker pays
                // nothing, and an idle server still takes turns.
                w.loop->requeue(fd);
                w.last_requeue_ms = now;
            }
            c->trusted = peer_in(w.forwarded_allow, *c);
            if (w.cfg->tls_context) {
                c->tls = std::make_unique<tls::Session>(*w.cfg);
                if (!c->tls->ok()) {
                    LOG_ERROR("%s", c->tls->error().c_str());
                    close(cfd);
                    delete c;
                    return;
                }
            }
            c->proxy_pending = w.proxy_mode != http::ProxyProtocol::OFF;
            if (static_cast<size_t>(cfd) >= w.conns.size()) w.conns.resize(static_cast<size_t>(cfd) * 2 + 1, nullptr);
            w.conns[static_cast<size_t>(cfd)] = c;
            ++w.nconns;
            c->deadline = now + w.io_timeout_ms;
            if (w.nconns >= static_cast<size_t>(w.cfg->worker_connections)) {
                for (Listener &ll : *w.listeners) w.loop->remove(ll.fd, ev::READABLE | ev::EXCLUSIVE);
                w.accepting = false;
            }
            // With deferred accept (platform.h) the request has arrived
            // with the connection: serve it now. process() registers the
            // connection with the loop only if it stays open, so a request
            // answered and closed at once costs no epoll_ctl.
            on_readable(*c);
        }
        return;
    }
    Conn &c = *static_cast<Conn *>(data);
    if (mask & ev::WRITABLE) {
        if (!flush(c)) return;
        if (c.pending() == 0 && !c.close_after_write && c.phase != Phase::LINGERING) {
            // Output drained: serve what was pipelined behind it.
            process(c);
            return;
        }
    }
    if ((mask & ev::READABLE) && w.conns[static_cast<size_t>(fd)] == &c) on_readable(c);
}

// The reloader saw `file` change. Gunicorn's worker logs, runs worker_int
// and exits for the master to start a fresh one. Here the fresh one is
// started first (ask_replacement) and this worker goes only once it has
// booted (retire_if_replaced): code that no longer imports leaves this
// one serving, and the master retries at each further change.
void on_reload_change(const std::string &file) {
    Worker &w = g_worker;
    LOG_INFO("Worker reloading: %s modified", file.c_str());
    if (!w.info.status) {
        hooks::worker_int();
        begin_graceful_stop(w);
        return;
    }
    w.reload_pending = true;
    ask_replacement(w);
}

void retire_if_replaced(Worker &w) {
    if (!w.reload_pending || w.stopping || !w.info.status || !w.info.status->replacement_ready) return;
    w.reload_pending = false;
    hooks::worker_int();
    begin_graceful_stop(w);
}

void on_signal_pipe(ev::Loop &, int fd, int, void *) {
    Worker &w = g_worker;
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(fd, sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
            switch (sigs[i]) {
            case SIGTERM:
                begin_graceful_stop(w);
                break;
            case SIGQUIT:
            case SIGINT:
                hooks::quit_worker();
            case SIGABRT:
                hooks::abort_worker();  // only with hooks armed (on_signal)
            case SIGUSR1:
                log::reopen();
                break;
            default:
                break;
            }
        }
    }
}

// Closes idle keep-alive connections past their deadline, and connections
// whose client has been silent for too long mid-request. A retiring worker
// keeps its idle connections until then too (begin_graceful_stop).
void sweep(Worker &w) {
    int64_t now = now_ms();
    for (Conn *c : w.conns)
        if (c && now >= c->deadline) close_conn(*c);
}

// As gunicorn's set_owner_process, before the app is imported: files the
// worker must keep using change owner first; uid/gid 0 means "stay".
bool drop_privileges(const Config &cfg, const WorkerInfo &info) {
    bool change_gid = cfg.gid > 0 && static_cast<gid_t>(cfg.gid) != getegid();
    bool change_uid = cfg.uid > 0 && static_cast<uid_t>(cfg.uid) != geteuid();
    if (!change_gid && !change_uid) return true;
    uid_t uid = change_uid ? static_cast<uid_t>(cfg.uid) : geteuid();
    gid_t gid = change_gid ? static_cast<gid_t>(cfg.gid) : getegid();
    if (info.heartbeat_fd >= 0) (void)!fchown(info.heartbeat_fd, uid, gid);
    log::chown_files(uid, gid);
    if (change_gid) {
        const passwd *pw = cfg.initgroups ? getpwuid(uid) : nullptr;
        int rc = pw ? initgroups(pw->pw_name, gid) : setgid(gid);
        if (rc == 0 && pw) rc = setgid(gid);
        if (rc < 0) {
            LOG_ERROR("cannot switch to group %ld: %s", cfg.gid, std::strerror(errno));
            return false;
        }
    }
    if (change_uid && setuid(uid) < 0) {
        LOG_ERROR("cannot switch to user %ld: %s", cfg.uid, std::strerror(errno));
        return false;
    }
    return true;
}

}  // namespace

void heartbeat(int fd) {
    if (fd < 0) return;
    // Toggling the mode updates ctime, which the master reads.
    static bool flip = false;
    flip = !flip;
    (void)fchmod(fd, flip ? 0600 : 0400);
}

int run_worker(const Config &cfg, std::vector<Listener> &listeners, const WorkerInfo &info) {
    Worker &w = g_worker;
    w.cfg = &cfg;
    w.listeners = &listeners;
    w.info = info;
    w.opts = cfg.http;
    w.keepalive_ms = cfg.keepalive * 1000;
    w.io_timeout_ms = (cfg.timeout > 0 ? cfg.timeout : 30) * 1000;
    if (cfg.max_requests > 0) {
        std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
        std::uniform_int_distribution<int> jitter(0, cfg.max_requests_jitter);
        w.max_requests = static_cast<uint64_t>(cfg.max_requests) + static_cast<uint64_t>(jitter(rng));
    }
    w.forwarded_allow = cfg.forwarded_allow_ips;
    w.proxy_allow = cfg.proxy_allow_ips;
    w.proxy_mode = cfg.proxy_protocol;
    install_signals();
    hooks::WorkerProcess hw;
    hw.cfg = &cfg;
    hw.info = info;
    hw.listeners = &listeners;
    hw.max_requests = w.max_requests;
    hw.nr = &w.nr;
    hw.stopping = &w.stopping;
    hw.stop = [] { begin_graceful_stop(g_worker); };  // worker.alive = False from a hook
    hooks::worker_init(hw);
    struct ExitHook {
        ~ExitHook() { hooks::worker_exit(); }  // on every way out of here
    } exit_hook;
    heartbeat(info.heartbeat_fd);
    if (!drop_privileges(cfg, info)) return 3;

    int rc = wsgi::app_loaded() ? 0 : wsgi::load_app(cfg);
    if (rc != 0) return rc;
    if (info.status) {
        info.status->booted = 1;
        kill(info.ppid, SIGCHLD);  // a HUP or a max_requests hand-over waits for this
    }

    ev::Loop loop(4096);
    if (!loop.ok()) {
        LOG_ERROR("cannot create the event loop: %s", std::strerror(errno));
        return 1;
    }
    w.loop = &loop;
    loop.set_sleep_hooks(wsgi::release_gil, wsgi::acquire_gil, nullptr);
    loop.add(g_sig_pipe[0], ev::READABLE, on_signal_pipe, nullptr);
    for (Listener &l : listeners) loop.add(l.fd, ev::READABLE | ev::EXCLUSIVE, on_conn_event, nullptr);
    w.accepting = true;
    if (cfg.reload) reloader::start(cfg, loop, on_reload_change);
    hooks::post_worker_init();

    int64_t last_sweep = now_ms();
    for (;;) {
        int64_t now = now_ms();
        if (now - last_sweep >= 250) {
            // Housekeeping a few times a second, not per request: these are
            // syscalls the hot path does not need.
            beat(w);
            if (getppid() != info.ppid) {
                LOG_INFO("Parent changed, shutting down: <Worker %d>", getpid());
                break;
            }
            sweep(w);
            retire_if_replaced(w);
            if (cfg.reload && !w.stopping) reloader::tick();
            last_sweep = now;
        }
        if (w.stopping) {
            if (w.accepting) stop_accepting(w);
            if (w.nconns == 0 || now >= w.stop_deadline) break;
        }
        loop.poll(250);
    }
    LOG_INFO("Worker exiting (pid: %d)", getpid());
    return 0;
}

}  // namespace cunicorn
