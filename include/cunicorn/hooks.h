// Server hooks (gunicorn/config.py "Server Hooks"): the config file's
// callables, called with Python stand-ins for gunicorn's objects (the
// arbiter, its workers, req, resp, cfg, log; reference section h).
//
// Every call logs an exception raised by the hook ("Exception in <name>
// hook" and the traceback, at ERROR) and returns: a hook never takes the
// master or a worker down. Calls are cheap when the hook is not set; the
// per-request ones test a cached flag and create no Python object.
//
// No Python.h here: the arbiter and the worker include this header. All
// calls need the GIL, which both hold outside their sleep in poll().
#ifndef CUNICORN_HOOKS_H
#define CUNICORN_HOOKS_H

#include "cunicorn/config.h"
#include "cunicorn/sock.h"
#include "cunicorn/worker.h"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Only the worker's calls take HTTP types; the arbiter needs none of them.
namespace cunicorn::http {
struct Request;
struct Response;
struct ProxyInfo;
}  // namespace cunicorn::http

namespace cunicorn::hooks {

// ---------------------------------------------------------------------
// Master side. The arbiter describes itself in a Server for each call;
// the hooks see one persistent `server` object updated from it, and one
// worker object per spawned worker (found again by its age), so state a
// hook stores on them survives from pre_fork to child_exit.
// ---------------------------------------------------------------------

// A worker as the master knows it (arbiter.py's Worker object).
struct WorkerSlot {
    pid_t pid = 0;         // 0 = not forked yet: worker.pid is "[booting]"
    int age = 0;           // spawn sequence number
    int tmp_fd = -1;       // heartbeat file
    bool aborted = false;  // SIGABRT sent for a timeout
};

struct Server {
    const Config *cfg = nullptr;
    pid_t pid = 0;                    // the master
    // server.num_workers; a hook may assign it, which writes through this
    // pointer and fires nworkers_changed (arbiter.py _set_num_workers).
    int *num_workers = nullptr;
    int worker_age = 0;
    const std::vector<Listener> *listeners = nullptr;
    std::vector<WorkerSlot> workers;  // WORKERS, without one being reaped
    pid_t master_pid = 0;             // a re-exec'd master: the old master
    pid_t reexec_pid = 0;             // the USR2 child, while it runs
    std::string master_name = "Master";
};

void on_starting(const Server &s);
void when_ready(const Server &s);
void on_reload(const Server &s);
// `w.pid` is 0: the worker object shows pid "[booting]".
void pre_fork(const Server &s, const WorkerSlot &w);
// In the child, right after fork (before privileges drop and the app
// loads); w.pid may be 0, the child's pid is used.
void post_fork(const Server &s, const WorkerSlot &w);
// After a worker was reaped and removed from s.workers (not when its
// exit code halts the server).
void child_exit(const Server &s, const WorkerSlot &w);
// In the master: kill() found the worker gone (ESRCH). (A worker process
// runs its own worker_exit as it leaves run_worker; called there, this
// does the same, once.)
void worker_exit(const Server &s, const WorkerSlot &w);
// old_value < 0 shows as None (the first assignment at start-up).
void nworkers_changed(const Server &s, int new_value, int old_value);
void on_exit(const Server &s);
void pre_exec(const Server &s);

// ---------------------------------------------------------------------
// Worker side (the worker lifecycle and the connection engine call these).
// ---------------------------------------------------------------------

// What the worker object shows of the running worker. The pointers stay
// valid for the life of the process (the worker's globals).
struct WorkerProcess {
    const Config *cfg = nullptr;
    WorkerInfo info;                     // age, ppid, heartbeat fd
    const std::vector<Listener> *listeners = nullptr;
    uint64_t max_requests = 0;           // 0 = unlimited (sys.maxsize)
    const uint64_t *nr = nullptr;        // requests served so far
    const bool *stopping = nullptr;      // worker.alive is !*stopping
    // A hook set worker.alive = False: finish what is in flight and exit.
    void (*stop)() = nullptr;
};

// After the worker installed its signal handlers, before the app loads:
// creates the worker object (when any hook needs it) and arms SIGABRT.
void worker_init(const WorkerProcess &w);
// After the app is loaded, before the first request; worker.booted
// becomes True afterwards.
void post_worker_init();

// The Python req object of one request, from pre_request to post_request
// (owned; opaque here).
class RequestRef {
public:
    RequestRef() = default;
    RequestRef(const RequestRef &) = delete;
    RequestRef &operator=(const RequestRef &) = delete;
    RequestRef(RequestRef &&o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    RequestRef &operator=(RequestRef &&o) noexcept;
    ~RequestRef();
    explicit operator bool() const { return p_ != nullptr; }
    PyObject *get() const { return p_; }
    PyObject *release() {
        PyObject *p = p_;
        p_ = nullptr;
        return p;
    }
    void reset(PyObject *p = nullptr);

private:
    PyObject *p_ = nullptr;
};

namespace detail {
extern bool g_request_hooks;
}

// pre_request or post_request is set in this worker.
inline bool request_hooks() { return detail::g_request_hooks; }

struct RequestInfo {
    const http::Request *req = nullptr;
    std::string_view peer;        // "" for a unix-socket peer
    int peer_port = -1;           // -1 for a unix-socket peer
    int req_number = 1;           // 1-based position on the connection
    int64_t nr = -1;              // worker.nr to show (requests before this one); -1: the worker's count
    const http::ProxyInfo *proxy = nullptr;
};

// A complete request head arrived (before any 100 Continue): builds the
// req object into `slot` and calls pre_request(worker, req). Call once per
// request, only when request_hooks().
void pre_request(RequestRef &slot, const RequestInfo &info);
// The response finished or failed: post_request(worker, req, environ,
// resp) with the req object pre_request built into `slot` (taken from it,
// so each request's own goes with it, however many are in flight).
// `environ` may be null (shown as {}). Only when request_hooks().
void post_request(RequestRef &slot, PyObject *environ, const http::Response &resp);

// The loaded application (wsgi::setup), for worker.wsgi and app.wsgi().
void set_app(PyObject *app);

// The `config` object hooks receive (gunicorn's Config) for cfg; borrowed,
// null with a Python exception set on failure.
PyObject *config_object(const Config &cfg);

// worker.alive = False, then worker_int(worker); the reloader's path (the
// caller stops the worker).
void worker_int();
// In a worker process as it exits without returning to the arbiter (quick
// exit): worker_exit(server, worker) once, with the server post_fork saw.
void worker_exit();

// From the SIGABRT handler (async-signal-safe): when worker_abort or
// worker_exit is set, asks the interpreter to run abort_worker() at its
// next bytecode boundary, even inside a stuck application, and returns
// true; false means no hook needs it (exit at once, as before).
bool signal_abort();
// The SIGABRT path, from the loop or from the interpreter: worker.alive =
// False, worker_abort(worker), "Worker exiting", worker_exit(server,
// worker), then _exit(1) (arbiter.py handle_abort: sys.exit(1)).
[[noreturn]] void abort_worker();

// From the SIGINT/SIGQUIT handler during an application call (async-signal-
// safe): when worker_int or worker_exit is set, asks the interpreter to run
// quit_worker() at its next bytecode boundary, inside the busy application
// (where worker_int can see what it is doing), and returns true; false
// means no hook needs it (exit at once).
bool signal_quit(int sig);
// The quick-stop path (SIGINT, SIGQUIT), from the loop or from the
// interpreter: worker_int(worker), "Worker exiting", worker_exit(server,
// worker), then _exit(0) (gunicorn's handle_quit: worker_int, sys.exit(0)).
[[noreturn]] void quit_worker();

}  // namespace cunicorn::hooks

#endif
