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
// A request sends three datagrams; on Linux they leave in one sendmmsg(2).
#include "cunicorn/statsd.h"

#include "cunicorn/log.h"
#include "cunicorn/sock.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

namespace cunicorn::statsd {

namespace {

// Set by configure() in the master before any worker forks; read-only
// afterwards except for the unix reconnect state.
int g_fd = -1;
bool g_unix = false;
bool g_connected = false;
std::string g_path;     // unix socket path, for reconnecting
std::string g_prefix;   // normalized, "" or ending in "."
std::string g_suffix;   // "|#tags" or ""
bool g_backlog = false;
int g_last_workers = -1;
int64_t g_reconnect_at = 0;
int64_t g_warn_at = 0;
std::atomic<uint64_t> g_dropped{0};
// Set while this module logs its own warning: gunicorn logs it through
// the plain Logger, so it is not counted as gunicorn.log.warning.
thread_local bool t_reporting = false;

const int64_t RECONNECT_MS = 1000;
const int64_t WARN_EVERY_MS = 60 * 1000;

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
    return g_connected;
}

// The warning gunicorn logs on a failed send ("Error sending message to
// statsd"), at most once a minute; not itself counted as a log call.
void report(int err) {
    int64_t now = mono_ms();
    if (now < g_warn_at) return;
    g_warn_at = now + WARN_EVERY_MS;
    t_reporting = true;
    LOG_WARNING("Error sending message to statsd: %s (%llu dropped so far)", std::strerror(err),
                static_cast<unsigned long long>(g_dropped.load(std::memory_order_relaxed)));
    t_reporting = false;
}

void failed(int err, unsigned lost) {
    g_dropped.fetch_add(lost, std::memory_order_relaxed);
    if (g_unix && err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS && err != EMSGSIZE) {
        // The receiver went away (or never came): connect again later.
        g_connected = false;
        g_reconnect_at = mono_ms() + RECONNECT_MS;
    }
    report(err);
}

// Sends each message as its own datagram, never waiting.
void send_all(const std::string *msgs, unsigned n) {
    if (g_fd < 0) return;
    if (g_unix && !g_connected) {
        int64_t now = mono_ms();
        if (now < g_reconnect_at || !connect_unix()) {
            if (now >= g_reconnect_at) g_reconnect_at = now + RECONNECT_MS;
            g_dropped.fetch_add(n, std::memory_order_relaxed);
            return;
        }
    }
#if defined(__linux__)
    struct mmsghdr mm[4];
    struct iovec iov[4];
    if (n > 4) n = 4;
    std::memset(mm, 0, sizeof mm);
    for (unsigned i = 0; i < n; ++i) {
        iov[i].iov_base = const_cast<char *>(msgs[i].data());
        iov[i].iov_len = msgs[i].size();
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do {
        r = ::sendmmsg(g_fd, mm, n, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        failed(errno, n);
    } else if (static_cast<unsigned>(r) < n) {
        // sendmmsg stops at the first failure and keeps its error for the
        // next call, which reports it; the rest of this batch is dropped.
        g_dropped.fetch_add(n - static_cast<unsigned>(r), std::memory_order_relaxed);
    }
#else
    for (unsigned i = 0; i < n; ++i) {
        ssize_t w;
        do {
            w = ::send(g_fd, msgs[i].data(), msgs[i].size(), MSG_DONTWAIT);
        } while (w < 0 && errno == EINTR);
        if (w < 0) {
            failed(errno, n - i);
            return;
        }
    }
#endif
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

void put_int(std::string &out, int64_t v) {
    char buf[24];
    int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    out.append(buf, static_cast<size_t>(n > 0 ? n : 0));
}

void send_one(std::string_view name, int64_t value, std::string_view type) {
    if (g_fd < 0) return;
    std::string msg, v;
    put_int(v, value);
    put_metric(msg, g_prefix, name, v, type, g_suffix);
    send_all(&msg, 1);
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
    if (duration_us < 0) duration_us = 0;
    std::string out;
    put_int(out, duration_us / 1000);
    out.push_back('.');
    int frac = static_cast<int>(duration_us % 1000);
    if (frac == 0) {
        out.push_back('0');
        return out;
    }
    char d[4] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                 static_cast<char>('0' + frac % 10), 0};
    int len = 3;
    while (d[len - 1] == '0') --len;
    out.append(d, static_cast<size_t>(len));
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

bool enabled() { return g_fd >= 0; }

void request(std::string_view status, int64_t duration_us) {
    if (g_fd < 0) return;
    // statsd.py access(): timer, then the two counters, in that order.
    thread_local std::string msgs[3];
    for (std::string &m : msgs) m.clear();
    put_metric(msgs[0], g_prefix, "gunicorn.request.duration", format_ms(duration_us), "ms", g_suffix);
    put_metric(msgs[1], g_prefix, "gunicorn.requests", "1", "c", g_suffix);
    int code = status_code(status);
    unsigned n = 2;
    if (code >= 0) {
        char name[48];
        int len = std::snprintf(name, sizeof name, "gunicorn.request.status.%d", code);
        put_metric(msgs[2], g_prefix, std::string_view(name, static_cast<size_t>(len)), "1", "c", g_suffix);
        n = 3;
    }
    send_all(msgs, n);
}

void log_call(const char *level) {
    if (g_fd < 0 || t_reporting) return;
    char name[32];
    int len = std::snprintf(name, sizeof name, "gunicorn.log.%s", level);
    thread_local std::string msg;
    msg.clear();
    put_metric(msg, g_prefix, std::string_view(name, static_cast<size_t>(len)), "1", "c", g_suffix);
    send_all(&msg, 1);
}

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
