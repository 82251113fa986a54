// StatsD, the Prometheus text and syslog: the datagram and message texts against
// gunicorn/instrument/statsd.py and glogging.py (SysLogHandler), then the
// real sends, to sockets bound here on loopback and in /tmp.
#include "cunicorn/config.h"
#include "cunicorn/log.h"
#include "cunicorn/prometheus.h"
#include "cunicorn/sock.h"
#include "cunicorn/statsd.h"
#include "harness.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace log = cunicorn::log;
namespace statsd = cunicorn::statsd;

namespace {

// A datagram socket bound on loopback (port 0) or at a fresh unix path.
struct Receiver {
    int fd = -1;
    int port = 0;
    std::string path;

    explicit Receiver(bool unix_socket = false, int type = SOCK_DGRAM) {
        if (unix_socket) {
            char tmpl[] = "/tmp/cunicorn-statsd-XXXXXX";
            const char *d = mkdtemp(tmpl);
            path = std::string(d ? d : "/tmp") + "/sock";
            fd = ::socket(AF_UNIX, type, 0);
            struct sockaddr_un sa;
            std::memset(&sa, 0, sizeof sa);
            sa.sun_family = AF_UNIX;
            std::memcpy(sa.sun_path, path.c_str(), path.size());
            CHECK(::bind(fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa) == 0);
            if (type == SOCK_STREAM) CHECK(::listen(fd, 4) == 0);
        } else {
            fd = ::socket(AF_INET, type, 0);
            struct sockaddr_in sa;
            std::memset(&sa, 0, sizeof sa);
            sa.sin_family = AF_INET;
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            CHECK(::bind(fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa) == 0);
            socklen_t len = sizeof sa;
            CHECK(::getsockname(fd, reinterpret_cast<struct sockaddr *>(&sa), &len) == 0);
            port = ntohs(sa.sin_port);
            if (type == SOCK_STREAM) CHECK(::listen(fd, 4) == 0);
        }
    }
    ~Receiver() {
        ::close(fd);
        if (!path.empty()) {
            ::unlink(path.c_str());
            ::rmdir(path.substr(0, path.rfind('/')).c_str());
        }
    }

    // The next datagram, "" after 5 s without one.
    std::string next(int on = -1) {
        struct pollfd p = {on >= 0 ? on : fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return {};
        char buf[65536];
        ssize_t n = ::recv(p.fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
    // True when nothing more arrives within 100 ms.
    bool quiet() {
        struct pollfd p = {fd, POLLIN, 0};
        return ::poll(&p, 1, 100) == 0;
    }
};

const std::string NUL(1, '\0');

std::string with_nul(const std::string &s) { return s + NUL; }

void statsd_off() { statsd::configure("", -1, "", "", false); }

}  // namespace

TEST(statsd_prefix_gets_one_trailing_dot) {
    CHECK_EQ(statsd::normalize_prefix(""), "");
    CHECK_EQ(statsd::normalize_prefix("app"), "app.");
    CHECK_EQ(statsd::normalize_prefix("app."), "app.");
    CHECK_EQ(statsd::normalize_prefix("app..."), "app.");
    CHECK_EQ(statsd::normalize_prefix("my.app"), "my.app.");
    // gunicorn's regex leaves a one-character prefix without its dot.
    CHECK_EQ(statsd::normalize_prefix("a"), "a.");
    CHECK_EQ(statsd::normalize_prefix("..."), "");
}

TEST(statsd_duration_is_python_float_milliseconds) {
    // seconds * 1000 + float(microseconds) / 10**3, printed by str(float).
    CHECK_EQ(statsd::format_ms(0), "0.0");
    CHECK_EQ(statsd::format_ms(1), "0.001");
    CHECK_EQ(statsd::format_ms(50), "0.05");
    CHECK_EQ(statsd::format_ms(12000), "12.0");
    CHECK_EQ(statsd::format_ms(1234567), "1234.567");
    CHECK_EQ(statsd::format_ms(3000700), "3000.7");
    CHECK_EQ(statsd::format_ms(-5), "0.0");
}

TEST(statsd_status_code_of_a_status_line) {
    CHECK_EQ(statsd::status_code("200 OK"), 200);
    CHECK_EQ(statsd::status_code("404 Not Found"), 404);
    CHECK_EQ(statsd::status_code("599"), 599);
    CHECK_EQ(statsd::status_code("abc"), -1);
    CHECK_EQ(statsd::status_code("20x OK"), -1);
    CHECK_EQ(statsd::status_code(""), -1);
}

TEST(statsd_metric_lines) {
    CHECK_EQ(statsd::format_metric("", "gunicorn.requests", "1", "c", ""), "gunicorn.requests:1|c|@1.0");
    CHECK_EQ(statsd::format_metric("p.", "gunicorn.workers", "3", "g", ""), "p.gunicorn.workers:3|g");
    CHECK_EQ(statsd::format_metric("", "gunicorn.request.duration", "1.5", "ms", "a:b,c"),
             "gunicorn.request.duration:1.5|ms|#a:b,c");
    CHECK_EQ(statsd::format_metric("", "gunicorn.backlog", "0", "h", ""), "gunicorn.backlog:0|h");
}

TEST(statsd_sends_request_metrics_over_udp) {
    Receiver r;
    statsd::configure("127.0.0.1", r.port, "web", "env:test", false);
    CHECK(statsd::enabled());
    statsd::request("404 Not Found", 2500);
    // Batched: one line per metric, sent within 100 ms.
    CHECK_EQ(r.next(),
             "web.gunicorn.request.duration:2.5|ms|#env:test\n"
             "web.gunicorn.requests:1|c|@1.0|#env:test\n"
             "web.gunicorn.request.status.404:1|c|@1.0|#env:test");
    // Several requests share a datagram: every duration, then the
    // counters carrying their sums; a log call sends the batch first.
    statsd::request("200 OK", 1000);
    statsd::request("abc", 1500);
    statsd::request("200 OK", 2000);
    statsd::log_call("error");
    CHECK_EQ(r.next(),
             "web.gunicorn.request.duration:1.0|ms|#env:test\n"
             "web.gunicorn.request.duration:1.5|ms|#env:test\n"
             "web.gunicorn.request.duration:2.0|ms|#env:test\n"
             "web.gunicorn.requests:3|c|@1.0|#env:test\n"
             "web.gunicorn.request.status.200:2|c|@1.0|#env:test");
    CHECK_EQ(r.next(), "web.gunicorn.log.error:1|c|@1.0|#env:test");
    CHECK(r.quiet());
    statsd_off();
    CHECK(!statsd::enabled());
}

TEST(statsd_log_levels_are_counted_at_any_loglevel) {
    Receiver r;
    log::configure("-", log::Level::CRITICAL, "", "%(s)s");
    statsd::configure("127.0.0.1", r.port, "", "", false);
    LOG_INFO("not counted");
    LOG_WARNING("counted, though below the log level");
    log::write_text(log::Level::ERROR, "Error handling request\nTraceback (most recent call last):\n  x\n");
    log::write_text(log::Level::ERROR, "plain error");
    log::write_text(log::Level::CRITICAL, "critical");
    CHECK_EQ(r.next(), "gunicorn.log.warning:1|c|@1.0");
    CHECK_EQ(r.next(), "gunicorn.log.exception:1|c|@1.0");
    CHECK_EQ(r.next(), "gunicorn.log.error:1|c|@1.0");
    CHECK_EQ(r.next(), "gunicorn.log.critical:1|c|@1.0");
    CHECK(r.quiet());
    statsd_off();
    log::configure("-", log::Level::INFO, "", "%(s)s");
}

TEST(statsd_over_a_unix_socket_that_comes_late) {
    std::string path;
    {
        Receiver first(true);
        path = first.path;
    }
    // Nobody there yet: dropped, counted, nothing blocks.
    log::configure("/dev/null", log::Level::INFO, "", "%(s)s");
    statsd::configure(path, -1, "", "", false);
    uint64_t before = statsd::dropped();
    statsd::request("200 OK", 1000);
    statsd::flush();
    CHECK_EQ(statsd::dropped(), before + 3);
    // The receiver appears; the socket connects again within a second or two.
    std::string dir = path.substr(0, path.rfind('/'));
    CHECK(::mkdir(dir.c_str(), 0700) == 0);
    int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    CHECK(::bind(fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa) == 0);
    std::string got;
    for (int i = 0; i < 100 && got.empty(); ++i) {
        statsd::log_call("warning");
        struct pollfd p = {fd, POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) {
            char buf[512];
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) got.assign(buf, static_cast<size_t>(n));
        }
    }
    CHECK_EQ(got, "gunicorn.log.warning:1|c|@1.0");
    statsd_off();
    ::close(fd);
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
    log::configure("-", log::Level::INFO, "", "%(s)s");
}

namespace {

// The metrics of the datagrams that arrive until 100 ms pass without one:
// the durations seen and each counter's sum; every datagram fits.
struct Received {
    int packets = 0;
    std::vector<std::string> durations;
    std::vector<std::pair<std::string, long>> counters;  // name, sum; in order of appearance

    long sum(const std::string &name) const {
        for (const auto &c : counters)
            if (c.first == name) return c.second;
        return 0;
    }
};

Received receive_all(Receiver &r) {
    Received got;
    for (std::string d = r.next(); !d.empty(); d = r.quiet() ? std::string() : r.next()) {
        ++got.packets;
        CHECK(d.size() <= 1432);
        CHECK(d.back() != '\n');
        size_t at = 0;
        while (at <= d.size()) {
            size_t end = d.find('\n', at);
            if (end == std::string::npos) end = d.size();
            std::string line = d.substr(at, end - at);
            at = end + 1;
            size_t colon = line.find(':'), bar = line.find('|');
            CHECK(colon != std::string::npos && bar != std::string::npos && colon < bar);
            std::string name = line.substr(0, colon), value = line.substr(colon + 1, bar - colon - 1);
            std::string type = line.substr(bar);
            if (type == "|ms") {
                CHECK_EQ(name, "gunicorn.request.duration");
                got.durations.push_back(value);
                continue;
            }
            CHECK_EQ(type, "|c|@1.0");
            bool seen = false;
            for (auto &c : got.counters)
                if (c.first == name) c.second += std::atol(value.c_str()), seen = true;
            if (!seen) got.counters.emplace_back(name, std::atol(value.c_str()));
        }
    }
    return got;
}

}  // namespace

TEST(statsd_batches_fit_a_datagram) {
    Receiver r;
    statsd::configure("127.0.0.1", r.port, "", "", false);
    for (int i = 0; i < 100; ++i) statsd::request(i % 4 ? "200 OK" : "404 Not Found", 1000 + i);
    statsd::flush();
    Received got = receive_all(r);
    // Every timer is sent (they do not add up); the counters add up.
    CHECK_EQ(got.durations.size(), 100u);
    CHECK_EQ(got.durations.front(), "1.0");
    CHECK_EQ(got.durations.back(), "1.099");
    CHECK_EQ(got.sum("gunicorn.requests"), 100);
    CHECK_EQ(got.sum("gunicorn.request.status.200"), 75);
    CHECK_EQ(got.sum("gunicorn.request.status.404"), 25);
    CHECK(got.packets >= 3);
    statsd_off();
}

TEST(statsd_counts_add_up_past_the_status_table) {
    // More distinct codes than counter slots: the codes past the table
    // are sent one line per request, and the counts still add up.
    Receiver r;
    statsd::configure("127.0.0.1", r.port, "", "", false);
    int codes = cunicorn::statsd::Figures::STATUS_SLOTS + 8;
    for (int round = 0; round < 3; ++round)
        for (int c = 0; c < codes; ++c) statsd::request(std::to_string(200 + c) + " X", 10);
    statsd::request("1000 Too Big", 10);
    statsd::flush();
    Received got = receive_all(r);
    CHECK_EQ(got.durations.size(), static_cast<size_t>(3 * codes + 1));
    CHECK_EQ(got.sum("gunicorn.requests"), 3 * codes + 1);
    for (int c = 0; c < codes; ++c) CHECK_EQ(got.sum("gunicorn.request.status." + std::to_string(200 + c)), 3);
    CHECK_EQ(got.sum("gunicorn.request.status.1000"), 1);
    statsd_off();
}

TEST(statsd_figures_count_requests_and_log_calls) {
    // What the Prometheus endpoint reads: counted with StatsD off too,
    // when asked to.
    static cunicorn::statsd::Figures f;  // zero bytes, as a fresh page
    statsd::attach(&f);
    statsd::count_requests(true);
    CHECK(statsd::enabled());
    statsd::request("200 OK", 5000);     // <= 5 ms: the first bucket
    statsd::request("200 OK", 5001);
    statsd::request("503 Busy", 20000000);  // past the last bound
    statsd::request("weird", 1);
    statsd::log_call("warning");
    statsd::log_call("exception");
    CHECK_EQ(f.requests.load(), 4u);
    CHECK_EQ(statsd::status_counter(f, 200)->load(), 2u);
    CHECK_EQ(statsd::status_counter(f, 503)->load(), 1u);
    CHECK_EQ(f.status_other.load(), 0u);
    CHECK_EQ(f.duration_bucket[0].load(), 2u);  // 5000 us and 1 us
    CHECK_EQ(f.duration_bucket[1].load(), 1u);
    CHECK_EQ(f.duration_bucket[cunicorn::statsd::Figures::BUCKETS].load(), 1u);
    CHECK_EQ(f.duration_sum_us.load(), 5000u + 5001u + 20000000u + 1u);
    CHECK_EQ(f.log_calls[cunicorn::statsd::Figures::WARNING].load(), 1u);
    CHECK_EQ(f.log_calls[cunicorn::statsd::Figures::EXCEPTION].load(), 1u);
    statsd::count_requests(false);
    statsd::attach(nullptr);
    CHECK(!statsd::enabled());
}

TEST(statsd_workers_gauge_only_on_change) {
    Receiver r;
    statsd::configure("127.0.0.1", r.port, "", "", false);
    std::vector<cunicorn::Listener> none;
    statsd::master_metrics(2, none);
    statsd::master_metrics(2, none);
    statsd::master_metrics(3, none);
    CHECK_EQ(r.next(), "gunicorn.workers:2|g");
    CHECK_EQ(r.next(), "gunicorn.workers:3|g");
    CHECK(r.quiet());
    statsd_off();
}

TEST(statsd_backlog_histogram_counts_waiting_connections) {
#if defined(__linux__)
    Receiver r;
    statsd::configure("127.0.0.1", r.port, "", "", true);
    Receiver tcp(false, SOCK_STREAM);
    cunicorn::Listener l;
    l.fd = tcp.fd;
    l.family = AF_INET;
    std::vector<cunicorn::Listener> ls{l};
    statsd::master_metrics(1, ls);
    CHECK_EQ(r.next(), "gunicorn.workers:1|g");
    CHECK_EQ(r.next(), "gunicorn.backlog:0|h");
    int c[2];
    for (int &fd : c) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons(static_cast<uint16_t>(tcp.port));
        CHECK(::connect(fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa) == 0);
    }
    statsd::master_metrics(1, ls);
    CHECK_EQ(r.next(), "gunicorn.backlog:2|h");
    for (int fd : c) ::close(fd);
    statsd_off();
#endif
}

TEST(syslog_address_parsing) {
    log::SyslogAddress a = log::parse_syslog_address("udp://LocalHost:5514");
    CHECK(a.kind == log::SyslogAddress::UDP);
    CHECK_EQ(a.host, "localhost");
    CHECK_EQ(a.port, 5514);
    a = log::parse_syslog_address("tcp://[::1]:601");
    CHECK(a.kind == log::SyslogAddress::TCP);
    CHECK_EQ(a.host, "::1");
    CHECK_EQ(a.port, 601);
    a = log::parse_syslog_address("udp://");
    CHECK_EQ(a.host, "localhost");
    CHECK_EQ(a.port, 514);
    a = log::parse_syslog_address("tcp://example.org");
    CHECK_EQ(a.host, "example.org");
    CHECK_EQ(a.port, 514);
    a = log::parse_syslog_address("unix:///dev/log#dgram");
    CHECK(a.kind == log::SyslogAddress::UNIX);
    CHECK(a.dgram_only);
    CHECK_EQ(a.host, "/dev/log");
    a = log::parse_syslog_address("unix:///run/syslog#stream");
    CHECK(!a.dgram_only);  // as gunicorn: only "#dgram" fixes the type
    CHECK_EQ(a.host, "/run/syslog");
    auto err = [](const char *addr) {
        try {
            log::parse_syslog_address(addr);
        } catch (const std::runtime_error &e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_EQ(err("localhost:514"), "invalid syslog address: 'localhost:514'");
    CHECK_EQ(err("udp://host:abc"), "'abc' is not a valid port number.");
    CHECK_EQ(err("udp://host:70000"), "'70000' is not a valid port number.");
    CHECK_EQ(err("unix://"), "invalid syslog address: 'unix://'");
}

TEST(syslog_facilities_and_message_bytes) {
    CHECK_EQ(log::syslog_facility("user"), 1);
    CHECK_EQ(log::syslog_facility("LOCAL7"), 23);
    CHECK_EQ(log::syslog_facility("security"), 4);
    CHECK_EQ(log::syslog_facility("nope"), -1);
    CHECK_EQ(log::syslog_message(1, log::Level::INFO, "gunicorn.app.error: ", 42, "Booting"),
             with_nul("<14>gunicorn.app.error: [42] Booting"));
    CHECK_EQ(log::syslog_message(16, log::Level::CRITICAL, "t: ", 7, "x"), with_nul("<130>t: [7] x"));
    CHECK_EQ(log::syslog_message(0, log::Level::DEBUG, "t: ", 7, "x"), with_nul("<7>t: [7] x"));
    CHECK_EQ(log::syslog_message(3, log::Level::WARNING, "t: ", 7, "x"), with_nul("<28>t: [7] x"));
}

TEST(syslog_configure_sends_error_and_access_lines) {
    Receiver r(true);
    cunicorn::Config cfg;
    cfg.errorlog = "/dev/null";
    cfg.syslog = true;
    cfg.syslog_addr = "unix://" + r.path + "#dgram";
    cfg.syslog_facility = "local0";
    cfg.proc_name = "site:app";
    cfg.access_log_format = "%(m)s %(s)s";
    log::configure(cfg);
    CHECK(log::access_enabled());
    LOG_WARNING("careful");
    std::string pid = std::to_string(getpid());
    CHECK_EQ(r.next(), "<132>gunicorn.site.app.error: [" + pid + "] careful" + NUL);
    log::AccessRecord rec;
    rec.method = "GET";
    rec.status = "204 No Content";
    log::access(rec);
    CHECK_EQ(r.next(), "<134>gunicorn.site.app.access: [" + pid + "] GET 204" + NUL);
    cfg.disable_redirect_access_to_syslog = true;
    cfg.syslog_prefix = "custom";
    log::configure(cfg);
    CHECK(!log::access_enabled());
    LOG_DEBUG("below the level: not sent");
    log::write_text(log::Level::ERROR, "two\nlines\n");
    CHECK_EQ(r.next(), "<131>gunicorn.custom.error: [" + pid + "] two\nlines" + NUL);
    CHECK(r.quiet());
    cfg.syslog_facility = "nope";
    bool threw = false;
    try {
        log::configure(cfg);
    } catch (const std::runtime_error &e) {
        threw = true;
        CHECK_EQ(std::string(e.what()), "unknown facility name: 'nope'");
    }
    CHECK(threw);
    cfg.syslog = false;
    cfg.errorlog = "-";
    log::configure(cfg);
}

TEST(prometheus_text_of_a_snapshot) {
    namespace prom = cunicorn::prometheus;
    prom::Snapshot s;
    s.totals.requests = 3;
    s.totals.status[200] = 2;
    s.totals.status[404] = 1;
    s.totals.duration_bucket[0] = 2;                               // <= 5 ms
    s.totals.duration_bucket[cunicorn::statsd::Figures::BUCKETS] = 1;  // > 10 s
    s.totals.duration_sum_us = 12500000;
    s.totals.log_calls[cunicorn::statsd::Figures::ERROR] = 4;
    prom::Worker w;
    w.pid = 42;
    w.age = 7;
    w.requests = 3;
    w.connections = 1;
    s.workers.push_back(w);  // rss unknown: no sample
    s.workers_target = 2;
    std::string t = prom::render(s);
    auto has = [&](const std::string &line) { return t.find("\n" + line + "\n") != std::string::npos; };
    CHECK(t.rfind("# HELP gunicorn_requests_total ", 0) == 0);
    CHECK(has("# TYPE gunicorn_requests_total counter"));
    CHECK(has("gunicorn_requests_total 3"));
    CHECK(has("gunicorn_request_status_total{code=\"200\"} 2"));
    CHECK(has("gunicorn_request_status_total{code=\"404\"} 1"));
    CHECK(has("# TYPE gunicorn_request_duration_seconds histogram"));
    CHECK(has("gunicorn_request_duration_seconds_bucket{le=\"0.005\"} 2"));
    CHECK(has("gunicorn_request_duration_seconds_bucket{le=\"10\"} 2"));
    CHECK(has("gunicorn_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
    CHECK(has("gunicorn_request_duration_seconds_sum 12.5"));
    CHECK(has("gunicorn_request_duration_seconds_count 3"));
    CHECK(has("gunicorn_log_messages_total{level=\"error\"} 4"));
    CHECK(has("gunicorn_workers 1"));
    CHECK(has("gunicorn_workers_target 2"));
    CHECK(has("gunicorn_worker_requests_total{pid=\"42\",age=\"7\"} 3"));
    CHECK(has("gunicorn_worker_connections{pid=\"42\",age=\"7\"} 1"));
    CHECK(t.find("gunicorn_worker_resident_memory_bytes{") == std::string::npos);
    CHECK(t.find("gunicorn_backlog") == std::string::npos);
    CHECK(t.back() == '\n');
}

TEST(prometheus_http_verdicts) {
    namespace prom = cunicorn::prometheus;
    using V = prom::Verdict;
    CHECK(prom::judge("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == V::OK);
    CHECK(prom::judge("GET /metrics?name[]=x HTTP/1.0\n\n") == V::OK);
    CHECK(prom::judge("HEAD /metrics HTTP/1.1\r\n\r\n") == V::HEAD_OK);
    CHECK(prom::judge("POST /metrics HTTP/1.1\r\n\r\n") == V::METHOD_NOT_ALLOWED);
    CHECK(prom::judge("GET / HTTP/1.1\r\n\r\n") == V::NOT_FOUND);
    CHECK(prom::judge("GET /metricsx HTTP/1.1\r\n\r\n") == V::NOT_FOUND);
    CHECK(prom::judge("GET /metrics HTTP/2.0\r\n\r\n") == V::BAD_REQUEST);
    CHECK(prom::judge("GET /metrics\r\n\r\n") == V::BAD_REQUEST);
    CHECK(prom::judge("GET  /metrics HTTP/1.1\r\n\r\n") == V::BAD_REQUEST);
    CHECK(prom::judge("GET http://x/metrics HTTP/1.1\r\n\r\n") == V::BAD_REQUEST);
    CHECK(prom::judge("GET /met\x01rics HTTP/1.1\r\n\r\n") == V::BAD_REQUEST);
    CHECK_EQ(prom::response(V::OK, "a 1\n"),
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
             "Content-Length: 4\r\nConnection: close\r\n\r\na 1\n");
    CHECK_EQ(prom::response(V::HEAD_OK, "a 1\n"),
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
             "Content-Length: 4\r\nConnection: close\r\n\r\n");
    CHECK_EQ(prom::response(V::METHOD_NOT_ALLOWED, ""),
             "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: 23\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n405 Method Not Allowed\n");
}
