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

// Parses one bind value; throws std::invalid_argument with a readable
// reason on a bad value.
Address parse_address(const std::string &value);

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
std::vector<Listener> create_listeners(const std::vector<std::string> &binds, const BindOptions &opt);
void close_listeners(std::vector<Listener> &listeners, bool unlink_unix);

// Wraps an already listening descriptor (fd://N, GUNICORN_FD after a USR2
// re-exec, systemd's LISTEN_FDS). Throws std::runtime_error when fd is not
// a socket.
Listener adopt_listener(int fd);

}  // namespace cunicorn

#endif
