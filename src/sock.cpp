// Listening sockets (gunicorn/sock.py, util.parse_address).
#include "cunicorn/sock.h"

#include "cunicorn/log.h"
#include "cunicorn/platform.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace cunicorn {

static bool all_digits(const std::string &s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

static bool starts_with(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

// Python's repr() of the text, as gunicorn's messages quote it.
static std::string quoted_text(const std::string &s) {
    char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
    return q + s + q;
}

// Decimal digits only, at most `max`. Gunicorn's int() also takes " 80",
// "+80" and "8_0"; those are refused here rather than guessed at.
static bool decimal(const std::string &text, long long max, long long &out) {
    if (!all_digits(text) || text.size() > 10) return false;
    out = std::stoll(text);
    return out <= max;
}

// util.parse_address, with the cases where Gunicorn is wrong refused
// instead of bound somewhere unexpected or failing later:
//  - "unix:" with an empty path (gunicorn fails at bind), or a path too
//    long for sun_path. The path is everything after "unix:" or
//    "unix://": gunicorn's re.split keeps only the text after the last
//    "unix:" in it ("unix:/a/unix:b" would bind "b").
//  - fd://N beyond INT_MAX (gunicorn's OverflowError at socket.fromfd).
//  - "a:80:x": gunicorn's split(':')[:2] drops ":x" and binds a:80. More
//    than one colon outside brackets is an IPv6 address written without
//    them (gunicorn then fails on the port): refused, saying so.
//  - "[::1]x": gunicorn ignores what follows "]" unless it is ":PORT".
//  - ports outside 0-65535 (gunicorn's OverflowError at bind).
//  - a host of digits alone ("-b 8000"): getaddrinfo reads it as an IPv4
//    address (0.0.31.64) that is not local, and the bind fails.
Address parse_address(const std::string &value, int default_port) {
    Address a;
    a.port = default_port;
    if (starts_with(value, "unix:")) {
        a.kind = Address::UNIX;
        a.host = value.substr(starts_with(value, "unix://") ? 7 : 5);
        if (a.host.empty()) throw std::invalid_argument("the unix socket path is empty");
        if (a.host.size() >= sizeof(sockaddr_un::sun_path))
            throw std::invalid_argument("the unix socket path is longer than " +
                                        std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
        if (a.host.find('\0') != std::string::npos)
            throw std::invalid_argument("the unix socket path contains a NUL byte");
        return a;
    }
    if (starts_with(value, "fd://")) {
        a.kind = Address::FD;
        std::string n = value.substr(5);
        long long fd;
        if (!decimal(n, INT_MAX, fd)) throw std::invalid_argument(quoted_text(n) + " is not a valid file descriptor.");
        a.fd = static_cast<int>(fd);
        return a;
    }
    std::string v = starts_with(value, "tcp://") ? value.substr(6) : value;
    a.kind = Address::TCP;
    std::string port;
    bool has_port = false;
    if (v.find('[') != std::string::npos && v.find(']') != std::string::npos) {
        size_t close = v.find(']');
        if (v[0] != '[' || close < 1) throw std::invalid_argument("an IPv6 address is written [ADDRESS]:PORT");
        a.host = v.substr(1, close - 1);
        std::string rest = v.substr(close + 1);
        if (a.host.empty()) throw std::invalid_argument("the address in brackets is empty");
        if (!rest.empty()) {
            if (rest[0] != ':') throw std::invalid_argument("unexpected " + quoted_text(rest) + " after ']'");
            port = rest.substr(1);
            has_port = true;
        }
    } else if (v.find(':') != std::string::npos) {
        size_t colon = v.find(':');
        if (v.find(':', colon + 1) != std::string::npos)
            throw std::invalid_argument("more than one ':'; an IPv6 address is written [ADDRESS]:PORT");
        a.host = v.substr(0, colon);
        port = v.substr(colon + 1);
        has_port = true;
    } else {
        a.host = v;
    }
    if (has_port) {
        long long p;
        if (!decimal(port, 65535, p)) throw std::invalid_argument(quoted_text(port) + " is not a valid port number.");
        a.port = static_cast<int>(p);
    }
    // ":8000" and "" listen on every IPv4 interface, as Python's bind("").
    if (a.host.empty()) a.host = "0.0.0.0";
    if (all_digits(a.host))
        throw std::invalid_argument(quoted_text(a.host) + " is not a host (a port alone is written :" + a.host + ")");
    for (char &c : a.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return a;
}

// The test adopt_listener makes of an inherited descriptor.
static bool is_socket(int fd, std::string &why) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0) return true;
    why = std::strerror(errno);
    return false;
}

void check_address(const Address &a) {
    std::string why;
    if (a.kind == Address::FD) {
        if (!is_socket(a.fd, why))
            throw std::invalid_argument("file descriptor " + std::to_string(a.fd) + " is not an open socket: " + why);
        return;
    }
    if (a.kind != Address::UNIX) return;
    // bind_unix below: an old socket is replaced, any other file stays.
    struct stat st;
    if (lstat(a.host.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
        throw std::invalid_argument(quoted_text(a.host) + " exists and is not a socket");
    size_t slash = a.host.find_last_of('/');
    if (slash == std::string::npos) return;  // the working directory
    std::string dir = slash == 0 ? "/" : a.host.substr(0, slash);
    if (stat(dir.c_str(), &st) != 0)
        throw std::invalid_argument("directory " + quoted_text(dir) + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) throw std::invalid_argument(quoted_text(dir) + " is not a directory");
}

// The address in 16 bytes, an IPv4 one v4-mapped; returns its length in
// bits (32 or 128), 0 when the text is not an address.
static int to_v6(const std::string &text, unsigned char out[16]) {
    in_addr a4;
    if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
        static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        std::memcpy(out, prefix, 12);
        std::memcpy(out + 12, &a4, 4);
        return 32;
    }
    return inet_pton(AF_INET6, text.c_str(), out) == 1 ? 128 : 0;
}

// Host bits under the prefix are masked ("10.0.0.1/8" is 10.0.0.0/8),
// where gunicorn's ipaddress.ip_network refuses them.
IpAllowList IpAllowList::parse(const std::vector<std::string> &items) {
    IpAllowList list;
    list.items_ = items;
    for (const std::string &item : items) {
        if (item == "*") {
            list.all_ = true;
            continue;
        }
        size_t slash = item.find('/');
        Net n;
        int max_bits = to_v6(item.substr(0, slash), n.addr);
        long long bits = max_bits;
        if (!max_bits || (slash != std::string::npos && (item.size() - slash - 1 > 3 ||
                                                          !decimal(item.substr(slash + 1), max_bits, bits))))
            throw std::invalid_argument(quoted_text(item) + " does not appear to be an IPv4 or IPv6 address or network");
        n.bits = static_cast<int>(bits) + (128 - max_bits);
        list.nets_.push_back(n);
    }
    return list;
}

bool IpAllowList::contains(const char *ip) const {
    if (all_) return true;
    unsigned char a[16];
    if (!to_v6(ip, a)) return false;
    for (const Net &n : nets_) {
        int full = n.bits / 8, rest = n.bits % 8;
        if (std::memcmp(a, n.addr, static_cast<size_t>(full)) != 0) continue;
        if (rest && ((a[full] ^ n.addr[full]) & (0xff << (8 - rest)))) continue;
        return true;
    }
    return false;
}

std::string Listener::url(bool tls) const {
    if (family == AF_UNIX) return "unix:" + server_name;
    const char *scheme = tls ? "https://" : "http://";
    if (family == AF_INET6) return scheme + ("[" + server_name + "]:" + server_port);
    return scheme + server_name + ":" + server_port;
}

static std::string quoted(const Address &a) {
    if (a.kind == Address::UNIX) return a.host;
    return "('" + a.host + "', " + std::to_string(a.port) + ")";
}

static void set_flags(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void fill_names(Listener &l) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(l.fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0) return;
    l.family = ss.ss_family;
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        l.server_name = host;
        l.server_port = std::to_string(ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        l.server_name = host;
        l.server_port = std::to_string(ntohs(sin6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        auto *sun = reinterpret_cast<sockaddr_un *>(&ss);
        // Only sockets we bound carry unix_path (and get unlinked on exit);
        // an inherited one is named from getsockname().
        l.server_name = l.unix_path.empty() && len > offsetof(sockaddr_un, sun_path) ? sun->sun_path : l.unix_path;
        l.server_port = "";
    }
}

// One attempt; returns the fd or -1 with errno set.
static int bind_tcp(const Address &a, const BindOptions &opt, int &family) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    std::string port = std::to_string(a.port);
    int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = -1, saved = 0;
    for (addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) { saved = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (opt.reuse_port) platform::set_reuse_port(fd);
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, opt.backlog) == 0) {
            platform::defer_accept(fd);
            family = ai->ai_family;
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) errno = saved;
    return fd;
}

static int bind_unix(const Address &a, const BindOptions &opt) {
    struct stat st;
    if (lstat(a.host.c_str(), &st) == 0) {
        // A stale socket from an earlier run is removed; any other file is
        // left alone and the bind fails (sock.py UnixSocket).
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        unlink(a.host.c_str());
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, a.host.c_str(), a.host.size() + 1);
    mode_t old = umask(static_cast<mode_t>(opt.umask));
    int rc = bind(fd, reinterpret_cast<sockaddr *>(&sun), sizeof sun);
    umask(old);
    if (rc < 0 || listen(fd, opt.backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

std::vector<Listener> create_listeners(const std::vector<Address> &addresses, const BindOptions &opt) {
    std::vector<Listener> out;
    try {
        for (const Address &a : addresses) {
            Listener l;
            if (a.kind == Address::FD) {
                out.push_back(adopt_listener(a.fd));
                continue;
            }
            for (int attempt = 0;; ++attempt) {
                int family = AF_UNIX;
                l.fd = a.kind == Address::UNIX ? bind_unix(a, opt) : bind_tcp(a, opt, family);
                if (l.fd >= 0) break;
                int err = errno;
                if (err == EADDRINUSE) LOG_ERROR("Connection in use: %s", quoted(a).c_str());
                else LOG_ERROR("Invalid address: %s (%s)", quoted(a).c_str(), std::strerror(err));
                if (attempt >= 4) throw std::runtime_error("Can't connect to " + quoted(a));
                LOG_ERROR("Retrying in 1 second.");
                sleep(1);
            }
            if (a.kind == Address::UNIX) l.unix_path = a.host;
            set_flags(l.fd);
            fill_names(l);
            out.push_back(l);
        }
    } catch (...) {
        close_listeners(out, true);
        throw;
    }
    return out;
}

Listener adopt_listener(int fd) {
    std::string why;
    if (!is_socket(fd, why)) throw std::runtime_error("fd://" + std::to_string(fd) + " is not a socket: " + why);
    Listener l;
    l.fd = fd;
    set_flags(l.fd);
    fill_names(l);
    return l;
}

void close_listeners(std::vector<Listener> &listeners, bool unlink_unix) {
    for (Listener &l : listeners) {
        if (l.fd >= 0) close(l.fd);
        if (unlink_unix && !l.unix_path.empty()) unlink(l.unix_path.c_str());
        l.fd = -1;
    }
    listeners.clear();
}

}  // namespace cunicorn
