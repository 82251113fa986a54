// The sync worker: one event loop over the listeners and client
// connections; one application call at a time, with keep-alive,
// pipelining and non-blocking I/O around it.
#ifndef CUNICORN_WORKER_H
#define CUNICORN_WORKER_H

#include "cunicorn/sock.h"

#include <sys/types.h>

#include <cstdint>

#include <vector>

namespace cunicorn {

struct Config;

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

}  // namespace cunicorn

#endif
