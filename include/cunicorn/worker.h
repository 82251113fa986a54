// The worker process: what every worker class shares (gunicorn's
// workers/base.py) -- boot after fork (signals, privileges, the app),
// heartbeat, parent check, max_requests, graceful stop, the reloader's
// hand-over -- and the table of worker classes. A class's run function
// (executor.h) drives the connection engine (conn.h) with its executor
// and calls back into this lifecycle.
#ifndef CUNICORN_WORKER_H
#define CUNICORN_WORKER_H

#include "cunicorn/sock.h"
#include "cunicorn/statsd.h"

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace cunicorn {

struct Config;

namespace ev {
class Loop;
}

// One request in the application, as the status page shows it.
struct RequestSlot {
    int64_t started_ms;            // CLOCK_MONOTONIC; 0 when the slot is free
    char method[16];
    char path[160];
    char peer[48];
};

// Application threads whose requests the status page shows one by one
// (gthread); in_flight counts those of any others too.
constexpr int THREAD_SLOTS = 16;

// A page shared by the master and one worker (a MAP_SHARED mapping of the
// heartbeat file, made before fork): the worker says when it has booted
// and which request it is serving, so a timeout can be explained and a
// HUP can wait for the new generation before retiring the old one.
struct WorkerStatus {
    uint32_t booted;               // the app is loaded, the loop runs
    uint32_t retire_requested;     // counts the worker's asks for a replacement
                                   // (max_requests near, the reloader saw a change)
    uint32_t replacement_ready;    // set by the master once it has booted
    int64_t request_started_ms;    // CLOCK_MONOTONIC; 0 between requests
    char method[16];
    char path[240];
    char peer[48];
    // For the control socket's "show workers", written by the worker.
    uint64_t requests;             // requests served (worker.nr)
    uint32_t connections;          // connections held
    // Requests in the application now, and (gthread) what each of the
    // first THREAD_SLOTS application threads runs. The sync worker shows
    // its one request in the fields above.
    uint32_t in_flight;
    RequestSlot threads[THREAD_SLOTS];
    // Requests by status and duration, log calls: StatsD's figures, read
    // by the master's Prometheus endpoint (statsd::attach).
    statsd::Figures figures;
};

struct WorkerInfo {
    int age = 0;          // spawn sequence number
    pid_t ppid = 0;       // the master; the worker exits when it changes
    int heartbeat_fd = -1;
    WorkerStatus *status = nullptr;
};

// Runs in the forked child until it should exit; returns the exit status
// (0, or 3/4 when the application cannot be loaded).
int run_worker(const Config &cfg, std::vector<Listener> &listeners, const WorkerInfo &info);

// Heartbeat: tells the master this process is alive (fchmod of the
// unlinked temp file, as gunicorn's WorkerTmp.notify did).
void heartbeat(int fd);

namespace worker {

// What the lifecycle asks of the class that holds the listeners.
class Acceptor {
public:
    // Retirement: take no new connection (closes the listeners).
    virtual void stop_accepting() = 0;

protected:
    ~Acceptor() = default;
};

// The worker process's own state: one per process.
struct Process {
    const Config *cfg = nullptr;
    std::vector<Listener> *listeners = nullptr;
    WorkerInfo info;
    uint64_t nr = 0;             // requests served
    uint64_t max_requests = 0;   // 0 = unlimited; this worker's, jitter included
    bool stopping = false;       // graceful: finish in-flight, then exit
    int64_t stop_deadline = 0;
    int64_t last_beat = 0;
    bool replacement_asked = false;  // max_requests is near
    bool reload_pending = false;     // the reloader saw a change; the replacement boots
    Acceptor *acceptor = nullptr;    // set while a class serves
};

// One worker class: `run` serves until the worker should exit and returns
// its exit status. `prepare`, when set, runs in the worker before the
// application is imported (false: the worker cannot boot); `missing`, when
// set, tells the master why the class cannot run on this host (null: it
// can).
struct WorkerClass {
    const char *name;
    int (*run)(Process &p);
    bool (*prepare)() = nullptr;
    const char *(*missing)() = nullptr;
};

// The class for a worker_class value; null when none has that name.
const WorkerClass *find_class(std::string_view name);

// Why the configured class cannot run here (its module is not installed),
// or null; the master asks before it starts anything.
const char *class_missing(const Config &cfg);

// CLOCK_MONOTONIC in milliseconds; inline, as the engine reads it on
// every request.
inline int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The heartbeat, at most once a second.
void beat(Process &p);

// The class's loop is ready: watches the signal pipe, starts the
// reloader, runs post_worker_init.
void ready(Process &p, ev::Loop &loop);
// Housekeeping a few times a second: heartbeat, the reloader's hand-over.
// False when the master is gone and the worker must exit.
bool housekeeping(Process &p);

// Retirement (TERM, a HUP's old generation, TTOU, max_requests, the
// reloader): no new connection; each response from now on closes its
// connection, so every client is told before its connection goes; an idle
// keep-alive connection stays open until its keep-alive deadline in case
// its client is already sending the next request; the class's loop ends
// when no connection is left, or at the graceful timeout (stop_deadline).
void begin_graceful_stop(Process &p);

// Asks the master to start a worker that will take this one's place.
void ask_replacement(Process &p);

// "Autorestarting worker after current request.", then begin_graceful_stop.
void retire_at_max_requests(Process &p);

// max_requests is a hard limit: a worker answers at most that many
// requests (its own limit, max_requests plus its jitter), and exactly that
// many unless it stops for another reason. It asks the master for its
// replacement a little before (a tenth of the limit, at most 100
// requests), so that with one worker a booted one is accepting when it
// goes; gunicorn stops at the limit and the listen queue waits for the
// respawn. It retires as soon as the requests it has answered, plus one
// more on every connection it holds, reach the limit: from then on it
// accepts nothing and closes each connection with its next response, so
// the count cannot pass the limit. (Retiring as soon as the replacement
// has booted would cut workers short of their limit, and the jitter range
// with it.) The class calls this before every accept and before every
// application call, and a few times a second, with `held` the connections
// it holds and `open_conns()` those of them that may still bring a
// request (asked only near the limit). Returns false once the worker
// retires.
template <class OpenConns>
bool check_max_requests(Process &p, uint64_t held, OpenConns open_conns) {
    if (!p.max_requests || p.stopping) return !p.stopping;
    uint64_t margin = p.max_requests / 10;
    if (margin > 100) margin = 100;
    if (margin < 1) margin = 1;
    if (!p.replacement_asked && p.nr + held + margin >= p.max_requests) ask_replacement(p);
    if (p.nr + held < p.max_requests) return true;  // the cheap test first
    if (p.nr + open_conns() < p.max_requests) return true;
    retire_at_max_requests(p);
    return false;
}

// The application is running (between the two calls): SIGINT and SIGQUIT
// then run the hooks inside it (hooks::signal_quit).
void app_call_begin();
void app_call_end();
// INT or QUIT came during an application call: blocking waits on a
// client give up, so that the interpreter reaches the hooks soon.
bool quit_requested();

// The status page slot shows a request while the application runs it
// (read by the master only if the request times out). `slot` may be null.
void status_begin(WorkerStatus *slot, std::string_view method, std::string_view path, std::string_view peer,
                  int64_t started_ms);
void status_end(WorkerStatus *slot);
// The same for application thread (or greenlet) `thread`, from 0, of a
// worker that runs several requests at once; `status` may be null.
void thread_status_begin(WorkerStatus *status, size_t thread, std::string_view method, std::string_view path,
                         std::string_view peer, int64_t started_ms);
void thread_status_end(WorkerStatus *status, size_t thread);

// A request a worker's status page shows in the application (read by
// the master).
struct ShownRequest {
    std::string method, path, peer;
    int64_t started_ms;
};
// Every request `ws` shows in the application, oldest first.
std::vector<ShownRequest> requests_in_flight(const WorkerStatus &ws);

}  // namespace worker

}  // namespace cunicorn

#endif
