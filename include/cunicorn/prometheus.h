// The Prometheus endpoint (--prometheus-bind): the figures StatsD sends
// and the control socket shows, in Prometheus's text exposition format
// (version 0.0.4), rendered by the master from the workers' shared pages
// (statsd::Figures in WorkerStatus) and its own counts. The HTTP side is
// control::Server's, in its METRICS kind.
#ifndef CUNICORN_PROMETHEUS_H
#define CUNICORN_PROMETHEUS_H

#include "cunicorn/statsd.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cunicorn::prometheus {

// Plain sums of Figures: of the workers that are gone (kept by the master
// so that the counters never go down), and of everything at a scrape.
struct Totals {
    uint64_t requests = 0;
    std::map<int, uint64_t> status;  // code -> requests
    uint64_t status_other = 0;       // codes that found no slot
    uint64_t duration_bucket[statsd::Figures::BUCKETS + 1] = {};  // not cumulative
    uint64_t duration_sum_us = 0;
    uint64_t log_calls[statsd::Figures::LEVELS] = {};

    void add(const statsd::Figures &f);
    void add(const Totals &t);
};

struct Worker {
    long pid = 0;
    int age = 0;
    uint64_t requests = 0;
    long connections = -1;  // -1: unknown (no shared page)
    long long rss = -1;     // bytes; -1: unknown
};

struct Snapshot {
    Totals totals;
    std::vector<Worker> workers;  // by age
    long workers_target = 0;
    long workers_spawned = 0, workers_killed = 0, reloads = 0;
    double start_time = 0;  // the master's, Unix seconds
    bool has_backlog = false;
    int64_t backlog = 0;
};

// The exposition text: a HELP and a TYPE line before each family's
// samples, "\n" line ends.
std::string render(const Snapshot &s);

// The answer to one HTTP request head (request line and header fields,
// up to and including the blank line): a complete HTTP/1.1 response that
// closes the connection. GET and HEAD of /metrics (a query is ignored)
// get `body()`; another method 405, another path 404, a request line
// that is not HTTP/1.x 400.
template <class Body>
std::string respond(std::string_view head, Body body);

// Building blocks of respond(), exposed for the unit tests.
enum class Verdict { OK, HEAD_OK, BAD_REQUEST, NOT_FOUND, METHOD_NOT_ALLOWED, TOO_LARGE };
Verdict judge(std::string_view head);
std::string response(Verdict v, const std::string &body);

template <class Body>
std::string respond(std::string_view head, Body body) {
    Verdict v = judge(head);
    return response(v, v == Verdict::OK || v == Verdict::HEAD_OK ? body() : std::string());
}

// The content type of the text format.
inline constexpr const char *CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace cunicorn::prometheus

#endif
