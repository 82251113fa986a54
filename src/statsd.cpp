// StatsD client (gunicorn/instrument/statsd.py), without Python.
//
// gunicorn's Statsd logger opens one datagram socket in the master and the
// workers inherit it; so does this. The socket is non-blocking: a metric
// that does not fit the socket buffer, or that the kernel refuses (a UDP
// port nobody listens on answers with ICMP, reported as ECONNREFUSED by
// the next send), is dropped and counted, and the request goes on.
// gunicorn's socket blocks and logs a warning with a traceback for every
// failed send; here the warning comes at most once a minute per process.
//
// gunicorn sends one datagram per metric, three per request: a loopback
// send costs about as much as serving a small request. Here a request
// costs a few atomic increments (the Figures, which the Prometheus
// endpoint reads too) and, with StatsD on, its duration appended to a
// buffer. A thread of the worker that does nothing else wakes FLUSH_MS
// after the first request of a batch and sends what came since its last
// send: every duration as its own timer line (timers do not add up), then
// gunicorn.requests and each gunicorn.request.status.<code> as one
// counter carrying how many there were (StatsD adds counters up: ":5|c"
// is five of gunicorn's ":1|c"). The lines are joined with "\n" into
// datagrams of up to MAX_PACKET bytes (the multi-metric packets that
// StatsD, DogStatsD, Telegraf and statsd_exporter read). Metrics of the
// master (the workers gauge, the backlog) and the log counters go out at
// once, after whatever was waiting, so the order is kept.
#include "cunicorn/statsd.h"

#include "cunicorn/log.h"
#include "cunicorn/sock.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace cunicorn::statsd {

namespace {

// Set by configure() in the master before any worker forks; read-only
// afterwards except for the unix reconnect state, which the flusher
// thread shares.
int g_fd = -1;
bool g_unix = false;
std::atomic<bool> g_connected{false};
std::string g_path;     // unix socket path, for reconnecting
std::string g_prefix;   // normalized, "" or ending in "."
std::string g_suffix;   // "|#tags" or ""
bool g_backlog = false;
int g_last_workers = -1;
std::atomic<int64_t> g_reconnect_at{0};
std::atomic<int64_t> g_warn_at{0};
std::atomic<uint64_t> g_dropped{0};
// Set while this module logs its own warning: gunicorn logs it through
// the plain Logger, so it is not counted as gunicorn.log.warning.
thread_local bool t_reporting = false;
thread_local bool t_flusher = false;
std::atomic<int> g_pending_warning{0};  // errno of a failed send, to log

const int64_t RECONNECT_MS = 1000;
const int64_t WARN_EVERY_MS = 60 * 1000;
const size_t MAX_PACKET = 1432;  // fits one Ethernet frame over UDP/IPv6
const long FLUSH_MS = 100;

int64_t mono_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void set_flags(int fd) {
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) (void)::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void close_socket() {
    if (g_fd >= 0) ::close(g_fd);
    g_fd = -1;
    g_connected = false;
}

bool connect_unix() {
    struct sockaddr_un sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (g_path.size() >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return false;
    }
    std::memcpy(sa.sun_path, g_path.data(), g_path.size());
    int r;
    do {
        r = ::connect(g_fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa);
    } while (r < 0 && errno == EINTR);
    g_connected = r == 0;
    return r == 0;
}

// The warning gunicorn logs on a failed send ("Error sending message to
// statsd"), at most once a minute; not itself counted as a log call.
// The flusher thread leaves it to the next request on the main thread:
// logging (syslog's socket) belongs to that one.
void warn_now(int err) {
    t_reporting = true;
    LOG_WARNING("Error sending message to statsd: %s (%llu dropped so far)", std::strerror(err),
                static_cast<unsigned long long>(g_dropped.load(std::memory_order_relaxed)));
    t_reporting = false;
}

void report(int err) {
    int64_t now = mono_ms();
    int64_t due = g_warn_at.load();
    if (now < due || !g_warn_at.compare_exchange_strong(due, now + WARN_EVERY_MS)) return;
    if (t_flusher) g_pending_warning = err;
    else warn_now(err);
}

// Sends one datagram holding `lines` metrics, never waiting.
void send_packet(const std::string &packet, unsigned lines) {
    if (g_fd < 0 || packet.empty()) return;
    if (g_unix && !g_connected) {
        int64_t now = mono_ms();
        if (now < g_reconnect_at.load() || !connect_unix()) {
            if (now >= g_reconnect_at.load()) g_reconnect_at = now + RECONNECT_MS;
            g_dropped.fetch_add(lines, std::memory_order_relaxed);
            return;
        }
    }
    ssize_t w;
    do {
        w = ::send(g_fd, packet.data(), packet.size(), MSG_DONTWAIT);
    } while (w < 0 && errno == EINTR);
    if (w >= 0) return;
    int err = errno;
    g_dropped.fetch_add(lines, std::memory_order_relaxed);
    if (g_unix && err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS && err != EMSGSIZE) {
        // The receiver went away (or never came): connect again later.
        g_connected = false;
        g_reconnect_at = mono_ms() + RECONNECT_MS;
    }
    report(err);
}

// --- the batch of per-request metrics (workers) ----------------------------
//
// Plain pthread primitives, so that the child of a fork (the app may
// fork) can be given fresh ones: only the forking thread lives on there.

Figures g_own;                 // this process's, unless attach()ed to a page
Figures *g_fig = &g_own;
bool g_count = false;          // count requests for Prometheus without StatsD
const size_t MAX_DURATIONS = 4096;  // then the request's thread sends them

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
// With g_mu: the durations (us) not yet sent, the status lines of codes
// that have no counter slot, and what the counters were at the last send.
std::vector<int64_t> g_durations;
std::string g_extra;
unsigned g_extra_lines = 0;
uint64_t g_sent_requests = 0;
uint64_t g_sent_status[Figures::STATUS_SLOTS] = {};
enum class Flusher { NONE, RUNNING, FAILED } g_flusher = Flusher::NONE;
bool g_atfork = false;

void clear(Figures &f) {
    f.requests = 0;
    for (Figures::Status &st : f.status) st.code = 0, st.count = 0;
    f.status_other = 0;
    for (auto &n : f.duration_bucket) n = 0;
    f.duration_sum_us = 0;
    for (auto &n : f.log_calls) n = 0;
}

// With g_mu: the next send starts from the figures as they are now.
void sent_up_to_now() {
    g_sent_requests = g_fig->requests.load();
    for (int i = 0; i < Figures::STATUS_SLOTS; ++i) g_sent_status[i] = g_fig->status[i].count.load();
}

void atfork_prepare() { pthread_mutex_lock(&g_mu); }
void atfork_parent() { pthread_mutex_unlock(&g_mu); }
void atfork_child() {
    // The parent sends what it had; this process counts on its own and
    // starts its own thread if it ever serves requests.
    g_durations.clear();
    g_extra.clear();
    g_extra_lines = 0;
    g_fig = &g_own;
    clear(g_own);
    sent_up_to_now();
    g_flusher = Flusher::NONE;
    pthread_mutex_unlock(&g_mu);
    pthread_cond_init(&g_cv, nullptr);
}

// What came since the last send.
struct Batch {
    std::vector<int64_t> durations;
    uint64_t requests = 0;
    uint32_t code[Figures::STATUS_SLOTS] = {};
    uint64_t count[Figures::STATUS_SLOTS] = {};
    std::string extra;
    unsigned extra_lines = 0;
};

// Moves what came since the last send into `b` (its buffers are reused).
void take(Batch &b) {
    b.durations.clear();
    b.extra.clear();
    Figures &f = *g_fig;
    pthread_mutex_lock(&g_mu);
    b.durations.swap(g_durations);
    b.extra.swap(g_extra);
    b.extra_lines = g_extra_lines;
    g_extra_lines = 0;
    uint64_t n = f.requests.load(std::memory_order_relaxed);
    b.requests = n - g_sent_requests;
    g_sent_requests = n;
    for (int i = 0; i < Figures::STATUS_SLOTS; ++i) {
        b.code[i] = f.status[i].code.load(std::memory_order_acquire);
        n = b.code[i] ? f.status[i].count.load(std::memory_order_relaxed) : 0;
        b.count[i] = n - g_sent_status[i];
        g_sent_status[i] = n;
    }
    pthread_mutex_unlock(&g_mu);
}

void put_int(std::string &out, int64_t v);
void put_ms(std::string &out, int64_t duration_us);
void put_metric(std::string &out, std::string_view prefix, std::string_view name, std::string_view value,
                std::string_view type, std::string_view suffix);

// Formats the batch into datagrams of up to MAX_PACKET bytes and sends them.
void send_batch(const Batch &b) {
    thread_local std::string packet, line, value;
    packet.clear();
    unsigned lines = 0;
    auto push = [&](std::string_view name, const std::string &v, std::string_view type) {
        line.clear();
        put_metric(line, g_prefix, name, v, type, g_suffix);
        if (!packet.empty() && packet.size() + 1 + line.size() > MAX_PACKET) {
            send_packet(packet, lines);
            packet.clear();
            lines = 0;
        }
        if (!packet.empty()) packet.push_back('\n');
        packet.append(line);
        ++lines;
    };
    // statsd.py access(): the timer, then the two counters.
    for (int64_t us : b.durations) {
        value.clear();
        put_ms(value, us);
        push("gunicorn.request.duration", value, "ms");
    }

    auto count = [&](std::string_view name, uint64_t n) {
        value.clear();
        put_int(value, static_cast<int64_t>(n));
        push(name, value, "c");
    };
    if (b.requests) count("gunicorn.requests", b.requests);
    for (int i = 0; i < Figures::STATUS_SLOTS; ++i) {
        if (!b.count[i]) continue;
        char name[48];
        int len = std::snprintf(name, sizeof name, "gunicorn.request.status.%u", b.code[i]);
        count(std::string_view(name, static_cast<size_t>(len)), b.count[i]);
    }
    if (b.extra_lines) {
        if (!packet.empty() && packet.size() + 1 + b.extra.size() > MAX_PACKET) {
            send_packet(packet, lines);
            packet.clear();
            lines = 0;
        }
        if (!packet.empty()) packet.push_back('\n');
        packet.append(b.extra);
        lines += b.extra_lines;
    }
    send_packet(packet, lines);
}

void take_and_send() {
    thread_local Batch b;
    take(b);
    send_batch(b);
}

void *flusher(void *) {
    t_flusher = true;
    for (;;) {
        pthread_mutex_lock(&g_mu);
        while (g_durations.empty()) pthread_cond_wait(&g_cv, &g_mu);
        pthread_mutex_unlock(&g_mu);
        struct timespec ts = {0, FLUSH_MS * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        take_and_send();
    }
    return nullptr;
}

// With g_mu held. The thread takes no signal: they are the main thread's.
void start_flusher() {
    if (!g_atfork) g_atfork = pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0;
    g_flusher = Flusher::FAILED;
    if (!g_atfork) return;
    g_durations.reserve(MAX_DURATIONS);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t t;
    if (pthread_create(&t, &attr, flusher, nullptr) == 0) g_flusher = Flusher::RUNNING;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// Keeps one request's duration (and its status line when its code has no
// counter slot) for the flusher. Without a flusher thread, or when the
// buffer is full, sends at once.
void add(int64_t duration_us, int lone_code) {
    pthread_mutex_lock(&g_mu);
    if (g_flusher == Flusher::NONE) start_flusher();
    bool wake = g_durations.empty();
    g_durations.push_back(duration_us);
    if (lone_code >= 0) {
        char name[48];
        int len = std::snprintf(name, sizeof name, "gunicorn.request.status.%d", lone_code);
        if (!g_extra.empty()) g_extra.push_back('\n');
        put_metric(g_extra, g_prefix, std::string_view(name, static_cast<size_t>(len)), "1", "c", g_suffix);
        ++g_extra_lines;
    }
    bool now = g_flusher != Flusher::RUNNING || g_durations.size() >= MAX_DURATIONS;
    pthread_mutex_unlock(&g_mu);
    if (now) take_and_send();
    else if (wake) pthread_cond_signal(&g_cv);
}

// Appends "<prefix><name>:<value>|<type>[|@1.0][|#tags]" to `out`.
void put_metric(std::string &out, std::string_view prefix, std::string_view name, std::string_view value,
                std::string_view type, std::string_view suffix) {
    out.append(prefix);
    out.append(name);
    out.push_back(':');
    out.append(value);
    out.push_back('|');
    out.append(type);
    if (type == "c") out.append("|@1.0");  // statsd.py increment(): sampling_rate=1.0
    out.append(suffix);
}

// Decimal digits of v, without snprintf: the flusher writes one per
// request.
void put_int(std::string &out, int64_t v) {
    char buf[24];
    char *end = buf + sizeof buf, *p = end;
    uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    do {
        *--p = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    out.append(p, static_cast<size_t>(end - p));
}

// Appends format_ms(duration_us).
void put_ms(std::string &out, int64_t duration_us) {
    if (duration_us < 0) duration_us = 0;
    put_int(out, duration_us / 1000);
    out.push_back('.');
    int frac = static_cast<int>(duration_us % 1000);
    if (frac == 0) {
        out.push_back('0');
        return;
    }
    char d[4] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                 static_cast<char>('0' + frac % 10), 0};
    int len = 3;
    while (d[len - 1] == '0') --len;
    out.append(d, static_cast<size_t>(len));
}

void send_one(std::string_view name, int64_t value, std::string_view type) {
    if (g_fd < 0) return;
    std::string v;
    put_int(v, value);
    metric(name, v, type);
}

// Connections waiting in the accept queues of the TCP listeners
// (sock.py get_backlog: tcpi_unacked of TCP_INFO on Linux). gunicorn adds
// -1 for each unix listener, which lowers the sum; they are left out
// here. False when there is nothing to measure.
bool backlog(const std::vector<Listener> &listeners, int64_t &total) {
    bool any = false;
    total = 0;
#if defined(__linux__)
    for (const Listener &l : listeners) {
        if (l.family != AF_INET && l.family != AF_INET6) continue;
        any = true;
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        std::memset(&ti, 0, sizeof ti);
        if (::getsockopt(l.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) total += ti.tcpi_unacked;
    }
#else
    (void)listeners;
#endif
    return any;
}

}  // namespace

std::string normalize_prefix(std::string_view prefix) {
    while (!prefix.empty() && prefix.back() == '.') prefix.remove_suffix(1);
    if (prefix.empty()) return {};
    return std::string(prefix) + ".";
}

std::string format_ms(int64_t duration_us) {
    std::string out;
    put_ms(out, duration_us);
    return out;
}

int status_code(std::string_view status) {
    // int(status.split(None, 1)[0])
    size_t i = 0;
    while (i < status.size() && (status[i] == ' ' || status[i] == '\t')) ++i;
    int code = 0, digits = 0;
    for (; i < status.size() && status[i] >= '0' && status[i] <= '9' && digits < 9; ++i, ++digits)
        code = code * 10 + (status[i] - '0');
    if (digits == 0 || (i < status.size() && status[i] != ' ' && status[i] != '\t')) return -1;
    return code;
}

std::string format_metric(std::string_view prefix, std::string_view name, std::string_view value,
                          std::string_view type, std::string_view tags) {
    std::string out;
    std::string suffix = tags.empty() ? std::string() : "|#" + std::string(tags);
    put_metric(out, prefix, name, value, type, suffix);
    return out;
}

void configure(const std::string &host, int port, const std::string &prefix, const std::string &tags,
               bool backlog_metric) {
    close_socket();
    // Requests counted with StatsD off, or sent to the previous receiver,
    // are not sent to this one.
    pthread_mutex_lock(&g_mu);
    g_durations.clear();
    g_extra.clear();
    g_extra_lines = 0;
    sent_up_to_now();
    pthread_mutex_unlock(&g_mu);
    g_prefix = normalize_prefix(prefix);
    g_suffix = tags.empty() ? std::string() : "|#" + tags;
    g_backlog = backlog_metric;
    g_unix = false;
    g_path.clear();
    g_reconnect_at = 0;
    if (host.empty()) return;
    if (port < 0) {
        // A receiver that is not there yet is connected to later.
        g_unix = true;
        g_path = host;
        g_fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        if (g_fd < 0) {
            LOG_WARNING("statsd: socket: %s; no metrics are sent", std::strerror(errno));
            return;
        }
        set_flags(g_fd);
        connect_unix();
        return;
    }
    struct addrinfo hints, *res = nullptr;
    std::memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) {
        LOG_WARNING("statsd: cannot resolve '%s': %s; no metrics are sent", host.c_str(), gai_strerror(rc));
        return;
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        // Connected, so the kernel checks the address once and ICMP
        // errors come back instead of vanishing.
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            set_flags(fd);
            g_fd = fd;
            g_connected = true;
            break;
        }
        err = errno;
        ::close(fd);
    }
    ::freeaddrinfo(res);
    if (g_fd < 0) LOG_WARNING("statsd: cannot use %s:%d: %s; no metrics are sent", host.c_str(), port, std::strerror(err));
}

bool enabled() { return g_fd >= 0 || g_count; }

void attach(Figures *figures) {
    pthread_mutex_lock(&g_mu);
    g_fig = figures ? figures : &g_own;
    sent_up_to_now();
    pthread_mutex_unlock(&g_mu);
}

void count_requests(bool on) { g_count = on; }

std::atomic<uint64_t> *status_counter(Figures &f, int code) {
    if (code <= 0 || code > 999) return nullptr;
    auto want = static_cast<uint32_t>(code);
    for (Figures::Status &st : f.status) {
        uint32_t have = st.code.load(std::memory_order_acquire);
        if (have == 0 && !st.code.compare_exchange_strong(have, want)) {
            // another thread took it meanwhile: `have` is its code
        } else if (have == 0) {
            return &st.count;
        }
        if (have == want) return &st.count;
    }
    return nullptr;
}

void request(std::string_view status, int64_t duration_us) {
    if (g_fd < 0 && !g_count) return;  // called for the access log alone
    Figures &f = *g_fig;
    if (duration_us < 0) duration_us = 0;
    f.requests.fetch_add(1, std::memory_order_relaxed);
    int code = status_code(status);
    std::atomic<uint64_t> *per_code = status_counter(f, code);
    if (per_code) per_code->fetch_add(1, std::memory_order_relaxed);
    else if (code >= 0) f.status_other.fetch_add(1, std::memory_order_relaxed);
    int bucket = 0;
    while (bucket < Figures::BUCKETS && duration_us > Figures::BUCKET_US[bucket]) ++bucket;
    f.duration_bucket[bucket].fetch_add(1, std::memory_order_relaxed);
    f.duration_sum_us.fetch_add(static_cast<uint64_t>(duration_us), std::memory_order_relaxed);
    if (g_fd < 0) return;
    if (g_pending_warning.load(std::memory_order_relaxed)) warn_now(g_pending_warning.exchange(0));
    add(duration_us, per_code || code < 0 ? -1 : code);
}

void metric(std::string_view name, std::string_view value, std::string_view type) {
    if (g_fd < 0) return;
    flush();
    std::string msg;
    put_metric(msg, g_prefix, name, value, type, g_suffix);
    send_packet(msg, 1);
}

void flush() {
    if (g_fd >= 0) take_and_send();
}

void log_call(const char *level) {
    if (t_reporting) return;
    int idx = std::strcmp(level, "critical") == 0    ? Figures::CRITICAL
              : std::strcmp(level, "error") == 0     ? Figures::ERROR
              : std::strcmp(level, "exception") == 0 ? Figures::EXCEPTION
                                                     : Figures::WARNING;
    g_fig->log_calls[idx].fetch_add(1, std::memory_order_relaxed);
    if (g_fd < 0) return;
    char name[32];
    int len = std::snprintf(name, sizeof name, "gunicorn.log.%s", level);
    flush();
    thread_local std::string msg;
    msg.clear();
    put_metric(msg, g_prefix, std::string_view(name, static_cast<size_t>(len)), "1", "c", g_suffix);
    send_packet(msg, 1);
}

const Figures &own() { return g_own; }

bool listen_backlog(const std::vector<Listener> &listeners, int64_t &total) { return backlog(listeners, total); }

void master_metrics(int workers, const std::vector<Listener> &listeners) {
    // arbiter.py manage_workers: the gauge only when the count changed.
    if (workers != g_last_workers) {
        g_last_workers = workers;
        LOG_DEBUG("%d workers", workers);
        send_one("gunicorn.workers", workers, "g");
    }
    int64_t total = 0;
    if (g_backlog && backlog(listeners, total)) {
        LOG_DEBUG("socket backlog: %lld", static_cast<long long>(total));
        send_one("gunicorn.backlog", total, "h");
    }
}

uint64_t dropped() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace cunicorn::statsd
