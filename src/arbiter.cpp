// The master (gunicorn/arbiter.py). Signal handlers only record the signal
// in a pipe; the loop reads it, reaps first, then handles the rest, then
// murders silent workers and tops up the worker count.
#include "cunicorn/arbiter.h"

#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
    if (pipe(g_pipe) < 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    for (int fd : g_pipe) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
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

}  // namespace

Arbiter::Arbiter(Config cfg) : cfg_(std::move(cfg)) { num_workers_ = cfg_.workers; }

int Arbiter::make_tmp_file() {
    // Heartbeat file (workertmp.py): created here, unlinked at once, only
    // the descriptor lives on. /dev/shm keeps the fchmod calls off disk.
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
    if (fd < 0) throw std::runtime_error("cannot create a heartbeat file in " + dir + ": " + std::strerror(errno));
    unlink(path.c_str());
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

void Arbiter::start() {
    pid_ = getpid();
    LOG_INFO("Starting cunicorn %s", CUNICORN_VERSION);
    if (!cfg_.pidfile.empty()) pidfile_create(cfg_.pidfile, pid_);
    install_master_signals();
    BindOptions bo;
    bo.backlog = cfg_.backlog;
    bo.reuse_port = cfg_.reuse_port;
    bo.umask = cfg_.umask;
    listeners_ = create_listeners(cfg_.bind, bo);
    std::string urls;
    for (const Listener &l : listeners_) urls += (urls.empty() ? "" : ",") + l.url();
    LOG_INFO("Listening at: %s (%d)", urls.c_str(), pid_);
    LOG_INFO("Using worker: sync");
    if (cfg_.preload_app) {
        // --preload: import once here; workers inherit the module pages.
        int rc = wsgi::load_app(cfg_);
        if (rc != 0) {
            halt_status_ = rc;
            halt_reason_ = rc == 3 ? "Worker failed to boot." : "App failed to load.";
        }
    }
    platform::set_proctitle("cunicorn: master [" + cfg_.name() + "]");
}

int Arbiter::wait_signal(int timeout_ms) {
    pollfd p{g_pipe[0], POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r <= 0) return 0;
    unsigned char buf[64];
    ssize_t n;
    int count = 0;
    while ((n = read(g_pipe[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
            // A bounded queue, as gunicorn's SIG_QUEUE (5 entries): repeats
            // of a queued signal carry no extra meaning.
            if (pending_.size() < 16) pending_.push_back(buf[i]);
            ++count;
        }
    }
    return count;
}

void Arbiter::spawn_worker() {
    int tmp_fd = make_tmp_file();
    ++worker_age_;
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
        close(tmp_fd);
        LOG_ERROR("fork: %s", std::strerror(err));
        return;
    }
    if (pid == 0) {
        py::after_fork_child();
        close(g_pipe[0]);
        close(g_pipe[1]);
        for (auto &[wpid, slot] : workers_) close(slot.tmp_fd);
        struct sigaction sa{};
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        for (int sig : HANDLED) sigaction(sig, &sa, nullptr);
        platform::set_proctitle("cunicorn: worker [" + cfg_.name() + "]");
        LOG_INFO("Booting worker with pid: %d", getpid());
        WorkerInfo info;
        info.age = worker_age_;
        info.ppid = pid_;
        info.heartbeat_fd = tmp_fd;
        int rc = run_worker(cfg_, listeners_, info);
        py::finalize();
        _exit(rc);
    }
    py::after_fork_parent();
    sigprocmask(SIG_SETMASK, &old, nullptr);
    WorkerSlot slot;
    slot.pid = pid;
    slot.age = worker_age_;
    slot.tmp_fd = tmp_fd;
    workers_[pid] = slot;
}

void Arbiter::spawn_workers() {
    while (static_cast<int>(workers_.size()) < num_workers_ && halt_status_ < 0) spawn_worker();
}

void Arbiter::manage_workers() {
    if (static_cast<int>(workers_.size()) < num_workers_) spawn_workers();
    // Too many (TTOU, HUP): retire the oldest first.
    while (static_cast<int>(workers_.size()) > num_workers_) {
        pid_t oldest = 0;
        int age = 0;
        for (auto &[pid, slot] : workers_) {
            if (!oldest || slot.age < age) {
                oldest = pid;
                age = slot.age;
            }
        }
        kill_worker(oldest, SIGTERM);
        // Counted as gone once it was told; the reap removes it.
        break;
    }
}

void Arbiter::reap_workers() {
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        auto it = workers_.find(pid);
        if (it == workers_.end()) continue;  // not ours (PID 1 duty): reaped silently
        if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            if (code != 0) LOG_ERROR("Worker (pid:%d) exited with code %d.", pid, code);
            // Exit codes 3 and 4 mean the app cannot run: respawning would
            // only loop (arbiter.py WORKER_BOOT_ERROR, APP_LOAD_ERROR).
            if (code == 3 && halt_status_ < 0) {
                halt_status_ = 3;
                halt_reason_ = "Worker failed to boot.";
            } else if (code == 4 && halt_status_ < 0) {
                halt_status_ = 4;
                halt_reason_ = "App failed to load.";
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
        close(it->second.tmp_fd);
        workers_.erase(it);
    }
}

void Arbiter::murder_workers() {
    if (cfg_.timeout <= 0) return;
    time_t now = time(nullptr);
    for (auto &[pid, slot] : workers_) {
        struct stat st;
        if (fstat(slot.tmp_fd, &st) < 0) continue;
        if (now - st.st_ctime <= cfg_.timeout) continue;
        if (!slot.aborted) {
            LOG_CRITICAL("WORKER TIMEOUT (pid:%d)", pid);
            slot.aborted = true;
            kill_worker(pid, SIGABRT);
        } else {
            kill_worker(pid, SIGKILL);
        }
    }
}

void Arbiter::kill_worker(pid_t pid, int sig) {
    if (kill(pid, sig) < 0 && errno == ESRCH) {
        auto it = workers_.find(pid);
        if (it != workers_.end()) {
            close(it->second.tmp_fd);
            workers_.erase(it);
        }
    }
}

void Arbiter::kill_workers(int sig) {
    std::vector<pid_t> pids;
    for (auto &[pid, slot] : workers_) pids.push_back(pid);
    for (pid_t pid : pids) kill_worker(pid, sig);
}

void Arbiter::stop(bool graceful) {
    // Unix socket files go with the last master (arbiter.py stop()).
    close_listeners(listeners_, true);
    int sig = graceful ? SIGTERM : SIGQUIT;
    kill_workers(sig);
    int64_t deadline = now_ms() + static_cast<int64_t>(cfg_.graceful_timeout) * 1000;
    while (!workers_.empty() && now_ms() < deadline) {
        wait_signal(100);
        for (int s : pending_) {
            if (graceful && (s == SIGINT || s == SIGQUIT)) {
                // A quick stop asked during a graceful one wins.
                graceful = false;
                kill_workers(SIGQUIT);
                deadline = std::min(deadline, now_ms() + 2000);
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
        if (it != workers_.end()) {
            close(it->second.tmp_fd);
            workers_.erase(it);
        }
    }
}

int Arbiter::halt(const std::string &reason, int exit_status) {
    stop(true);
    log::Level level = exit_status == 0 ? log::Level::INFO : log::Level::ERROR;
    log::write(level, "Shutting down: Master");
    if (!reason.empty()) log::write(level, "Reason: %s", reason.c_str());
    if (!cfg_.pidfile.empty()) pidfile_unlink(cfg_.pidfile, pid_);
    return exit_status;
}

void Arbiter::reload() {
    // A new generation first, then the old one retires gracefully, so
    // there is never a moment without a worker accepting.
    int old_age = worker_age_;
    for (int i = 0; i < num_workers_; ++i) spawn_worker();
    for (auto &[pid, slot] : workers_)
        if (slot.age <= old_age) kill(pid, SIGTERM);
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
        manage_workers();
        break;
    case SIGTTOU:
        if (num_workers_ > 1) --num_workers_;
        manage_workers();
        break;
    case SIGUSR1:
        log::reopen();
        kill_workers(SIGUSR1);
        break;
    case SIGUSR2:
        LOG_WARNING("USR2 (binary upgrade) is not supported yet; ignored.");
        break;
    case SIGWINCH:
        LOG_DEBUG("SIGWINCH ignored. Not daemonized");
        break;
    default:
        break;
    }
}

int Arbiter::run() {
    start();
    if (halt_status_ >= 0) return halt(halt_reason_, halt_status_);
    spawn_workers();
    for (;;) {
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
        murder_workers();
        manage_workers();
    }
}

}  // namespace cunicorn
