// The master (gunicorn/arbiter.py). Signal handlers only record the signal
// in a pipe; the loop reads it, reaps first, then handles the rest, then
// murders silent workers and tops up the worker count.
#include "cunicorn/arbiter.h"

#include "cunicorn/hooks.h"
#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/statsd.h"
#include "cunicorn/tls.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

#ifndef CUNICORN_VERSION
#define CUNICORN_VERSION "0.0.0"
#endif

namespace cunicorn {

namespace {

int g_pipe[2] = {-1, -1};
// A quick stop (INT, QUIT) gives workers this long to run worker_int and
// worker_exit, even inside a busy application call, before SIGKILL.
constexpr int64_t QUICK_STOP_GRACE_MS = 2000;
// Waits between tries when workers cannot be started or cannot load the
// application: doubling from the first to the last.
constexpr int64_t SPAWN_BACKOFF_MIN_MS = 1000;
constexpr int64_t SPAWN_BACKOFF_MAX_MS = 30000;

void on_signal(int sig) {
    int saved = errno;
    auto b = static_cast<unsigned char>(sig);
    (void)!write(g_pipe[1], &b, 1);  // a full pipe means the loop is awake anyway
    errno = saved;
}

const int HANDLED[] = {SIGHUP, SIGQUIT, SIGINT, SIGTERM, SIGTTIN, SIGTTOU,
                       SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};

const char *signame(int sig) {
    switch (sig) {
    case SIGHUP: return "hup";
    case SIGQUIT: return "quit";
    case SIGINT: return "int";
    case SIGTERM: return "term";
    case SIGTTIN: return "ttin";
    case SIGTTOU: return "ttou";
    case SIGUSR1: return "usr1";
    case SIGUSR2: return "usr2";
    case SIGWINCH: return "winch";
    case SIGCHLD: return "chld";
    default: return "unknown";
    }
}

const char *signal_upper(int sig) {
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGABRT: return "SIGABRT";
    case SIGSEGV: return "SIGSEGV";
    case SIGQUIT: return "SIGQUIT";
    case SIGINT: return "SIGINT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    default: return "signal";
    }
}

int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void install_master_signals() {
    if (!platform::signal_pipe(g_pipe)) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : HANDLED) sigaction(sig, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, nullptr);
}

// gunicorn/pidfile.py: refuse to start over a live master, write
// atomically, and remove the file only while it still names us.
void pidfile_create(const std::string &path, pid_t pid) {
    FILE *f = std::fopen(path.c_str(), "r");
    if (f) {
        long old = 0;
        if (std::fscanf(f, "%ld", &old) == 1 && old > 0 && old != pid &&
            (kill(static_cast<pid_t>(old), 0) == 0 || errno == EPERM)) {
            std::fclose(f);
            throw std::runtime_error("Already running on PID " + std::to_string(old) + " (or pid file '" + path +
                                     "' is stale)");
        }
        std::fclose(f);
    }
    std::string tmp = path + ".tmp" + std::to_string(pid);
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("pidfile: cannot write '" + path + "': " + std::strerror(errno));
    std::string text = std::to_string(pid) + "\n";
    bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    if (!ok || rename(tmp.c_str(), path.c_str()) < 0) {
        int err = errno;
        unlink(tmp.c_str());
        throw std::runtime_error("pidfile: cannot write '" + path + "': " + std::strerror(err));
    }
}

void pidfile_unlink(const std::string &path, pid_t pid) {
    FILE *f = std::fopen(path.c_str(), "r");
    if (!f) return;
    long old = 0;
    bool ours = std::fscanf(f, "%ld", &old) == 1 && old == pid;
    std::fclose(f);
    if (ours) unlink(path.c_str());
}

// systemd's sd_notify(3) without libsystemd: one datagram to
// $NOTIFY_SOCKET ('@' = abstract namespace). No-op without the variable.
void sd_notify(const std::string &msg) {
    const char *path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un sun{};
    size_t len = std::strlen(path);
    if (len >= sizeof sun.sun_path) return;
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path, len);
    if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';
    int fd = platform::socket_cloexec(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0) return;
    socklen_t salen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    if (sendto(fd, msg.data(), msg.size(), platform::SEND_NOSIGNAL, reinterpret_cast<sockaddr *>(&sun), salen) < 0)
        LOG_DEBUG("sd_notify: %s", std::strerror(errno));
    close(fd);
}

// With reuse_port, each worker binds its own TCP sockets (SO_REUSEPORT:
// the kernel spreads connections over them, no shared accept queue), as
// gunicorn does; unix sockets and fd:// stay with the master, since a
// second bind of a path would steal it. Where the kernel would not spread
// them (platform.h), the master's socket stays shared.
bool per_worker_bind(const Config &cfg, const Address &a) {
    return cfg.reuse_port && platform::REUSE_PORT_BALANCES && a.kind == Address::TCP;
}

std::vector<Address> master_binds(const Config &cfg) {
    std::vector<Address> out;
    for (const Address &a : cfg.address)
        if (!per_worker_bind(cfg, a)) out.push_back(a);
    return out;
}

std::vector<int> parse_fd_list(const char *text) {
    std::vector<int> fds;
    for (const char *p = text; *p;) {
        char *end;
        long v = std::strtol(p, &end, 10);
        if (end == p) break;
        if (v >= 0 && v < 65536) fds.push_back(static_cast<int>(v));
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') break;
    }
    return fds;
}

}  // namespace

Arbiter::Arbiter(Config cfg) : cfg_(std::move(cfg)) { num_workers_ = cfg_.workers; }

// The master as server hooks see it (hooks.h).
hooks::Server Arbiter::hook_server() {
    hooks::Server s;
    s.cfg = &cfg_;
    s.pid = pid_;
    s.num_workers = &num_workers_;
    s.worker_age = worker_age_;
    s.listeners = &listeners_;
    s.master_pid = master_pid_;
    s.reexec_pid = reexec_pid_;
    s.master_name = master_pid_ ? "Master.2" : "Master";
    for (auto &[wpid, slot] : workers_) s.workers.push_back({wpid, slot.age, slot.tmp_fd, slot.aborted});
    return s;
}

std::string Arbiter::pidfile_path() const {
    // A re-executed master writes <pidfile>.2 until the old one is gone.
    return master_pid_ ? cfg_.pidfile + ".2" : cfg_.pidfile;
}

bool Arbiter::make_slot(WorkerSlot &slot) {
    // Heartbeat file (workertmp.py): created here, unlinked at once, only
    // the descriptor lives on. /dev/shm keeps the fchmod calls off disk.
    // Its first page is also mapped, shared, for the WorkerStatus.
    std::string dir = cfg_.worker_tmp_dir;
    if (dir.empty()) {
        if (access("/dev/shm", W_OK) == 0) dir = "/dev/shm";
        else if (const char *t = std::getenv("TMPDIR")) dir = t;
        else dir = "/tmp";
    }
    std::string path = dir + "/wcunicorn-XXXXXX";
    mode_t old = umask(static_cast<mode_t>(cfg_.umask));
    int fd = mkstemp(&path[0]);
    umask(old);
    if (fd < 0) {
        LOG_ERROR("worker_tmp_dir: cannot create a heartbeat file in %s: %s", dir.c_str(), std::strerror(errno));
        return false;
    }
    unlink(path.c_str());
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    slot.tmp_fd = fd;
    if (ftruncate(fd, static_cast<off_t>(sizeof(WorkerStatus))) == 0) {
        void *p = mmap(nullptr, sizeof(WorkerStatus), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) slot.status = static_cast<WorkerStatus *>(p);
    }
    return true;
}

bool Arbiter::spawn_allowed() const { return now_ms() >= spawn_retry_at_; }

void Arbiter::spawn_failed(const char *why) {
    spawn_backoff_ms_ = std::min<int64_t>(SPAWN_BACKOFF_MAX_MS, std::max<int64_t>(SPAWN_BACKOFF_MIN_MS, spawn_backoff_ms_ * 2));
    spawn_retry_at_ = now_ms() + spawn_backoff_ms_;
    LOG_ERROR("%s; next worker in %.0f s", why, static_cast<double>(spawn_backoff_ms_) / 1000.0);
}

void Arbiter::setup_listeners() {
    std::vector<int> inherited;
    const char *listen_pid = std::getenv("LISTEN_PID");
    if (listen_pid && std::atol(listen_pid) == getpid()) {
        // systemd socket activation: LISTEN_FDS descriptors from fd 3.
        int n = std::atoi(std::getenv("LISTEN_FDS") ? std::getenv("LISTEN_FDS") : "0");
        for (int i = 0; i < n; ++i) inherited.push_back(3 + i);
        systemd_ = true;
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
    } else if (const char *fds = std::getenv("GUNICORN_FD")) {
        inherited = parse_fd_list(fds);  // a USR2 re-exec
        unsetenv("GUNICORN_FD");
    }
    if (inherited.empty()) {
        BindOptions bo;
        bo.backlog = cfg_.backlog;
        bo.reuse_port = cfg_.reuse_port;
        bo.umask = cfg_.umask;
        listeners_ = create_listeners(master_binds(cfg_), bo);
        return;
    }
    // Inherited sockets replace the configured addresses (arbiter.py start).
    for (int fd : inherited) listeners_.push_back(adopt_listener(fd));
}

void Arbiter::start() {
    pid_ = getpid();
    timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    start_time_ = static_cast<double>(wall.tv_sec) + static_cast<double>(wall.tv_nsec) / 1e9;
    if (const char *gp = std::getenv("GUNICORN_PID")) master_pid_ = static_cast<pid_t>(std::atol(gp));
    char buf[4096];
    exe_ = platform::executable_path();
    if (exe_.empty()) exe_ = original_argv().at(0);
    if (getcwd(buf, sizeof buf)) start_cwd_ = buf;
    LOG_INFO("Starting cunicorn %s", CUNICORN_VERSION);
    if (!cfg_.pidfile.empty()) pidfile_create(pidfile_path(), pid_);
    hooks::nworkers_changed(hook_server(), num_workers_, -1);
    hooks::on_starting(hook_server());
    install_master_signals();
    setup_listeners();
    std::string urls;
    for (const Listener &l : listeners_) urls += (urls.empty() ? "" : ",") + l.url(cfg_.is_ssl());
    for (const Address &a : cfg_.address)
        if (per_worker_bind(cfg_, a)) {
            std::string host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
            urls += (urls.empty() ? "" : ",") + ((cfg_.is_ssl() ? "https://" : "http://") + host + ":" + std::to_string(a.port));
        }
    LOG_INFO("Listening at: %s (%d)", urls.c_str(), pid_);
    LOG_INFO("Using worker: %s", cfg_.worker_class.c_str());
    // Workers keep the master's uid unless --user names another non-zero
    // one (drop_privileges). Root stays allowed, containers do it on
    // purpose, but is said once: a hole in the app would own the machine.
    if (cfg_.uid <= 0 && geteuid() == 0)
        LOG_WARNING("workers run as root (uid 0): a compromised application controls the whole "
                    "machine; use --user (-u) to run them as an unprivileged user");
    if (cfg_.preload_app) {
        // --preload: import once here; workers inherit the module pages.
        int rc = wsgi::load_app(cfg_);
        if (rc != 0) {
            halt_status_ = rc;
            halt_reason_ = rc == 3 ? "Worker failed to boot." : "App failed to load.";
        }
    }
    platform::set_proctitle("cunicorn: master [" + cfg_.name() + (master_pid_ ? ".2" : "") + "]");
    sd_notify("READY=1\nSTATUS=cunicorn arbiter booted");
    if (halt_status_ < 0) hooks::when_ready(hook_server());
}

int Arbiter::wait_signal(int timeout_ms) {
    std::vector<pollfd> fds{{g_pipe[0], POLLIN, 0}};
    control_.add_pollfds(fds);
    size_t metrics_at = fds.size();
    metrics_.add_pollfds(fds);
    int r = ::poll(fds.data(), fds.size(), timeout_ms);
    // Control commands queue their signal in pending_, read with the rest.
    control_.handle(fds.data() + 1, r > 0 ? metrics_at - 1 : 0, *this);
    metrics_.handle(fds.data() + metrics_at, r > 0 ? fds.size() - metrics_at : 0, *this);
    if (r <= 0 || !(fds[0].revents & POLLIN)) return 0;
    unsigned char buf[64];
    ssize_t n;
    int count = 0;
    while ((n = read(g_pipe[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
            // A bounded queue, as gunicorn's SIG_QUEUE: repeats of a queued
            // signal carry no extra meaning.
            if (pending_.size() < 16) pending_.push_back(buf[i]);
            ++count;
        }
    }
    return count;
}

bool Arbiter::spawn_worker(const Config &cfg, std::vector<Listener> &listeners, int generation) {
    WorkerSlot slot;
    if (!make_slot(slot)) {
        spawn_failed("Cannot start a worker");
        return false;
    }
    slot.age = ++worker_age_;
    slot.generation = generation;
    hooks::Server hs = hook_server();
    hs.cfg = &cfg;
    hs.listeners = &listeners;
    hooks::pre_fork(hs, {0, slot.age, slot.tmp_fd, false});
    sigset_t all, old;
    sigfillset(&all);
    // No signal may run the master's handler in the child before the
    // worker installs its own.
    sigprocmask(SIG_BLOCK, &all, &old);
    py::before_fork();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        py::after_fork_parent();
        sigprocmask(SIG_SETMASK, &old, nullptr);
        if (slot.status) munmap(slot.status, sizeof(WorkerStatus));
        close(slot.tmp_fd);
        LOG_ERROR("fork: %s", std::strerror(err));
        spawn_failed("Cannot start a worker");
        return false;
    }
    if (pid == 0) {
        py::after_fork_child();
        control_.close_in_child();
        metrics_.close_in_child();
        statsd::attach(slot.status ? &slot.status->figures : nullptr);
        statsd::count_requests(!cfg.prometheus_bind.empty());
        close(g_pipe[0]);
        close(g_pipe[1]);
        for (auto &[wpid, other] : workers_) {
            if (other.status) munmap(other.status, sizeof(WorkerStatus));
            close(other.tmp_fd);
        }
        // A worker of one generation must not hold the other's sockets: a
        // listener nobody accepts on would swallow connections.
        for (std::vector<Listener> *set : {&listeners_, &next_listeners_}) {
            if (set == &listeners) continue;
            for (const Listener &l : *set) {
                bool mine = false;
                for (const Listener &m : listeners) mine = mine || m.fd == l.fd;
                if (!mine) close(l.fd);
            }
        }
        struct sigaction sa{};
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        for (int sig : HANDLED) sigaction(sig, &sa, nullptr);
        platform::set_proctitle("cunicorn: worker [" + cfg.name() + "]");
        LOG_INFO("Booting worker with pid: %d", getpid());
        WorkerInfo info;
        info.age = slot.age;
        info.ppid = pid_;
        info.heartbeat_fd = slot.tmp_fd;
        info.status = slot.status;
        std::vector<Listener> own = listeners;
        std::vector<Address> worker_binds;
        for (const Address &a : cfg.address)
            if (per_worker_bind(cfg, a)) worker_binds.push_back(a);
        if (!worker_binds.empty()) {
            BindOptions bo;
            bo.backlog = cfg.backlog;
            bo.reuse_port = true;
            bo.umask = cfg.umask;
            try {
                for (Listener &l : create_listeners(worker_binds, bo)) own.push_back(l);
            } catch (const std::exception &e) {
                LOG_ERROR("%s", e.what());
                _exit(3);
            }
        }
        hs.listeners = &own;
        hooks::post_fork(hs, {0, slot.age, slot.tmp_fd, false});
        int rc = run_worker(cfg, own, info);
        py::finalize();
        statsd::flush();
        _exit(rc);
    }
    py::after_fork_parent();
    sigprocmask(SIG_SETMASK, &old, nullptr);
    slot.pid = pid;
    workers_[pid] = slot;
    ++workers_spawned_;
    return true;
}

bool Arbiter::counts(const WorkerSlot &slot) { return !slot.retiring && !slot.replacement; }

void Arbiter::spawn_workers() {
    int active = 0;
    for (auto &[pid, slot] : workers_) active += counts(slot);
    for (; active < num_workers_ && halt_status_ < 0 && spawn_allowed(); ++active)
        if (!spawn_worker(cfg_, listeners_, generation_)) break;
}

void Arbiter::note_booted() {
    for (auto &[pid, slot] : workers_) {
        if (slot.booted || !slot.status || !slot.status->booted) continue;
        slot.booted = true;
        if (slot.generation == generation_) serving_ = true;
        spawn_backoff_ms_ = 0;  // the application loads again
        spawn_retry_at_ = 0;
    }
}

void Arbiter::replace_retiring_workers() {
    std::vector<pid_t> wanting;
    for (auto &[pid, slot] : workers_) {
        if (slot.retiring || !slot.status) continue;
        uint32_t asks = slot.status->retire_requested;
        if (asks != slot.asks_seen) {
            // Asked again (the reloader saw another change, perhaps the
            // fix): worth a try now, whatever the back-off says.
            if (slot.asks_seen) spawn_retry_at_ = 0;
            slot.asks_seen = asks;
        }
        if (slot.replacement) {
            auto next = workers_.find(slot.replacement);
            if (next == workers_.end()) slot.replacement = 0;  // it died: try again
            else if (next->second.booted)
                slot.status->replacement_ready = 1;
        } else if (asks) {
            wanting.push_back(pid);
        }
    }
    for (pid_t pid : wanting) {
        if (!spawn_allowed() || !spawn_worker(cfg_, listeners_, generation_)) break;
        for (auto &[npid, nslot] : workers_)
            if (nslot.age == worker_age_) workers_[pid].replacement = npid;
    }
}

void Arbiter::manage_workers() {
    if (reloading_) return;  // check_reload() decides during a HUP
    note_booted();
    replace_retiring_workers();
    spawn_workers();
    // Too many (TTOU, WINCH): retire the oldest first.
    for (;;) {
        int active = 0;
        pid_t oldest = 0;
        int age = 0;
        for (auto &[pid, slot] : workers_) {
            if (!counts(slot)) continue;
            ++active;
            if (!oldest || slot.age < age) {
                oldest = pid;
                age = slot.age;
            }
        }
        if (active <= num_workers_ || !oldest) {
            statsd::master_metrics(active, listeners_);
            break;
        }
        kill_worker(oldest, SIGTERM);
    }
}

void Arbiter::forget_worker(std::map<pid_t, WorkerSlot>::iterator it) {
    if (it->second.status) retired_.add(it->second.status->figures);  // counters never go down
    if (it->second.status) munmap(it->second.status, sizeof(WorkerStatus));
    close(it->second.tmp_fd);
    workers_.erase(it);
}

void Arbiter::reap_workers() {
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        if (pid == reexec_pid_) {
            reexec_pid_ = 0;  // the new master died before promotion
            LOG_WARNING("The re-executed master (pid:%d) exited; this master keeps serving", pid);
            continue;
        }
        auto it = workers_.find(pid);
        if (it == workers_.end()) continue;  // not ours (PID 1 duty): reaped silently
        note_booted();
        const WorkerSlot &slot = it->second;
        bool new_generation = slot.generation > generation_;  // a HUP's, booting or abandoned
        bool clean = false;
        bool halts = false;
        if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            clean = code == 0;
            if (code != 0) LOG_ERROR("Worker (pid:%d) exited with code %d.", pid, code);
            // Exit codes 3 and 4 mean the app cannot run (arbiter.py
            // WORKER_BOOT_ERROR, APP_LOAD_ERROR). At start, respawning would
            // only loop: the master halts, as gunicorn's. Once the
            // application has served, the module on disk broke under a
            // running service: a HUP's new generation is abandoned
            // (check_reload), any other worker is retried with a back-off
            // while the others keep serving.
            if ((code == 3 || code == 4) && !slot.booted && halt_status_ < 0 && !new_generation) {
                if (!serving_) {
                    halt_status_ = code;
                    halt_reason_ = code == 3 ? "Worker failed to boot." : "App failed to load.";
                    halts = true;
                } else {
                    spawn_failed("A new worker could not load the application; the running workers keep serving");
                }
            }
        } else if (WIFSIGNALED(status)) {
            int sig = WTERMSIG(status);
            if (sig == SIGKILL)
                LOG_ERROR("Worker (pid:%d) was sent SIGKILL! Perhaps out of memory?", pid);
            else if (sig == SIGTERM)
                LOG_INFO("Worker (pid:%d) was sent SIGTERM!", pid);
            else
                LOG_WARNING("Worker (pid:%d) was sent %s!", pid, signal_upper(sig));
        }
        if (new_generation && reloading_ && !clean && !slot.booted && !reload_failed_) {
            reload_failed_ = true;
            if (WIFEXITED(status) && (WEXITSTATUS(status) == 3 || WEXITSTATUS(status) == 4))
                LOG_ERROR("Reload failed: the new workers cannot load the application (the worker's error is above)");
        }
        hooks::WorkerSlot gone{pid, it->second.age, it->second.tmp_fd, it->second.aborted};
        forget_worker(it);
        if (!halts) hooks::child_exit(hook_server(), gone);
    }
}

void Arbiter::murder_workers() {
    if (cfg_.timeout <= 0) return;
    time_t now = time(nullptr);
    int64_t now_mono = now_ms();
    for (auto &[pid, slot] : workers_) {
        struct stat st;
        if (fstat(slot.tmp_fd, &st) < 0) continue;
        if (now - st.st_ctime <= cfg_.timeout) continue;
        if (!slot.aborted) {
            // Say what it was stuck on: the first question anyone asks. A
            // gthread or gevent worker may hold many requests; the oldest
            // is the likely culprit, the count says how many go with it.
            std::vector<worker::ShownRequest> stuck;
            if (slot.status) stuck = worker::requests_in_flight(*slot.status);
            if (!stuck.empty()) {
                const worker::ShownRequest &r = stuck.front();
                unsigned in_flight = std::max<unsigned>(__atomic_load_n(&slot.status->in_flight, __ATOMIC_RELAXED),
                                                        static_cast<unsigned>(stuck.size()));
                char others[48] = "";
                if (in_flight > 1) snprintf(others, sizeof others, " (%u requests in flight)", in_flight);
                LOG_CRITICAL("WORKER TIMEOUT (pid:%d) serving %s %s from %s for %.1f s%s", pid, r.method.c_str(),
                             r.path.c_str(), r.peer.empty() ? "unix socket" : r.peer.c_str(),
                             static_cast<double>(now_mono - r.started_ms) / 1000.0, others);
            } else {
                LOG_CRITICAL("WORKER TIMEOUT (pid:%d)", pid);
            }
            slot.aborted = true;
            kill_worker(pid, SIGABRT);
        } else {
            kill_worker(pid, SIGKILL);
        }
    }
}

void Arbiter::kill_worker(pid_t pid, int sig) {
    auto it = workers_.find(pid);
    int rc = kill(pid, sig);
    if (rc == 0 && (sig == SIGTERM || sig == SIGKILL)) ++workers_killed_;
    if (rc < 0 && errno == ESRCH) {
        if (it != workers_.end()) {
            hooks::WorkerSlot gone{pid, it->second.age, it->second.tmp_fd, it->second.aborted};
            forget_worker(it);
            hooks::worker_exit(hook_server(), gone);
        }
        return;
    }
    if (it != workers_.end() && (sig == SIGTERM || sig == SIGQUIT || sig == SIGKILL)) it->second.retiring = true;
}

void Arbiter::kill_workers(int sig) { kill_generation(-1, sig); }

void Arbiter::kill_generation(int generation, int sig) {
    std::vector<pid_t> pids;  // kill_worker may forget a worker
    for (auto &[pid, slot] : workers_)
        if (generation < 0 || slot.generation == generation) pids.push_back(pid);
    for (pid_t pid : pids) kill_worker(pid, sig);
}

void Arbiter::stop(bool graceful) {
    sd_notify("STOPPING=1");
    // The socket files belong to whichever master outlives the other: only
    // unlink them when no USR2 partner exists (arbiter.py stop()).
    bool unlink_unix = reexec_pid_ == 0 && master_pid_ == 0 && !systemd_ && !cfg_.reuse_port;
    close_listeners(listeners_, unlink_unix);
    if (reloading_) close_listeners(next_listeners_, unlink_unix);
    int sig = graceful ? SIGTERM : SIGQUIT;
    kill_workers(sig);
    int64_t grace = static_cast<int64_t>(cfg_.graceful_timeout) * 1000;
    if (!graceful) grace = std::min(grace, QUICK_STOP_GRACE_MS);
    int64_t deadline = now_ms() + grace;
    while (!workers_.empty() && now_ms() < deadline) {
        wait_signal(100);
        for (int s : pending_) {
            if (graceful && (s == SIGINT || s == SIGQUIT)) {
                // A quick stop asked during a graceful one wins.
                graceful = false;
                kill_workers(SIGQUIT);
                deadline = std::min(deadline, now_ms() + QUICK_STOP_GRACE_MS);
            }
        }
        pending_.clear();
        reap_workers();
    }
    kill_workers(SIGKILL);
    while (!workers_.empty()) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno == ECHILD) break;
        auto it = workers_.find(pid);
        if (it != workers_.end()) forget_worker(it);
    }
}

int Arbiter::halt(const std::string &reason, int exit_status) {
    control_.stop();
    stop(true);
    metrics_.stop();
    log::Level level = exit_status == 0 ? log::Level::INFO : log::Level::ERROR;
    log::write(level, "Shutting down: Master");
    if (!reason.empty()) log::write(level, "Reason: %s", reason.c_str());
    if (!cfg_.pidfile.empty()) pidfile_unlink(pidfile_path(), pid_);
    hooks::on_exit(hook_server());
    return exit_status;
}

void Arbiter::reload() {
    if (reloading_) {
        LOG_WARNING("HUP ignored: the previous reload is still in progress");
        return;
    }
    ++reloads_;
    sd_notify("RELOADING=1");
    // arbiter.py reload(): re-read argv, GUNICORN_CMD_ARGS and the config
    // file. Unlike gunicorn, nothing is torn down until the new generation
    // has booted: a bad config or app keeps the old workers serving.
    Config next;
    try {
        next = load_config(original_argv());
        tls::load_context(next);
    } catch (const ConfigFileError &e) {
        log::write_text(log::Level::ERROR, "Reload failed, keeping the running configuration: " +
                                               std::string(e.what()) + "\n" + e.traceback);
        sd_notify("READY=1");
        return;
    } catch (const ConfigError &e) {
        LOG_ERROR("Reload failed, keeping the running configuration: %s", e.what());
        sd_notify("READY=1");
        return;
    }
    if (next.spew) wsgi::spew();  // as gunicorn's BaseApplication.reload
    try {
        log::configure(next);
    } catch (const std::exception &e) {
        LOG_ERROR("Reload failed, keeping the running configuration: %s", e.what());
        sd_notify("READY=1");
        return;
    }
    listeners_changed_ = next.bind != cfg_.bind && !systemd_;
    if (listeners_changed_) {
        try {
            BindOptions bo;
            bo.backlog = next.backlog;
            bo.reuse_port = next.reuse_port;
            bo.umask = next.umask;
            next_listeners_ = create_listeners(next.address, bo);
        } catch (const std::exception &e) {
            LOG_ERROR("Reload failed, keeping the running configuration: %s", e.what());
            log::configure(cfg_);
            sd_notify("READY=1");
            return;
        }
        std::string urls;
        for (const Listener &l : next_listeners_) urls += (urls.empty() ? "" : ",") + l.url(next.is_ssl());
        LOG_INFO("Listening at: %s (%d)", urls.c_str(), pid_);
    }
    py::apply_raw_env(next.raw_env);
    next_cfg_ = std::move(next);
    {
        hooks::Server hs = hook_server();
        hs.cfg = &next_cfg_;
        hs.listeners = listeners_changed_ ? &next_listeners_ : &listeners_;
        hooks::on_reload(hs);
    }
    reloading_ = true;
    reload_failed_ = false;
    reload_deadline_ = now_ms() + 1000LL * std::max(30, next_cfg_.timeout);
    for (int i = 0; i < next_cfg_.workers; ++i)
        if (!spawn_worker(next_cfg_, listeners_changed_ ? next_listeners_ : listeners_, generation_ + 1)) {
            reload_failed_ = true;
            break;
        }
}

void Arbiter::check_reload() {
    if (!reloading_) return;
    note_booted();
    int booted = 0;
    for (auto &[pid, slot] : workers_)
        if (slot.generation > generation_ && slot.booted) ++booted;
    if (!reload_failed_ && now_ms() > reload_deadline_) {
        LOG_ERROR("Reload failed: the new workers did not boot in time");
        reload_failed_ = true;
    }
    if (reload_failed_) {
        // Back to the running generation: the new one goes, nothing else changes.
        LOG_ERROR("Reload failed: keeping the old workers and configuration");
        kill_generation(generation_ + 1, SIGKILL);
        if (listeners_changed_) close_listeners(next_listeners_, true);
        try {
            log::configure(cfg_);
        } catch (const std::exception &) {
        }
        keep_python_settings(cfg_);  // the new configuration's hooks go with it
        reloading_ = false;
        sd_notify("READY=1");
        return;
    }
    if (booted < next_cfg_.workers) return;
    // The new generation serves: now the old one may finish and go.
    kill_generation(generation_, SIGTERM);
    ++generation_;
    if (listeners_changed_) {
        close_listeners(listeners_, false);
        listeners_ = std::move(next_listeners_);
        next_listeners_.clear();
    }
    cfg_ = std::move(next_cfg_);
    metrics_.metrics_at(cfg_.prometheus_bind);
    keep_python_settings(cfg_);  // the master's hooks are the new ones from now on
    int old_workers = num_workers_;
    num_workers_ = cfg_.workers;
    hooks::nworkers_changed(hook_server(), num_workers_, old_workers);
    reloading_ = false;
    platform::set_proctitle("cunicorn: master [" + cfg_.name() + (master_pid_ ? ".2" : "") + "]");
    LOG_INFO("Reloaded: %d new workers serving", booted);
    sd_notify("READY=1");
}

void Arbiter::reexec() {
    if (reexec_pid_) {
        LOG_WARNING("USR2 signal ignored. Child exists.");
        return;
    }
    if (master_pid_) {
        LOG_WARNING("USR2 signal ignored. Parent exists.");
        return;
    }
    py::before_fork();
    pid_t pid = fork();
    if (pid < 0) {
        py::after_fork_parent();
        LOG_ERROR("fork: %s", std::strerror(errno));
        return;
    }
    if (pid > 0) {
        py::after_fork_parent();
        reexec_pid_ = pid;
        return;
    }
    py::after_fork_child();
    hooks::pre_exec(hook_server());
    // The child becomes the new master: same binary, same argv, the
    // listening sockets passed by number (arbiter.py reexec()).
    std::string fds;
    for (const Listener &l : listeners_) {
        int flags = fcntl(l.fd, F_GETFD);
        fcntl(l.fd, F_SETFD, flags & ~FD_CLOEXEC);
        fds += (fds.empty() ? "" : ",") + std::to_string(l.fd);
    }
    setenv("GUNICORN_PID", std::to_string(pid_).c_str(), 1);
    if (systemd_) {
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDS", std::to_string(listeners_.size()).c_str(), 1);
    } else {
        setenv("GUNICORN_FD", fds.c_str(), 1);
    }
    if (!start_cwd_.empty() && chdir(start_cwd_.c_str()) < 0) LOG_WARNING("chdir %s: %s", start_cwd_.c_str(), std::strerror(errno));
    const std::vector<std::string> &args = original_argv();
    std::vector<char *> argv;
    for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(exe_.c_str(), argv.data());
    LOG_ERROR("USR2: cannot execute %s: %s", exe_.c_str(), std::strerror(errno));
    _exit(1);
}

void Arbiter::maybe_promote_master() {
    if (!master_pid_ || getppid() == master_pid_) return;
    // The old master is gone (we were re-parented): take over its name.
    LOG_INFO("Master has been promoted.");
    std::string old_pidfile = pidfile_path();
    master_pid_ = 0;
    unsetenv("GUNICORN_PID");
    if (!cfg_.pidfile.empty()) {
        pidfile_unlink(old_pidfile, pid_);
        try {
            pidfile_create(cfg_.pidfile, pid_);
        } catch (const std::exception &e) {
            LOG_ERROR("%s", e.what());
        }
    }
    platform::set_proctitle("cunicorn: master [" + cfg_.name() + "]");
    sd_notify("MAINPID=" + std::to_string(pid_));
}

void Arbiter::handle_signal(int sig) {
    if (sig == SIGCHLD) {
        reap_workers();
        return;
    }
    LOG_INFO("Handling signal: %s", signame(sig));
    switch (sig) {
    case SIGHUP:
        LOG_INFO("Hang up: Master");
        reload();
        break;
    case SIGTTIN:
        ++num_workers_;
        hooks::nworkers_changed(hook_server(), num_workers_, num_workers_ - 1);
        manage_workers();
        break;
    case SIGTTOU:
        if (num_workers_ > 1) {
            --num_workers_;
            hooks::nworkers_changed(hook_server(), num_workers_, num_workers_ + 1);
        }
        manage_workers();
        break;
    case SIGUSR1:
        log::reopen();
        kill_workers(SIGUSR1);
        break;
    case SIGUSR2:
        reexec();
        break;
    case SIGWINCH:
        if (cfg_.daemon) {
            LOG_INFO("graceful stop of workers");
            int old_workers = num_workers_;
            num_workers_ = 0;
            hooks::nworkers_changed(hook_server(), 0, old_workers);
            kill_workers(SIGTERM);
        } else {
            LOG_DEBUG("SIGWINCH ignored. Not daemonized");
        }
        break;
    default:
        break;
    }
}

int Arbiter::run() {
    start();
    if (halt_status_ >= 0) return halt(halt_reason_, halt_status_);
    spawn_workers();
    // As gunicorn, once the first workers are on their way; a path that
    // cannot be made (a read-only home in a container) only warns.
    if (!cfg_.control_socket_disable) control_.start(cfg_.control_socket, cfg_.control_socket_mode);
    metrics_.metrics_at(cfg_.prometheus_bind);
    for (;;) {
        maybe_promote_master();
        wait_signal(1000);
        // Reap first: a worker that died must not be signalled again.
        reap_workers();
        std::vector<int> sigs;
        sigs.swap(pending_);
        for (int sig : sigs) {
            if (sig == SIGTERM) {
                LOG_INFO("Handling signal: term");
                return halt("", 0);
            }
            if (sig == SIGINT || sig == SIGQUIT) {
                LOG_INFO("Handling signal: %s", signame(sig));
                stop(false);
                return halt("", 0);
            }
            handle_signal(sig);
        }
        if (halt_status_ >= 0) return halt(halt_reason_, halt_status_);
        check_reload();
        murder_workers();
        manage_workers();
    }
}

}  // namespace cunicorn
