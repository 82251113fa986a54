// Listening sockets: TCP (IPv4/IPv6), unix sockets and inherited fd://N,
// with gunicorn's address syntax (util.parse_address) and bind retries.
#ifndef CUNICORN_SOCK_H
#define CUNICORN_SOCK_H

#include <string>
#include <vector>

namespace cunicorn {

struct Address {
    enum Kind { TCP, UNIX, FD } kind = TCP;
    std::string host;   // TCP: literal or name, lower-cased; UNIX: path
    int port = 8000;    // TCP only
    int fd = -1;        // FD only
};

// util.parse_address: the one parser of bind values (and of statsd_host,
// with its default port), used by the configuration loader, which keeps
// the result. Throws std::invalid_argument with gunicorn's reason ("'x' is
// not a valid port number.") on a bad value, including the forms gunicorn
// takes and then fails to bind or silently cuts short (see sock.cpp).
Address parse_address(const std::string &value, int default_port = 8000);

// What can be known of an address before binding it, so that
// --check-config finds it: an fd:// names an open socket; a unix socket's
// directory exists and its path is free or an old socket. Throws
// std::invalid_argument with the reason.
void check_address(const Address &a);

// forwarded_allow_ips, proxy_allow_ips: addresses and CIDR networks, IPv4
// and IPv6 (an IPv4 peer also matches its v4-mapped IPv6 form), or "*".
class IpAllowList {
public:
    // The one parser of these lists (the loader's, whose result the
    // workers use). Throws std::invalid_argument naming the first item that
    // is neither "*" nor an address or network.
    static IpAllowList parse(const std::vector<std::string> &items);
    bool contains(const char *ip) const;
    // The items as given, for display.
    const std::vector<std::string> &items() const { return items_; }

private:
    struct Net {
        unsigned char addr[16];
        int bits;
    };
    std::vector<Net> nets_;
    std::vector<std::string> items_;
    bool all_ = false;
};

struct Listener {
    int fd = -1;
    int family = 0;            // AF_INET, AF_INET6, AF_UNIX
    std::string unix_path;     // unix sockets we created (removed on exit)
    std::string server_name;   // SERVER_NAME (from getsockname)
    std::string server_port;   // SERVER_PORT
    // "http://127.0.0.1:8000" ("https://" with TLS), "unix:/run/app.sock"
    std::string url(bool tls = false) const;
};

struct BindOptions {
    int backlog = 2048;
    bool reuse_port = false;
    int umask = 0;
};

// Binds every address (TCP_NODELAY, SO_REUSEADDR, non-blocking,
// close-on-exec), retrying a busy address 5 times a second apart as
// gunicorn's create_sockets does. Throws std::runtime_error naming the
// address on failure.
std::vector<Listener> create_listeners(const std::vector<Address> &addresses, const BindOptions &opt);
void close_listeners(std::vector<Listener> &listeners, bool unlink_unix);

// Wraps an already listening descriptor (fd://N, GUNICORN_FD after a USR2
// re-exec, systemd's LISTEN_FDS). Throws std::runtime_error when fd is not
// a socket.
Listener adopt_listener(int fd);

}  // namespace cunicorn

#endif
