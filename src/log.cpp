// Error log and access log, mirroring gunicorn/glogging.py.
//
// Both logs are shared by the master and every forked worker, so a line is
// always handed to the kernel in one write(2): with O_APPEND (or a pipe and
// a line under PIPE_BUF) lines from different processes never interleave.
// Lines are built in a stack buffer and spill to the heap only when long.
//
// The access line runs for every request, so its format is compiled once in
// configure() and rendered without regex, iostreams or locale; the
// "%(t)s" and error-log timestamps are formatted at most once per second.
#include "cunicorn/log.h"

#include "cunicorn/config.h"
#include "cunicorn/pylog.h"
#include "cunicorn/statsd.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <stdexcept>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace cunicorn::log {

namespace {

// --- shared state -------------------------------------------------------
//
// The fds and level are plain ints so they are constant-initialised: write()
// works (stderr, INFO) before configure() and even from other translation
// units' static initialisers. configure() runs single-threaded (start-up and
// HUP in the master); reopen() keeps fd numbers stable (dup2), so threads
// already writing never see a closed or reused descriptor.
int g_level = static_cast<int>(Level::INFO);
int g_err_fd = STDERR_FILENO;
bool g_err_owned = false;
int g_acc_fd = -1;
bool g_acc_owned = false;

std::string &err_path() {
    static std::string p = "-";
    return p;
}
std::string &acc_path() {
    static std::string p;
    return p;
}

const char *const LEVEL_NAMES[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
const char MONTHS[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// --- low-level output -----------------------------------------------------

// Hands one line to the kernel. A regular file or pipe takes it whole; the
// loop only continues after a short write (disk full, signal mid-copy),
// where finishing the line beats dropping its tail. Errors are ignored: a
// full disk must not take the server down.
void emit(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
}

// `text` and a newline in one write(2); in two when out of memory.
void emit_line(int fd, std::string_view text) {
    thread_local std::string line;
    try {
        line.assign(text);
        line.push_back('\n');
        emit(fd, line.data(), line.size());
    } catch (const std::bad_alloc &) {
        emit(fd, text.data(), text.size());
        emit(fd, "\n", 1);
    }
}

// Writes `v` in decimal with at least `min_digits` digits; returns the end.
char *put_uint(char *out, uint64_t v, int min_digits = 1) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n < min_digits) tmp[n++] = '0';
    while (n > 0) *out++ = tmp[--n];
    return out;
}

char *put_str(char *out, const char *s) {
    while (*s) *out++ = *s++;
    return out;
}

// "+hhmm" as strftime %z, from tm_gmtoff (glibc and the BSDs have it).
char *put_tz(char *out, const struct tm &tm) {
    long off = tm.tm_gmtoff;
    *out++ = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    out = put_uint(out, static_cast<uint64_t>(off / 3600), 2);
    return put_uint(out, static_cast<uint64_t>((off / 60) % 60), 2);
}

// One formatted timestamp, recomputed only when the second changes. Each
// thread keeps its own so gthread workers need no lock.
struct TimeCache {
    int64_t sec = INT64_MIN;
    size_t len = 0;
    char buf[64];
};

bool local_tm(int64_t sec, struct tm &tm) {
    time_t t = static_cast<time_t>(sec);
    return localtime_r(&t, &tm) != nullptr;
}

// "%Y-%m-%d %H:%M:%S %z": logging.Formatter with gunicorn's datefmt.
std::string_view error_time(int64_t now) {
    thread_local TimeCache c;
    if (c.sec != now) {
        struct tm tm;
        if (!local_tm(now, tm)) std::memset(&tm, 0, sizeof tm);
        char *p = c.buf;
        p = put_uint(p, static_cast<uint64_t>(tm.tm_year + 1900), 4);
        *p++ = '-';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_mon + 1), 2);
        *p++ = '-';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_mday), 2);
        *p++ = ' ';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_hour), 2);
        *p++ = ':';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_min), 2);
        *p++ = ':';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_sec), 2);
        *p++ = ' ';
        p = put_tz(p, tm);
        c.len = static_cast<size_t>(p - c.buf);
        c.sec = now;
    }
    return {c.buf, c.len};
}

// "[%d/%b/%Y:%H:%M:%S %z]": glogging.py Logger.now(). Month names are
// English as under Python's default C LC_TIME, whatever the locale.
std::string_view access_time(int64_t now) {
    thread_local TimeCache c;
    if (c.sec != now) {
        struct tm tm;
        if (!local_tm(now, tm)) std::memset(&tm, 0, sizeof tm);
        char *p = c.buf;
        *p++ = '[';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_mday), 2);
        *p++ = '/';
        p = put_str(p, MONTHS[tm.tm_mon >= 0 && tm.tm_mon < 12 ? tm.tm_mon : 0]);
        *p++ = '/';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_year + 1900), 4);
        *p++ = ':';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_hour), 2);
        *p++ = ':';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_min), 2);
        *p++ = ':';
        p = put_uint(p, static_cast<uint64_t>(tm.tm_sec), 2);
        *p++ = ' ';
        p = put_tz(p, tm);
        *p++ = ']';
        c.len = static_cast<size_t>(p - c.buf);
        c.sec = now;
    }
    return {c.buf, c.len};
}

// "[time] [pid] [LEVEL] " into `out`: under 80 bytes, so the 4 KiB line
// buffers below always hold it. The pid is read at every call because
// workers are forked from the master.

size_t format_prefix(Level level, char *out) {
    std::string_view ts = error_time(static_cast<int64_t>(::time(nullptr)));
    char *p = out;
    *p++ = '[';
    std::memcpy(p, ts.data(), ts.size());
    p += ts.size();
    p = put_str(p, "] [");
    p = put_uint(p, static_cast<uint64_t>(getpid()));
    p = put_str(p, "] [");
    p = put_str(p, LEVEL_NAMES[static_cast<int>(level)]);
    p = put_str(p, "] ");
    return static_cast<size_t>(p - out);
}

// Opens a log file for appending as logging.FileHandler does; CLOEXEC so
// the app's subprocesses and a USR2 re-exec do not inherit it (the new
// master opens its own from the configuration).
int open_log_file(const std::string &path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

// Start-up tier: a log that cannot be opened is fatal, in the wording of
// gunicorn's util.check_is_writeable.
int open_log_or_throw(const std::string &path) {
    int fd = open_log_file(path);
    if (fd < 0) {
        throw std::runtime_error("Error: '" + path + "' isn't writable [" +
                                 std::strerror(errno) + "]");
    }
    return fd;
}

// --- access-log format ----------------------------------------------------

enum class Atom : uint8_t {
    LITERAL,
    REMOTE_ADDR,  // h
    IDENT,        // l
    USER,         // u
    TIME,         // t
    REQUEST,      // r
    STATUS,       // s
    METHOD,       // m
    PATH,         // U
    QUERY,        // q
    PROTOCOL,     // H
    BYTES_STR,    // b
    BYTES,        // B
    REFERER,      // f
    USER_AGENT,   // a
    SECONDS,      // T
    MICROS,       // D
    MILLIS,       // M
    DURATION,     // L
    PID,          // p
    REQ_HEADER,   // {name}i
    RESP_HEADER,  // {name}o
    ENVIRON,      // {name}e
    MISSING,      // any other key: SafeAtoms.__getitem__ returns '-'
};

struct Segment {
    Atom atom = Atom::LITERAL;
    bool left = false;      // '-' flag
    bool zero = false;      // '0' flag (numeric atoms only)
    int width = 0;
    int precision = -1;     // -1: none
    std::string text;       // literal text, or the {name} of a header/environ atom
};

using Format = std::vector<Segment>;

Format &g_format() {
    static Format f;
    return f;
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

// Maps a %(key) to its atom the way SafeAtoms.__getitem__ looks it up:
// "{...}" keys are lower-cased whole (so "{X}I" finds a request header
// too), single letters match exactly, anything else is missing.
void classify_key(std::string_view key, Segment &seg) {
    if (!key.empty() && key[0] == '{') {
        size_t n = key.size();
        if (n >= 3 && key[n - 2] == '}') {
            char kind = ascii_lower(key[n - 1]);
            std::string_view name = key.substr(1, n - 3);
            if (kind == 'i' || kind == 'o') {
                seg.atom = kind == 'i' ? Atom::REQ_HEADER : Atom::RESP_HEADER;
                seg.text.clear();
                for (char c : name) seg.text.push_back(ascii_lower(c));
                return;
            }
            if (kind == 'e') {
                // Passed to the environ callback as written; the callback
                // compares case-insensitively, as glogging.py lower-cases
                // both the environ keys and the lookup key.
                seg.atom = Atom::ENVIRON;
                seg.text.assign(name);
                return;
            }
        }
        seg.atom = Atom::MISSING;
        return;
    }
    if (key.size() != 1) {
        seg.atom = Atom::MISSING;
        return;
    }
    switch (key[0]) {
    case 'h': seg.atom = Atom::REMOTE_ADDR; break;
    case 'l': seg.atom = Atom::IDENT; break;
    case 'u': seg.atom = Atom::USER; break;
    case 't': seg.atom = Atom::TIME; break;
    case 'r': seg.atom = Atom::REQUEST; break;
    case 's': seg.atom = Atom::STATUS; break;
    case 'm': seg.atom = Atom::METHOD; break;
    case 'U': seg.atom = Atom::PATH; break;
    case 'q': seg.atom = Atom::QUERY; break;
    case 'H': seg.atom = Atom::PROTOCOL; break;
    case 'b': seg.atom = Atom::BYTES_STR; break;
    case 'B': seg.atom = Atom::BYTES; break;
    case 'f': seg.atom = Atom::REFERER; break;
    case 'a': seg.atom = Atom::USER_AGENT; break;
    case 'T': seg.atom = Atom::SECONDS; break;
    case 'D': seg.atom = Atom::MICROS; break;
    case 'M': seg.atom = Atom::MILLIS; break;
    case 'L': seg.atom = Atom::DURATION; break;
    case 'p': seg.atom = Atom::PID; break;
    default: seg.atom = Atom::MISSING; break;
    }
}

// Compiles Python %-formatting with a mapping (printf-style "%(key)...c").
// Where Python would raise (gunicorn then logs a traceback instead of the
// line), the offending text is kept literally and `error` names the first
// problem, so a typo shows up in every line rather than losing them all.
Format compile(std::string_view f, std::string *error) {
    Format out;
    std::string lit;
    auto flush = [&] {
        if (lit.empty()) return;
        Segment s;
        s.text = std::move(lit);
        out.push_back(std::move(s));
        lit.clear();
    };
    auto bad = [&](const char *why) {
        if (error && error->empty()) *error = why;
    };
    size_t i = 0, n = f.size();
    while (i < n) {
        size_t pct = f.find('%', i);
        if (pct == std::string_view::npos) {
            lit.append(f.substr(i));
            break;
        }
        lit.append(f.substr(i, pct - i));
        i = pct;
        if (i + 1 < n && f[i + 1] == '%') {
            lit.push_back('%');
            i += 2;
            continue;
        }
        size_t k = i + 1;
        if (k >= n || f[k] != '(') {
            // A conversion without a key would format the whole atoms dict
            // in Python; nobody means that, so it stays literal.
            bad(k >= n ? "incomplete format" : "format requires a mapping key");
            lit.push_back('%');
            ++i;
            continue;
        }
        // The key runs to the matching ')' (Python allows nested parens).
        int depth = 1;
        size_t key_start = ++k;
        while (k < n && depth > 0) {
            if (f[k] == '(') ++depth;
            else if (f[k] == ')') --depth;
            ++k;
        }
        if (depth > 0) {
            bad("incomplete format key");
            lit.append(f.substr(i));
            break;
        }
        Segment seg;
        std::string_view key = f.substr(key_start, k - 1 - key_start);
        while (k < n && f[k] != '\0' && std::strchr("-+ #0", f[k])) {
            if (f[k] == '-') seg.left = true;
            if (f[k] == '0') seg.zero = true;
            ++k;
        }
        bool ok = true;
        auto number = [&](int &v) {
            long acc = 0;
            while (k < n && f[k] >= '0' && f[k] <= '9') {
                acc = acc * 10 + (f[k] - '0');
                if (acc > 65535) ok = false;  // Python: "width too big"
                ++k;
            }
            v = static_cast<int>(acc);
        };
        if (k < n && f[k] == '*') ok = false;  // "* wants int" with a mapping
        number(seg.width);
        if (k < n && f[k] == '.') {
            ++k;
            if (k < n && f[k] == '*') ok = false;
            number(seg.precision);
        }
        if (k < n && (f[k] == 'h' || f[k] == 'l' || f[k] == 'L')) ++k;
        if (k >= n) {
            bad("incomplete format");
            lit.append(f.substr(i));
            break;
        }
        char conv = f[k];
        if (!ok || conv == '\0' || !std::strchr("diouxXeEfFgGcrsa", conv)) {
            bad(ok ? "unsupported format character" : "unsupported width or precision");
            lit.append(f.substr(i, k + 1 - i));
            i = k + 1;
            continue;
        }
        // Every conversion renders like %s: the atoms are strings or ints.
        classify_key(key, seg);
        flush();
        out.push_back(std::move(seg));
        i = k + 1;
    }
    flush();
    return out;
}

// "\"" -> "\\\"" for every str atom (SafeAtoms.__init__).
void append_escaped(std::string &out, std::string_view v) {
    size_t start = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '"') continue;
        out.append(v.data() + start, i - start);
        out.append("\\\"");
        start = i + 1;
    }
    out.append(v.data() + start, v.size() - start);
}

// Request header as the WSGI environ has it (HTTP_*): repeated headers are
// joined with "," (gunicorn/http/wsgi.py create); false when absent.
// `scratch` holds the joined value when there is more than one.
bool environ_header(const AccessRecord &rec, std::string_view name, std::string_view &value,
                    std::string &scratch) {
    if (!rec.request_headers) return false;
    bool found = false, joined = false;
    for (const auto &h : *rec.request_headers) {
        if (!iequals(h.first, name)) continue;
        if (!found) {
            value = h.second;
            found = true;
        } else {
            if (!joined) {
                scratch.assign(value);
                joined = true;
            }
            scratch.push_back(',');
            scratch.append(h.second);
        }
    }
    if (joined) value = scratch;
    return found;
}

// Standard alphabet; 64 marks a byte that b64decode (validate=False) skips.
constexpr uint8_t B64_SKIP = 64;
struct B64Table {
    uint8_t v[256];
    constexpr B64Table() : v() {
        for (int i = 0; i < 256; ++i) v[i] = B64_SKIP;
        const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) v[static_cast<uint8_t>(a[i])] = static_cast<uint8_t>(i);
    }
};
constexpr B64Table B64;

// base64.b64decode(s) as CPython's binascii.a2b_base64 in non-strict mode:
// bytes outside the alphabet are skipped, a pad sequence after two or three
// data characters ends the input, and a leftover partial quad is an error.
bool b64decode(std::string_view in, std::string &out) {
    out.clear();
    int quad = 0, pads = 0;
    unsigned left = 0;
    for (char ch : in) {
        if (ch == '=') {
            if (quad >= 2 && quad + ++pads >= 4) return true;
            continue;
        }
        uint8_t v = B64.v[static_cast<uint8_t>(ch)];
        if (v == B64_SKIP) continue;
        pads = 0;
        switch (quad) {
        case 0:
            left = v;
            quad = 1;
            break;
        case 1:
            out.push_back(static_cast<char>((left << 2) | (v >> 4)));
            left = v & 0x0f;
            quad = 2;
            break;
        case 2:
            out.push_back(static_cast<char>((left << 4) | (v >> 2)));
            left = v & 0x03;
            quad = 3;
            break;
        default:
            out.push_back(static_cast<char>((left << 6) | v));
            quad = 0;
            break;
        }
    }
    return quad == 0;
}

// The length of the UTF-8 sequence at s[i] (a byte >= 0x80), or 0 when it
// is not one Python's bytes.decode("utf-8") accepts: no overlongs, no
// surrogates, nothing above U+10FFFF.
size_t utf8_seq_len(std::string_view s, size_t i) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    auto c1 = static_cast<uint8_t>(s[i + 1]);
    if (c1 < lo || c1 > hi) return 0;
    for (size_t j = 2; j < len; ++j) {
        auto cj = static_cast<uint8_t>(s[i + j]);
        if (cj < 0x80 || cj > 0xbf) return 0;
    }
    return len;
}

bool valid_utf8(std::string_view s) {
    size_t i = 0, n = s.size();
    while (i < n) {
        if (static_cast<uint8_t>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        size_t len = utf8_seq_len(s, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

// glogging.py Logger._get_user: "Basic <base64>" (prefix matched
// case-insensitively, split at the first space), decoded, the text before
// the first ':'. Any failure, or an empty name, renders '-'.
bool basic_auth_user(const AccessRecord &rec, std::string &user, std::string &scratch) {
    std::string_view auth;
    if (!environ_header(rec, "authorization", auth, scratch)) return false;
    if (auth.size() < 5 || !iequals(auth.substr(0, 5), "basic")) return false;
    size_t sp = auth.find(' ');
    if (sp == std::string_view::npos) return false;
    // .strip() before decoding is implied: whitespace is skipped by the decoder.
    if (!b64decode(auth.substr(sp + 1), user)) return false;
    size_t colon = user.find(':');
    if (colon != std::string::npos) user.resize(colon);
    return !user.empty() && valid_utf8(user);
}

// Python's str.split() whitespace, ASCII part.
bool py_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

// status.split(None, 1)[0]
std::string_view first_token(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && py_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !py_space(s[j])) ++j;
    return s.substr(i, j - i);
}

struct Scratch {
    std::string atom;    // a composed value: r, u, {name}e
    std::string joined;  // repeated request headers joined with ','
    std::string padded;  // the escaped value when width/precision apply
};

// One atom's value as glogging.py's atoms() has it, "-" when missing;
// `num` holds the digits of a numeric one. `is_int`: an int atom, which
// SafeAtoms does not escape.
std::string_view atom_value(const Segment &seg, const AccessRecord &rec, int64_t now, Scratch &sc,
                            char (&num)[48], bool &is_int) {
    std::string_view sv;
    bool have = true;  // false: the atom is missing -> '-'
    char *np = num;
    is_int = false;

    // timedelta keeps days apart: .seconds and .microseconds cover one day.
    // The clock is monotonic, so a negative duration cannot happen; clamp.
    int64_t dur = rec.duration_us < 0 ? 0 : rec.duration_us;
    uint64_t day_us = static_cast<uint64_t>(dur) % (86400ULL * 1000000ULL);
    uint64_t secs = day_us / 1000000, micros = day_us % 1000000;

    switch (seg.atom) {
    case Atom::LITERAL: return seg.text;
    case Atom::REMOTE_ADDR: sv = rec.remote_addr; break;
    case Atom::IDENT: have = false; break;
    case Atom::USER:
        have = basic_auth_user(rec, sc.atom, sc.joined);
        sv = sc.atom;
        break;
    case Atom::TIME: sv = access_time(now); break;
    case Atom::REQUEST:
        sc.atom.clear();
        sc.atom.append(rec.method).push_back(' ');
        sc.atom.append(rec.raw_uri).push_back(' ');
        sc.atom.append(rec.protocol);
        sv = sc.atom;
        break;
    case Atom::STATUS:
        sv = first_token(rec.status);
        have = !sv.empty();
        break;
    case Atom::METHOD: sv = rec.method; break;
    case Atom::PATH: sv = rec.path_info; break;
    case Atom::QUERY: sv = rec.query; break;
    case Atom::PROTOCOL: sv = rec.protocol; break;
    case Atom::BYTES_STR:
    case Atom::BYTES:
        np = put_uint(num, rec.bytes_sent);
        is_int = seg.atom == Atom::BYTES;
        break;
    case Atom::REFERER: have = environ_header(rec, "referer", sv, sc.joined); break;
    case Atom::USER_AGENT: have = environ_header(rec, "user-agent", sv, sc.joined); break;
    case Atom::SECONDS:
        np = put_uint(num, secs);
        is_int = true;
        break;
    case Atom::MICROS:
        np = put_uint(num, secs * 1000000 + micros);
        is_int = true;
        break;
    case Atom::MILLIS:
        np = put_uint(num, secs * 1000 + micros / 1000);
        is_int = true;
        break;
    case Atom::DURATION:
        np = put_uint(num, secs);
        *np++ = '.';
        np = put_uint(np, micros, 6);
        break;
    case Atom::PID:
        *np++ = '<';
        np = put_uint(np, static_cast<uint64_t>(getpid()));
        *np++ = '>';
        break;
    case Atom::REQ_HEADER:
        have = false;
        if (rec.request_headers) {
            // dict.update keeps the last of repeated headers.
            for (const auto &h : *rec.request_headers)
                if (iequals(h.first, seg.text)) {
                    sv = h.second;
                    have = true;
                }
        }
        break;
    case Atom::RESP_HEADER:
        have = false;
        if (rec.response_headers) {
            for (const auto &h : *rec.response_headers)
                if (iequals(h.first, seg.text)) {
                    sv = h.second;
                    have = true;
                }
        }
        break;
    case Atom::ENVIRON:
        // The callback returns "" for a missing key; an empty value is
        // indistinguishable and also renders '-'.
        have = false;
        if (rec.environ_lookup) {
            sc.atom = rec.environ_lookup(rec.environ_ctx, seg.text);
            sv = sc.atom;
            have = !sv.empty();
        }
        break;
    case Atom::MISSING: have = false; break;
    }
    if (np != num) sv = std::string_view(num, static_cast<size_t>(np - num));
    if (!have) sv = "-";
    return sv;
}

// Appends one atom. String atoms are escaped, ints are not (SafeAtoms only
// touches str values); width/precision then apply to the escaped text as
// Python applies them to the SafeAtoms value.
void render_atom(const Segment &seg, const AccessRecord &rec, int64_t now, std::string &out,
                 Scratch &sc) {
    if (seg.atom == Atom::LITERAL) {
        out.append(seg.text);
        return;
    }
    char num[48];
    bool is_int;
    std::string_view sv = atom_value(seg, rec, now, sc, num, is_int);
    if (seg.width == 0 && seg.precision < 0) {
        if (is_int) out.append(sv);
        else append_escaped(out, sv);
        return;
    }
    sc.padded.clear();
    if (is_int) sc.padded.assign(sv);
    else append_escaped(sc.padded, sv);
    std::string_view v = sc.padded;
    if (seg.precision >= 0 && !is_int && v.size() > static_cast<size_t>(seg.precision))
        v = v.substr(0, static_cast<size_t>(seg.precision));
    size_t pad = v.size() < static_cast<size_t>(seg.width) ? seg.width - v.size() : 0;
    if (seg.left) {
        out.append(v);
        out.append(pad, ' ');
    } else {
        out.append(pad, (seg.zero && is_int) ? '0' : ' ');
        out.append(v);
    }
}

void render(const Format &fmt, const AccessRecord &rec, int64_t now, std::string &out) {
    thread_local Scratch sc;
    for (const Segment &seg : fmt) render_atom(seg, rec, now, out, sc);
}

// --- JSON access log ------------------------------------------------------

const char HEX[] = "0123456789abcdef";

void put_u00(std::string &out, uint8_t c) {
    out.append("\\u00");
    out.push_back(HEX[c >> 4]);
    out.push_back(HEX[c & 15]);
}

// The atoms of a JSON line, in the order glogging.py's atoms() lists them.
struct JsonAtom {
    const char *key;
    Atom atom;
};
const JsonAtom JSON_ATOMS[] = {
    {"h", Atom::REMOTE_ADDR}, {"l", Atom::IDENT},      {"u", Atom::USER},     {"t", Atom::TIME},
    {"r", Atom::REQUEST},     {"s", Atom::STATUS},     {"m", Atom::METHOD},   {"U", Atom::PATH},
    {"q", Atom::QUERY},       {"H", Atom::PROTOCOL},   {"b", Atom::BYTES_STR}, {"B", Atom::BYTES},
    {"f", Atom::REFERER},     {"a", Atom::USER_AGENT}, {"T", Atom::SECONDS},  {"D", Atom::MICROS},
    {"M", Atom::MILLIS},      {"L", Atom::DURATION},   {"p", Atom::PID},
};

// "name": value pairs of headers, names lower-cased; of repeated names
// only the last, as the atoms dict keeps it.
template <typename Headers>
void put_json_headers(std::string &out, const Headers *headers, std::string &name) {
    out.push_back('{');
    bool first = true;
    if (headers) {
        for (size_t k = 0; k < headers->size(); ++k) {
            const auto &h = (*headers)[k];
            bool later = false;
            for (size_t j = k + 1; j < headers->size() && !later; ++j)
                later = iequals((*headers)[j].first, h.first);
            if (later) continue;
            if (!first) out.push_back(',');
            first = false;
            name.clear();
            for (char c : std::string_view(h.first)) name.push_back(ascii_lower(c));
            append_json_string(out, name);
            out.push_back(':');
            append_json_string(out, h.second);
        }
    }
    out.push_back('}');
}

void render_json(const AccessRecord &rec, int64_t now, const std::vector<std::string> &environ_keys,
                 std::string &out) {
    thread_local Scratch sc;
    Segment seg;
    char num[48];
    bool is_int;
    out.push_back('{');
    for (const JsonAtom &a : JSON_ATOMS) {
        seg.atom = a.atom;
        std::string_view v = atom_value(seg, rec, now, sc, num, is_int);
        if (out.size() > 1) out.push_back(',');
        out.push_back('"');
        out.append(a.key);
        out.append("\":");
        if (is_int) out.append(v);
        else append_json_string(out, v);
    }
    out.append(",\"i\":");
    put_json_headers(out, rec.request_headers, sc.padded);
    out.append(",\"o\":");
    put_json_headers(out, rec.response_headers, sc.padded);
    if (!environ_keys.empty()) {
        out.append(",\"e\":{");
        seg.atom = Atom::ENVIRON;
        for (size_t k = 0; k < environ_keys.size(); ++k) {
            seg.text = environ_keys[k];
            std::string_view v = atom_value(seg, rec, now, sc, num, is_int);
            if (k) out.push_back(',');
            append_json_string(out, seg.text);
            out.push_back(':');
            append_json_string(out, v);
        }
        out.push_back('}');
    }
    out.push_back('}');
}

// The {name}e keys a format names, once each: the "e" object of a JSON line.
std::vector<std::string> environ_keys(const Format &fmt) {
    std::vector<std::string> keys;
    for (const Segment &seg : fmt)
        if (seg.atom == Atom::ENVIRON && std::find(keys.begin(), keys.end(), seg.text) == keys.end())
            keys.push_back(seg.text);
    return keys;
}

bool g_access_json = false;

std::vector<std::string> &g_json_keys() {
    static std::vector<std::string> k;
    return k;
}

// --- the Python route -----------------------------------------------------

Route g_route;
thread_local bool t_routing = false;

// Runs fn with t_routing set: what it logs itself is written natively.
template <typename Fn>
void routed(Fn fn) {
    t_routing = true;
    fn();
    t_routing = false;
}

// Replaces the fd of a file target with a fresh open of its path, keeping
// the number: other threads and fds() holders stay valid, and the renamed
// file's descriptor is closed by dup2 itself.
void reopen_target(const std::string &path, int fd) {
    int nfd = open_log_file(path);
    if (nfd < 0) {
        LOG_ERROR("Failed to reopen log file '%s': open: %s", path.c_str(), std::strerror(errno));
        return;
    }
    int r;
    do {
        r = ::dup2(nfd, fd);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        LOG_ERROR("Failed to reopen log file '%s': dup2: %s", path.c_str(), std::strerror(errno));
    } else {
        // dup2 clears FD_CLOEXEC on the target.
        (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::close(nfd);
}

// --- syslog ---------------------------------------------------------------
//
// glogging.py adds a logging.handlers.SysLogHandler to the error logger
// and, unless disable_redirect_access_to_syslog, to the access logger.
// The socket is opened by the master and inherited by the workers, as
// there. Unlike SysLogHandler, a send never waits: a full socket drops the
// line, and a receiver that went away is connected to again at most once
// a second (SysLogHandler blocks, and never reconnects over TCP).

bool g_sys_error = false;   // error lines go to syslog
bool g_sys_access = false;  // access lines too

struct Syslog {
    int facility = 1;
    std::string error_tag, access_tag;  // "gunicorn.<prefix>.error: "
    SyslogAddress addr;
    struct sockaddr_storage sa;         // UDP/TCP, resolved by configure()
    socklen_t salen = 0;
    int fd = -1;
    int type = 0;                       // SOCK_DGRAM or SOCK_STREAM once connected
    bool connected = false;
    int64_t retry_at = 0;
};

Syslog &g_sys() {
    static Syslog s;
    return s;
}

const int64_t SYSLOG_RETRY_MS = 1000;

int64_t mono_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// logging.handlers.SysLogHandler.priority_map, by Level.
const int SYSLOG_PRIORITY[] = {7, 6, 4, 3, 2};

const struct {
    const char *name;
    int code;
} FACILITIES[] = {
    {"auth", 4},    {"authpriv", 10}, {"cron", 9},    {"daemon", 3},  {"ftp", 11},    {"kern", 0},
    {"lpr", 6},     {"mail", 2},      {"news", 7},    {"security", 4}, {"syslog", 5},  {"user", 1},
    {"uucp", 8},    {"local0", 16},   {"local1", 17}, {"local2", 18}, {"local3", 19}, {"local4", 20},
    {"local5", 21}, {"local6", 22},   {"local7", 23},
};

void sys_close(Syslog &s) {
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    s.connected = false;
}

int new_socket(int family, int type) {
    int fd = ::socket(family, type, 0);
    if (fd < 0) return -1;
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) (void)::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return fd;
}

// connect(2) on a non-blocking socket, waiting up to timeout_ms for a TCP
// handshake.
bool connect_wait(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms) {
    int r;
    do {
        r = ::connect(fd, sa, len);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return true;
    if (errno != EINPROGRESS) return false;
    struct pollfd p = {fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) != 1) {
        errno = ETIMEDOUT;
        return false;
    }
    int err = 0;
    socklen_t el = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return false;
    errno = err;
    return err == 0;
}

// SysLogHandler.createSocket / _connect_unixsocket: a unix socket is tried
// as datagram first, then as stream, unless "#dgram" fixed the type.
bool sys_connect(Syslog &s, int timeout_ms) {
    sys_close(s);
    if (s.addr.kind == SyslogAddress::UNIX) {
        struct sockaddr_un sun;
        std::memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        if (s.addr.host.size() >= sizeof sun.sun_path) {
            errno = ENAMETOOLONG;
            return false;
        }
        std::memcpy(sun.sun_path, s.addr.host.data(), s.addr.host.size());
        for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
            if (type == SOCK_STREAM && s.addr.dgram_only) break;
            s.fd = new_socket(AF_UNIX, type);
            if (s.fd < 0) return false;
            if (connect_wait(s.fd, reinterpret_cast<struct sockaddr *>(&sun), sizeof sun, timeout_ms)) {
                s.type = type;
                s.connected = true;
                return true;
            }
            int err = errno;
            sys_close(s);
            errno = err;
        }
        return false;
    }
    s.type = s.addr.kind == SyslogAddress::UDP ? SOCK_DGRAM : SOCK_STREAM;
    s.fd = new_socket(s.sa.ss_family, s.type);
    if (s.fd < 0) return false;
    // UDP is sent with sendto(2) to the resolved address, as SysLogHandler does.
    if (s.type == SOCK_STREAM &&
        !connect_wait(s.fd, reinterpret_cast<struct sockaddr *>(&s.sa), s.salen, timeout_ms)) {
        int err = errno;
        sys_close(s);
        errno = err;
        return false;
    }
    s.connected = true;
    return true;
}

ssize_t sys_write(Syslog &s, const std::string &msg) {
    int flags = MSG_DONTWAIT;
#ifdef MSG_NOSIGNAL
    flags |= MSG_NOSIGNAL;
#endif
    ssize_t w;
    do {
        if (s.addr.kind == SyslogAddress::UDP)
            w = ::sendto(s.fd, msg.data(), msg.size(), flags, reinterpret_cast<struct sockaddr *>(&s.sa), s.salen);
        else
            w = ::send(s.fd, msg.data(), msg.size(), flags);
    } while (w < 0 && errno == EINTR);
    return w;
}

// SysLogHandler.emit: "<PRI>" + format(record) + "\0", where the format
// is "<tag>[%(process)d] %(message)s" and PRI = facility << 3 | priority.
void put_syslog_message(std::string &out, int facility, Level level, std::string_view tag, long pid,
                        std::string_view text) {
    char head[32];
    int n = std::snprintf(head, sizeof head, "<%d>", (facility << 3) | SYSLOG_PRIORITY[static_cast<int>(level)]);
    out.append(head, static_cast<size_t>(n));
    out.append(tag);
    n = std::snprintf(head, sizeof head, "[%ld] ", pid);
    out.append(head, static_cast<size_t>(n));
    out.append(text);
    out.push_back('\0');
}

void sys_send(Level level, const std::string &tag, std::string_view text) {
    Syslog &s = g_sys();
    int saved = errno;
    thread_local std::string msg;  // reused: no allocation per line once warm
    try {
        msg.clear();
        put_syslog_message(msg, s.facility, level, tag, static_cast<long>(getpid()), text);
    } catch (const std::bad_alloc &) {
        errno = saved;
        return;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!s.connected) {
            int64_t now = mono_ms();
            if (now < s.retry_at) break;
            s.retry_at = now + SYSLOG_RETRY_MS;
            if (!sys_connect(s, 50)) break;
        }
        ssize_t w = sys_write(s, msg);
        if (w == static_cast<ssize_t>(msg.size())) break;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EMSGSIZE))
            break;  // full, or too big for a datagram: this line is lost
        if (s.addr.kind == SyslogAddress::UDP) break;
        // The receiver went away, or a stream took part of the line (its
        // framing is lost): connect again and send the line once more, as
        // SysLogHandler.emit does for unix sockets.
        sys_close(s);
        if (w > 0) break;
    }
    errno = saved;
}

// statsd.py counts calls to critical, error, warning and exception, at any
// log level; an error that carries a traceback came from exception().
void count_call(Level level, std::string_view text) {
    if (level < Level::WARNING || !statsd::enabled()) return;
    const char *name = "warning";
    if (level == Level::CRITICAL) name = "critical";
    else if (level == Level::ERROR)
        name = text.find("\nTraceback (most recent call last):\n") != std::string_view::npos ? "exception" : "error";
    statsd::log_call(name);
}

// What configure() takes from the configuration for syslog.
struct SyslogSetup {
    bool on = false, access = false;
    Syslog sys;
};

void resolve(Syslog &s) {
    struct addrinfo hints, *res = nullptr;
    std::memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = s.addr.kind == SyslogAddress::UDP ? SOCK_DGRAM : SOCK_STREAM;
    std::string port = std::to_string(s.addr.port);
    int rc = ::getaddrinfo(s.addr.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res)
        throw std::runtime_error("syslog_addr: cannot resolve '" + s.addr.host + "': " + gai_strerror(rc));
    std::memcpy(&s.sa, res->ai_addr, res->ai_addrlen);
    s.salen = res->ai_addrlen;
    ::freeaddrinfo(res);
}

SyslogSetup syslog_setup(const Config &cfg) {
    SyslogSetup out;
    if (!cfg.syslog) return out;
    Syslog &s = out.sys;
    s.facility = syslog_facility(cfg.syslog_facility);
    if (s.facility < 0) throw std::runtime_error("unknown facility name: '" + cfg.syslog_facility + "'");
    s.addr = parse_syslog_address(cfg.syslog_addr);
    if (s.addr.kind != SyslogAddress::UNIX) resolve(s);
    // _set_syslog_handler: cfg.syslog_prefix or cfg.proc_name.replace(":", ".")
    std::string prefix = cfg.syslog_prefix;
    if (prefix.empty()) {
        prefix = cfg.name();
        for (char &c : prefix)
            if (c == ':') c = '.';
    }
    s.error_tag = "gunicorn." + prefix + ".error: ";
    s.access_tag = "gunicorn." + prefix + ".access: ";
    out.on = true;
    out.access = !cfg.disable_redirect_access_to_syslog;
    return out;
}

std::string address_text(const SyslogAddress &a) {
    if (a.kind == SyslogAddress::UNIX) return "unix://" + a.host;
    return std::string(a.kind == SyslogAddress::UDP ? "udp://" : "tcp://") + a.host + ":" + std::to_string(a.port);
}

}  // namespace

SyslogAddress parse_syslog_address(const std::string &addr_in) {
    SyslogAddress a;
    std::string addr = addr_in;
    if (addr.rfind("unix://", 0) == 0) {
        a.kind = SyslogAddress::UNIX;
        size_t hash = addr.find('#');
        if (hash != std::string::npos) {
            a.dgram_only = addr.compare(hash + 1, std::string::npos, "dgram") == 0;
            addr.resize(hash);
        }
        a.host = addr.substr(7);
        // gunicorn takes "unix://" and then fails to connect, silently.
        if (a.host.empty()) throw std::runtime_error("invalid syslog address: '" + addr_in + "'");
        return a;
    }
    if (addr.rfind("udp://", 0) == 0) {
        a.kind = SyslogAddress::UDP;
    } else if (addr.rfind("tcp://", 0) == 0) {
        a.kind = SyslogAddress::TCP;
    } else {
        throw std::runtime_error("invalid syslog address: '" + addr_in + "'");
    }
    addr = addr.substr(6);
    size_t open = addr.find('['), close = addr.find(']');
    if (open != std::string::npos && close != std::string::npos) {
        std::string before = addr.substr(0, addr.find(']'));
        a.host = before.empty() ? "" : before.substr(1);
    } else if (addr.find(':') != std::string::npos) {
        a.host = addr.substr(0, addr.find(':'));
    } else {
        a.host = addr;
    }
    for (char &c : a.host) c = ascii_lower(c);
    // gunicorn defaults only an empty address to localhost; an empty host
    // before ":PORT" would not resolve there.
    if (a.host.empty()) a.host = "localhost";
    if (close != std::string::npos) addr = addr.substr(addr.rfind(']') + 1);
    size_t colon = addr.find(':');
    if (colon != std::string::npos) {
        std::string port = addr.substr(colon + 1);
        bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
        if (!digits || std::stoi(port) > 65535) throw std::runtime_error("'" + port + "' is not a valid port number.");
        a.port = std::stoi(port);
    }
    return a;
}

int syslog_facility(std::string_view name) {
    for (const auto &f : FACILITIES)
        if (iequals(name, f.name)) return f.code;
    return -1;
}

std::string syslog_message(int facility, Level level, std::string_view tag, long pid, std::string_view text) {
    std::string out;
    put_syslog_message(out, facility, level, tag, pid, text);
    return out;
}

Level parse_level(std::string_view name) {
    // Logger.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
    for (int i = 0; i < 5; ++i)
        if (iequals(name, LEVEL_NAMES[i])) return static_cast<Level>(i);
    return Level::INFO;
}

void configure(const std::string &errorlog, Level level, const std::string &accesslog,
               const std::string &access_format) {
    tzset();  // pick up TZ as Python's time module does at start-up
    std::string format_error;
    Format fmt = compile(access_format, &format_error);

    // Open everything before touching the current state, so a failure
    // leaves the previous configuration (and its fds) working.
    int efd = STDERR_FILENO;
    bool eown = false;
    if (errorlog != "-") {
        efd = open_log_or_throw(errorlog);
        eown = true;
    }
    int afd = -1;
    bool aown = false;
    if (accesslog == "-") {
        afd = STDOUT_FILENO;
    } else if (!accesslog.empty()) {
        try {
            afd = open_log_or_throw(accesslog);
        } catch (...) {
            if (eown) ::close(efd);
            throw;
        }
        aown = true;
    }

    int old_efd = g_err_fd, old_afd = g_acc_fd;
    bool old_eown = g_err_owned, old_aown = g_acc_owned;
    err_path() = errorlog;
    acc_path() = accesslog;
    g_json_keys() = environ_keys(fmt);
    g_format() = std::move(fmt);
    g_level = static_cast<int>(level);
    g_err_fd = efd;
    g_err_owned = eown;
    g_acc_fd = afd;
    g_acc_owned = aown;
    if (old_eown) ::close(old_efd);
    if (old_aown) ::close(old_afd);

    if (!format_error.empty() && afd >= 0) {
        LOG_WARNING("access_log_format: %s; the malformed part is logged as is: %s",
                    format_error.c_str(), access_format.c_str());
    }
}

void check(const Config &cfg) {
    (void)syslog_setup(cfg);
    pylog::check(cfg);
}

void configure(const Config &cfg) {
    SyslogSetup next = syslog_setup(cfg);
    pylog::check(cfg);
    configure(cfg.errorlog, cfg.loglevel, cfg.accesslog, cfg.access_log_format);
    Syslog &s = g_sys();
    sys_close(s);
    g_sys_error = g_sys_access = false;
    s = next.sys;
    if (next.on) {
        bool ok = sys_connect(s, 1000);
        int err = errno;
        s.retry_at = mono_ms() + SYSLOG_RETRY_MS;
        g_sys_error = true;
        g_sys_access = next.access;
        if (!ok)
            LOG_WARNING("syslog: cannot connect to %s: %s; trying again when logging", address_text(s.addr).c_str(),
                        std::strerror(err));
    }
    statsd::configure(cfg.statsd_host, cfg.statsd_port, cfg.statsd_prefix, cfg.dogstatsd_tags,
                      cfg.enable_backlog_metric);
    g_access_json = cfg.access_log_json;
    // The Python loggers, gunicorn.error and gunicorn.access, last: their
    // handlers write to the targets opened above.
    pylog::configure(cfg);
}

void set_access_json(bool on) { g_access_json = on; }

void set_route(const Route &route) { g_route = route; }

void reopen() {
    if (g_route.reopen && !t_routing) {
        routed(g_route.reopen);
        return;
    }
    reopen_files();
}

void reopen_files() {
    // gunicorn reopen_files(): every FileHandler reopens its path; the
    // stream handlers ("-") are left alone.
    if (g_err_owned) reopen_target(err_path(), g_err_fd);
    if (g_acc_owned) reopen_target(acc_path(), g_acc_fd);
}

std::vector<int> fds() {
    std::vector<int> v;
    if (g_err_owned) v.push_back(g_err_fd);
    if (g_acc_owned) v.push_back(g_acc_fd);
    return v;
}

void chown_files(uid_t uid, gid_t gid) {
    // As glogging.py _set_handler: errors ignored ("/dev/null" as a target).
    if (g_err_owned) (void)!::fchown(g_err_fd, uid, gid);
    if (g_acc_owned) (void)!::fchown(g_acc_fd, uid, gid);
}

bool enabled(Level level) {
    return static_cast<int>(level) >= g_level;
}

// The Python route of an error line (write() and write_text()).
void route_error(Level level, std::string_view text) {
    int saved = errno;
    routed([&] { g_route.error(level, text); });
    errno = saved;
}

void write(Level level, const char *fmt, ...) {
    count_call(level, {});
    if (!enabled(level)) return;
    int saved = errno;  // callers log, then may still inspect errno
    if (g_route.error && !t_routing) {
        va_list ap;
        va_start(ap, fmt);
        std::string text;
        char buf[1024];
        int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (n >= 0 && static_cast<size_t>(n) < sizeof buf) {
            text.assign(buf, static_cast<size_t>(n));
        } else if (n >= 0) {
            text.resize(static_cast<size_t>(n) + 1);
            va_start(ap, fmt);
            std::vsnprintf(&text[0], text.size(), fmt, ap);
            va_end(ap);
            text.pop_back();
        } else {
            text = fmt;
        }
        errno = saved;
        route_error(level, text);
        errno = saved;
        return;
    }
    char stack[4096];
    size_t plen = format_prefix(level, stack);
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = std::vsnprintf(stack + plen, sizeof stack - plen, fmt, ap);
    va_end(ap);
    if (n < 0) {
        // Only an invalid conversion gets here; show the format rather
        // than nothing.
        n = std::snprintf(stack + plen, sizeof stack - plen, "%s", fmt);
        if (n < 0) n = 0;
    }
    size_t need = plen + static_cast<size_t>(n) + 1;
    if (need <= sizeof stack) {
        stack[need - 1] = '\n';
        emit(g_err_fd, stack, need);
        if (g_sys_error) sys_send(level, g_sys().error_tag, std::string_view(stack + plen, need - 1 - plen));
    } else {
        std::unique_ptr<char[]> heap(new (std::nothrow) char[need + 1]);
        if (heap) {
            std::memcpy(heap.get(), stack, plen);
            std::vsnprintf(heap.get() + plen, need + 1 - plen, fmt, ap2);
            heap[need - 1] = '\n';
            emit(g_err_fd, heap.get(), need);
            if (g_sys_error) sys_send(level, g_sys().error_tag, std::string_view(heap.get() + plen, need - 1 - plen));
        } else {
            // Out of memory: the head of the line, visibly marked.
            std::memcpy(stack + sizeof stack - 5, "...\n", 4);
            emit(g_err_fd, stack, sizeof stack - 1);
        }
    }
    va_end(ap2);
    errno = saved;
}

void write_text(Level level, std::string_view text) {
    count_call(level, text);
    if (!enabled(level)) return;
    // logging.Formatter drops the traceback's final newline and the
    // handler adds its own terminator.
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (g_route.error && !t_routing) {
        route_error(level, text);
        return;
    }
    write_line(level, text, true);
}

void write_line(Level level, std::string_view text, bool prefixed) {
    int saved = errno;
    if (!prefixed) {
        if (g_sys_error) sys_send(level, g_sys().error_tag, text);
        emit_line(g_err_fd, text);
        errno = saved;
        return;
    }
    if (g_sys_error) sys_send(level, g_sys().error_tag, text);
    char stack[4096];
    size_t plen = format_prefix(level, stack);
    size_t need = plen + text.size() + 1;
    char *buf = stack;
    std::unique_ptr<char[]> heap;
    if (need > sizeof stack) {
        heap.reset(new (std::nothrow) char[need]);
        if (heap) {
            std::memcpy(heap.get(), stack, plen);
            buf = heap.get();
        } else {
            // Out of memory: write prefix + text in two calls rather than
            // drop a traceback; interleaving is the lesser harm here.
            emit(g_err_fd, stack, plen);
            emit(g_err_fd, text.data(), text.size());
            emit(g_err_fd, "\n", 1);
            errno = saved;
            return;
        }
    }
    std::memcpy(buf + plen, text.data(), text.size());
    buf[need - 1] = '\n';
    emit(g_err_fd, buf, need);
    errno = saved;
}

void write_raw(std::string_view text) {
    int saved = errno;
    emit(g_err_fd, text.data(), text.size());
    errno = saved;
}

bool access_enabled() {
    // glogging.py access_log_enabled, and statsd.py's access() metrics;
    // a Python Logger's access() runs for every request, as in gunicorn.
    return g_acc_fd >= 0 || g_sys_access || statsd::enabled() || g_route.access;
}

void write_access_line(std::string_view text) {
    int saved = errno;
    if (g_sys_access) sys_send(Level::INFO, g_sys().access_tag, text);
    if (g_acc_fd >= 0) emit_line(g_acc_fd, text);
    errno = saved;
}

void access(const AccessRecord &rec) {
    int saved = errno;
    if (g_route.access && !t_routing) {
        routed([&] { g_route.access(rec); });
    } else if (g_acc_fd >= 0 || g_sys_access) {
        // One buffer per thread, reused: no allocation per request once warm.
        thread_local std::string line;
        try {
            line.clear();
            int64_t now = static_cast<int64_t>(::time(nullptr));
            if (g_access_json) render_json(rec, now, g_json_keys(), line);
            else render(g_format(), rec, now, line);
            if (g_sys_access) sys_send(Level::INFO, g_sys().access_tag, line);
            line.push_back('\n');
            if (g_acc_fd >= 0) emit(g_acc_fd, line.data(), line.size());
        } catch (const std::bad_alloc &) {
            // No exceptions in the request path: an access line is droppable.
        }
    }
    statsd::request(rec.status, rec.duration_us);
    errno = saved;
}

std::string format_access_json(const AccessRecord &rec, int64_t now_unix_seconds,
                               const std::vector<std::string> &environ_keys) {
    std::string out;
    render_json(rec, now_unix_seconds, environ_keys, out);
    return out;
}

void append_json_string(std::string &out, std::string_view v) {
    out.push_back('"');
    size_t start = 0;
    for (size_t i = 0; i < v.size();) {
        auto c = static_cast<uint8_t>(v[i]);
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
            size_t len = c < 0x80 ? 1 : utf8_seq_len(v, i);
            if (len) {
                i += len;
                continue;
            }
        }
        out.append(v.data() + start, i - start);
        switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default: put_u00(out, c); break;
        }
        start = ++i;
    }
    out.append(v.data() + start, v.size() - start);
    out.push_back('"');
}

std::string format_access(std::string_view format, const AccessRecord &rec,
                          int64_t now_unix_seconds) {
    std::string out;
    render(compile(format, nullptr), rec, now_unix_seconds, out);
    return out;
}

}  // namespace cunicorn::log
