// StatsD metrics, as gunicorn/instrument/statsd.py sends them: one line
// per metric, "<prefix><name>:<value>|<type>" plus "|#<tags>" when
// dogstatsd_tags is set. Sent from C++ over a non-blocking socket
// opened by the master and inherited by the workers: a send that would
// block, or that fails, drops the metric (counted), never the request.
#ifndef CUNICORN_STATSD_H
#define CUNICORN_STATSD_H

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cunicorn {
struct Listener;
}

namespace cunicorn::statsd {

// A process's request and log figures, counted since it started: plain
// atomic counters, written by the process that serves (its threads),
// read by its StatsD flusher and, in a worker's shared page
// (WorkerStatus), by the master's Prometheus endpoint. Zero bytes are
// a valid empty set (the page comes from ftruncate).
struct Figures {
    static constexpr int STATUS_SLOTS = 32;
    // Upper bounds of the duration histogram, in microseconds; one more
    // bucket holds what is slower. Prometheus's default buckets.
    static constexpr int BUCKETS = 11;
    static constexpr int64_t BUCKET_US[BUCKETS] = {5000,   10000,   25000,   50000,   100000,  250000,
                                                   500000, 1000000, 2500000, 5000000, 10000000};
    // log_calls indexes.
    enum { WARNING, ERROR, CRITICAL, EXCEPTION, LEVELS };

    std::atomic<uint64_t> requests;
    // Requests by status code: a slot is taken (code 0 -> code) the first
    // time a code is seen. Codes that find no slot (more than
    // STATUS_SLOTS distinct ones, 0, or past 999) count in status_other.
    struct Status {
        std::atomic<uint32_t> code;
        std::atomic<uint64_t> count;
    } status[STATUS_SLOTS];
    std::atomic<uint64_t> status_other;
    std::atomic<uint64_t> duration_bucket[BUCKETS + 1];  // not cumulative
    std::atomic<uint64_t> duration_sum_us;
    std::atomic<uint64_t> log_calls[LEVELS];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "Figures live in memory shared between processes");

// Where this process counts: a worker's shared page (after fork, before
// serving); null = a counter of the process's own.
void attach(Figures *figures);
// Counts requests and log calls when StatsD is off too, for the
// Prometheus endpoint (each worker sets it from its configuration; the
// master while it serves the endpoint).
void count_requests(bool on);
// The figures of this process itself (the master's log calls).
const Figures &own();
// The slot of a status code in `f` (taking a free one), or null.
std::atomic<uint64_t> *status_counter(Figures &f, int code);

// Opens the socket to host:port (UDP) or, when port is negative, to the
// unix datagram socket at path `host`; "" turns metrics off. Master only
// (start-up and HUP); the previous socket is closed. A name that does
// not resolve is warned about and turns metrics off, as gunicorn does.
void configure(const std::string &host, int port, const std::string &prefix, const std::string &tags,
               bool backlog_metric);
// StatsD is on, or requests are counted for Prometheus.
bool enabled();

// Per request (glogging access): counts it in the Figures and keeps its
// duration. Within 100 ms a thread of the worker sends what came since
// its last send: each duration as a gunicorn.request.duration ms timer
// (every one: timers do not add up), then gunicorn.requests and
// gunicorn.request.status.<code> counters carrying the number of
// requests ("gunicorn.requests:5|c|@1.0": StatsD adds counters up, so
// this is five of gunicorn's one-per-request lines), several metrics to
// a datagram.
void request(std::string_view status, int64_t duration_us);
// Sends the batched metrics now (a worker's exit).
void flush();
// A metric a log call carries (statsd.py log(): extra={"metric", "value",
// "mtype"}): `type` is "g", "c" (sent with "|@1.0"), "h" or "ms"; the
// value as Python's str() shows it.
void metric(std::string_view name, std::string_view value, std::string_view type);
// A log call at warning, error, critical or exception ("gunicorn.log.<level>").
void log_call(const char *level);
// Master, after each manage_workers: the gunicorn.workers gauge when the
// count changed, and the gunicorn.backlog histogram when enabled; each with
// gunicorn's debug line ("2 workers", "socket backlog: 0").
void master_metrics(int workers, const std::vector<Listener> &listeners);

// Connections waiting in the accept queues of the TCP listeners (Linux);
// false when there is nothing to measure.
bool listen_backlog(const std::vector<Listener> &listeners, int64_t &total);

// Datagrams this process could not send since it started (or forked).
uint64_t dropped();

// Pure helpers, exposed for the unit tests.
// statsd.py: re.sub(r"^(.+[^.]+)\.*$", "\g<1>.", prefix), but any
// non-empty prefix gets exactly one trailing dot (gunicorn leaves a
// one-character prefix without it).
std::string normalize_prefix(std::string_view prefix);
// timedelta -> "seconds * 1000 + microseconds / 10**3" as Python prints
// the float: "12.0", "0.05", "1234.567".
std::string format_ms(int64_t duration_us);
// The status code of a WSGI status line ("404 Not Found" -> 404), or -1.
int status_code(std::string_view status);
// One metric line as sent, for the tests: name, value text and type
// ("c" gets gunicorn's "|@1.0" sampling rate).
std::string format_metric(std::string_view prefix, std::string_view name, std::string_view value,
                          std::string_view type, std::string_view tags);

}  // namespace cunicorn::statsd

#endif
