// The master's answers to the control socket's commands (gunicorn/ctl/
// handlers.py): its workers, figures, settings and listeners, and the
// changes the commands ask for, made the way the matching signals make
// them.
#include "cunicorn/arbiter.h"

#include "cunicorn/hooks.h"
#include "cunicorn/platform.h"
#include "cunicorn/statsd.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>

namespace cunicorn {

using control::Json;

namespace {

double wall_now() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double round2(double v) { return std::round(v * 100) / 100; }

Json optional(const std::string &s) { return s.empty() ? Json() : Json(s); }

Json strings(const std::vector<std::string> &v) {
    Json a = Json::array();
    for (const std::string &s : v) a.arr.emplace_back(s);
    return a;
}

// A setting cunicorn keeps only as --print-config shows it (Python's str()).
Json rendered_int(const Config &cfg, const char *name, long fallback) {
    auto it = cfg.rendered.find(name);
    if (it == cfg.rendered.end()) return Json(fallback);
    char *end;
    long v = std::strtol(it->second.c_str(), &end, 10);
    return *end ? Json(it->second) : Json(v);
}

Json rendered_list(const Config &cfg, const char *name) {
    Json out = Json::array();
    auto it = cfg.rendered.find(name);
    if (it == cfg.rendered.end()) return out;
    std::string s = it->second;  // "['a:B', 'c:D']"
    for (size_t i = 0; i < s.size(); ++i) {
        char q = s[i];
        if (q != '\'' && q != '"') continue;
        size_t end = s.find(q, i + 1);
        if (end == std::string::npos) break;
        out.arr.emplace_back(s.substr(i + 1, end - i - 1));
        i = end;
    }
    return out;
}

}  // namespace

pid_t Arbiter::pid() { return pid_; }

Json Arbiter::workers(bool all) {
    std::vector<const WorkerSlot *> slots;
    for (auto &[wpid, slot] : workers_) slots.push_back(&slot);
    std::sort(slots.begin(), slots.end(), [](const WorkerSlot *a, const WorkerSlot *b) { return a->age < b->age; });
    double now = wall_now();
    int64_t mono = worker::now_ms();
    Json out = Json::array();
    for (const WorkerSlot *s : slots) {
        const WorkerStatus *ws = s->status;
        Json w = Json::object();
        w.set("pid", static_cast<long>(s->pid));
        if (all) w.set("type", "web");
        w.set("age", s->age);
        w.set("booted", s->booted || (ws && ws->booted));
        if (!all) w.set("aborted", s->aborted);
        struct stat st;
        if (fstat(s->tmp_fd, &st) == 0) {
            double beat = static_cast<double>(st.st_ctim.tv_sec) + static_cast<double>(st.st_ctim.tv_nsec) / 1e9;
            w.set("last_heartbeat", round2(std::max(0.0, now - beat)));
        } else {
            w.set("last_heartbeat", nullptr);
        }
        if (!all) {
            // cunicorn's own figures, after gunicorn's.
            w.set("retiring", s->retiring);
            w.set("requests", ws ? Json(static_cast<unsigned long long>(ws->requests)) : Json());
            w.set("connections", ws ? Json(static_cast<unsigned long>(ws->connections)) : Json());
            long long rss = platform::rss_bytes(s->pid);
            w.set("rss", rss >= 0 ? Json(rss) : Json());
            // Every request in the application (gthread runs several), oldest first.
            Json running = Json::array();
            for (const worker::ShownRequest &r : ws ? worker::requests_in_flight(*ws) : std::vector<worker::ShownRequest>())
                running.arr.push_back(Json::object()
                                          .set("method", r.method)
                                          .set("path", r.path)
                                          .set("peer", r.peer)
                                          .set("age", round2(static_cast<double>(std::max<int64_t>(0, mono - r.started_ms)) / 1000.0)));
            w.set("current_request", running.arr.empty() ? Json() : running.arr.front());
            w.set("requests_in_flight", std::move(running));  // the first 16 threads
            w.set("in_flight", ws ? Json(static_cast<unsigned long>(ws->in_flight)) : Json());  // all of them
        }
        out.arr.push_back(std::move(w));
    }
    return out;
}

Json Arbiter::stats() {
    long current = static_cast<long>(workers_.size());
    return Json::object()
        .set("uptime", round2(wall_now() - start_time_))
        .set("pid", static_cast<long>(pid_))
        .set("workers_current", current)
        .set("workers_target", num_workers_)
        .set("workers_spawned", workers_spawned_)
        .set("workers_killed", workers_killed_)
        .set("reloads", reloads_)
        .set("dirty_arbiter_pid", nullptr);
}

// handlers.py show_config: the same keys, as JSON values.
Json Arbiter::config() {
    const Config &c = cfg_;
    return Json::object()
        .set("bind", strings(c.bind))
        .set("workers", c.workers)
        .set("worker_class", c.worker_class)
        .set("threads", c.threads)
        .set("timeout", c.timeout)
        .set("graceful_timeout", c.graceful_timeout)
        .set("keepalive", c.keepalive)
        .set("max_requests", c.max_requests)
        .set("max_requests_jitter", c.max_requests_jitter)
        .set("worker_connections", c.worker_connections)
        .set("preload_app", c.preload_app)
        .set("daemon", c.daemon)
        .set("pidfile", optional(c.pidfile))
        .set("proc_name", optional(c.proc_name))
        .set("reload", c.reload)
        .set("dirty_workers", rendered_int(c, "dirty_workers", 0))
        .set("dirty_apps", rendered_list(c, "dirty_apps"))
        .set("dirty_timeout", rendered_int(c, "dirty_timeout", 300))
        .set("control_socket", c.control_socket)
        .set("control_socket_disable", c.control_socket_disable);
}

Json Arbiter::listeners() {
    Json list = Json::array();
    for (const Listener &l : listeners_) {
        const char *type = l.family == AF_UNIX ? "unix" : l.family == AF_INET ? "tcp" : l.family == AF_INET6 ? "tcp6" : "unknown";
        list.arr.push_back(Json::object().set("address", l.url(cfg_.is_ssl())).set("fd", l.fd).set("type", type));
    }
    size_t n = list.arr.size();
    return Json::object().set("listeners", std::move(list)).set("count", static_cast<unsigned long>(n));
}

// As TTIN and TTOU, by more than one: the loop's manage_workers spawns or
// retires the difference.
Json Arbiter::change_workers(int delta) {
    int old = num_workers_;
    num_workers_ = std::max(1, old + delta);
    hooks::nworkers_changed(hook_server(), num_workers_, old);
    if (delta > 0) return Json::object().set("added", delta).set("previous", old).set("total", num_workers_);
    return Json::object().set("removed", old - num_workers_).set("previous", old).set("total", num_workers_);
}

Json Arbiter::kill_worker(long pid) {
    auto it = workers_.find(static_cast<pid_t>(pid));
    if (pid <= 0 || it == workers_.end())
        return Json::object().set("success", false).set("error", "Worker " + std::to_string(pid) + " not found");
    pid_t wpid = it->first;
    if (::kill(wpid, 0) < 0) {
        std::string err = std::string("[Errno ") + std::to_string(errno) + "] " + std::strerror(errno);
        return Json::object().set("success", false).set("error", err);
    }
    kill_worker(wpid, SIGTERM);  // a graceful stop; manage_workers replaces it
    return Json::object().set("success", true).set("killed", pid);
}

void Arbiter::post_signal(int sig) { pending_.push_back(sig); }

std::string Arbiter::metrics() {
    prometheus::Snapshot s;
    s.totals = retired_;
    s.totals.add(statsd::own());  // the master's log calls
    std::vector<const WorkerSlot *> slots;
    for (auto &[wpid, slot] : workers_) slots.push_back(&slot);
    std::sort(slots.begin(), slots.end(), [](const WorkerSlot *a, const WorkerSlot *b) { return a->age < b->age; });
    for (const WorkerSlot *slot : slots) {
        prometheus::Worker w;
        w.pid = slot->pid;
        w.age = slot->age;
        w.rss = platform::rss_bytes(slot->pid);
        if (const WorkerStatus *ws = slot->status) {
            s.totals.add(ws->figures);
            w.requests = ws->requests;
            w.connections = static_cast<long>(ws->connections);
        }
        s.workers.push_back(w);
    }
    s.workers_target = num_workers_;
    s.workers_spawned = workers_spawned_;
    s.workers_killed = workers_killed_;
    s.reloads = reloads_;
    s.start_time = start_time_;
    s.has_backlog = statsd::listen_backlog(listeners_, s.backlog);
    return prometheus::render(s);
}

}  // namespace cunicorn
