// The connection engine. The loop owns every socket: it reads a request
// head, and a small body, before the request is handed to the executor,
// so a slow client never holds the application; responses the socket
// cannot take at once are parked and flushed when it is writable. Plain
// and TLS transports meet at fill() and write_some(); keep-alive,
// pipelining (in order), 100 Continue, draining an unread body and the
// lingering close are decided here, between requests.
#include "cunicorn/conn.h"

#include "cunicorn/config.h"
#include "cunicorn/ev.h"
#include "cunicorn/hooks.h"
#include "cunicorn/http_parser.h"
#include "cunicorn/http_writer.h"
#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/tls.h"
#include "cunicorn/worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <climits>
#include <memory>
#include <mutex>

namespace cunicorn::conn {

namespace {

using worker::now_ms;

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
// A relayed request's body reaches the application in slices of this size.
constexpr size_t BODY_SLICE = 64 * 1024;
// ConnBody::pull without blocking: nothing from the client yet.
constexpr long WOULD_BLOCK = -2;

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
    // Takes `store` (of `store_cap` bytes) as the buffer, empty.
    void lend(std::unique_ptr<char[]> &store, size_t &store_cap) {
        p = std::move(store);
        cap = store_cap;
        start = end = 0;
        store_cap = 0;
    }
    // Gives an empty buffer back to `store`; one grown past 64 KiB (a
    // large head, a pipelined burst) is freed instead.
    void give_back(std::unique_ptr<char[]> &store, size_t &store_cap) {
        if (cap <= 65536) {
            store = std::move(p);
            store_cap = cap;
        }
        p.reset();
        cap = start = end = 0;
    }
};

enum class Phase : uint8_t { READING, DRAINING, LINGERING };

struct Conn;

// The request body as the application reads it, on the loop thread: first
// what the loop buffered, then the socket, waiting for the client.
class ConnBody final : public BodySource {
public:
    void bind(Conn &c) { c_ = &c; }
    // A new request on the connection.
    void start(const http::Request &req, const http::Options *opts);

    long read(char *dst, size_t n) override { return pull(dst, n, true); }
    // read(), or WOULD_BLOCK when !block and the client has sent nothing
    // more yet.
    long pull(char *dst, size_t n, bool block);
    const std::string &error() const override { return err_; }
    http::Error error_code() const override { return code_; }
    bool done() const { return done_; }
    bool failed() const { return failed_; }
    http::BodyKind kind() const { return kind_; }
    uint64_t left() const { return left_; }
    const http::ChunkedDecoder &decoder() const { return dec_; }

private:
    long at_eof();
    long fail(http::Error e);

    Conn *c_ = nullptr;
    http::ChunkedDecoder dec_;
    http::BodyKind kind_ = http::BodyKind::NONE;
    uint64_t left_ = 0;
    bool done_ = true;
    bool failed_ = false;
    bool truncated_ = false;
    http::Error code_ = http::Error::NONE;
    std::string err_;
};

// The response as the application writes it, on the loop thread: parked
// in the connection's output up to OUT_HIGH_WATER, then pushed to the
// socket, waiting for the client.
class ConnSink final : public Sink {
public:
    void bind(Conn &c) { c_ = &c; }
    // A new response on the connection.
    void start() { broken_ = false; }

    bool write(const char *p, size_t n) override;
    bool flush() override;
    bool send_file(int fd, off_t offset, size_t n) override;

private:
    bool push(size_t keep, const char *&p, size_t &n);
    bool fail() {
        broken_ = true;
        return false;
    }
    Conn *c_ = nullptr;
    bool broken_ = false;
};

struct Engine;

// A relayed request's buffers (conn.h), shared by the loop thread and the
// application side; the gate guards every field below it. The loop moves
// decoded body slices into `in` when the application waits for them, and
// takes the response from `out` (then the queued file, then `tail`) into
// the connection's own output.
class Relay final : public BodySource, public Sink {
public:
    explicit Relay(std::unique_ptr<Gate> g) : gate(std::move(g)) {}
    // A new request on the connection (loop thread, nothing else runs on it).
    void start();

    long read(char *dst, size_t n) override;
    const std::string &error() const override { return err; }
    http::Error error_code() const override { return code; }
    bool write(const char *p, size_t n) override;
    bool flush() override;
    bool send_file(int fd, off_t offset, size_t n) override;
    // Application side, locked: asks the loop to look at the connection;
    // `urgent` false when the loop has nothing to do for it before the
    // client speaks again (quiet): the wake-up is spared.
    void post(bool urgent = true);
    // Application side, locked: sends what `out` holds itself (direct_fd).
    void send_direct();

    Conn *c_ = nullptr;          // set by the loop while no request runs
    std::unique_ptr<Gate> gate;
    std::string in;              // decoded body bytes not read yet, from in_off
    size_t in_off = 0;
    bool want_body = false;      // the application waits for body bytes
    bool body_end = false;       // the body is over (or failed: body_failed)
    bool body_failed = false;
    http::Error code = http::Error::NONE;
    std::string err;
    std::string out;             // response bytes the loop has not taken
    std::string tail;            // bytes that follow the queued file
    int file_fd = -1;            // a file the loop has not taken
    off_t file_off = 0;
    size_t file_left = 0;
    bool file_queued = false;    // the response has a file (send_file)
    size_t loop_pending = 0;     // what the connection held unsent, at the loop's last look
    bool broken = false;         // the client is gone
    bool finished = false;       // the executor called complete()
    bool posted = false;         // in the engine's mailbox
    // A plain socket an application thread writes the response to itself
    // while the loop holds none of it (-1 once the loop has taken any): a
    // response in hand then needs no round trip through the loop.
    int direct_fd = -1;
    // The loop waits for the client to speak and holds nothing for the
    // connection (no body, no buffered bytes): once the response is sent
    // directly, the completion can wait for the loop's next look (the
    // client's next request, or housekeeping) instead of waking it.
    bool quiet = false;
};

// What a connection needs only while it has work (a request being read,
// run, or its unread body drained): the request and its exchange, body
// source and sink, and the buffers, which the connection borrows for
// that time. An idle keep-alive connection holds none of it: a worker
// keeps a few spare ones and lends them to the connections that read.
struct Work {
    http::Request req;
    std::string head;           // req's bytes while its body is read (own_head)
    // The request in flight, with its body source and sink (reused by
    // each request on the connection).
    Exchange ex;
    ConnBody body;
    ConnSink sink;
    std::unique_ptr<Relay> relay;  // relayed executors only

    // Unread body being discarded between requests.
    http::BodyKind drain_kind = http::BodyKind::NONE;
    uint64_t drain_left = 0;
    uint64_t drained = 0;
    http::ChunkedDecoder drain_dec;

    // Response bytes not sent yet, from out_off, and those that follow a
    // queued file (Conn::file_fd; chunk framing).
    std::string out;
    size_t out_off = 0;
    std::string tail;

    // The storage the connection's InBuf borrows while it has this part.
    std::unique_ptr<char[]> in_store;
    size_t in_cap = 0;
};

struct Conn {
    int fd = -1;
    Engine *e = nullptr;
    const Listener *listener = nullptr;
    char peer[INET6_ADDRSTRLEN] = "";
    int peer_port = -1;
    bool trusted = false;

    InBuf in;
    Work *w = nullptr;          // while the connection has work (take_work)
    bool busy = false;          // the executor has the request
    bool submitting = false;    // inside Executor::submit
    bool dead = false;          // closed while the executor had a request: freed at complete()
    bool overdue = false;       // its request outlived request_timeout (reported)

    Phase phase = Phase::READING;
    bool close_after_write = false;
    bool continue_sent = false;
    bool client_closing = false;  // the request asked to close (Connection: close, HTTP/1.0)
    bool peer_closed = false;   // read side saw EOF
    bool proxy_pending = false; // a PROXY header may still come first
    std::unique_ptr<http::ProxyInfo> proxy;  // what the PROXY header said
    int requests = 0;
    int64_t deadline = 0;       // idle / read / linger deadline (ms)

    // Idle keep-alive connections, oldest first (Engine::idle_head): at
    // the worker_connections bound the oldest makes room for a new one.
    Conn *idle_prev = nullptr;
    Conn *idle_next = nullptr;
    bool idle = false;

    // A file queued behind w->out (wsgi.file_wrapper, sent with sendfile
    // from the loop so a slow reader does not hold the worker), with
    // w->tail after it.
    int file_fd = -1;
    off_t file_off = 0;
    size_t file_left = 0;

    // TLS connections only: the session, and the ciphertext it produced
    // that the socket has not taken yet (everything above is plaintext).
    std::unique_ptr<tls::Session> tls;
    std::string tls_out;
    size_t tls_out_off = 0;

    // Output is only ever held with a work part: a connection without one
    // has nothing unsent.
    size_t out_pending() const { return w ? w->out.size() - w->out_off : 0; }
    size_t tls_pending() const { return tls_out.size() - tls_out_off; }
    size_t pending() const { return out_pending() + file_left + (w ? w->tail.size() : 0) + tls_pending(); }
};

// Empties a wake-up pipe (non-blocking) once its reader has woken.
void drain_pipe(int fd) {
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

// A pipe any thread rings to wake whoever waits on its read end; rung
// once until answered, however many ring meanwhile.
struct Doorbell {
    int fd[2] = {-1, -1};
    std::atomic<bool> rung{false};
    bool open() { return platform::signal_pipe(fd); }
    void ring() {
        if (rung.exchange(true)) return;
        char b = 1;
        (void)!write(fd[1], &b, 1);
    }
    // Called before looking at what the ringer announced: a ring after
    // this wakes the reader again.
    void answer() {
        drain_pipe(fd[0]);
        rung = false;
    }
};

// The engine of one worker process: its listeners' connections and the
// settings that shape them.
struct Engine final : worker::Acceptor, Turns {
    Engine(worker::Process &proc, Executor &executor);
    ~Engine();
    void stop_accepting() override;

    // Turns (conn.h), when the executor takes them.
    void wait(std::vector<ev::Loop::Fired> &fired) override;
    void lock() override { turn.lock(); }
    void unlock() override { turn.unlock(); }
    void run(const std::vector<ev::Loop::Fired> &fired) override { loop->run(fired); }
    void kick() override;
    void all_busy() override;

    worker::Process &p;
    Executor &exec;
    const Config &cfg;
    http::Options opts;
    ev::Loop *loop = nullptr;
    std::vector<Conn *> conns;   // by fd
    size_t nconns = 0;
    bool accepting = false;
    int keepalive_ms = 0;
    int io_timeout_ms = 30000;
    int64_t request_timeout_ms = 0;  // request_timeout; 0 = off
    int64_t last_app_ms = 0;     // how long the previous request held the app
    int64_t last_requeue_ms = 0; // the listener registration last moved to the back
    IpAllowList forwarded_allow;   // forwarded_allow_ips
    IpAllowList proxy_allow;       // proxy_allow_ips
    http::ProxyProtocol proxy_mode = http::ProxyProtocol::OFF;
    bool relayed = false;        // the executor runs applications elsewhere (make_gate)

    // Work parts no connection has (take_work), and the idle keep-alive
    // connections, oldest first.
    std::vector<Work *> spare;
    Conn *idle_head = nullptr;
    Conn *idle_tail = nullptr;

    // Relayed requests: the connections whose application side has news
    // for the loop, and the pipe that wakes the loop for them.
    std::mutex mail_mu;
    std::vector<Conn *> mail;
    bool woken = false;          // the pipe was written since the loop's last look at the mail
    int wake[2] = {-1, -1};
    void post(Conn *c, bool urgent);

    // Taking turns: `loop` (one-shot) has the listeners and connections,
    // `own` the main thread's signals, and `loop` itself while every
    // thread runs a request (standing_by). The main thread holds the turn
    // except while it sleeps.
    ev::Loop *own = nullptr;
    std::mutex turn;
    Doorbell kick_bell;  // shared loop: a queued request wants a thread
    Doorbell busy_bell;  // main thread: every thread runs a request
    bool standing_by = false;
    std::vector<ev::Loop::Fired> own_fired;
};

Work &take_work(Conn &c);

// ---------------------------------------------------------------------
// Blocking helpers used while the app runs on the loop thread (the GIL is
// released by the bridge around them). They keep beating: a client that
// is slow to send or receive is not the application being stuck.
// ---------------------------------------------------------------------

bool wait_fd(Engine &e, int fd, short events) {
    int64_t deadline = now_ms() + e.io_timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, static_cast<int>(left < 1000 ? left : 1000));
        worker::beat(e.p);
        if (r > 0) return true;
        if (worker::quit_requested()) {
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
        if (!wait_fd(*c.e, c.fd, POLLIN)) return -1;
    }
}

// ---------------------------------------------------------------------
// TLS: the socket carries ciphertext; c.in, c.w->out and the queued file
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
            if (!encrypt(c, &c.w->out[c.w->out_off], take)) return false;
            c.w->out_off += take;
            if (c.out_pending() == 0) {
                c.w->out.clear();
                c.w->out_off = 0;
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
    take_work(c);
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
        if (c.out_pending()) iov[n++] = {&c.w->out[c.w->out_off], c.out_pending()};
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
        c.w->out_off += from_out;
        done -= from_out;
        extra += done;
        extra_len -= done;
        if (c.out_pending() == 0) {
            c.w->out.clear();
            c.w->out_off = 0;
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
    c.w->out.append(c.w->tail);
    c.w->tail.clear();
    return true;
}

bool ConnSink::write(const char *p, size_t n) {
    if (broken_) return false;
    if (c_->file_fd >= 0) {
        c_->w->tail.append(p, n);  // only framing follows a queued file
        return true;
    }
    if (c_->out_pending() + n <= OUT_HIGH_WATER) {
        c_->w->out.append(p, n);
        return true;
    }
    // Over the high-water mark: push bytes out, waiting for the socket
    // only until what is left fits in the parked buffer.
    if (!push(OUT_HIGH_WATER, p, n)) return false;
    c_->w->out.append(p, n);
    return true;
}

bool ConnSink::flush() {
    if (broken_) return false;
    if (c_->file_fd >= 0) return true;  // only framing waits behind the file
    const char *none = nullptr;
    size_t zero = 0;
    return push(0, none, zero);
}

bool ConnSink::send_file(int fd, off_t offset, size_t n) {
    if (broken_ || c_->file_fd >= 0) return fail();
    // The app closes its file when the response ends; the loop sends
    // from a duplicate of the descriptor.
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return fail();
    c_->file_fd = dup_fd;
    c_->file_off = offset;
    c_->file_left = n;
    return true;
}

// Writes parked output, then p, waiting for the socket, until at most
// `keep` bytes of them are left unsent (p and n say what is left).
bool ConnSink::push(size_t keep, const char *&p, size_t &n) {
    for (;;) {
        if (!write_some(*c_, p, n)) return fail();
        if (c_->out_pending() + c_->tls_pending() + n <= keep) return true;
        if (!wait_fd(*c_->e, c_->fd, POLLOUT)) return fail();
    }
}

void ConnBody::start(const http::Request &req, const http::Options *opts) {
    dec_ = http::ChunkedDecoder(opts);
    kind_ = req.body;
    left_ = req.content_length;
    done_ = kind_ == http::BodyKind::NONE || (kind_ == http::BodyKind::LENGTH && left_ == 0);
    failed_ = false;
    truncated_ = false;
    code_ = http::Error::NONE;
    err_.clear();
}

long ConnBody::pull(char *dst, size_t n, bool block) {
    while (!done_ && n > 0) {
        if (c_->in.size() == 0) {
            long r = fill(*c_, block);
            if (r < 0 && !block && errno == EAGAIN) return WOULD_BLOCK;
            if (r == 0) return at_eof();
            if (r < 0) {
                err_ = std::string("error reading the request body: ") + std::strerror(errno);
                failed_ = true;
                return -1;
            }
        }
        if (kind_ == http::BodyKind::LENGTH) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(std::min<uint64_t>(n, left_), c_->in.size()));
            std::memcpy(dst, c_->in.data(), take);
            c_->in.consume(take);
            left_ -= take;
            if (left_ == 0) done_ = true;
            return static_cast<long>(take);
        }
        auto step = dec_.step(c_->in.data(), std::min(c_->in.size(), n));
        if (step.status == http::Status::ERROR) {
            c_->in.consume(step.consumed);
            return fail(step.error);
        }
        if (step.data_len) std::memcpy(dst, step.data, step.data_len);
        c_->in.consume(step.consumed);
        if (step.status == http::Status::DONE) done_ = true;
        if (step.data_len) return static_cast<long>(step.data_len);
    }
    return 0;
}

long ConnBody::at_eof() {
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

long ConnBody::fail(http::Error e) {
    failed_ = true;
    done_ = true;
    code_ = e;
    err_ = dec_.message().empty() ? std::string(http::error_name(e)) : dec_.message();
    return -1;
}

// ---------------------------------------------------------------------
// Relayed requests: the application side (any thread). It never touches
// the connection; it waits on the gate for the loop.
// ---------------------------------------------------------------------

void Relay::start() {
    in.clear();
    in_off = 0;
    want_body = body_end = body_failed = false;
    code = http::Error::NONE;
    err.clear();
    out.clear();
    tail.clear();
    file_fd = -1;
    file_left = 0;
    file_queued = false;
    loop_pending = c_->pending();
    broken = finished = posted = false;
    bool threads = !c_->e->exec.on_loop_thread();  // a greenlet's writes wait for the loop anyway
    direct_fd = threads && !c_->tls && loop_pending == 0 ? c_->fd : -1;
    quiet = false;
}

void Relay::post(bool urgent) {
    if (posted) return;
    posted = true;
    c_->e->post(c_, urgent);
}

void Relay::send_direct() {
    if (direct_fd < 0 || out.empty() || file_queued) return;
    size_t off = 0;
    while (off < out.size()) {
        ssize_t n = ::send(direct_fd, out.data() + off, out.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;  // full, or failed: the loop sends the rest, or meets the error
        }
    }
    out.erase(0, off);
    if (!out.empty()) direct_fd = -1;  // and all that follows, in order
}

long Relay::read(char *dst, size_t n) {
    if (n == 0) return 0;
    gate->lock();
    for (;;) {
        if (in_off < in.size()) {
            size_t take = std::min(n, in.size() - in_off);
            std::memcpy(dst, in.data() + in_off, take);
            in_off += take;
            gate->unlock();
            return static_cast<long>(take);
        }
        if (body_end || broken) {
            if (!body_end) err = "error reading the request body: the connection was closed";
            long r = body_failed || !body_end ? -1 : 0;
            gate->unlock();
            return r;
        }
        if (!want_body) {
            want_body = true;  // the loop keeps it until it brings bytes
            post();
        }
        if (!gate->wait()) {
            err = "reading the request body was interrupted";
            gate->unlock();
            return -1;
        }
    }
}

bool Relay::write(const char *p, size_t n) {
    gate->lock();
    (file_fd >= 0 ? tail : out).append(p, n);
    if (out.size() > OUT_HIGH_WATER) send_direct();
    // Back-pressure: the writer waits while the client is slow to take
    // what is already queued. The loop looks again whenever the socket
    // drains: only new bytes need a post.
    bool ok = true;
    while (ok && !broken && out.size() + tail.size() + loop_pending > OUT_HIGH_WATER) {
        if (!out.empty() || !tail.empty()) post();
        ok = gate->wait();
    }
    ok = ok && !broken;
    gate->unlock();
    return ok;
}

bool Relay::flush() {
    gate->lock();
    bool ok = true;
    if (!c_->e->exec.on_loop_thread()) {
        // An application thread hands the block to the loop, which sends
        // it while the application computes the next one: PEP 3333's
        // "guarantee that they will continue transmission". write() still
        // waits for a slow client past the high-water mark. Waiting here
        // cost a round trip through the loop per iterable response.
        if (!out.empty() || !tail.empty()) post();
    } else {
        // A greenlet sends nothing until the loop runs: it waits, and the
        // loop runs meanwhile. A queued file goes at the socket's pace;
        // only framing follows it.
        while (ok && !broken && !file_queued && out.size() + tail.size() + loop_pending > 0) {
            if (!out.empty() || !tail.empty()) post();
            ok = gate->wait();
        }
    }
    ok = ok && !broken;
    gate->unlock();
    return ok;
}

bool Relay::send_file(int fd, off_t offset, size_t n) {
    // The app closes its file when the response ends; the loop sends
    // from a duplicate of the descriptor.
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return false;
    gate->lock();
    bool ok = !broken && !file_queued;
    if (ok) {
        send_direct();
        direct_fd = -1;  // the loop sends the file, after anything still in out
        file_fd = dup_fd;
        file_off = offset;
        file_left = n;
        file_queued = true;
        post();
    }
    gate->unlock();
    if (!ok) close(dup_fd);
    return ok;
}

void Engine::post(Conn *c, bool urgent) {
    if (exec.on_loop_thread()) {
        mail.push_back(c);  // the loop and the application side take turns
        if (mail.size() == 1) exec.wake_loop();
        return;
    }
    bool first;
    {
        std::lock_guard<std::mutex> g(mail_mu);
        first = urgent && !woken;
        woken = woken || urgent;
        mail.push_back(c);
    }
    if (first) {
        char b = 1;
        (void)!write(wake[1], &b, 1);
    }
}

// ---------------------------------------------------------------------
// Connection lifecycle
// ---------------------------------------------------------------------

void on_accept(ev::Loop &loop, int fd, int mask, void *data);
void on_conn_event(ev::Loop &loop, int fd, int mask, void *data);
void process(Conn &c);

void listen_all(Engine &e) {
    for (Listener &l : *e.p.listeners) e.loop->add(l.fd, ev::READABLE | ev::EXCLUSIVE, on_accept, &e);
    e.accepting = true;
}

// Spare work parts a worker keeps for the connections that will read
// next; beyond that, a part a connection gives back is freed.
constexpr size_t SPARE_WORK = 32;
// Output capacity a work part keeps (a larger one is freed).
constexpr size_t OUT_KEEP = 64 * 1024;

void unlink_idle(Conn &c) {
    if (!c.idle) return;
    Engine &e = *c.e;
    (c.idle_prev ? c.idle_prev->idle_next : e.idle_head) = c.idle_next;
    (c.idle_next ? c.idle_next->idle_prev : e.idle_tail) = c.idle_prev;
    c.idle_prev = c.idle_next = nullptr;
    c.idle = false;
}

// The connection has work: it gets a work part and the buffers with it.
Work &take_work(Conn &c) {
    if (c.w) return *c.w;
    Engine &e = *c.e;
    Work *w;
    if (!e.spare.empty()) {
        w = e.spare.back();
        e.spare.pop_back();
    } else {
        w = new Work;
        if (e.relayed) w->relay = std::make_unique<Relay>(e.exec.make_gate());
    }
    w->body.bind(c);
    w->sink.bind(c);
    if (w->relay) w->relay->c_ = &c;
    c.in.lend(w->in_store, w->in_cap);
    c.w = w;
    unlink_idle(c);
    return *w;
}

// The connection has no work left (nothing buffered, nothing running or
// being drained): its work part and buffers go back to the worker.
void give_back_work(Conn &c) {
    Work *w = c.w;
    if (!w) return;
    Engine &e = *c.e;
    c.w = nullptr;
    c.in.give_back(w->in_store, w->in_cap);
    w->out.clear();
    if (w->out.capacity() > OUT_KEEP) w->out.shrink_to_fit();
    w->out_off = 0;
    w->tail.clear();
    w->req.resume = {};  // parse_head resets the rest; a hint must not pass to another buffer
    w->head.clear();
    w->ex.hook_req.reset();
    w->drain_kind = http::BodyKind::NONE;
    if (e.spare.size() < SPARE_WORK) {
        e.spare.push_back(w);
    } else {
        delete w;
    }
}

// Waiting for a request, with nothing buffered or unsent: the connection
// keeps no buffer, and once it has served one (an idle keep-alive
// connection) a new client may take its place at the bound.
void go_idle(Conn &c) {
    give_back_work(c);
    if (c.tls) std::string().swap(c.tls_out);
    if (c.idle || c.requests == 0) return;
    Engine &e = *c.e;
    c.idle_prev = e.idle_tail;
    (e.idle_tail ? e.idle_tail->idle_next : e.idle_head) = &c;
    e.idle_tail = &c;
    c.idle = true;
    if (!e.accepting && !e.p.stopping) listen_all(e);  // it can make room for a new client
}

void pause_accepting(Engine &e) {
    for (Listener &l : *e.p.listeners) e.loop->remove(l.fd, ev::READABLE | ev::EXCLUSIVE);
    e.accepting = false;
}

void close_conn(Conn &c) {
    Engine &e = *c.e;
    if (c.busy && e.relayed) {
        // The application side still holds the request: it learns that the
        // client is gone, and the connection goes once it completes.
        if (!c.dead) {
            c.dead = true;
            e.loop->remove(c.fd, ev::READABLE | ev::WRITABLE);
            Relay &r = *c.w->relay;
            r.gate->lock();
            r.broken = true;
            r.gate->notify();
            r.gate->unlock();
        }
        return;
    }
    e.loop->forget_closing(c.fd);
    close(c.fd);
    if (c.file_fd >= 0) close(c.file_fd);
    unlink_idle(c);
    give_back_work(c);
    e.conns[static_cast<size_t>(c.fd)] = nullptr;
    --e.nconns;
    if (e.p.info.status) e.p.info.status->connections = static_cast<uint32_t>(e.nconns);
    if (!e.p.stopping && !e.accepting && e.nconns < static_cast<size_t>(e.cfg.worker_connections)) listen_all(e);
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
    c.e->loop->remove(c.fd, ev::WRITABLE);
    c.e->loop->add(c.fd, ev::READABLE, on_conn_event, &c);
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
        c.deadline = now_ms() + c.e->io_timeout_ms;
        c.e->loop->add(c.fd, ev::WRITABLE, on_conn_event, &c);
        return true;
    }
    c.e->loop->remove(c.fd, ev::WRITABLE);
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
    c.w->out.append(page);
    c.close_after_write = true;
}

// Discards unread body bytes from the buffer. Returns true when the body
// is finished, false when more must come from the client, and sets
// close_after_write on a framing error or when too much is left.
bool drain_buffered(Conn &c) {
    if (c.w->drain_kind == http::BodyKind::LENGTH) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(c.w->drain_left, c.in.size()));
        c.in.consume(take);
        c.w->drain_left -= take;
        c.w->drained += take;
        if (c.w->drain_left == 0) c.w->drain_kind = http::BodyKind::NONE;
    } else if (c.w->drain_kind == http::BodyKind::CHUNKED) {
        while (c.in.size()) {
            auto step = c.w->drain_dec.step(c.in.data(), c.in.size());
            c.in.consume(step.consumed);
            c.w->drained += step.consumed;
            if (step.status == http::Status::ERROR) {
                c.close_after_write = true;
                c.w->drain_kind = http::BodyKind::NONE;
                return true;
            }
            if (step.status == http::Status::DONE) {
                c.w->drain_kind = http::BodyKind::NONE;
                break;
            }
            if (step.consumed == 0) break;
        }
    }
    if (c.w->drain_kind == http::BodyKind::NONE) return true;
    if (c.w->drained > DRAIN_LIMIT || c.peer_closed) {
        c.close_after_write = true;
        c.w->drain_kind = http::BodyKind::NONE;
        return true;
    }
    return false;
}

// Is the whole body (or BODY_PREBUFFER of it) in the buffer after the head?
bool body_ready(const Conn &c, size_t head_len) {
    size_t have = c.in.size() - head_len;
    if (have >= BODY_PREBUFFER || c.peer_closed) return true;
    if (c.w->req.body == http::BodyKind::LENGTH) return have >= c.w->req.content_length;
    if (c.w->req.body == http::BodyKind::CHUNKED) {
        http::ChunkedDecoder probe(&c.e->opts);
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

Engine::Engine(worker::Process &proc, Executor &executor) : p(proc), exec(executor), cfg(*proc.cfg) {
    opts = cfg.http;
    keepalive_ms = cfg.keepalive * 1000;
    io_timeout_ms = (cfg.timeout > 0 ? cfg.timeout : 30) * 1000;
    request_timeout_ms = static_cast<int64_t>(cfg.request_timeout) * 1000;
    forwarded_allow = cfg.forwarded_allow_ips;
    proxy_allow = cfg.proxy_allow_ips;
    proxy_mode = cfg.proxy_protocol;
}

Engine::~Engine() {
    for (Work *w : spare) delete w;
}

// Retirement (worker::begin_graceful_stop): the listeners close; idle
// keep-alive connections stay until their deadline (sweep), in case
// their client is already sending the next request.
void Engine::stop_accepting() {
    for (Listener &l : *p.listeners) {
        loop->remove(l.fd, ev::READABLE | ev::EXCLUSIVE);
        close(l.fd);
        l.fd = -1;
    }
    accepting = false;
}

// Connections other than `current` that may still bring a request: each
// gets at most one more once the worker retires.
uint64_t open_conns(const Engine &e, const Conn *current) {
    uint64_t n = 0;
    for (const Conn *c : e.conns)
        if (c && c != current && !c->close_after_write && c->phase != Phase::LINGERING) ++n;
    return n;
}

// worker::check_max_requests with what this engine holds; `current` is
// the connection whose request was just counted.
bool check_max_requests(Engine &e, const Conn *current) {
    return worker::check_max_requests(e.p, e.nconns, [&] { return open_conns(e, current); });
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
bool clients_queueing(Engine &e) {
    if (e.last_app_ms < SLOW_APP_MS || !e.accepting) return false;
    pollfd fds[8];
    nfds_t n = 0;
    for (const Listener &l : *e.p.listeners)
        if (l.fd >= 0 && n < 8) fds[n++] = pollfd{l.fd, POLLIN, 0};
    return n > 0 && ::poll(fds, n, 0) > 0;
}

void on_exchange_complete(Exchange &ex);

// Loop thread, gate locked: brings the next body slice to a relayed
// request whose application waits for one. Returns false when the client
// has to send more first.
bool pull_body(Conn &c, Relay &r) {
    ConnBody &body = c.w->body;
    if (r.in_off < r.in.size() || r.body_end || body.done()) {
        r.body_end = r.body_end || (r.in_off == r.in.size() && body.done());
        r.want_body = false;
        return true;
    }
    r.in.resize(BODY_SLICE);
    r.in_off = 0;
    long got = body.pull(&r.in[0], BODY_SLICE, false);
    if (got == WOULD_BLOCK) {
        r.in.clear();
        return false;
    }
    r.in.resize(got > 0 ? static_cast<size_t>(got) : 0);
    if (got <= 0) {
        r.body_end = true;
        if (got < 0) {
            r.body_failed = true;
            r.code = body.error_code();
            r.err = body.error();
        }
    }
    r.want_body = false;
    return true;
}

// The application side of c's request completed (any thread).
void relay_complete(Exchange &ex) {
    Relay &r = *static_cast<Conn *>(ex.owner)->w->relay;
    r.gate->lock();
    r.finished = true;
    // Not when a post is pending: the loop, already asked to look (a
    // streamed block), sends the response as it comes.
    if (!r.posted) r.send_direct();
    bool sent = r.direct_fd >= 0 && r.out.empty() && r.tail.empty() && !r.file_queued;
    r.post(!(r.quiet && sent && ex.outcome.keep_alive && !ex.outcome.client_gone && !r.broken));
    r.gate->unlock();
}

// Loop thread: what a relayed request's application side asked for. Takes
// the response bytes it wrote into the connection's output and sends what
// the socket takes, brings body bytes, and wakes the application. Only
// the mailbox (`from_mail`) ends a request that completed: a connection
// is in the mailbox at most once (posted), and is freed only after its
// request ended, so the mailbox never holds a freed one.
bool relay_service(Conn &c, bool from_mail, int fired = ev::NONE) {
    Engine &e = *c.e;
    Relay &r = *c.w->relay;
    r.gate->lock();
    if (from_mail) r.posted = false;
    if (!r.out.empty() || !r.tail.empty() || r.file_fd >= 0) r.direct_fd = -1;  // the loop sends from now on
    // The client speaks while its request runs: its completion must wake
    // the loop. One that came quietly already waits in the mail.
    if (fired & ev::READABLE) {
        bool completed_quietly = r.quiet && r.finished && !from_mail;
        r.quiet = false;
        if (completed_quietly) {
            r.gate->unlock();
            return true;  // the caller ends it from the mail, then reads the client
        }
    }
    if (c.dead) {
        r.out.clear();
        r.tail.clear();
        if (r.file_fd >= 0) close(r.file_fd);
        r.file_fd = -1;
    } else {
        (c.file_fd >= 0 ? c.w->tail : c.w->out).append(r.out);
        r.out.clear();
        if (r.file_fd >= 0) {
            c.file_fd = r.file_fd;
            c.file_off = r.file_off;
            c.file_left = r.file_left;
            r.file_fd = -1;
        }
        (c.file_fd >= 0 ? c.w->tail : c.w->out).append(r.tail);
        r.tail.clear();
    }
    bool finished = from_mail && r.finished;
    r.gate->unlock();
    if (!c.dead) flush(c);  // on failure the connection is marked dead

    r.gate->lock();
    bool wait_client = false;
    if (!c.dead && r.want_body) wait_client = !pull_body(c, r);
    r.loop_pending = c.dead ? 0 : c.pending();
    if (c.dead) r.broken = true;
    r.gate->notify();
    r.gate->unlock();

    if (finished) {
        on_exchange_complete(c.w->ex);
        return false;
    }
    if (c.dead) return false;
    if (wait_client) {
        e.loop->add(c.fd, ev::READABLE, on_conn_event, &c);
        c.deadline = now_ms() + e.io_timeout_ms;
    } else {
        // Nothing is read while the application runs. The registration goes
        // only once the client sends (pipelines, or closes): a request's
        // response comes first, and two epoll_ctl per request are spared.
        if (fired & ev::READABLE) e.loop->remove(c.fd, ev::READABLE);
        if (!c.pending()) c.deadline = INT64_MAX;  // the app takes its time
    }
    return false;
}

// Relayed requests' news, from the mailbox.
void read_mail(Engine &e) {
    std::vector<Conn *> batch;
    {
        std::lock_guard<std::mutex> g(e.mail_mu);
        batch.swap(e.mail);
        e.woken = false;
    }
    for (Conn *c : batch) relay_service(*c, true);
}

// The wake pipe: relayed requests have news.
void on_wake(ev::Loop &, int fd, int, void *data) {
    drain_pipe(fd);
    read_mail(*static_cast<Engine *>(data));
}

// Reading the body refills the input buffer, which moves or overwrites
// the bytes of the head that req's views point into. A request with a
// body gets those bytes copied to the connection's own string first, so
// that the request object stays valid until it completes (its method and
// target are still read for the response's framing and the error log).
void own_head(Conn &c, size_t head_len) {
    auto base = reinterpret_cast<uintptr_t>(c.in.data());
    std::string &head = c.w->head;
    head.assign(c.in.data(), head_len);
    auto move = [&](std::string_view &v) {
        auto at = reinterpret_cast<uintptr_t>(v.data());
        if (at >= base && at < base + head_len) v = std::string_view(head.data() + (at - base), v.size());
    };
    http::Request &r = c.w->req;
    for (std::string_view *v : {&r.method, &r.target, &r.path, &r.query, &r.fragment, &r.scheme}) move(*v);
    for (http::Header &h : r.headers) {
        move(h.name);
        move(h.value);
    }
}

// Hands the request whose head is the first head_len buffered bytes to
// the executor, with the connection's body source and sink.
void dispatch(Conn &c, size_t head_len) {
    Engine &e = *c.e;
    Work &w = *c.w;
    if (w.req.body != http::BodyKind::NONE) own_head(c, head_len);
    c.in.consume(head_len);
    w.ex.nr_before = e.p.nr;
    ++e.p.nr;
    if (e.p.info.status) e.p.info.status->requests = e.p.nr;
    ++c.requests;
    check_max_requests(e, &c);

    w.body.start(w.req, &e.opts);
    w.sink.start();
    Exchange &ex = w.ex;
    ex.req_number = c.requests;
    ex.req = &w.req;
    bool unix_peer = c.listener->family == AF_UNIX;
    ex.remote_addr = unix_peer ? std::string_view() : std::string_view(c.peer);
    ex.remote_port = unix_peer ? -1 : c.peer_port;
    ex.server_name = c.listener->server_name;
    ex.server_port = c.listener->server_port;
    ex.url_scheme = c.tls ? "https" : "http";
    ex.peer_trusted = c.trusted;
    ex.proxy = c.proxy.get();
    // Only an inline executor holds the other connections while its
    // application runs: a relayed one serves them meanwhile.
    ex.force_close = e.p.stopping || e.keepalive_ms == 0 || (!w.relay && clients_queueing(e));
    ex.owner = &c;
    if (c.continue_sent) w.req.expect_continue = false;  // the loop already answered it
    if (w.relay) {
        Relay &r = *w.relay;
        r.start();
        r.quiet = w.req.body == http::BodyKind::NONE && c.in.size() == 0 && !c.peer_closed && !e.p.stopping &&
                  (e.loop->mask(c.fd) & ev::READABLE);
        r.want_body = true;
        pull_body(c, r);  // what the loop buffered: small bodies need no round trip
        r.want_body = false;
        ex.body = &r;
        ex.sink = &r;
        ex.on_complete = relay_complete;
        c.deadline = INT64_MAX;  // no client deadline while the app runs
    } else {
        ex.body = &w.body;
        ex.sink = &w.sink;
        ex.on_complete = on_exchange_complete;
    }
    ex.submitted_ms = now_ms();
    c.overdue = false;
    c.busy = true;
    c.submitting = true;
    e.exec.submit(ex);
    c.submitting = false;
}

// The executor is done with the connection's request: what the response
// and the unread body leave of the connection.
void on_exchange_complete(Exchange &ex) {
    Conn &c = *static_cast<Conn *>(ex.owner);
    Engine &e = *c.e;
    e.last_app_ms = now_ms() - ex.submitted_ms;
    c.busy = false;
    if (c.dead) {
        close_conn(c);
        return;
    }
    Work &w = *c.w;
    // A body slice goes: work parts in the pool keep no 64 KiB buffer.
    if (w.relay && w.relay->in.capacity() >= BODY_SLICE) std::string().swap(w.relay->in);
    ex.hook_req.reset();  // post_request took it, unless the bridge failed first

    c.continue_sent = false;
    c.client_closing = !w.req.keep_alive;
    if (!ex.outcome.keep_alive || ex.outcome.client_gone) c.close_after_write = true;
    if (!w.body.done() && !c.close_after_write) {
        w.drain_kind = w.body.kind();
        w.drain_left = w.body.left();
        w.drain_dec = w.body.decoder();
        w.drained = 0;
        if (!drain_buffered(c)) c.phase = Phase::DRAINING;
    }
    if (w.body.failed() || e.p.stopping) c.close_after_write = true;
    worker::beat(e.p);
    // Completed after submit() returned: serve what waits behind it.
    if (!c.submitting) process(c);
}

void process(Conn &c) {
    Engine &e = *c.e;
    for (;;) {
        if (c.busy) break;  // one request at a time per connection: responses in order
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
            http::ProxyResult pr = http::parse_proxy(c.in.data(), c.in.size(), e.proxy_mode,
                                                     peer_in(e.proxy_allow, c), c.peer);
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
            if (pr.present) c.proxy = std::make_unique<http::ProxyInfo>(std::move(pr.info));
            continue;
        }
        // No clear(): parse_head resets its outputs and keeps the resume
        // hint of an earlier NEED_MORE, so a slowly arriving head is not
        // re-scanned from the start on every read.
        Work &w = *c.w;  // bytes are buffered: the connection has work
        http::HeadResult hr = http::parse_head(c.in.data(), c.in.size(), e.opts, c.trusted, w.req);
        if (hr.status == http::Status::ERROR) {
            send_error(c, hr.error, hr.message);
            break;
        }
        if (hr.status == http::Status::NEED_MORE) {
            if (c.peer_closed) c.close_after_write = true;  // a truncated head: nothing to answer
            break;
        }
        if (hooks::request_hooks() && !w.ex.hook_req && !w.relay) {
            // pre_request: once per request, before any 100 Continue (a
            // relayed executor runs it where the application runs).
            hooks::RequestInfo hi;
            hi.req = &w.req;
            hi.peer = c.listener->family == AF_UNIX ? std::string_view() : std::string_view(c.peer);
            hi.peer_port = c.peer_port;
            hi.req_number = c.requests + 1;
            hi.proxy = c.proxy.get();
            hooks::pre_request(w.ex.hook_req, hi);
        }
        if (w.req.expect_continue && !c.continue_sent && w.req.body != http::BodyKind::NONE && !w.relay &&
            !body_ready(c, hr.consumed)) {
            // RFC 9110 section 10.1.1: the client waits for this before sending.
            static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
            c.w->out.append(CONTINUE, sizeof CONTINUE - 1);
            c.continue_sent = true;
        }
        // A relayed request that expects 100 Continue goes now: pre_request
        // runs before the application sends it, from the application's side.
        if (!body_ready(c, hr.consumed) && !(w.relay && w.req.expect_continue && !c.continue_sent)) break;
        dispatch(c, hr.consumed);
    }
    if (!flush(c)) return;
    if (c.busy) {
        // A relayed request: the loop reads only what its application asks
        // for, and tells it what the flush above left unsent.
        relay_service(c, false);
        return;
    }
    if (c.close_after_write && !c.pending()) {
        start_linger(c);
        return;
    }
    if (c.close_after_write) return;  // wait for the flush, then linger
    if (c.peer_closed && c.in.size() == 0) {
        close_conn(c);
        return;
    }
    bool between = c.in.size() == 0 && c.phase == Phase::READING;
    if (between && c.pending() == 0) go_idle(c);
    c.deadline = now_ms() + (between ? e.keepalive_ms : e.io_timeout_ms);
    if (c.pending() < OUT_HIGH_WATER) e.loop->add(c.fd, ev::READABLE, on_conn_event, &c);
}

void on_readable(Conn &c) {
    if (c.busy) {
        // The application side waits for body bytes.
        if (relay_service(c, false, ev::READABLE)) read_mail(*c.e);
        return;
    }
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

// A listener is readable: accept what is waiting. One connection per
// wake-up: every worker woken by the listener gets a fair chance, so
// keep-alive connections (which stay with the worker that accepted them)
// spread evenly instead of the first worker to wake taking a whole burst.
void on_accept(ev::Loop &, int fd, int, void *data) {
    Engine &e = *static_cast<Engine *>(data);
    for (int i = 0; i < ACCEPT_BATCH && e.accepting; ++i) {
        // A new connection may bring one more request: only within max_requests.
        if (!check_max_requests(e, nullptr)) return;
        // At the bound, the oldest idle keep-alive connection makes room
        // for a new one (below, once there is one: nginx reuses
        // connections so); with none idle, accepting waits until one is
        // (go_idle) or closes.
        size_t bound = static_cast<size_t>(e.cfg.worker_connections);
        if (e.nconns >= bound && !e.idle_head) {
            pause_accepting(e);
            return;
        }
        const Listener *l = nullptr;
        for (Listener &cand : *e.p.listeners)
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
        c->e = &e;
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
        if (now - e.last_requeue_ms >= 1) {
            // Let the other workers take the next connection (ev.h);
            // at most once a millisecond, so a loaded worker pays
            // nothing, and an idle server still takes turns.
            e.loop->requeue(fd);
            e.last_requeue_ms = now;
        }
        c->trusted = peer_in(e.forwarded_allow, *c);
        if (e.cfg.tls_context) {
            c->tls = std::make_unique<tls::Session>(e.cfg);
            if (!c->tls->ok()) {
                LOG_ERROR("%s", c->tls->error().c_str());
                close(cfd);
                delete c;
                return;
            }
        }
        c->proxy_pending = e.proxy_mode != http::ProxyProtocol::OFF;
        if (static_cast<size_t>(cfd) >= e.conns.size()) e.conns.resize(static_cast<size_t>(cfd) * 2 + 1, nullptr);
        e.conns[static_cast<size_t>(cfd)] = c;
        ++e.nconns;
        if (e.nconns > bound) close_conn(*e.idle_head);
        if (e.p.info.status) e.p.info.status->connections = static_cast<uint32_t>(e.nconns);
        c->deadline = now + e.io_timeout_ms;
        if (e.nconns >= bound && !e.idle_head) pause_accepting(e);
        // With deferred accept (platform.h) the request has arrived
        // with the connection: serve it now. process() registers the
        // connection with the loop only if it stays open, so a request
        // answered and closed at once costs no epoll_ctl.
        on_readable(*c);
    }
}

void on_conn_event(ev::Loop &, int fd, int mask, void *data) {
    Conn &c = *static_cast<Conn *>(data);
    Engine &e = *c.e;
    if (c.busy) {
        // A relayed request: its output drained, or body bytes came.
        if (!relay_service(c, false, mask)) return;
        read_mail(e);  // it completed quietly: end it, then read what the client sent
        if (e.conns[static_cast<size_t>(fd)] != &c || c.busy) return;  // closed, or busy again
    }
    if (mask & ev::WRITABLE) {
        if (!flush(c)) return;
        if (c.pending() == 0 && !c.close_after_write && c.phase != Phase::LINGERING) {
            // Output drained: serve what was pipelined behind it.
            process(c);
            return;
        }
    }
    if ((mask & ev::READABLE) && e.conns[static_cast<size_t>(fd)] == &c) on_readable(c);
}

// request_timeout (like uWSGI's harakiri): a relayed request has been in
// the application too long. The loop is alive (the heartbeat says so), but
// the thread is not coming back: log the request and where the
// application is stuck, and restart the worker gracefully (no new
// connection; the other requests finish within graceful_timeout). The
// inline executor never gets here: the loop waits for its application,
// and the heartbeat timeout bounds the request instead.
void request_overdue(Engine &e, Conn &c) {
    c.overdue = true;
    const http::Request &r = c.w->req;
    LOG_ERROR("Request timeout (%lld s): %.*s %.*s from %s; restarting the worker. Application stack:\n%s",
              static_cast<long long>(e.request_timeout_ms / 1000), static_cast<int>(r.method.size()), r.method.data(),
              static_cast<int>(r.target.size()), r.target.data(),
              c.listener->family == AF_UNIX ? "a unix socket" : c.peer, e.exec.where(c.w->ex).c_str());
    worker::begin_graceful_stop(e.p);
}

// Closes idle keep-alive connections past their deadline, and connections
// whose client has been silent for too long mid-request. A retiring worker
// keeps its idle connections until then too (worker::begin_graceful_stop).
void sweep(Engine &e) {
    int64_t now = now_ms();
    for (Conn *c : e.conns) {
        if (c && c->busy && e.request_timeout_ms && !c->overdue && now - c->w->ex.submitted_ms >= e.request_timeout_ms)
            request_overdue(e, *c);
        if (c && now >= c->deadline) close_conn(*c);
    }
}

// ---------------------------------------------------------------------
// Taking turns (Turns in conn.h)
// ---------------------------------------------------------------------

void Engine::wait(std::vector<ev::Loop::Fired> &fired) {
    while (loop->wait(-1, fired) <= 0) {
    }
}

// One thread at a time is kicked: it passes the kick on (the executor's
// next()) if more requests wait.
void Engine::kick() { kick_bell.ring(); }

void on_kick(ev::Loop &, int, int, void *data) { static_cast<Engine *>(data)->kick_bell.answer(); }

void Engine::all_busy() { busy_bell.ring(); }

void on_shared_events(ev::Loop &, int, int, void *data);

// The main thread serves the shared loop while every thread runs a
// request, and leaves it to them as soon as one is back.
void stand_by(Engine &e) {
    bool needed = e.exec.idle_threads() == 0;
    if (needed == e.standing_by) return;
    int fd = e.loop->poll_fd();
    if (needed) e.own->add(fd, ev::READABLE, on_shared_events, &e);
    else e.own->remove(fd, ev::READABLE);
    e.standing_by = needed;
}

void on_shared_events(ev::Loop &, int, int, void *data) {
    Engine &e = *static_cast<Engine *>(data);
    if (e.loop->wait(0, e.own_fired) > 0) e.loop->run(e.own_fired);
    stand_by(e);
}

void on_all_busy(ev::Loop &, int, int, void *data) {
    Engine &e = *static_cast<Engine *>(data);
    e.busy_bell.answer();
    stand_by(e);
}

// What threads taking turns may still touch while the process exits
// (they wait in the loop, in the engine): never freed, and kept reachable
// so that LeakSanitizer does not count them.
struct Outliving {
    Engine *engine;
    ev::Loop *shared, *own;
} g_outliving{};

}  // namespace

int serve(worker::Process &p, Executor &exec) {
    // On the heap: at the graceful timeout the application side may still
    // hold requests, which refer to the engine until the process exits.
    std::unique_ptr<Engine> owned(new Engine(p, exec));
    Engine &e = *owned;
    bool turns = exec.takes_turns();
    std::unique_ptr<ev::Loop> shared(new ev::Loop(4096, turns));
    std::unique_ptr<ev::Loop> main_only(turns ? new ev::Loop(64) : nullptr);
    ev::Loop &loop = *shared;
    ev::Loop &own = turns ? *main_only : loop;
    if (!loop.ok() || !own.ok()) {
        LOG_ERROR("cannot create the event loop: %s", std::strerror(errno));
        return 1;
    }
    e.loop = &loop;
    e.own = &own;
    e.relayed = exec.make_gate() != nullptr;
    if (!platform::signal_pipe(e.wake) || loop.add(e.wake[0], ev::READABLE, on_wake, &e) < 0 ||
        (turns && (!e.kick_bell.open() || !e.busy_bell.open() ||
                   loop.add(e.kick_bell.fd[0], ev::READABLE, on_kick, &e) < 0 ||
                   own.add(e.busy_bell.fd[0], ev::READABLE, on_all_busy, &e) < 0))) {
        LOG_ERROR("cannot create the wake pipe: %s", std::strerror(errno));
        return 1;
    }
    if (turns) {
        e.turn.lock();  // before any thread starts, as the main thread holds the GIL
        exec.attach_turns(e, own);
        g_outliving = Outliving{owned.release(), shared.release(), main_only.release()};
    } else {
        exec.attach(loop);
    }
    listen_all(e);
    p.acceptor = &e;
    worker::ready(p, own);

    int64_t last_sweep = now_ms();
    for (;;) {
        int64_t now = now_ms();
        if (now - last_sweep >= 250) {
            // Housekeeping a few times a second, not per request: these are
            // syscalls the hot path does not need.
            if (!worker::housekeeping(p)) break;
            if (e.relayed && !exec.on_loop_thread()) read_mail(e);  // completions that came quietly
            sweep(e);
            last_sweep = now;
        }
        if (p.stopping) {
            if (e.accepting) e.stop_accepting();
            if (e.nconns == 0 || now >= p.stop_deadline) break;
        }
        own.poll(250);
        if (turns) stand_by(e);
        if (exec.on_loop_thread() && !e.mail.empty()) read_mail(e);
    }
    p.acceptor = nullptr;
    bool in_flight = false;
    for (const Conn *c : e.conns) in_flight = in_flight || (c && c->busy);
    if (in_flight) (void)owned.release();
    return 0;
}

}  // namespace cunicorn::conn
