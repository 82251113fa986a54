// Error log and access log, in gunicorn's formats (glogging.py).
// Error lines: "[%Y-%m-%d %H:%M:%S %z] [pid] [LEVEL] message".
// Access lines: access_log_format (%-style atoms) compiled once.
#ifndef CUNICORN_LOG_H
#define CUNICORN_LOG_H

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace cunicorn {
struct Config;
}

namespace cunicorn::log {

enum class Level : uint8_t { DEBUG, INFO, WARNING, ERROR, CRITICAL };

// Parses a loglevel setting; unknown names give INFO, as gunicorn does.
Level parse_level(std::string_view name);

// Opens the targets: errorlog "-" = stderr, accesslog "-" = stdout, "" = off.
// Throws std::runtime_error naming the path when a file cannot be opened.
void configure(const std::string &errorlog, Level level,
               const std::string &accesslog, const std::string &access_format);
// Everything the configuration says about logging: the two logs above,
// syslog (glogging.py _set_syslog_handler) and StatsD (statsd::configure).
// Throws std::runtime_error for a log file that cannot be opened, an
// unknown syslog facility or an unusable syslog address; the previous
// configuration then stays in place. Master only (start-up, HUP).
void configure(const Config &cfg);
// What configure(cfg) would reject, without opening anything
// (--check-config).
void check(const Config &cfg);
// Reopens file targets (USR1): with a Python logging route (below), the
// route's reopen (Logger.reopen_files(), which reopens the native files
// through reopen_files()); otherwise reopen_files(). Errors are logged,
// never fatal.
void reopen();
void reopen_files();
// File descriptors of the open log files, to keep across fork/exec decisions.
std::vector<int> fds();
// Gives the open log files to the worker user so workers can reopen them
// after dropping privileges (glogging.py _set_handler); errors ignored.
void chown_files(uid_t uid, gid_t gid);

bool enabled(Level level);
void write(Level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Text written to the error log as is, without the line prefix
// (wsgi.errors, as gunicorn's WSGIErrorsWrapper does).
void write_raw(std::string_view text);
// A message that may span lines (a traceback): the first line gets the prefix.
void write_text(Level level, std::string_view text);

// The native targets themselves, for the Python handlers on gunicorn.error
// and gunicorn.access (src/py/glogging.py): never routed, never counted
// in StatsD. `prefixed`: add "[time] [pid] [LEVEL] " as write_text does;
// otherwise `text` is the whole line as a Python formatter made it.
void write_line(Level level, std::string_view text, bool prefixed);
// One access line (no newline) to the access log and syslog.
void write_access_line(std::string_view line);

// Where the lines go when a Python logging configuration is active
// (logconfig, logconfig_dict, logconfig_json or logger_class): the error
// lines to the Logger instance's methods, each request to its access().
// Set by pylog::configure; null members keep the native path. The
// functions take the GIL themselves; a line logged while one of them runs
// on the same thread is written natively.
struct AccessRecord;
struct Route {
    void (*error)(Level level, std::string_view text) = nullptr;
    void (*access)(const AccessRecord &rec) = nullptr;
    void (*reopen)() = nullptr;
};
void set_route(const Route &route);

#define LOG_DEBUG(...) ::cunicorn::log::write(::cunicorn::log::Level::DEBUG, __VA_ARGS__)
#define LOG_INFO(...) ::cunicorn::log::write(::cunicorn::log::Level::INFO, __VA_ARGS__)
#define LOG_WARNING(...) ::cunicorn::log::write(::cunicorn::log::Level::WARNING, __VA_ARGS__)
#define LOG_ERROR(...) ::cunicorn::log::write(::cunicorn::log::Level::ERROR, __VA_ARGS__)
#define LOG_CRITICAL(...) ::cunicorn::log::write(::cunicorn::log::Level::CRITICAL, __VA_ARGS__)

// Everything an access-log line can show about one request (glogging.py
// atoms). Views must stay valid for the duration of access().
struct AccessRecord {
    std::string_view remote_addr;   // h
    std::string_view method;        // m
    std::string_view raw_uri;       // part of r
    std::string_view path_info;     // U
    std::string_view query;         // q
    std::string_view protocol;      // H, e.g. "HTTP/1.1"
    std::string_view status;        // status string as the app gave it ("200 OK")
    uint64_t bytes_sent = 0;        // b / B: body bytes
    int64_t duration_us = 0;        // T D M L
    // Request headers as received (name case as sent) and the app's
    // response headers; looked up case-insensitively by {name}i / {name}o.
    const std::vector<std::pair<std::string_view, std::string_view>> *request_headers = nullptr;
    const std::vector<std::pair<std::string, std::string>> *response_headers = nullptr;
    // {name}e lookup into the WSGI environ; may be null (atom renders "-").
    // `key` is the name as written in the format; compare it
    // case-insensitively. Return "" for a missing key (renders "-").
    std::string (*environ_lookup)(void *ctx, std::string_view key) = nullptr;
    // The environ dict itself (a PyObject *) when environ_lookup is set:
    // the Python route hands it to Logger.access() as gunicorn does.
    void *environ_ctx = nullptr;
};

bool access_enabled();
void access(const AccessRecord &rec);

// Syslog, as glogging.py sends it through logging.handlers.SysLogHandler:
// "<PRI>gunicorn.<prefix>.<error|access>: [<pid>] <message>\0".
struct SyslogAddress {
    enum Kind { UNIX, UDP, TCP } kind = UDP;
    bool dgram_only = false;  // unix "#dgram"; otherwise datagram, then stream
    std::string host;         // UDP/TCP host (lower-cased), or the UNIX path
    int port = 514;
};
// glogging.py parse_syslog_address; throws std::runtime_error
// ("invalid syslog address", "'x' is not a valid port number.").
SyslogAddress parse_syslog_address(const std::string &addr);
// SYSLOG_FACILITIES[name.lower()], or -1.
int syslog_facility(std::string_view name);
// One message as sent (the NUL terminator included).
std::string syslog_message(int facility, Level level, std::string_view tag, long pid, std::string_view text);

// The JSON access line (access_log_json): one object, every atom; request
// and response headers as objects under "i" and "o" (names lower-cased,
// the last of repeated ones), the {name}e atoms access_log_format names
// under "e". Strings are escaped as RFC 8259 requires; bytes that are not
// UTF-8 become \u00XX, the Latin-1 reading WSGI gives them.
std::string format_access_json(const AccessRecord &rec, int64_t now_unix_seconds,
                               const std::vector<std::string> &environ_keys = {});
// Appends `v` as a JSON string (quotes included).
void append_json_string(std::string &out, std::string_view v);
// Turns the JSON access log on or off (configure(cfg) does, from
// access_log_json).
void set_access_json(bool on);

// Formats one access line without writing it (unit tests, and access()).
// `now` is the wall-clock time shown by %(t)s.
std::string format_access(std::string_view format, const AccessRecord &rec, int64_t now_unix_seconds);

}  // namespace cunicorn::log

#endif
