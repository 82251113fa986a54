// StatsD metrics, as gunicorn/instrument/statsd.py sends them: one line
// per metric, "<prefix><name>:<value>|<type>" plus "|#<tags>" when
// dogstatsd_tags is set. Sent from C++ over a non-blocking socket
// opened by the master and inherited by the workers: a send that would
// block, or that fails, drops the metric (counted), never the request.
#ifndef CUNICORN_STATSD_H
#define CUNICORN_STATSD_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cunicorn {
struct Listener;
}

namespace cunicorn::statsd {

// Opens the socket to host:port (UDP) or, when port is negative, to the
// unix datagram socket at path `host`; "" turns metrics off. Master only
// (start-up and HUP); the previous socket is closed. A name that does
// not resolve is warned about and turns metrics off, as gunicorn does.
void configure(const std::string &host, int port, const std::string &prefix, const std::string &tags,
               bool backlog_metric);
bool enabled();

// Per request (glogging access): gunicorn.request.duration (ms timer),
// gunicorn.requests and gunicorn.request.status.<code> (counters). They
// are batched, several requests to a datagram, one line per metric, and
// sent within 100 ms by a thread of the worker.
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
