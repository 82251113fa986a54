// The master process (gunicorn/arbiter.py): binds, forks workers, keeps
// their number, turns signals into messages for its loop, kills silent
// workers, and shuts down gracefully (TERM) or quickly (INT, QUIT).
#ifndef CUNICORN_ARBITER_H
#define CUNICORN_ARBITER_H

#include "cunicorn/config.h"
#include "cunicorn/sock.h"

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace cunicorn {

class Arbiter {
public:
    explicit Arbiter(Config cfg);
    // Runs until shutdown; returns the process exit status.
    int run();

private:
    struct WorkerSlot {
        pid_t pid = 0;
        int age = 0;
        int tmp_fd = -1;      // heartbeat file (unlinked)
        bool aborted = false; // SIGABRT sent for a timeout
    };

    void start();
    void handle_signal(int sig);
    void spawn_worker();
    void spawn_workers();
    void manage_workers();
    void reap_workers();
    void murder_workers();
    void kill_worker(pid_t pid, int sig);
    void kill_workers(int sig);
    void stop(bool graceful);
    int halt(const std::string &reason, int exit_status);
    void reload();
    int wait_signal(int timeout_ms);
    int make_tmp_file();

    Config cfg_;
    std::vector<Listener> listeners_;
    std::map<pid_t, WorkerSlot> workers_;
    int num_workers_ = 1;
    int worker_age_ = 0;
    pid_t pid_ = 0;
    bool halting_ = false;
    int halt_status_ = -1;     // set by reap_workers on a boot failure
    std::string halt_reason_;
    std::vector<int> pending_;  // signals read from the pipe, in order
};

}  // namespace cunicorn

#endif
