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
#include <cstring>
#include <stdexcept>

namespace cunicorn {

static bool all_digits(const std::string &s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

static int parse_port(const std::string &text, const std::string &whole) {
    if (!all_digits(text) || text.size() > 5 || std::stoi(text) > 65535)
        throw std::invalid_argument("'" + text + "' is not a valid port number in '" + whole + "'");
    return std::stoi(text);
}

Address parse_address(const std::string &value) {
    Address a;
    std::string v = value;
    if (v.rfind("unix://", 0) == 0 || v.rfind("unix:", 0) == 0) {
        a.kind = Address::UNIX;
        a.host = v.substr(v.rfind("unix://", 0) == 0 ? 7 : 5);
        if (a.host.empty()) throw std::invalid_argument("empty unix socket path in '" + value + "'");
        if (a.host.size() >= sizeof(sockaddr_un::sun_path))
            throw std::invalid_argument("unix socket path too long in '" + value + "'");
        return a;
    }
    if (v.rfind("fd://", 0) == 0) {
        a.kind = Address::FD;
        std::string n = v.substr(5);
        if (!all_digits(n) || n.size() > 9) throw std::invalid_argument("'" + n + "' is not a valid file descriptor in '" + value + "'");
        a.fd = std::stoi(n);
        return a;
    }
    if (v.rfind("tcp://", 0) == 0) v = v.substr(6);
    a.kind = Address::TCP;
    if (v.empty()) {
        a.host = "0.0.0.0";
        return a;
    }
    if (v[0] == '[') {
        size_t close = v.find(']');
        if (close == std::string::npos) throw std::invalid_argument("missing ']' in '" + value + "'");
        a.host = v.substr(1, close - 1);
        std::string rest = v.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') throw std::invalid_argument("unexpected text after ']' in '" + value + "'");
            a.port = parse_port(rest.substr(1), value);
        }
    } else {
        size_t colon = v.rfind(':');
        if (colon != std::string::npos && v.find(':') == colon) {
            a.host = v.substr(0, colon);
            a.port = parse_port(v.substr(colon + 1), value);
        } else if (colon != std::string::npos) {
            a.host = v;  // a bare IPv6 literal
        } else {
            a.host = v;
        }
        if (a.host.empty()) a.host = "0.0.0.0";
    }
    for (char &c : a.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return a;
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

std::vector<Listener> create_listeners(const std::vector<std::string> &binds, const BindOptions &opt) {
    std::vector<Listener> out;
    try {
        for (const std::string &b : binds) {
            Address a = parse_address(b);
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
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0)
        throw std::runtime_error("fd://" + std::to_string(fd) + " is not a socket: " + std::strerror(errno));
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
