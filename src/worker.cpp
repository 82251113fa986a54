// The worker process (gunicorn/workers/base.py): boot after fork, signals,
// privileges, heartbeat, parent check, max_requests, graceful stop, the
// reloader's hand-over, and the table of worker classes. Connections are
// the engine's (conn.cpp); running the application is the executor's
// (executor_*.cpp).
#include "cunicorn/worker.h"

#include "cunicorn/config.h"
#include "cunicorn/ev.h"
#include "cunicorn/executor.h"
#include "cunicorn/hooks.h"
#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/reloader.h"
#include "cunicorn/wsgi.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>

namespace cunicorn {

namespace worker {

namespace {

// The worker classes; config.cpp accepts only the names found here (any
// other gunicorn class runs as sync, with a warning).
const WorkerClass CLASSES[] = {
    {"sync", executor::run_sync},
    {"gthread", executor::run_gthread},
    {"gevent", executor::run_gevent, executor::gevent_prepare, executor::gevent_missing},
    // gunicorn's gevent_wsgi and gevent_pywsgi serve through gevent's own
    // pywsgi server; here, as gevent, through cunicorn's parser and bridge.
    {"gevent_wsgi", executor::run_gevent, executor::gevent_prepare, executor::gevent_missing},
    {"gevent_pywsgi", executor::run_gevent, executor::gevent_prepare, executor::gevent_missing},
};

Process g_process;
std::thread::id g_loop_thread;  // runs the event loop; hooks may run on others
int g_sig_pipe[2] = {-1, -1};
// Application calls in progress. Atomics that are always lock-free are
// safe to read in a signal handler.
std::atomic<int> g_in_app{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads g_in_app");
volatile sig_atomic_t g_quit_requested = 0;

void on_signal(int sig) {
    int saved = errno;
    // QUIT and INT are quick. During an application call, the interpreter
    // runs worker_int and worker_exit inside it (hooks::signal_quit), as
    // gunicorn's handle_quit does; with neither hook set there is nothing
    // to wait for.
    if ((sig == SIGQUIT || sig == SIGINT) && g_in_app.load(std::memory_order_relaxed)) {
        if (!hooks::signal_quit(sig)) _exit(0);
        g_quit_requested = 1;
    }
    // ABRT (the master's timeout): with worker_abort or worker_exit set,
    // the interpreter runs them at its next bytecode boundary, even inside
    // a stuck app, or the loop does on reading the pipe; the master's
    // SIGKILL is the backstop. Without them, exit at once.
    if (sig == SIGABRT && !hooks::signal_abort()) _exit(1);
    auto b = static_cast<unsigned char>(sig);
    (void)!write(g_sig_pipe[1], &b, 1);
    errno = saved;
}

void install_signals() {
    if (!platform::signal_pipe(g_sig_pipe)) LOG_ERROR("pipe: %s", std::strerror(errno));
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGABRT}) sigaction(sig, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    for (int sig : {SIGWINCH, SIGPIPE}) sigaction(sig, &sa, nullptr);
    sa.sa_handler = SIG_DFL;
    for (int sig : {SIGHUP, SIGUSR2, SIGCHLD}) sigaction(sig, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

// The reloader saw `file` change. Gunicorn's worker logs, runs worker_int
// and exits for the master to start a fresh one. Here the fresh one is
// started first (ask_replacement) and this worker goes only once it has
// booted (retire_if_replaced): code that no longer imports leaves this
// one serving, and the master retries at each further change.
void on_reload_change(const std::string &file) {
    Process &p = g_process;
    LOG_INFO("Worker reloading: %s modified", file.c_str());
    if (!p.info.status) {
        hooks::worker_int();
        begin_graceful_stop(p);
        return;
    }
    p.reload_pending = true;
    ask_replacement(p);
}

void retire_if_replaced(Process &p) {
    if (!p.reload_pending || p.stopping || !p.info.status || !p.info.status->replacement_ready) return;
    p.reload_pending = false;
    hooks::worker_int();
    begin_graceful_stop(p);
}

void on_signal_pipe(ev::Loop &, int fd, int, void *data) {
    Process &p = *static_cast<Process *>(data);
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(fd, sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
            switch (sigs[i]) {
            case SIGTERM:
                begin_graceful_stop(p);
                break;
            case SIGQUIT:
            case SIGINT:
                hooks::quit_worker();
            case SIGABRT:
                hooks::abort_worker();  // only with hooks armed (on_signal)
            case SIGUSR1:
                log::reopen();
                break;
            default:
                break;
            }
        }
    }
}

// As gunicorn's set_owner_process, before the app is imported: files the
// worker must keep using change owner first; uid/gid 0 means "stay".
bool drop_privileges(const Config &cfg, const WorkerInfo &info) {
    bool change_gid = cfg.gid > 0 && static_cast<gid_t>(cfg.gid) != getegid();
    bool change_uid = cfg.uid > 0 && static_cast<uid_t>(cfg.uid) != geteuid();
    if (!change_gid && !change_uid) return true;
    uid_t uid = change_uid ? static_cast<uid_t>(cfg.uid) : geteuid();
    gid_t gid = change_gid ? static_cast<gid_t>(cfg.gid) : getegid();
    if (info.heartbeat_fd >= 0) (void)!fchown(info.heartbeat_fd, uid, gid);
    log::chown_files(uid, gid);
    if (change_gid) {
        const passwd *pw = cfg.initgroups ? getpwuid(uid) : nullptr;
        int rc = pw ? initgroups(pw->pw_name, gid) : setgid(gid);
        if (rc == 0 && pw) rc = setgid(gid);
        if (rc < 0) {
            LOG_ERROR("cannot switch to group %ld: %s", cfg.gid, std::strerror(errno));
            return false;
        }
    }
    if (change_uid && setuid(uid) < 0) {
        LOG_ERROR("cannot switch to user %ld: %s", cfg.uid, std::strerror(errno));
        return false;
    }
    return true;
}

}  // namespace

const WorkerClass *find_class(std::string_view name) {
    for (const WorkerClass &c : CLASSES)
        if (name == c.name) return &c;
    return nullptr;
}

const char *class_missing(const Config &cfg) {
    const WorkerClass *cls = find_class(cfg.worker_class);
    return cls && cls->missing ? cls->missing() : nullptr;
}

void beat(Process &p) {
    int64_t now = now_ms();
    if (now - p.last_beat < 1000) return;
    p.last_beat = now;
    heartbeat(p.info.heartbeat_fd);
}

void ready(Process &p, ev::Loop &loop) {
    loop.add(g_sig_pipe[0], ev::READABLE, on_signal_pipe, &p);
    if (p.cfg->reload) reloader::start(*p.cfg, loop, on_reload_change);
    hooks::post_worker_init();
}

bool housekeeping(Process &p) {
    beat(p);
    if (getppid() != p.info.ppid) {
        LOG_INFO("Parent changed, shutting down: <Worker %d>", getpid());
        return false;
    }
    retire_if_replaced(p);
    if (p.cfg->reload && !p.stopping) reloader::tick();
    return true;
}

void begin_graceful_stop(Process &p) {
    if (p.stopping) return;
    p.stopping = true;
    p.stop_deadline = now_ms() + static_cast<int64_t>(p.cfg->graceful_timeout) * 1000;
    if (p.acceptor) p.acceptor->stop_accepting();
}

void ask_replacement(Process &p) {
    p.replacement_asked = true;
    if (!p.info.status) return;
    ++p.info.status->retire_requested;
    kill(p.info.ppid, SIGCHLD);  // wake the master now, not at its next tick
}

void retire_at_max_requests(Process &p) {
    LOG_INFO("Autorestarting worker after current request.");
    begin_graceful_stop(p);
}

void app_call_begin() { g_in_app.fetch_add(1, std::memory_order_relaxed); }
void app_call_end() { g_in_app.fetch_sub(1, std::memory_order_relaxed); }
bool quit_requested() { return g_quit_requested != 0; }

namespace {

// Fills a status slot (WorkerStatus's own fields, or a RequestSlot) for a
// request the application starts; its start time goes last, so that a
// reader that sees it sees the rest.
template <size_t M, size_t P, size_t Q>
void show_request(int64_t &started, char (&method)[M], char (&path)[P], char (&peer)[Q], std::string_view m,
                  std::string_view p, std::string_view q, int64_t started_ms) {
    auto copy = [](char *dst, size_t cap, std::string_view src) {
        size_t n = std::min(cap - 1, src.size());
        if (n) std::memcpy(dst, src.data(), n);  // "" for a unix peer may have no data()
        dst[n] = '\0';
    };
    copy(method, M, m);
    copy(path, P, p);
    copy(peer, Q, q);
    __atomic_store_n(&started, started_ms, __ATOMIC_RELEASE);
}

// The request a status slot shows, if any: false when it is free, or
// changed while being read.
template <size_t M, size_t P, size_t Q>
bool read_request(const int64_t &started, const char (&method)[M], const char (&path)[P], const char (&peer)[Q],
                  ShownRequest &out) {
    int64_t at = __atomic_load_n(&started, __ATOMIC_ACQUIRE);
    if (!at) return false;
    out.method.assign(method, strnlen(method, M));
    out.path.assign(path, strnlen(path, P));
    out.peer.assign(peer, strnlen(peer, Q));
    out.started_ms = at;
    return __atomic_load_n(&started, __ATOMIC_ACQUIRE) == at;
}

}  // namespace

void status_begin(WorkerStatus *slot, std::string_view method, std::string_view path, std::string_view peer,
                  int64_t started_ms) {
    if (!slot) return;
    __atomic_add_fetch(&slot->in_flight, 1, __ATOMIC_RELAXED);
    show_request(slot->request_started_ms, slot->method, slot->path, slot->peer, method, path, peer, started_ms);
}

void status_end(WorkerStatus *slot) {
    if (!slot) return;
    __atomic_store_n(&slot->request_started_ms, 0, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&slot->in_flight, 1, __ATOMIC_RELAXED);
}

void thread_status_begin(WorkerStatus *status, size_t thread, std::string_view method, std::string_view path,
                         std::string_view peer, int64_t started_ms) {
    if (!status) return;
    __atomic_add_fetch(&status->in_flight, 1, __ATOMIC_RELAXED);
    if (thread >= THREAD_SLOTS) return;
    RequestSlot &s = status->threads[thread];
    show_request(s.started_ms, s.method, s.path, s.peer, method, path, peer, started_ms);
}

void thread_status_end(WorkerStatus *status, size_t thread) {
    if (!status) return;
    if (thread < THREAD_SLOTS) __atomic_store_n(&status->threads[thread].started_ms, 0, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&status->in_flight, 1, __ATOMIC_RELAXED);
}

std::vector<ShownRequest> requests_in_flight(const WorkerStatus &ws) {
    std::vector<ShownRequest> out;
    ShownRequest r;
    if (read_request(ws.request_started_ms, ws.method, ws.path, ws.peer, r)) out.push_back(r);
    for (const RequestSlot &s : ws.threads)
        if (read_request(s.started_ms, s.method, s.path, s.peer, r)) out.push_back(r);
    std::sort(out.begin(), out.end(),
              [](const ShownRequest &a, const ShownRequest &b) { return a.started_ms < b.started_ms; });
    return out;
}

}  // namespace worker

void heartbeat(int fd) {
    if (fd < 0) return;
    // Toggling the mode updates ctime, which the master reads.
    static bool flip = false;
    flip = !flip;
    (void)fchmod(fd, flip ? 0600 : 0400);
}

int run_worker(const Config &cfg, std::vector<Listener> &listeners, const WorkerInfo &info) {
    worker::Process &p = worker::g_process;
    p.cfg = &cfg;
    p.listeners = &listeners;
    p.info = info;
    if (cfg.max_requests > 0) {
        std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
        std::uniform_int_distribution<int> jitter(0, cfg.max_requests_jitter);
        p.max_requests = static_cast<uint64_t>(cfg.max_requests) + static_cast<uint64_t>(jitter(rng));
    }
    // config.cpp names only classes of the table; anything else ran as sync.
    const worker::WorkerClass *cls = worker::find_class(cfg.worker_class);
    if (!cls) cls = worker::find_class("sync");
    worker::install_signals();
    hooks::WorkerProcess hw;
    hw.cfg = &cfg;
    hw.info = info;
    hw.listeners = &listeners;
    hw.max_requests = p.max_requests;
    hw.nr = &p.nr;
    hw.stopping = &p.stopping;
    worker::g_loop_thread = std::this_thread::get_id();
    hw.stop = [] {  // worker.alive = False from a hook
        if (std::this_thread::get_id() == worker::g_loop_thread) {
            worker::begin_graceful_stop(worker::g_process);
        } else {
            unsigned char b = SIGTERM;  // an application thread: the loop stops
            (void)!write(worker::g_sig_pipe[1], &b, 1);
        }
    };
    hooks::worker_init(hw);
    struct ExitHook {
        ~ExitHook() { hooks::worker_exit(); }  // on every way out of here
    } exit_hook;
    heartbeat(info.heartbeat_fd);
    if (cls->prepare && !cls->prepare()) return 3;
    if (!worker::drop_privileges(cfg, info)) return 3;

    int rc = wsgi::app_loaded() ? 0 : wsgi::load_app(cfg);
    if (rc != 0) return rc;
    if (info.status) {
        info.status->booted = 1;
        kill(info.ppid, SIGCHLD);  // a HUP or a max_requests hand-over waits for this
    }
    rc = cls->run(p);
    if (rc == 0) LOG_INFO("Worker exiting (pid: %d)", getpid());
    return rc;
}

}  // namespace cunicorn
