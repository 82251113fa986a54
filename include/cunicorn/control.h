// The control socket (gunicorn/ctl/): a unix socket the master serves
// for gunicornc and `cunicorn ctl`. Wire format, Gunicorn's: each message
// is a 4-byte big-endian length and that many bytes of UTF-8 JSON; a
// request {"id": N, "command": "show workers", "args": [...]} (the
// command split as shlex.split does, args appended) is answered
// {"id": N, "status": "ok", "data": {...}} or
// {"id": N, "status": "error", "error": "..."}, as json.dumps writes them.
// A connection may carry any number of requests, answered in order.
#ifndef CUNICORN_CONTROL_H
#define CUNICORN_CONTROL_H

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cunicorn::control {

// A JSON value. Objects keep their insertion order (Python dicts do).
struct Json {
    enum Kind { NUL, BOOL, INT, FLOAT, STR, ARR, OBJ };
    Kind kind = NUL;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<Json> arr;
    std::vector<std::pair<std::string, Json>> obj;

    Json() = default;
    Json(std::nullptr_t) {}
    Json(bool v) : kind(BOOL), b(v) {}
    Json(int v) : kind(INT), i(v) {}
    Json(long v) : kind(INT), i(v) {}
    Json(long long v) : kind(INT), i(v) {}
    Json(unsigned long v) : kind(INT), i(static_cast<int64_t>(v)) {}
    Json(unsigned long long v) : kind(INT), i(static_cast<int64_t>(v)) {}
    Json(double v) : kind(FLOAT), f(v) {}
    Json(const char *v) : kind(STR), s(v) {}
    Json(std::string v) : kind(STR), s(std::move(v)) {}
    static Json array() { Json j; j.kind = ARR; return j; }
    static Json object() { Json j; j.kind = OBJ; return j; }
    // Objects: adds (or replaces) a member; returns *this.
    Json &set(const std::string &key, Json v);
    // Objects: the member, or null when absent.
    const Json *get(std::string_view key) const;
};

// json.dumps(value): ", " and ": " separators, non-ASCII as \uXXXX;
// indent > 0 as json.dumps(value, indent=N).
std::string encode(const Json &v, int indent = 0);
// Strict JSON (RFC 8259) of valid UTF-8, nesting at most 64 deep. False
// with a one-line reason.
bool parse(std::string_view text, Json &out, std::string &error);
// shlex.split(text) (POSIX mode). False with shlex's reason.
bool shell_split(std::string_view text, std::vector<std::string> &out, std::string &error);
// Python's str() of a JSON value, as the server turns "args" into words.
std::string to_word(const Json &v);

// Gunicorn's default path: $XDG_RUNTIME_DIR/gunicorn.ctl when that is a
// directory, else ~/.gunicorn/gunicorn.ctl.
std::string default_socket_path();

// Largest message accepted (Gunicorn's is 16 MiB; a command is a few
// hundred bytes, so the master buffers far less).
inline constexpr uint32_t MAX_MESSAGE = 1 << 20;

// What the commands need from the master (implemented by the arbiter).
class Master {
public:
    virtual pid_t pid() = 0;
    // "show workers" entries; `all` = the shorter "show all" form.
    virtual Json workers(bool all) = 0;
    virtual Json stats() = 0;
    virtual Json config() = 0;
    virtual Json listeners() = 0;
    // Changes the target worker count by delta (never below 1); returns
    // {added|removed, previous, total}.
    virtual Json change_workers(int delta) = 0;
    virtual Json kill_worker(long pid) = 0;
    // Queues sig for the master loop, as if it had been received.
    virtual void post_signal(int sig) = 0;
    // The Prometheus exposition text (prometheus.h).
    virtual std::string metrics() = 0;

protected:
    ~Master() = default;
};

// The reply to one request payload (the bytes after the length).
Json dispatch(std::string_view payload, Master &master);

// The server side, polled by the master's loop: never blocks, closes
// clients idle for 300 s, answers at most MAX_CLIENTS at once.
//
// The same server answers the Prometheus endpoint (start_metrics): one
// HTTP/1.1 request per connection, its head at most 8 KiB, answered and
// closed (prometheus::respond); a client gets 10 s from its connection
// to its answer's last byte.
class Server {
public:
    Server() = default;
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server() { stop(); }

    // Creates the parent directory (0700) and the socket (path made
    // absolute against the working directory, mode applied before anyone
    // can connect); replaces a stale socket. On failure logs one warning
    // and leaves the server off.
    bool start(const std::string &path, int mode);
    // Serves the Prometheus endpoint at `address` (bind's syntax:
    // HOST:PORT, [V6]:PORT or unix:PATH), unless it already does; "" stops
    // it. SO_REUSEPORT on TCP, so that a USR2 successor binds the address
    // while its predecessor still serves it. On failure logs one warning
    // and leaves the server off.
    bool metrics_at(const std::string &address);
    // Flushes what replies it can, closes, and removes the socket file if
    // it is still ours.
    void stop();
    // In a forked child: closes the descriptors, removes nothing.
    void close_in_child();
    bool active() const { return listen_fd_ >= 0; }
    const std::string &path() const { return path_; }

    // Appends the descriptors to poll; call handle() with the same entries
    // (after poll), at least once a second.
    void add_pollfds(std::vector<pollfd> &fds) const;
    void handle(const pollfd *fds, size_t n, Master &master);

private:
    struct Client {
        int fd = -1;
        std::string in, out;
        int64_t last_ms = 0;
        int64_t accepted_ms = 0;
        bool closing = false;   // reply what is queued, then close
        bool eof = false;       // the client ended its side
        bool shut = false;      // ours is ended (metrics): waiting for its end
    };
    void accept_clients();
    void read_client(Client &c);
    void process(Client &c, Master &master);
    void process_http(Client &c, Master &master);
    void write_client(Client &c);
    bool expired(const Client &c, int64_t now) const;
    void listening_at(const std::string &path);

    bool http_ = false;   // the Prometheus endpoint
    std::string address_; // its address, as configured

    int listen_fd_ = -1;
    std::string path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::vector<Client> clients_;
};

// `cunicorn ctl [-s PATH] [-j] COMMAND...` (ctl_client.cpp): argv after
// "ctl". Returns the exit status.
int run_client(const std::vector<std::string> &args);

}  // namespace cunicorn::control

#endif
