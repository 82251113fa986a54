// The Prometheus text format (exposition format 0.0.4) of the master's
// figures, and the little HTTP it is served with.
//
// The names follow Gunicorn's StatsD metrics (statsd_exporter's default
// mapping of them gives the same), with Prometheus's conventions: "_total"
// on counters, seconds for durations, one family per figure with labels
// for its parts.
#include "cunicorn/prometheus.h"

#include <cstdio>
#include <string_view>

namespace cunicorn::prometheus {

using statsd::Figures;

void Totals::add(const Figures &f) {
    requests += f.requests.load(std::memory_order_relaxed);
    for (const Figures::Status &st : f.status) {
        uint32_t code = st.code.load(std::memory_order_acquire);
        if (code) status[static_cast<int>(code)] += st.count.load(std::memory_order_relaxed);
    }
    status_other += f.status_other.load(std::memory_order_relaxed);
    for (int b = 0; b <= Figures::BUCKETS; ++b) duration_bucket[b] += f.duration_bucket[b].load(std::memory_order_relaxed);
    duration_sum_us += f.duration_sum_us.load(std::memory_order_relaxed);
    for (int l = 0; l < Figures::LEVELS; ++l) log_calls[l] += f.log_calls[l].load(std::memory_order_relaxed);
}

void Totals::add(const Totals &t) {
    requests += t.requests;
    for (const auto &[code, n] : t.status) status[code] += n;
    status_other += t.status_other;
    for (int b = 0; b <= Figures::BUCKETS; ++b) duration_bucket[b] += t.duration_bucket[b];
    duration_sum_us += t.duration_sum_us;
    for (int l = 0; l < Figures::LEVELS; ++l) log_calls[l] += t.log_calls[l];
}

namespace {

void family(std::string &out, const char *name, const char *type, const char *help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string &out, const char *name, const std::string &labels, const char *value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

void sample(std::string &out, const char *name, const std::string &labels, unsigned long long v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%llu", v);
    sample(out, name, labels, buf);
}

void sample(std::string &out, const char *name, const std::string &labels, double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    sample(out, name, labels, buf);
}

// A bound in seconds as Prometheus's clients print it ("0.005", "1", "2.5").
std::string seconds(int64_t us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(us) / 1e6);
    return buf;
}

std::string worker_labels(const Worker &w) {
    return "pid=\"" + std::to_string(w.pid) + "\",age=\"" + std::to_string(w.age) + "\"";
}

}  // namespace

std::string render(const Snapshot &s) {
    using ull = unsigned long long;
    const Totals &t = s.totals;
    std::string out;
    out.reserve(4096 + 256 * s.workers.size());

    family(out, "gunicorn_requests_total", "counter", "Requests served (gunicorn.requests).");
    sample(out, "gunicorn_requests_total", "", static_cast<ull>(t.requests));

    family(out, "gunicorn_request_status_total", "counter",
           "Requests by response status code (gunicorn.request.status.CODE).");
    for (const auto &[code, n] : t.status) sample(out, "gunicorn_request_status_total", "code=\"" + std::to_string(code) + "\"", static_cast<ull>(n));
    if (t.status_other) sample(out, "gunicorn_request_status_total", "code=\"other\"", static_cast<ull>(t.status_other));

    family(out, "gunicorn_request_duration_seconds", "histogram",
           "Time from the request to the end of the response (gunicorn.request.duration).");
    uint64_t cumulative = 0;
    for (int b = 0; b <= Figures::BUCKETS; ++b) {
        cumulative += t.duration_bucket[b];
        std::string le = b < Figures::BUCKETS ? seconds(Figures::BUCKET_US[b]) : "+Inf";
        sample(out, "gunicorn_request_duration_seconds_bucket", "le=\"" + le + "\"", static_cast<ull>(cumulative));
    }
    sample(out, "gunicorn_request_duration_seconds_sum", "", static_cast<double>(t.duration_sum_us) / 1e6);
    sample(out, "gunicorn_request_duration_seconds_count", "", static_cast<ull>(cumulative));

    family(out, "gunicorn_log_messages_total", "counter",
           "Log calls at warning level and above, whatever the log level (gunicorn.log.LEVEL).");
    static const char *const LEVEL[Figures::LEVELS] = {"warning", "error", "critical", "exception"};
    for (int l = 0; l < Figures::LEVELS; ++l)
        sample(out, "gunicorn_log_messages_total", std::string("level=\"") + LEVEL[l] + "\"", static_cast<ull>(t.log_calls[l]));

    family(out, "gunicorn_workers", "gauge", "Worker processes running (gunicorn.workers).");
    sample(out, "gunicorn_workers", "", static_cast<ull>(s.workers.size()));
    family(out, "gunicorn_workers_target", "gauge", "Worker processes wanted (--workers, TTIN, TTOU).");
    sample(out, "gunicorn_workers_target", "", static_cast<ull>(s.workers_target));
    family(out, "gunicorn_workers_spawned_total", "counter", "Worker processes started.");
    sample(out, "gunicorn_workers_spawned_total", "", static_cast<ull>(s.workers_spawned));
    family(out, "gunicorn_workers_killed_total", "counter", "Worker processes sent TERM or KILL.");
    sample(out, "gunicorn_workers_killed_total", "", static_cast<ull>(s.workers_killed));
    family(out, "gunicorn_reloads_total", "counter", "Reloads (HUP).");
    sample(out, "gunicorn_reloads_total", "", static_cast<ull>(s.reloads));
    if (s.has_backlog) {
        family(out, "gunicorn_backlog", "gauge", "Connections waiting in the TCP listeners' accept queues (gunicorn.backlog).");
        sample(out, "gunicorn_backlog", "", static_cast<ull>(s.backlog < 0 ? 0 : s.backlog));
    }
    family(out, "process_start_time_seconds", "gauge", "Start time of the master since the Unix epoch in seconds.");
    sample(out, "process_start_time_seconds", "", s.start_time);

    family(out, "gunicorn_worker_requests_total", "counter", "Requests served by each worker.");
    for (const Worker &w : s.workers) sample(out, "gunicorn_worker_requests_total", worker_labels(w), static_cast<ull>(w.requests));
    family(out, "gunicorn_worker_connections", "gauge", "Connections each worker holds.");
    for (const Worker &w : s.workers)
        if (w.connections >= 0) sample(out, "gunicorn_worker_connections", worker_labels(w), static_cast<ull>(w.connections));
    family(out, "gunicorn_worker_resident_memory_bytes", "gauge", "Resident memory of each worker in bytes.");
    for (const Worker &w : s.workers)
        if (w.rss >= 0) sample(out, "gunicorn_worker_resident_memory_bytes", worker_labels(w), static_cast<ull>(w.rss));
    return out;
}

Verdict judge(std::string_view head) {
    size_t eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // method SP request-target SP HTTP-version (RFC 9112, 3)
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == 0 || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return Verdict::BAD_REQUEST;
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = line.substr(sp2 + 1);
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9')
        return Verdict::BAD_REQUEST;
    for (char c : method)
        if (c < 'A' || c > 'Z') return Verdict::BAD_REQUEST;
    if (target.empty() || target[0] != '/') return Verdict::BAD_REQUEST;
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Verdict::BAD_REQUEST;
    std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") return Verdict::NOT_FOUND;
    if (method == "GET") return Verdict::OK;
    if (method == "HEAD") return Verdict::HEAD_OK;
    return Verdict::METHOD_NOT_ALLOWED;
}

std::string response(Verdict v, const std::string &body) {
    const char *status = "200 OK";
    std::string text = body, extra;
    switch (v) {
    case Verdict::OK:
    case Verdict::HEAD_OK: break;
    case Verdict::BAD_REQUEST: status = "400 Bad Request"; break;
    case Verdict::NOT_FOUND: status = "404 Not Found"; break;
    case Verdict::TOO_LARGE: status = "431 Request Header Fields Too Large"; break;
    case Verdict::METHOD_NOT_ALLOWED:
        status = "405 Method Not Allowed";
        extra = "Allow: GET, HEAD\r\n";
        break;
    }
    bool ok = v == Verdict::OK || v == Verdict::HEAD_OK;
    if (!ok) text = std::string(status) + "\n";
    std::string out = "HTTP/1.1 ";
    out += status;
    out += "\r\nContent-Type: ";
    out += ok ? CONTENT_TYPE : "text/plain; charset=utf-8";
    out += "\r\nContent-Length: " + std::to_string(text.size()) + "\r\n";
    out += extra;
    out += "Connection: close\r\n\r\n";
    if (v != Verdict::HEAD_OK) out += text;
    return out;
}

}  // namespace cunicorn::prometheus
