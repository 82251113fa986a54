// Log module: access-line atoms against glogging.py's atoms()/SafeAtoms,
// and the error-line shape, level filter and reopen through real files.
#include "cunicorn/log.h"
#include "harness.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace log = cunicorn::log;

namespace {

using ReqHeaders = std::vector<std::pair<std::string_view, std::string_view>>;
using RespHeaders = std::vector<std::pair<std::string, std::string>>;

const char *const DEFAULT_FORMAT =
    "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

// 2026-11-28 12:28:45 UTC.
const int64_t NOW = 1795868925;

void use_utc() {
    setenv("TZ", "UTC", 1);
    tzset();
}

std::string read_file(const std::string &path) {
    std::string out;
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
}

std::vector<std::string> lines_of(const std::string &s) {
    std::vector<std::string> v;
    size_t start = 0;
    while (start < s.size()) {
        size_t nl = s.find('\n', start);
        if (nl == std::string::npos) {
            v.push_back(s.substr(start));
            break;
        }
        v.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    return v;
}

// A fresh directory per test so reruns never see stale files.
std::string temp_dir() {
    char tmpl[] = "/tmp/cunicorn-log-XXXXXX";
    const char *d = mkdtemp(tmpl);
    return d ? d : "/tmp";
}

// Puts logging back where the rest of the suite expects it.
void reset_logging() {
    log::configure("-", log::Level::INFO, "", DEFAULT_FORMAT);
}

bool digits(const std::string &s, size_t pos, size_t n) {
    if (pos + n > s.size()) return false;
    for (size_t i = 0; i < n; ++i)
        if (s[pos + i] < '0' || s[pos + i] > '9') return false;
    return true;
}

// "[YYYY-mm-dd HH:MM:SS +zzzz] [pid] [LEVEL] message", exactly.
bool is_error_line(const std::string &line, const char *level, const std::string &message) {
    const std::string &s = line;
    if (s.size() < 28 || s[0] != '[') return false;
    if (!digits(s, 1, 4) || s[5] != '-' || !digits(s, 6, 2) || s[8] != '-' || !digits(s, 9, 2) ||
        s[11] != ' ' || !digits(s, 12, 2) || s[14] != ':' || !digits(s, 15, 2) || s[17] != ':' ||
        !digits(s, 18, 2) || s[20] != ' ' || (s[21] != '+' && s[21] != '-') || !digits(s, 22, 4) ||
        s[26] != ']')
        return false;
    std::string rest = "[" + std::to_string(getpid()) + "] [" + level + "] " + message;
    return s.compare(27, std::string::npos, " " + rest) == 0;
}

struct Request {
    ReqHeaders req;
    RespHeaders resp;
    log::AccessRecord rec;

    Request() {
        rec.remote_addr = "127.0.0.1";
        rec.method = "GET";
        rec.raw_uri = "/a%20b?x=1";
        rec.path_info = "/a b";
        rec.query = "x=1";
        rec.protocol = "HTTP/1.1";
        rec.status = "200 OK";
        rec.bytes_sent = 1234;
        rec.duration_us = 1234567;
        rec.request_headers = &req;
        rec.response_headers = &resp;
    }
};

std::string fmt(const Request &r, const char *format, int64_t now = NOW) {
    return log::format_access(format, r.rec, now);
}

std::string environ_stub(void *, std::string_view key) {
    // Case-insensitive, as the header contract asks of the real lookup.
    std::string k;
    for (char c : key) k.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    if (k == "REMOTE_PORT") return "54321";
    if (k == "QUOTED") return "say \"hi\"";
    return "";
}

}  // namespace

// Must stay first: it checks the state before any configure() call.
TEST(log_before_configure_goes_to_stderr_at_info) {
    CHECK(log::enabled(log::Level::INFO));
    CHECK(!log::enabled(log::Level::DEBUG));
    CHECK(!log::access_enabled());
    CHECK(log::fds().empty());

    std::string dir = temp_dir();
    std::string path = dir + "/stderr.log";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    LOG_INFO("visible %d", 1);
    LOG_DEBUG("hidden");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    auto lines = lines_of(read_file(path));
    CHECK_EQ(lines.size(), 1u);
    if (!lines.empty()) CHECK(is_error_line(lines[0], "INFO", "visible 1"));
    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST(log_parse_level) {
    CHECK(log::parse_level("debug") == log::Level::DEBUG);
    CHECK(log::parse_level("INFO") == log::Level::INFO);
    CHECK(log::parse_level("Warning") == log::Level::WARNING);
    CHECK(log::parse_level("error") == log::Level::ERROR);
    CHECK(log::parse_level("CRITICAL") == log::Level::CRITICAL);
    CHECK(log::parse_level("warn") == log::Level::INFO);
    CHECK(log::parse_level("") == log::Level::INFO);
    CHECK(log::parse_level("nonsense") == log::Level::INFO);
}

TEST(log_access_default_format) {
    use_utc();
    Request r;
    r.req = {{"Host", "example.com"},
             {"Referer", "http://ref/"},
             {"User-Agent", "curl/8.0"},
             {"Authorization", "Basic dXNlcjpwYXNz"}};
    CHECK_EQ(fmt(r, DEFAULT_FORMAT),
             std::string("127.0.0.1 - user [28/Nov/2026:12:28:45 +0000] "
                         "\"GET /a%20b?x=1 HTTP/1.1\" 200 1234 \"http://ref/\" \"curl/8.0\""));
    // Without the optional headers every missing atom is '-'.
    r.req.clear();
    CHECK_EQ(fmt(r, DEFAULT_FORMAT),
             std::string("127.0.0.1 - - [28/Nov/2026:12:28:45 +0000] "
                         "\"GET /a%20b?x=1 HTTP/1.1\" 200 1234 \"-\" \"-\""));
}

TEST(log_access_every_atom) {
    use_utc();
    Request r;
    r.req = {{"referer", "R"}, {"USER-AGENT", "UA"}};
    r.resp = {{"Content-Type", "text/plain"}};
    r.rec.environ_lookup = environ_stub;
    std::string pid = "<" + std::to_string(getpid()) + ">";
    CHECK_EQ(fmt(r, "%(h)s|%(l)s|%(u)s|%(t)s|%(r)s|%(s)s|%(m)s|%(U)s|%(q)s|%(H)s"),
             std::string("127.0.0.1|-|-|[28/Nov/2026:12:28:45 +0000]|GET /a%20b?x=1 HTTP/1.1"
                         "|200|GET|/a b|x=1|HTTP/1.1"));
    CHECK_EQ(fmt(r, "%(b)s|%(B)s|%(f)s|%(a)s|%(T)s|%(D)s|%(M)s|%(L)s|%(p)s"),
             "1234|1234|R|UA|1|1234567|1234|1.234567|" + pid);
    CHECK_EQ(fmt(r, "%({content-type}o)s|%({remote_port}e)s|%({missing}e)s"),
             std::string("text/plain|54321|-"));

    // Zero bytes is "0", not '-' (gunicorn tests resp.sent is not None).
    r.rec.bytes_sent = 0;
    r.rec.duration_us = 0;
    CHECK_EQ(fmt(r, "%(b)s %(B)s %(T)s %(D)s %(M)s %(L)s"), std::string("0 0 0 0 0 0.000000"));
    r.rec.duration_us = 999;
    CHECK_EQ(fmt(r, "%(M)s %(L)s"), std::string("0 0.000999"));
    // timedelta .seconds/.microseconds drop whole days.
    r.rec.duration_us = 86400LL * 1000000 + 2500000;
    CHECK_EQ(fmt(r, "%(T)s %(D)s %(M)s %(L)s"), std::string("2 2500000 2500 2.500000"));

    // s is the first token of the status string; an empty one is '-'.
    r.rec.status = "404";
    CHECK_EQ(fmt(r, "%(s)s"), std::string("404"));
    r.rec.status = " 503\tService Unavailable";
    CHECK_EQ(fmt(r, "%(s)s"), std::string("503"));
    r.rec.status = "";
    CHECK_EQ(fmt(r, "%(s)s"), std::string("-"));

    // An empty REMOTE_ADDR (unix socket) stays empty, as in gunicorn.
    r.rec.remote_addr = "";
    CHECK_EQ(fmt(r, "[%(h)s]"), std::string("[]"));
    // No header lists, no callback: nothing crashes, all '-'.
    log::AccessRecord bare;
    CHECK_EQ(log::format_access("%(f)s %(a)s %(u)s %({x}i)s %({x}o)s %({x}e)s", bare, NOW),
             std::string("- - - - - -"));
}

TEST(log_access_time_zone_and_cache) {
    // POSIX TZ strings need no tzdata; "IST-5:30" is UTC+05:30.
    setenv("TZ", "IST-5:30", 1);
    tzset();
    Request r;
    CHECK_EQ(fmt(r, "%(t)s", NOW + 7), std::string("[28/Nov/2026:17:58:52 +0530]"));
    setenv("TZ", "EST5", 1);
    tzset();
    CHECK_EQ(fmt(r, "%(t)s", 1704067199), std::string("[31/Dec/2023:18:59:59 -0500]"));
    // The per-second cache must notice the next second.
    CHECK_EQ(fmt(r, "%(t)s", 1704067200), std::string("[31/Dec/2023:19:00:00 -0500]"));
    CHECK_EQ(fmt(r, "%(t)s", 1704067200), std::string("[31/Dec/2023:19:00:00 -0500]"));
    use_utc();
}

TEST(log_access_escaping) {
    use_utc();
    Request r;
    r.rec.raw_uri = "/\"q\"";
    r.req = {{"User-Agent", "a \"quoted\" agent"}, {"X-Q", "\""}};
    r.resp = {{"X-R", "r\""}};
    r.rec.environ_lookup = environ_stub;
    // Literal quotes in the format are not touched, atom quotes are.
    CHECK_EQ(fmt(r, "\"%(a)s\""), std::string("\"a \\\"quoted\\\" agent\""));
    CHECK_EQ(fmt(r, "%(r)s"), std::string("GET /\\\"q\\\" HTTP/1.1"));
    CHECK_EQ(fmt(r, "%({x-q}i)s %({x-r}o)s %({quoted}e)s"),
             std::string("\\\" r\\\" say \\\"hi\\\""));
    // Width and precision apply to the escaped value, as Python does.
    CHECK_EQ(fmt(r, "[%({x-q}i)4s]"), std::string("[  \\\"]"));
    CHECK_EQ(fmt(r, "[%({x-q}i).1s]"), std::string("[\\]"));
}

TEST(log_access_basic_auth) {
    use_utc();
    Request r;
    auto user = [&](const char *auth) {
        r.req = {{"Authorization", auth}};
        return fmt(r, "%(u)s");
    };
    CHECK_EQ(user("Basic dXNlcjpwYXNz"), std::string("user"));
    CHECK_EQ(user("basic dXNlcjpwYXNz"), std::string("user"));
    CHECK_EQ(user("BASIC   dXNlcjpwYXNz  "), std::string("user"));
    CHECK_EQ(user("Basic dX-Nl_cjp wYXNz"), std::string("user"));  // junk skipped
    CHECK_EQ(user("Basic dXNlcjpwYXNz===="), std::string("user"));
    CHECK_EQ(user("Basic dXM=ZXI6"), std::string("us"));  // a pad ends the input
    CHECK_EQ(user("Basic dXNlcg=x="), std::string("user\x0c"));  // a lone '=' does not
    CHECK_EQ(user("Basic YWxpY2U="), std::string("alice"));  // no colon: all of it
    CHECK_EQ(user("Basic YSJiOmM="), std::string("a\\\"b"));  // a"b:c, escaped
    CHECK_EQ(user("Basic Y2Fmw6k6cHc="), std::string("caf\xc3\xa9"));
    // Invalid base64, invalid UTF-8, empty name, other schemes: '-'.
    CHECK_EQ(user("Basic dXNlcjpwYXN"), std::string("-"));   // incorrect padding
    CHECK_EQ(user("Basic a"), std::string("-"));             // 1 more than 4n
    CHECK_EQ(user("Basic !!!"), std::string("-"));           // decodes to nothing
    CHECK_EQ(user("Basic /zp4"), std::string("-"));          // b"\xff:x"
    CHECK_EQ(user("Basic Om5vdXNlcg=="), std::string("-"));  // ":nouser"
    CHECK_EQ(user("Basic"), std::string("-"));
    CHECK_EQ(user("Basic\tdXNlcjpwYXNz"), std::string("-"));  // split(" ", 1) needs a space
    CHECK_EQ(user("Bearer dXNlcjpwYXNz"), std::string("-"));
    CHECK_EQ(user("Basi dXNlcjpwYXNz"), std::string("-"));
    r.req = {{"authorization", "Basic dXNlcjpwYXNz"}};
    CHECK_EQ(fmt(r, "%(u)s"), std::string("user"));
}

TEST(log_access_header_lookups) {
    use_utc();
    Request r;
    r.req = {{"x-forwarded-FOR", "10.0.0.1"}, {"X-Dup", "one"}, {"x-dup", "two"},
             {"Referer", "a"}, {"REFERER", "b"}};
    r.resp = {{"Content-Type", "text/html"}, {"Set-Cookie", "a=1"}, {"set-cookie", "b=2"}};
    CHECK_EQ(fmt(r, "%({X-Forwarded-For}i)s"), std::string("10.0.0.1"));
    CHECK_EQ(fmt(r, "%({x-forwarded-for}i)s"), std::string("10.0.0.1"));
    // SafeAtoms lower-cases the whole key, suffix included.
    CHECK_EQ(fmt(r, "%({X-FORWARDED-FOR}I)s %({CONTENT-type}O)s"),
             std::string("10.0.0.1 text/html"));
    // {name}i/o: dict.update keeps the last duplicate.
    CHECK_EQ(fmt(r, "%({x-dup}i)s %({set-cookie}o)s"), std::string("two b=2"));
    // f/a come from the environ, where duplicates are joined with ','.
    CHECK_EQ(fmt(r, "%(f)s"), std::string("a,b"));
    CHECK_EQ(fmt(r, "%({absent}i)s %({absent}o)s"), std::string("- -"));
    // Request headers are not response headers and vice versa.
    CHECK_EQ(fmt(r, "%({content-type}i)s %({x-dup}o)s"), std::string("- -"));
}

TEST(log_access_percent_and_unknown_atoms) {
    use_utc();
    Request r;
    CHECK_EQ(fmt(r, "100%% %(m)s"), std::string("100% GET"));
    CHECK_EQ(fmt(r, "%%(m)s"), std::string("%(m)s"));
    CHECK_EQ(fmt(r, "%(zz)s %(x)s %(M)s %(reqId)s %(HH)s %()s"),
             std::string("- - 1234 - - -"));
    // Single-letter atoms are case-sensitive: %(S)s is not %(s)s.
    CHECK_EQ(fmt(r, "%(S)s %(h)s"), std::string("- 127.0.0.1"));
    // Malformed braces: not a header atom, so '-'.
    CHECK_EQ(fmt(r, "%({x}z)s %({x)s %(x}i)s"), std::string("- - -"));
    // Any conversion letter renders like s; width, '-' and precision apply.
    CHECK_EQ(fmt(r, "%(T)d %(D)i %(m)r %(B)x"), std::string("1 1234567 GET 1234"));
    CHECK_EQ(fmt(r, "[%(m)5s][%(m)-5s][%(m).1s][%(B)06d][%(m)06s]"),
             std::string("[  GET][GET  ][G][001234][   GET]"));
    // Nested parentheses belong to the key (Python's rule).
    CHECK_EQ(fmt(r, "%(a(b)c)s|"), std::string("-|"));
    // What Python rejects is kept literally instead of losing the line.
    CHECK_EQ(fmt(r, "%(m)s %(h"), std::string("GET %(h"));
    CHECK_EQ(fmt(r, "%(m)s 50%"), std::string("GET 50%"));
    CHECK_EQ(fmt(r, "%(m)y %(m)s"), std::string("%(m)y GET"));
    CHECK_EQ(fmt(r, "%s %(m)s"), std::string("%s GET"));
    CHECK_EQ(fmt(r, "%(m)*s|%(m)"), std::string("%(m)*s|%(m)"));
    CHECK_EQ(fmt(r, ""), std::string(""));
    CHECK_EQ(fmt(r, "plain text"), std::string("plain text"));
}

TEST(log_error_file_format_and_level) {
    std::string dir = temp_dir();
    std::string path = dir + "/error.log";
    log::configure(path, log::Level::WARNING, "", DEFAULT_FORMAT);
    CHECK(!log::enabled(log::Level::INFO));
    CHECK(log::enabled(log::Level::WARNING));
    auto fds = log::fds();
    CHECK_EQ(fds.size(), 1u);
    if (!fds.empty()) CHECK((fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
    struct stat st;
    CHECK(stat(path.c_str(), &st) == 0);
    CHECK_EQ(st.st_mode & 0777 & ~0022u, 0644u & ~0022u);

    errno = EAGAIN;
    LOG_DEBUG("debug %d", 1);
    LOG_INFO("info %d", 2);
    LOG_WARNING("warning %s", "three");
    LOG_ERROR("Worker (pid:%d) exited with code %d.", 42, 3);
    LOG_CRITICAL("WORKER TIMEOUT (pid:%d)", 42);
    CHECK_EQ(errno, EAGAIN);  // logging must not clobber errno
    log::write_text(log::Level::ERROR,
                    "Error handling request GET /\nTraceback (most recent call last):\n"
                    "  File \"app.py\", line 1\nValueError: x\n");
    log::write_text(log::Level::INFO, "filtered\ntext");
    log::write_text(log::Level::WARNING, "no newline");

    auto lines = lines_of(read_file(path));
    CHECK_EQ(lines.size(), 8u);
    if (lines.size() == 8) {
        CHECK(is_error_line(lines[0], "WARNING", "warning three"));
        CHECK(is_error_line(lines[1], "ERROR", "Worker (pid:42) exited with code 3."));
        CHECK(is_error_line(lines[2], "CRITICAL", "WORKER TIMEOUT (pid:42)"));
        CHECK(is_error_line(lines[3], "ERROR", "Error handling request GET /"));
        CHECK_EQ(lines[4], std::string("Traceback (most recent call last):"));
        CHECK_EQ(lines[5], std::string("  File \"app.py\", line 1"));
        CHECK_EQ(lines[6], std::string("ValueError: x"));
        CHECK(is_error_line(lines[7], "WARNING", "no newline"));
    }
    std::string all = read_file(path);
    CHECK(!all.empty() && all.back() == '\n');

    // DEBUG lets everything through.
    log::configure(path, log::Level::DEBUG, "", DEFAULT_FORMAT);
    LOG_DEBUG("now visible");
    lines = lines_of(read_file(path));
    CHECK(!lines.empty() && is_error_line(lines.back(), "DEBUG", "now visible"));

    reset_logging();
    CHECK(log::fds().empty());
    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST(log_error_long_lines_are_whole) {
    std::string dir = temp_dir();
    std::string path = dir + "/long.log";
    log::configure(path, log::Level::INFO, "", DEFAULT_FORMAT);
    std::string big(10000, 'x');
    big[0] = 'A';
    big.back() = 'Z';
    LOG_INFO("%s", big.c_str());
    std::string text = "head\n" + std::string(9000, 'y') + "\ntail";
    log::write_text(log::Level::ERROR, text);
    // Just around the stack buffer's edge.
    for (size_t n = 4000; n < 4100; ++n) LOG_INFO("%s", std::string(n, 'e').c_str());
    auto lines = lines_of(read_file(path));
    CHECK_EQ(lines.size(), 104u);
    if (lines.size() == 104) {
        CHECK(is_error_line(lines[0], "INFO", big));
        CHECK(is_error_line(lines[1], "ERROR", "head"));
        CHECK_EQ(lines[2], std::string(9000, 'y'));
        CHECK_EQ(lines[3], std::string("tail"));
        for (size_t n = 4000; n < 4100; ++n)
            CHECK(is_error_line(lines[4 + n - 4000], "INFO", std::string(n, 'e')));
    }
    reset_logging();
    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST(log_error_lines_never_interleave_across_processes) {
    std::string dir = temp_dir();
    std::string path = dir + "/shared.log";
    log::configure(path, log::Level::INFO, "", DEFAULT_FORMAT);
    const int CHILDREN = 4, LINES = 200;
    std::vector<pid_t> kids;
    for (int c = 0; c < CHILDREN; ++c) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < LINES; ++i) {
                std::string body(static_cast<size_t>(100 + (i * 37) % 6000), static_cast<char>('a' + c));
                LOG_INFO("%s", body.c_str());
            }
            _exit(0);
        }
        if (pid > 0) kids.push_back(pid);
    }
    for (pid_t k : kids) {
        int status = 0;
        waitpid(k, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    auto lines = lines_of(read_file(path));
    CHECK_EQ(lines.size(), static_cast<size_t>(CHILDREN * LINES));
    size_t bad = 0;
    for (const auto &l : lines) {
        // Each line: prefix, then one child's letter repeated, nothing else.
        size_t p = l.find("[INFO] ");
        if (p == std::string::npos) {
            ++bad;
            continue;
        }
        std::string body = l.substr(p + 7);
        if (body.empty() || body.find_first_not_of(body[0]) != std::string::npos) ++bad;
    }
    CHECK_EQ(bad, 0u);
    reset_logging();
    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST(log_access_file) {
    use_utc();
    std::string dir = temp_dir();
    std::string path = dir + "/access.log";
    log::configure("-", log::Level::INFO, path, "%(m)s %(U)s %(s)s \"%(a)s\"");
    CHECK(log::access_enabled());
    CHECK_EQ(log::fds().size(), 1u);
    Request r;
    r.req = {{"User-Agent", "x\"y"}};
    log::access(r.rec);
    r.rec.status = "404 Not Found";
    log::access(r.rec);
    CHECK_EQ(read_file(path), std::string("GET /a b 200 \"x\\\"y\"\nGET /a b 404 \"x\\\"y\"\n"));

    // "" disables the access log; access() is then a no-op.
    log::configure("-", log::Level::INFO, "", DEFAULT_FORMAT);
    CHECK(!log::access_enabled());
    log::access(r.rec);
    CHECK_EQ(lines_of(read_file(path)).size(), 2u);
    reset_logging();
    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST(log_configure_unwritable_path_throws) {
    std::string dir = temp_dir();
    std::string good = dir + "/good.log";
    log::configure(good, log::Level::INFO, "", DEFAULT_FORMAT);
    auto before = log::fds();

    std::string bad = dir + "/no/such/dir/error.log";
    bool threw = false;
    try {
        log::configure(bad, log::Level::DEBUG, "", DEFAULT_FORMAT);
    } catch (const std::runtime_error &e) {
        threw = true;
        std::string what = e.what();
        CHECK(what.find(bad) != std::string::npos);
        CHECK(what.find(std::strerror(ENOENT)) != std::string::npos);
    }
    CHECK(threw);
    threw = false;
    try {
        log::configure("-", log::Level::DEBUG, bad, DEFAULT_FORMAT);
    } catch (const std::runtime_error &e) {
        threw = true;
        CHECK(std::string(e.what()).find(bad) != std::string::npos);
    }
    CHECK(threw);
    // A failed configure leaves the previous one in place.
    CHECK(log::fds() == before);
    CHECK(!log::enabled(log::Level::DEBUG));
    LOG_INFO("still here");
    auto lines = lines_of(read_file(good));
    CHECK(!lines.empty() && is_error_line(lines.back(), "INFO", "still here"));
    reset_logging();
    unlink(good.c_str());
    rmdir(dir.c_str());
}

TEST(log_reopen_after_rename) {
    use_utc();
    std::string dir = temp_dir();
    std::string err = dir + "/error.log", acc = dir + "/access.log";
    log::configure(err, log::Level::INFO, acc, "%(m)s");
    auto before = log::fds();
    CHECK_EQ(before.size(), 2u);
    Request r;
    LOG_INFO("before rotate");
    log::access(r.rec);

    CHECK(rename(err.c_str(), (err + ".1").c_str()) == 0);
    CHECK(rename(acc.c_str(), (acc + ".1").c_str()) == 0);
    log::reopen();
    CHECK(log::fds() == before);  // numbers kept: other holders stay valid
    for (int fd : log::fds()) CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    LOG_INFO("after rotate");
    r.rec.method = "POST";
    log::access(r.rec);

    auto old_err = lines_of(read_file(err + ".1"));
    auto new_err = lines_of(read_file(err));
    CHECK_EQ(old_err.size(), 1u);
    CHECK_EQ(new_err.size(), 1u);
    if (old_err.size() == 1) CHECK(is_error_line(old_err[0], "INFO", "before rotate"));
    if (new_err.size() == 1) CHECK(is_error_line(new_err[0], "INFO", "after rotate"));
    CHECK_EQ(read_file(acc + ".1"), std::string("GET\n"));
    CHECK_EQ(read_file(acc), std::string("POST\n"));

    // A path that can no longer be opened keeps the old fd and says so. A
    // directory in its place fails even for root (EISDIR).
    CHECK(rename(err.c_str(), (err + ".2").c_str()) == 0);
    CHECK(mkdir(err.c_str(), 0700) == 0);
    log::reopen();
    CHECK(log::fds() == before);
    auto still = lines_of(read_file(err + ".2"));
    CHECK_EQ(still.size(), 2u);
    if (still.size() == 2)
        CHECK(is_error_line(still[1], "ERROR",
                            "Failed to reopen log file '" + err + "': open: " + std::strerror(EISDIR)));
    rmdir(err.c_str());
    reset_logging();
    for (const std::string &p : {err, err + ".1", err + ".2", acc, acc + ".1"}) unlink(p.c_str());
    rmdir(dir.c_str());
}

TEST(log_reopen_with_stdio_targets_is_a_noop) {
    reset_logging();
    log::reopen();
    CHECK(log::fds().empty());
    CHECK(log::enabled(log::Level::INFO));
}

// --- JSON access log (access_log_json) ----------------------------------

namespace {
std::string json_str(std::string_view v) {
    std::string out;
    log::append_json_string(out, v);
    return out;
}
}  // namespace

TEST(log_json_string_escaping) {
    CHECK_EQ(json_str(""), std::string("\"\""));
    CHECK_EQ(json_str("plain text"), std::string("\"plain text\""));
    CHECK_EQ(json_str("q\"b\\s/"), std::string("\"q\\\"b\\\\s/\""));
    CHECK_EQ(json_str("a\nb\rc\td"), std::string("\"a\\nb\\rc\\td\""));
    // Every other control character, NUL and DEL as \u00XX.
    CHECK_EQ(json_str(std::string_view("\0\x01\x1f\x7f", 4)), std::string("\"\\u0000\\u0001\\u001f\\u007f\""));
    // Valid UTF-8 is kept as is (2, 3 and 4 bytes).
    CHECK_EQ(json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
             std::string("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
    // Bytes that are not UTF-8 are their Latin-1 characters: lone
    // continuation bytes, a truncated sequence, overlongs, surrogates,
    // beyond U+10FFFF, 0xff.
    CHECK_EQ(json_str("\x80"), std::string("\"\\u0080\""));
    CHECK_EQ(json_str("x\xe2\x82"), std::string("\"x\\u00e2\\u0082\""));
    CHECK_EQ(json_str("\xc0\xaf"), std::string("\"\\u00c0\\u00af\""));
    CHECK_EQ(json_str("\xed\xa0\x80"), std::string("\"\\u00ed\\u00a0\\u0080\""));
    CHECK_EQ(json_str("\xf4\x90\x80\x80"), std::string("\"\\u00f4\\u0090\\u0080\\u0080\""));
    CHECK_EQ(json_str("\xff\xfe"), std::string("\"\\u00ff\\u00fe\""));
    // A valid sequence right after an invalid byte survives.
    CHECK_EQ(json_str("\xc3\xc3\xa9"), std::string("\"\\u00c3\xc3\xa9\""));
}

TEST(log_json_access_line) {
    use_utc();
    Request r;
    r.req = {{"User-Agent", "UA \"x\""}, {"X-Dup", "1"}, {"x-dup", "2"}, {"Referer", "R"}};
    r.resp = {{"Content-Type", "text/plain"}, {"X-Bin", std::string("\x01\xff", 2)}};
    r.rec.environ_lookup = environ_stub;
    std::string pid = std::to_string(getpid());
    CHECK_EQ(log::format_access_json(r.rec, NOW, {"REMOTE_PORT", "missing"}),
             "{\"h\":\"127.0.0.1\",\"l\":\"-\",\"u\":\"-\",\"t\":\"[28/Nov/2026:12:28:45 +0000]\","
             "\"r\":\"GET /a%20b?x=1 HTTP/1.1\",\"s\":\"200\",\"m\":\"GET\",\"U\":\"/a b\",\"q\":\"x=1\","
             "\"H\":\"HTTP/1.1\",\"b\":\"1234\",\"B\":1234,\"f\":\"R\",\"a\":\"UA \\\"x\\\"\",\"T\":1,"
             "\"D\":1234567,\"M\":1234,\"L\":\"1.234567\",\"p\":\"<" + pid + ">\","
             "\"i\":{\"user-agent\":\"UA \\\"x\\\"\",\"x-dup\":\"2\",\"referer\":\"R\"},"
             "\"o\":{\"content-type\":\"text/plain\",\"x-bin\":\"\\u0001\\u00ff\"},"
             "\"e\":{\"REMOTE_PORT\":\"54321\",\"missing\":\"-\"}}");
    // No headers, no environ keys: empty objects, no "e".
    log::AccessRecord bare;
    std::string line = log::format_access_json(bare, NOW);
    CHECK(line.find(",\"i\":{},\"o\":{}}") != std::string::npos);
    CHECK(line.find("\"e\"") == std::string::npos);
}
