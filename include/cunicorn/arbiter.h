// The master process (gunicorn/arbiter.py): binds, forks workers, keeps
// their number, turns signals into messages for its loop, kills silent
// workers, reloads (HUP), re-executes itself (USR2) and shuts down
// gracefully (TERM) or quickly (INT, QUIT).
#ifndef CUNICORN_ARBITER_H
#define CUNICORN_ARBITER_H

#include "cunicorn/config.h"
#include "cunicorn/control.h"
#include "cunicorn/hooks.h"
#include "cunicorn/prometheus.h"
#include "cunicorn/sock.h"
#include "cunicorn/worker.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cunicorn {

// The control socket's commands (control.h) are answered by the master
// itself: src/arbiter_control.cpp.
class Arbiter : private control::Master {
public:
    explicit Arbiter(Config cfg);
    // Runs until shutdown; returns the process exit status.
    int run();

private:
    struct WorkerSlot {
        pid_t pid = 0;
        int age = 0;
        int tmp_fd = -1;              // heartbeat file (unlinked)
        WorkerStatus *status = nullptr;  // its shared page
        bool aborted = false;         // SIGABRT sent for a timeout
        bool retiring = false;        // told to stop (TERM)
        bool booted = false;          // has loaded the app (seen once in its status page)
        int generation = 0;           // the configuration it runs: generation_, or the next (HUP)
        pid_t replacement = 0;        // booting in its place (max_requests, reloader)
        uint32_t asks_seen = 0;       // its status page's retire_requested, last read
    };

    void start();
    void setup_listeners();
    void handle_signal(int sig);
    // False (logged, with a back-off before the next try) when no worker
    // could be started.
    bool spawn_worker(const Config &cfg, std::vector<Listener> &listeners, int generation);
    void spawn_workers();
    bool spawn_allowed() const;
    void spawn_failed(const char *why);
    void note_booted();
    void manage_workers();
    void replace_retiring_workers();
    // Workers that count towards num_workers: not told to stop and not
    // already being replaced.
    static bool counts(const WorkerSlot &slot);
    void reap_workers();
    void murder_workers();
    void kill_worker(pid_t pid, int sig);
    void kill_workers(int sig);
    void kill_generation(int generation, int sig);  // -1: every worker
    void forget_worker(std::map<pid_t, WorkerSlot>::iterator it);
    void stop(bool graceful);
    int halt(const std::string &reason, int exit_status);
    void reload();
    void check_reload();
    void reexec();
    void maybe_promote_master();
    int wait_signal(int timeout_ms);
    bool make_slot(WorkerSlot &slot);
    std::string pidfile_path() const;
    hooks::Server hook_server();

    // control::Master (arbiter_control.cpp)
    pid_t pid() override;
    control::Json workers(bool all) override;
    control::Json stats() override;
    control::Json config() override;
    control::Json listeners() override;
    control::Json change_workers(int delta) override;
    control::Json kill_worker(long pid) override;
    void post_signal(int sig) override;
    std::string metrics() override;

    Config cfg_;
    std::vector<Listener> listeners_;
    std::map<pid_t, WorkerSlot> workers_;
    int num_workers_ = 1;
    int worker_age_ = 0;
    pid_t pid_ = 0;
    pid_t master_pid_ = 0;     // the old master while we are a USR2 child
    pid_t reexec_pid_ = 0;     // our USR2 child while it runs
    bool systemd_ = false;     // listeners came from socket activation
    int halt_status_ = -1;     // set by reap_workers on a boot failure
    std::string halt_reason_;
    std::vector<int> pending_; // signals read from the pipe, in order
    std::string exe_;          // our own binary, for USR2
    std::string start_cwd_;
    // After a worker could not be started or could not load the app:
    // no new worker before spawn_retry_at_ (ms, CLOCK_MONOTONIC).
    int64_t spawn_backoff_ms_ = 0;
    int64_t spawn_retry_at_ = 0;

    // Workers of generation_ run cfg_. A HUP in progress: the next
    // generation boots with next_cfg_ while the running one keeps serving.
    int generation_ = 0;
    bool serving_ = false;     // a worker of the running configuration has booted
    bool reloading_ = false;
    bool reload_failed_ = false;
    int64_t reload_deadline_ = 0;
    Config next_cfg_;
    std::vector<Listener> next_listeners_;
    bool listeners_changed_ = false;

    // The control socket, and the figures its "show stats" reports.
    control::Server control_;
    double start_time_ = 0;    // wall clock, seconds
    long workers_spawned_ = 0, workers_killed_ = 0, reloads_ = 0;
    // The Prometheus endpoint, and the figures of the workers that are gone.
    control::Server metrics_;
    prometheus::Totals retired_;
};

}  // namespace cunicorn

#endif
