// The control socket's protocol and server (gunicorn/ctl/protocol.py,
// server.py): JSON, shlex.split, the command table, and the non-blocking
// unix socket the master's loop polls.
#include "cunicorn/control.h"

#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/prometheus.h"
#include "cunicorn/sock.h"
#include "cunicorn/statsd.h"
#include "cunicorn/worker.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace cunicorn::control {

// ---- JSON

Json &Json::set(const std::string &key, Json v) {
    for (auto &m : obj)
        if (m.first == key) {
            m.second = std::move(v);
            return *this;
        }
    obj.emplace_back(key, std::move(v));
    return *this;
}

const Json *Json::get(std::string_view key) const {
    for (const auto &m : obj)
        if (m.first == key) return &m.second;
    return nullptr;
}

namespace {

// Decodes one UTF-8 sequence at s[i]; -1 when invalid (then one byte is
// consumed). Overlongs, surrogates and values past U+10FFFF are invalid.
long utf8_next(std::string_view s, size_t &i) {
    auto c = static_cast<unsigned char>(s[i++]);
    if (c < 0x80) return c;
    int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
    if (n < 0 || c > 0xF4) return -1;
    long cp = c & (0x3F >> n);
    for (int k = 0; k < n; ++k) {
        if (i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (static_cast<unsigned char>(s[i++]) & 0x3F);
    }
    static const long MIN[] = {0, 0x80, 0x800, 0x10000};
    if (cp < MIN[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    return cp;
}

void put_utf8(std::string &out, long cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

void encode_string(std::string &out, std::string_view s) {
    out += '"';
    char buf[32];
    for (size_t i = 0; i < s.size();) {
        long cp = utf8_next(s, i);
        if (cp < 0) cp = 0xFFFD;  // bytes from a worker's page may be anything
        switch (cp) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        default: break;
        }
        if (cp >= 0x20 && cp < 0x7F) {
            out += static_cast<char>(cp);
        } else if (cp < 0x10000) {
            std::snprintf(buf, sizeof buf, "\\u%04lx", cp);
            out += buf;
        } else {
            cp -= 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04lx\\u%04lx", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            out += buf;
        }
    }
    out += '"';
}

// Python's repr(float): the shortest digits that read back the same,
// positional between 1e-4 and 1e16, always with a '.' or an exponent.
std::string float_repr(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    char buf[64];
    int prec = 1;
    for (; prec < 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    int exp = std::atoi(std::strchr(buf, 'e') + 1);
    if (v != 0 && (exp < -4 || exp >= 16)) {
        std::string s(buf, std::strchr(buf, 'e'));
        if (s.find('.') != std::string::npos) {
            while (s.back() == '0') s.pop_back();
            if (s.back() == '.') s.pop_back();
        }
        char e[16];
        std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        return s + e;
    }
    int decimals = std::max(prec - 1 - exp, 1);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s = buf;
    while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
    return s;
}

void encode_into(std::string &out, const Json &v, int indent, int depth) {
    auto newline = [&](int d) {
        out += '\n';
        out.append(static_cast<size_t>(indent * d), ' ');
    };
    switch (v.kind) {
    case Json::NUL: out += "null"; return;
    case Json::BOOL: out += v.b ? "true" : "false"; return;
    case Json::INT: out += std::to_string(v.i); return;
    case Json::FLOAT: out += float_repr(v.f); return;
    case Json::STR: encode_string(out, v.s); return;
    case Json::ARR:
        if (v.arr.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t k = 0; k < v.arr.size(); ++k) {
            if (k) out += indent ? "," : ", ";
            if (indent) newline(depth + 1);
            encode_into(out, v.arr[k], indent, depth + 1);
        }
        if (indent) newline(depth);
        out += ']';
        return;
    case Json::OBJ:
        if (v.obj.empty()) {
            out += "{}";
            return;
        }
        out += '{';
        for (size_t k = 0; k < v.obj.size(); ++k) {
            if (k) out += indent ? "," : ", ";
            if (indent) newline(depth + 1);
            encode_string(out, v.obj[k].first);
            out += ": ";
            encode_into(out, v.obj[k].second, indent, depth + 1);
        }
        if (indent) newline(depth);
        out += '}';
        return;
    }
}

struct Parser {
    std::string_view t;
    size_t i = 0;
    std::string err;

    bool fail(const char *what) {
        if (err.empty()) err = std::string(what) + " at byte " + std::to_string(i);
        return false;
    }
    void ws() {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
    }
    bool lit(const char *word) {
        size_t n = std::strlen(word);
        if (t.substr(i, n) != word) return fail("Expecting value");
        i += n;
        return true;
    }
    bool hex4(long &cp) {
        if (i + 4 > t.size()) return fail("Invalid \\uXXXX escape");
        cp = 0;
        for (int k = 0; k < 4; ++k) {
            char c = t[i++];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return fail("Invalid \\uXXXX escape");
            cp = cp * 16 + d;
        }
        return true;
    }
    bool string(std::string &out) {
        ++i;  // the opening quote
        for (;;) {
            if (i >= t.size()) return fail("Unterminated string");
            char c = t[i];
            if (c == '"') {
                ++i;
                return true;
            }
            if (static_cast<unsigned char>(c) < 0x20) return fail("Invalid control character");
            if (c != '\\') {
                out += c;
                ++i;
                continue;
            }
            if (++i >= t.size()) return fail("Unterminated string");
            char e = t[i++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                long cp = 0;
                if (!hex4(cp)) return false;
                if (cp >= 0xD800 && cp <= 0xDBFF && t.substr(i, 2) == "\\u") {
                    size_t save = i;
                    i += 2;
                    long lo = 0;
                    if (!hex4(lo)) return false;
                    if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else i = save;
                }
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // a lone surrogate
                put_utf8(out, cp);
                break;
            }
            default: --i; return fail("Invalid \\escape");
            }
        }
    }
    bool number(Json &out) {
        size_t start = i;
        if (t[i] == '-') ++i;
        if (i >= t.size() || t[i] < '0' || t[i] > '9') return fail("Expecting value");
        if (t[i] == '0') ++i;
        else
            while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        bool is_float = false;
        if (i < t.size() && t[i] == '.') {
            is_float = true;
            if (++i >= t.size() || t[i] < '0' || t[i] > '9') return fail("Expecting digits");
            while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        }
        if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
            is_float = true;
            ++i;
            if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
            if (i >= t.size() || t[i] < '0' || t[i] > '9') return fail("Expecting digits");
            while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        }
        std::string text(t.substr(start, i - start));
        errno = 0;
        long long v = is_float ? 0 : std::strtoll(text.c_str(), nullptr, 10);
        if (!is_float && errno != ERANGE) {
            out = Json(v);
        } else {
            out = Json(std::strtod(text.c_str(), nullptr));
        }
        return true;
    }
    bool value(Json &out, int depth) {
        if (depth > 64) return fail("Nesting too deep");
        ws();
        if (i >= t.size()) return fail("Expecting value");
        char c = t[i];
        if (c == '{') {
            out = Json::object();
            ++i;
            ws();
            if (i < t.size() && t[i] == '}') {
                ++i;
                return true;
            }
            for (;;) {
                ws();
                if (i >= t.size() || t[i] != '"') return fail("Expecting property name enclosed in double quotes");
                std::string key;
                if (!string(key)) return false;
                ws();
                if (i >= t.size() || t[i] != ':') return fail("Expecting ':' delimiter");
                ++i;
                Json member;
                if (!value(member, depth + 1)) return false;
                out.set(key, std::move(member));
                ws();
                if (i < t.size() && t[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < t.size() && t[i] == '}') {
                    ++i;
                    return true;
                }
                return fail("Expecting ',' delimiter");
            }
        }
        if (c == '[') {
            out = Json::array();
            ++i;
            ws();
            if (i < t.size() && t[i] == ']') {
                ++i;
                return true;
            }
            for (;;) {
                Json item;
                if (!value(item, depth + 1)) return false;
                out.arr.push_back(std::move(item));
                ws();
                if (i < t.size() && t[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < t.size() && t[i] == ']') {
                    ++i;
                    return true;
                }
                return fail("Expecting ',' delimiter");
            }
        }
        if (c == '"') {
            out = Json(std::string());
            return string(out.s);
        }
        if (c == 't') return lit("true") && (out = Json(true), true);
        if (c == 'f') return lit("false") && (out = Json(false), true);
        if (c == 'n') return lit("null") && (out = Json(), true);
        return number(out);
    }
};

}  // namespace

std::string encode(const Json &v, int indent) {
    std::string out;
    encode_into(out, v, indent, 0);
    return out;
}

bool parse(std::string_view text, Json &out, std::string &error) {
    for (size_t i = 0; i < text.size();)
        if (utf8_next(text, i) < 0) {
            error = "invalid UTF-8 at byte " + std::to_string(i - 1);
            return false;
        }
    Parser p;
    p.t = text;
    if (!p.value(out, 0)) {
        error = p.err;
        return false;
    }
    p.ws();
    if (p.i != text.size()) {
        p.fail("Extra data");
        error = p.err;
        return false;
    }
    return true;
}

bool shell_split(std::string_view text, std::vector<std::string> &out, std::string &error) {
    out.clear();
    std::string word;
    bool in_word = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_word) out.push_back(std::move(word));
            word.clear();
            in_word = false;
        } else if (c == '\\') {
            if (++i >= text.size()) {
                error = "No escaped character";
                return false;
            }
            word += text[i];
            in_word = true;
        } else if (c == '\'' || c == '"') {
            in_word = true;
            for (++i;; ++i) {
                if (i >= text.size()) {
                    error = "No closing quotation";
                    return false;
                }
                if (text[i] == c) break;
                // In double quotes a backslash escapes only \ and ".
                if (c == '"' && text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '\\' || text[i + 1] == '"'))
                    ++i;
                word += text[i];
            }
        } else if (c == '#' && !in_word) {
            break;  // shlex.split reads a comment to the end of the line
        } else {
            word += c;
            in_word = true;
        }
    }
    if (in_word) out.push_back(std::move(word));
    return true;
}

std::string to_word(const Json &v) {
    switch (v.kind) {
    case Json::NUL: return "None";
    case Json::BOOL: return v.b ? "True" : "False";
    case Json::INT: return std::to_string(v.i);
    case Json::FLOAT: return float_repr(v.f);
    case Json::STR: return v.s;
    default: return encode(v);
    }
}

std::string default_socket_path() {
    const char *xdg = std::getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg && *xdg && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode)) return std::string(xdg) + "/gunicorn.ctl";
    const char *home = std::getenv("HOME");
    std::string h = home ? home : "";
    if (h.empty()) {
        struct passwd *pw = getpwuid(geteuid());
        h = pw ? pw->pw_dir : "~";
    }
    return h + "/.gunicorn/gunicorn.ctl";
}

// ---- commands (server.py _execute_command, handlers.py)

namespace {

// A ValueError in server.py: answered "Invalid argument: <what>".
struct ValueError {
    std::string what;
};

std::string py_repr(const std::string &s) {
    char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
    std::string out(1, q);
    for (char c : s) {
        if (c == q || c == '\\') out += '\\';
        out += c;
    }
    return out + q;
}

// int(text) as Python parses a decimal: blanks around, a sign, digits
// (underscores between them).
long to_int(const std::string &text) {
    size_t a = 0, b = text.size();
    while (a < b && std::isspace(static_cast<unsigned char>(text[a]))) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
    std::string digits;
    size_t i = a;
    bool neg = false;
    if (i < b && (text[i] == '+' || text[i] == '-')) neg = text[i++] == '-';
    bool ok = i < b;
    for (; i < b && ok; ++i) {
        char c = text[i];
        if (c >= '0' && c <= '9') digits += c;
        else if (c == '_' && i > a && i + 1 < b && std::isdigit(static_cast<unsigned char>(text[i - 1])) &&
                 std::isdigit(static_cast<unsigned char>(text[i + 1])))
            continue;
        else ok = false;
    }
    if (!ok || digits.empty()) throw ValueError{"invalid literal for int() with base 10: " + py_repr(text)};
    if (digits.size() > 18) digits = "999999999999999999";  // far past any count or pid
    long v = std::strtol(digits.c_str(), nullptr, 10);
    return neg ? -v : v;
}

std::string lower(std::string s) {
    for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Json not_running() {
    return Json::object()
        .set("success", false)
        .set("error", "Dirty arbiter not running: cunicorn has no dirty workers");
}

Json help() {
    static const char *const COMMANDS[][2] = {
        {"show all", "Show all processes (arbiter, web workers, dirty workers)"},
        {"show workers", "List HTTP workers with their status"},
        {"show dirty", "List dirty workers and apps"},
        {"show config", "Show current effective configuration"},
        {"show stats", "Show server statistics"},
        {"show listeners", "Show bound sockets"},
        {"worker add [N]", "Spawn N workers (default 1)"},
        {"worker remove [N]", "Remove N workers (default 1)"},
        {"worker kill <PID>", "Gracefully terminate specific worker"},
        {"dirty add [N]", "Spawn N dirty workers (default 1)"},
        {"dirty remove [N]", "Remove N dirty workers (default 1)"},
        {"reload", "Graceful reload (HUP)"},
        {"reopen", "Reopen log files (USR1)"},
        {"shutdown [graceful|quick]", "Shutdown server (TERM/INT)"},
        {"help", "Show this help message"},
    };
    Json cmds = Json::object();
    for (const auto &c : COMMANDS) cmds.set(c[0], c[1]);
    return Json::object().set("commands", std::move(cmds));
}

Json show(const std::vector<std::string> &args, Master &m) {
    if (args.empty()) throw ValueError{"Missing show target (all|workers|dirty|config|stats|listeners)"};
    std::string target = lower(args[0]);
    if (target == "all") {
        Json web = m.workers(true);
        size_t n = web.arr.size();
        return Json::object()
            .set("arbiter", Json::object().set("pid", static_cast<long>(m.pid())).set("type", "arbiter").set("role", "master"))
            .set("web_workers", std::move(web))
            .set("web_worker_count", static_cast<unsigned long>(n))
            .set("dirty_arbiter", nullptr)
            .set("dirty_workers", Json::array())
            .set("dirty_worker_count", 0);
    }
    if (target == "workers") {
        Json w = m.workers(false);
        size_t n = w.arr.size();
        return Json::object().set("workers", std::move(w)).set("count", static_cast<unsigned long>(n));
    }
    if (target == "dirty")
        return Json::object()
            .set("enabled", false)
            .set("pid", nullptr)
            .set("workers", Json::array())
            .set("apps", Json::array());
    if (target == "config") return m.config();
    if (target == "stats") return m.stats();
    if (target == "listeners") return m.listeners();
    throw ValueError{"Unknown show target: " + target};
}

Json execute(const std::vector<std::string> &parts, Master &m) {
    std::string cmd = lower(parts[0]);
    std::vector<std::string> rest(parts.begin() + 1, parts.end());
    auto count = [&](size_t at) { return rest.size() > at ? std::max(1L, to_int(rest[at])) : 1L; };
    if (cmd == "show") return show(rest, m);
    if (cmd == "worker") {
        if (rest.empty()) throw ValueError{"Missing worker action (add|remove|kill)"};
        std::string action = lower(rest[0]);
        if (action == "add") return m.change_workers(static_cast<int>(std::min(count(1), 10000L)));
        if (action == "remove") return m.change_workers(-static_cast<int>(std::min(count(1), 10000L)));
        if (action == "kill") {
            if (rest.size() < 2) throw ValueError{"Missing PID for worker kill"};
            return m.kill_worker(to_int(rest[1]));
        }
        throw ValueError{"Unknown worker action: " + action};
    }
    if (cmd == "dirty") {
        if (rest.empty()) throw ValueError{"Missing dirty action (add|remove)"};
        std::string action = lower(rest[0]);
        if (action != "add" && action != "remove") throw ValueError{"Unknown dirty action: " + action};
        count(1);
        return not_running();
    }
    if (cmd == "reload") {
        m.post_signal(SIGHUP);
        return Json::object().set("status", "reloading");
    }
    if (cmd == "reopen") {
        m.post_signal(SIGUSR1);
        return Json::object().set("status", "reopening");
    }
    if (cmd == "shutdown") {
        std::string mode = rest.empty() ? "graceful" : rest[0];
        m.post_signal(mode == "quick" ? SIGINT : SIGTERM);
        return Json::object().set("status", "shutting_down").set("mode", mode);
    }
    if (cmd == "help") return help();
    throw ValueError{"Unknown command: " + cmd};
}

Json error_reply(Json id, const std::string &error) {
    return Json::object().set("id", std::move(id)).set("status", "error").set("error", error);
}

}  // namespace

Json dispatch(std::string_view payload, Master &master) {
    Json msg;
    std::string err;
    // Gunicorn closes the connection without a word on these; a reply says why.
    if (!parse(payload, msg, err)) return error_reply(nullptr, "Invalid JSON: " + err);
    if (msg.kind != Json::OBJ) return error_reply(nullptr, "Invalid request: not a JSON object");
    const Json *idp = msg.get("id");
    Json id = idp ? *idp : Json(0);
    const Json *cp = msg.get("command");
    if (cp && cp->kind != Json::STR && cp->kind != Json::NUL)
        return error_reply(id, "Invalid request: command is not a string");
    std::string command = cp && cp->kind == Json::STR ? cp->s : "";
    std::vector<std::string> parts;
    if (!shell_split(command, parts, err)) return error_reply(id, "Invalid argument: " + err);
    if (const Json *args = msg.get("args")) {
        if (args->kind == Json::ARR) {
            for (const Json &a : args->arr) parts.push_back(to_word(a));
        } else if (args->kind != Json::NUL) {
            return error_reply(id, "Invalid request: args is not a list");
        }
    }
    if (parts.empty()) return error_reply(id, "Empty command");
    try {
        Json data = execute(parts, master);
        return Json::object().set("id", std::move(id)).set("status", "ok").set("data", std::move(data));
    } catch (const ValueError &e) {
        return error_reply(id, "Invalid argument: " + e.what);
    } catch (const std::exception &e) {
        LOG_ERROR("Command error: %s", e.what());
        return error_reply(id, std::string("Command failed: ") + e.what());
    }
}

// ---- the server

namespace {

constexpr size_t MAX_CLIENTS = 32;
constexpr int64_t IDLE_MS = 300 * 1000;  // server.py: 5 minute idle timeout
constexpr size_t MAX_HTTP_HEAD = 8192;
constexpr int64_t HTTP_DEADLINE_MS = 10 * 1000;

void frame(std::string &out, const std::string &json) {
    auto n = static_cast<uint32_t>(json.size());
    char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
    out.append(len, 4);
    out += json;
}

// mkdir -p with mode 0700 for what it creates.
bool make_dirs(const std::string &dir) {
    if (dir.empty()) return true;
    struct stat st;
    if (stat(dir.c_str(), &st) == 0) return true;
    size_t slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0 && !make_dirs(dir.substr(0, slash))) return false;
    return mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST;
}

}  // namespace

bool Server::start(const std::string &path_in, int mode) {
    std::string path = path_in;
    if (!path.empty() && path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) path = std::string(cwd) + "/" + path;
    }
    auto warn = [&](const std::string &why) {
        LOG_WARNING("Failed to start control socket: %s: %s", path.c_str(), why.c_str());
        if (listen_fd_ >= 0) close(listen_fd_);
        listen_fd_ = -1;
        return false;
    };
    sockaddr_un sun{};
    if (path.empty()) return warn("empty path");
    if (path.size() >= sizeof sun.sun_path) return warn("path too long for a unix socket");
    std::string dir = path.substr(0, path.find_last_of('/'));
    if (!make_dirs(dir)) return warn(std::string("cannot create its directory: ") + std::strerror(errno));
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return warn("exists and is not a socket");
        unlink(path.c_str());  // stale, or a USR2 predecessor's: Gunicorn takes it over too
    }
    listen_fd_ = platform::socket_cloexec(AF_UNIX, SOCK_STREAM, 0);
    if (listen_fd_ < 0) return warn(std::strerror(errno));
    fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    // Born with the configured mode: no moment where others may connect.
    mode_t old = umask(static_cast<mode_t>(~mode & 0777));
    int rc = bind(listen_fd_, reinterpret_cast<sockaddr *>(&sun), sizeof sun);
    int err = errno;
    umask(old);
    if (rc < 0) return warn(std::strerror(err));
    if (chmod(path.c_str(), static_cast<mode_t>(mode & 07777)) < 0 || listen(listen_fd_, 64) < 0 ||
        stat(path.c_str(), &st) < 0) {
        err = errno;
        unlink(path.c_str());
        return warn(std::strerror(err));
    }
    listening_at(path);
    LOG_INFO("Control socket listening at %s", path.c_str());
    return true;
}

// The socket file is ours to remove at stop() while it is this one.
void Server::listening_at(const std::string &path) {
    struct stat st;
    path_ = path;
    if (path.empty() || stat(path.c_str(), &st) < 0) return;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
}

bool Server::metrics_at(const std::string &address) {
    if (address == address_ && (address.empty() || active())) return active();
    stop();
    http_ = true;
    address_ = address;
    statsd::count_requests(!address.empty());  // the master's log calls; workers set their own
    if (address.empty()) return false;
    try {
        Address a = parse_address(address);
        if (a.kind == Address::FD) throw std::invalid_argument("not a file descriptor");
        BindOptions bo;
        bo.backlog = 64;
        bo.reuse_port = a.kind == Address::TCP;
        std::vector<Listener> ls = create_listeners({a}, bo);
        listen_fd_ = ls.at(0).fd;
        listening_at(ls[0].unix_path);
        LOG_INFO("Prometheus metrics at %s/metrics", ls[0].url().c_str());
        return true;
    } catch (const std::exception &e) {
        LOG_WARNING("Failed to start the Prometheus endpoint at %s: %s", address.c_str(), e.what());
        return false;
    }
}

void Server::stop() {
    for (Client &c : clients_) {
        if (!c.out.empty()) write_client(c);  // e.g. the reply to "shutdown"
        if (c.fd >= 0) close(c.fd);
    }
    clients_.clear();
    if (listen_fd_ < 0) return;
    close(listen_fd_);
    listen_fd_ = -1;
    // A USR2 successor may have replaced the file: leave its socket alone.
    struct stat st;
    if (!path_.empty() && lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        unlink(path_.c_str());
    path_.clear();
}

void Server::close_in_child() {
    for (Client &c : clients_)
        if (c.fd >= 0) close(c.fd);
    clients_.clear();
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
}

void Server::add_pollfds(std::vector<pollfd> &fds) const {
    if (listen_fd_ < 0) return;
    fds.push_back({listen_fd_, clients_.size() < MAX_CLIENTS ? short(POLLIN) : short(0), 0});
    for (const Client &c : clients_) {
        // One request at a time: input waits while a reply is queued.
        short ev = !c.out.empty() ? POLLOUT : c.closing && !c.shut ? 0 : POLLIN;
        fds.push_back({c.fd, ev, 0});
    }
}

void Server::handle(const pollfd *fds, size_t n, Master &master) {
    if (listen_fd_ < 0) return;
    size_t known = clients_.size();
    for (size_t k = 0; k < known && k + 1 < n; ++k) {
        Client &c = clients_[k];
        short re = fds[k + 1].revents;
        if (re & POLLOUT) write_client(c);
        if (c.shut && (re & (POLLIN | POLLHUP | POLLERR))) read_client(c);  // drained
        else if (c.out.empty() && !c.closing && (re & (POLLIN | POLLHUP | POLLERR))) read_client(c);
        process(c, master);
    }
    if (n && (fds[0].revents & POLLIN)) accept_clients();
    int64_t now = worker::now_ms();
    for (Client &c : clients_) {
        if (c.fd >= 0 && http_ && c.closing && c.out.empty() && !c.eof && !c.shut) {
            // Answered before the client finished sending: closing now
            // would reset the connection, and the answer with it. Say
            // the end, and read what else comes until the client ends.
            shutdown(c.fd, SHUT_WR);
            c.shut = true;
        }
        if (c.fd >= 0 && ((c.closing && c.out.empty() && (!c.shut || c.eof)) || expired(c, now))) {
            close(c.fd);
            c.fd = -1;
        }
    }
    std::vector<Client> live;
    for (Client &c : clients_)
        if (c.fd >= 0) live.push_back(std::move(c));
    clients_.swap(live);
}

// A control client may stay idle between requests; a metrics client has
// HTTP_DEADLINE_MS in all, however it trickles its bytes.
bool Server::expired(const Client &c, int64_t now) const {
    return http_ ? now - c.accepted_ms > HTTP_DEADLINE_MS : now - c.last_ms > IDLE_MS;
}

void Server::accept_clients() {
    while (clients_.size() < MAX_CLIENTS) {
        int fd = platform::accept_nonblocking(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        Client c;
        c.fd = fd;
        c.last_ms = c.accepted_ms = worker::now_ms();
        clients_.push_back(std::move(c));
    }
}

void Server::read_client(Client &c) {
    char buf[16384];
    for (;;) {
        ssize_t r = recv(c.fd, buf, sizeof buf, 0);
        if (r > 0 && c.shut) continue;  // after the answer: discarded
        if (r > 0) {
            c.in.append(buf, static_cast<size_t>(r));
            c.last_ms = worker::now_ms();
            if (c.in.size() > (http_ ? MAX_HTTP_HEAD : MAX_MESSAGE + 4)) break;  // process() answers before reading on
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        c.closing = c.eof = true;  // end of input (or an error): answer what is complete, then go
        break;
    }
}

// Answers the buffered requests, in order, while the replies leave at once.
void Server::process(Client &c, Master &master) {
    if (http_) return process_http(c, master);
    while (c.out.empty() && c.fd >= 0) {
        if (c.in.size() < 4) {
            if (!c.closing || c.in.empty()) return;  // the rest is on its way
            frame(c.out, encode(error_reply(nullptr, "Incomplete length prefix")));
            c.in.clear();
        } else {
            auto *p = reinterpret_cast<const unsigned char *>(c.in.data());
            uint32_t len = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
            if (len > MAX_MESSAGE) {
                frame(c.out, encode(error_reply(nullptr, "Message too large: " + std::to_string(len))));
                c.in.clear();
                c.closing = true;
            } else if (c.in.size() - 4 >= len) {
                Json reply = dispatch(std::string_view(c.in).substr(4, len), master);
                c.in.erase(0, 4 + size_t(len));
                frame(c.out, encode(reply));
            } else if (c.closing) {
                frame(c.out, encode(error_reply(nullptr, "Incomplete payload")));
                c.in.clear();
            }
        }
        if (c.out.empty()) return;  // nothing complete yet
        write_client(c);
    }
}

// One request per connection: its head is answered, then the connection
// closes (what else the client sent is not read).
void Server::process_http(Client &c, Master &master) {
    if (!c.out.empty() || c.fd < 0 || (c.closing && c.in.empty())) return;
    size_t crlf = c.in.find("\r\n\r\n"), lf = c.in.find("\n\n");  // a bare LF ends lines too (RFC 9112, 2.2)
    size_t end = std::min(crlf == std::string::npos ? crlf : crlf + 4, lf == std::string::npos ? lf : lf + 2);
    if (end == std::string::npos) {
        if (c.in.size() > MAX_HTTP_HEAD)
            c.out = prometheus::response(prometheus::Verdict::TOO_LARGE, "");
        else if (c.closing)
            c.out = prometheus::response(prometheus::Verdict::BAD_REQUEST, "");  // cut short
        else
            return;  // the rest is on its way
    } else {
        c.out = prometheus::respond(std::string_view(c.in).substr(0, end), [&] { return master.metrics(); });
    }
    c.in.clear();
    c.closing = true;
    write_client(c);
}

void Server::write_client(Client &c) {
    while (!c.out.empty()) {
        ssize_t w = send(c.fd, c.out.data(), c.out.size(), platform::SEND_NOSIGNAL);
        if (w > 0) {
            c.out.erase(0, static_cast<size_t>(w));
            c.last_ms = worker::now_ms();
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        c.out.clear();  // the client went away
        c.closing = c.eof = true;
        return;
    }
}

}  // namespace cunicorn::control
