// `cunicorn ctl`: the control socket's client (gunicorn/ctl/cli.py,
// gunicornc), with the same tables, plus cunicorn's per-worker figures.
#include "cunicorn/control.h"

#include "cunicorn/platform.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

namespace cunicorn::control {

namespace {

constexpr int TIMEOUT_S = 30;  // client.py's default

const char USAGE[] =
    "usage: cunicorn ctl [-s SOCKET] [-j] [-c COMMAND | COMMAND...]\n"
    "\n"
    "Sends COMMAND to a running master's control socket and prints the answer;\n"
    "without one, reads commands from standard input, one a line.\n"
    "\n"
    "  -s, --socket SOCKET    control socket path (default: " "$XDG_RUNTIME_DIR/gunicorn.ctl\n"
    "                         or ~/.gunicorn/gunicorn.ctl)\n"
    "  -c, --command COMMAND  the command, as one argument\n"
    "  -j, --json             print the answer as JSON\n"
    "  -h, --help             show this help and exit\n"
    "\n"
    "Commands: show all|workers|dirty|config|stats|listeners, worker add [N],\n"
    "worker remove [N], worker kill PID, dirty add|remove [N], reload, reopen,\n"
    "shutdown [graceful|quick], help.\n";

struct ClientError {
    std::string what;
};

class Connection {
public:
    explicit Connection(const std::string &path) : path_(path) {}
    ~Connection() { close_fd(); }

    void connect() {
        if (fd_ >= 0) return;
        sockaddr_un sun{};
        if (path_.size() >= sizeof sun.sun_path) throw ClientError{"Failed to connect to " + path_ + ": path too long"};
        sun.sun_family = AF_UNIX;
        std::memcpy(sun.sun_path, path_.data(), path_.size());
        fd_ = platform::socket_cloexec(AF_UNIX, SOCK_STREAM, 0);
        timeval tv{TIMEOUT_S, 0};
        if (fd_ >= 0) {
            setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr *>(&sun), sizeof sun) < 0) {
            std::string err = std::strerror(errno);
            close_fd();
            throw ClientError{"Failed to connect to " + path_ + ": " + err};
        }
    }

    // Sends one request; returns its "data", or throws with its "error".
    Json send_command(const std::string &command) {
        connect();
        Json req = Json::object().set("id", ++id_).set("command", command).set("args", Json::array());
        std::string payload = encode(req);
        auto n = static_cast<uint32_t>(payload.size());
        std::string msg = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                           static_cast<char>(n)};
        msg += payload;
        Json reply;
        try {
            write_all(msg);
            std::string head = read_exact(4);
            auto *p = reinterpret_cast<const unsigned char *>(head.data());
            uint32_t len = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
            if (len > (16u << 20)) throw ClientError{"Message too large: " + std::to_string(len)};
            std::string body = read_exact(len);
            std::string err;
            if (!parse(body, reply, err)) throw ClientError{"Invalid JSON: " + err};
        } catch (const ClientError &e) {
            close_fd();
            throw ClientError{"Communication error: " + e.what};
        }
        const Json *status = reply.get("status");
        if (status && status->kind == Json::STR && status->s == "error") {
            const Json *e = reply.get("error");
            throw ClientError{e && e->kind == Json::STR ? e->s : "Unknown error"};
        }
        const Json *data = reply.get("data");
        return data ? *data : Json::object();
    }

    void close_fd() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    void write_all(const std::string &s) {
        size_t off = 0;
        while (off < s.size()) {
            ssize_t w = ::send(fd_, s.data() + off, s.size() - off, platform::SEND_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) throw ClientError{std::strerror(errno)};
            off += static_cast<size_t>(w);
        }
    }
    std::string read_exact(size_t n) {
        std::string out;
        char buf[65536];
        while (out.size() < n) {
            ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw ClientError{errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : std::strerror(errno)};
            if (r == 0) throw ClientError{out.empty() && n == 4 ? "Connection closed" : "Incomplete message"};
            out.append(buf, static_cast<size_t>(r));
        }
        return out;
    }

    std::string path_;
    int fd_ = -1;
    long id_ = 0;
};

// ---- the tables (cli.py format_*)

std::string str(const Json *v) {
    if (!v) return "?";
    return to_word(*v);
}

std::string pad(const std::string &s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }

std::string heartbeat(const Json &w) {
    const Json *hb = w.get("last_heartbeat");
    return hb && hb->kind != Json::NUL ? to_word(*hb) + "s ago" : "n/a";
}

bool truthy(const Json *v) { return v && ((v->kind == Json::BOOL && v->b) || (v->kind == Json::INT && v->i)); }

std::string human_bytes(const Json *v) {
    if (!v || v->kind != Json::INT) return "n/a";
    char buf[32];
    double b = static_cast<double>(v->i);
    if (b >= 1 << 30) std::snprintf(buf, sizeof buf, "%.1fG", b / (1 << 30));
    else if (b >= 1 << 20) std::snprintf(buf, sizeof buf, "%.1fM", b / (1 << 20));
    else std::snprintf(buf, sizeof buf, "%.0fK", b / 1024);
    return buf;
}

std::string format_workers(const Json &data) {
    const Json *workers = data.get("workers");
    if (!workers || workers->arr.empty()) return "No workers running";
    std::string out = pad("PID", 10) + " " + pad("AGE", 6) + " " + pad("BOOTED", 8) + " " + pad("LAST_BEAT", 11) + " " +
                      pad("REQUESTS", 9) + " " + pad("CONNS", 6) + " " + pad("RSS", 8) + " CURRENT\n";
    out += std::string(88, '-') + "\n";
    for (const Json &w : workers->arr) {
        std::string current = "-";
        const Json *cur = w.get("current_request");
        if (cur && cur->kind == Json::OBJ)
            current = str(cur->get("method")) + " " + str(cur->get("path")) + " (" + str(cur->get("age")) + "s)";
        const Json *running = w.get("requests_in_flight");  // gthread: the oldest, and how many more
        if (running && running->arr.size() > 1) current += " +" + std::to_string(running->arr.size() - 1) + " more";
        const Json *reqs = w.get("requests"), *conns = w.get("connections");
        out += pad(str(w.get("pid")), 10) + " " + pad(str(w.get("age")), 6) + " " +
               pad(truthy(w.get("booted")) ? "yes" : "no", 8) + " " + pad(heartbeat(w), 11) + " " +
               pad(reqs ? to_word(*reqs) : "n/a", 9) + " " + pad(conns ? to_word(*conns) : "n/a", 6) + " " +
               pad(human_bytes(w.get("rss")), 8) + " " + current + "\n";
    }
    const Json *count = data.get("count");
    return out + "\nTotal: " + (count ? to_word(*count) : std::to_string(workers->arr.size())) + " workers";
}

std::string format_stats(const Json &data) {
    std::string uptime = "unknown";
    const Json *u = data.get("uptime");
    if (u && (u->kind == Json::FLOAT || u->kind == Json::INT)) {
        double v = u->kind == Json::FLOAT ? u->f : static_cast<double>(u->i);
        long h = static_cast<long>(v / 3600), m = static_cast<long>(v / 60) % 60, s = static_cast<long>(v) % 60;
        uptime = h ? std::to_string(h) + "h " + std::to_string(m) + "m " + std::to_string(s) + "s"
               : m ? std::to_string(m) + "m " + std::to_string(s) + "s"
                   : std::to_string(s) + "s";
    }
    auto num = [&](const char *k) { return data.get(k) ? to_word(*data.get(k)) : "0"; };
    std::string out = "Uptime:           " + uptime + "\n";
    out += "PID:              " + (data.get("pid") ? to_word(*data.get("pid")) : "unknown") + "\n";
    out += "Workers current:  " + num("workers_current") + "\n";
    out += "Workers target:   " + num("workers_target") + "\n";
    out += "Workers spawned:  " + num("workers_spawned") + "\n";
    out += "Workers killed:   " + num("workers_killed") + "\n";
    out += "Reloads:          " + num("reloads");
    return out;
}

std::string format_listeners(const Json &data) {
    const Json *ls = data.get("listeners");
    if (!ls || ls->arr.empty()) return "No listeners bound";
    std::string out = pad("ADDRESS", 40) + " " + pad("TYPE", 8) + " FD\n" + std::string(55, '-') + "\n";
    for (const Json &l : ls->arr)
        out += pad(str(l.get("address")), 40) + " " + pad(str(l.get("type")), 8) + " " + str(l.get("fd")) + "\n";
    const Json *count = data.get("count");
    return out + "\nTotal: " + (count ? to_word(*count) : std::to_string(ls->arr.size())) + " listeners";
}

std::string format_config(const Json &data) {
    std::vector<std::pair<std::string, Json>> items = data.obj;
    std::sort(items.begin(), items.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    std::string out;
    for (const auto &[key, v] : items) {
        std::string value;
        if (v.kind == Json::ARR) {
            for (const Json &x : v.arr) value += (value.empty() ? "" : ", ") + to_word(x);
        } else {
            value = to_word(v);
        }
        out += (out.empty() ? "" : "\n") + key + ": " + value;
    }
    return out;
}

std::string format_help(const Json &data) {
    const Json *cmds = data.get("commands");
    std::vector<std::pair<std::string, Json>> items = cmds ? cmds->obj : decltype(items){};
    std::sort(items.begin(), items.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    size_t width = 0;
    for (const auto &c : items) width = std::max(width, c.first.size());
    std::string out = "Available commands:\n";
    for (const auto &[cmd, desc] : items) out += "\n  " + pad(cmd, width + 2) + " " + to_word(desc);
    return out;
}

std::string format_all(const Json &data) {
    const Json *arbiter = data.get("arbiter");
    std::string out = "ARBITER (master)\n  PID: " + str(arbiter ? arbiter->get("pid") : nullptr) + "\n\n";
    out += "WEB WORKERS (" + str(data.get("web_worker_count")) + ")\n";
    const Json *web = data.get("web_workers");
    if (web && !web->arr.empty()) {
        out += "  " + pad("PID", 10) + " " + pad("AGE", 6) + " " + pad("BOOTED", 8) + " LAST_BEAT\n  " +
               std::string(38, '-') + "\n";
        for (const Json &w : web->arr)
            out += "  " + pad(str(w.get("pid")), 10) + " " + pad(str(w.get("age")), 6) + " " +
                   pad(truthy(w.get("booted")) ? "yes" : "no", 8) + " " + heartbeat(w) + "\n";
    } else {
        out += "  (none)\n";
    }
    return out + "\nDIRTY ARBITER\n  (not running)";
}

std::string format_response(const std::string &command, const Json &data) {
    std::string c = command;
    for (char &ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (c == "show all") return format_all(data);
    if (c == "show workers") return format_workers(data);
    if (c == "show dirty") return "Dirty arbiter not running";
    if (c == "show stats") return format_stats(data);
    if (c == "show listeners") return format_listeners(data);
    if (c == "show config") return format_config(data);
    if (c == "help") return format_help(data);
    if ((data.kind == Json::OBJ && !data.obj.empty()) || data.kind != Json::OBJ) return encode(data, 2);
    return "OK";
}

// A word shlex.split gives back unchanged.
std::string quote(const std::string &w) {
    if (!w.empty() && w.find_first_of(" \t\n\r'\"\\#") == std::string::npos) return w;
    std::string out = "'";
    for (char c : w) out += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
    return out + "'";
}

// Runs one command line; false when it failed (already reported).
bool run_one(Connection &conn, const std::vector<std::string> &words, bool json, std::ostream &err) {
    std::string command;
    for (const std::string &w : words) command += (command.empty() ? "" : " ") + quote(w);
    // The formatter is chosen by the command words (cli.py parse_command).
    std::string cmd_words;
    for (const std::string &w : words) {
        if (w.empty() || w[0] == '-' || std::all_of(w.begin(), w.end(), ::isdigit)) break;
        cmd_words += (cmd_words.empty() ? "" : " ") + w;
    }
    try {
        Json data = conn.send_command(command);
        std::cout << (json ? encode(data, 2) : format_response(cmd_words, data)) << "\n" << std::flush;
        return true;
    } catch (const ClientError &e) {
        err << "Error: " << e.what << "\n";
        return false;
    }
}

}  // namespace

int run_client(const std::vector<std::string> &args) {
    std::string socket_path, command;
    bool json = false, have_command = false;
    std::vector<std::string> words;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        auto value = [&](const char *name) -> std::string {
            size_t eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos) return a.substr(eq + 1);
            if (i + 1 >= args.size()) {
                std::fprintf(stderr, "%scunicorn ctl: error: argument %s: expected one argument\n", USAGE, name);
                std::exit(2);
            }
            return args[++i];
        };
        if (!words.empty()) {
            words.push_back(a);  // "worker remove -1": the rest is the command
        } else if (a == "-h" || a == "--help") {
            std::fputs(USAGE, stdout);
            return 0;
        } else if (a == "-j" || a == "--json") {
            json = true;
        } else if (a == "-s" || a == "--socket" || a.rfind("--socket=", 0) == 0) {
            socket_path = value("-s/--socket");
        } else if (a == "-c" || a == "--command" || a.rfind("--command=", 0) == 0) {
            command = value("-c/--command");
            have_command = true;
        } else if (a.size() > 1 && a[0] == '-') {
            std::fprintf(stderr, "%scunicorn ctl: error: unrecognized argument: %s\n", USAGE, a.c_str());
            return 2;
        } else {
            words.push_back(a);
        }
    }
    if (socket_path.empty()) socket_path = default_socket_path();
    if (socket_path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) socket_path = std::string(cwd) + "/" + socket_path;
    }
    Connection conn(socket_path);
    if (have_command || !words.empty()) {
        std::string err;
        if (have_command && !shell_split(command, words, err)) {
            std::fprintf(stderr, "Error: %s\n", err.c_str());
            return 1;
        }
        return run_one(conn, words, json, std::cerr) ? 0 : 1;
    }
    // No command: one per line from standard input.
    bool tty = isatty(0);
    try {
        conn.connect();
    } catch (const ClientError &e) {
        std::fprintf(stderr, "Error: %s\n", e.what.c_str());
        return 1;
    }
    int status = 0;
    std::string line;
    for (;;) {
        if (tty) std::cout << "cunicorn> " << std::flush;
        if (!std::getline(std::cin, line)) break;
        std::string err;
        std::vector<std::string> ws;
        if (!shell_split(line, ws, err)) {
            std::cout << "Error: " << err << "\n";
            continue;
        }
        if (ws.empty()) continue;
        if (ws.size() == 1 && (ws[0] == "quit" || ws[0] == "exit" || ws[0] == "q")) break;
        if (!run_one(conn, ws, json, std::cout)) status = 1;
        if (tty) std::cout << "\n";
    }
    return status;
}

}  // namespace cunicorn::control
