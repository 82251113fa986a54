// Executors: how a worker class runs the application for the requests
// the connection engine (conn.h) hands it, and the classes' run functions
// that the worker's class table (worker.h) names.
#ifndef CUNICORN_EXECUTOR_H
#define CUNICORN_EXECUTOR_H

namespace cunicorn::worker {
struct Process;
}

namespace cunicorn::executor {

// The sync class: the application runs inline, on the loop thread, one
// request at a time; body reads and response writes wait on the client
// in place (gunicorn/workers/sync.py, with keep-alive and pipelining).
int run_sync(worker::Process &p);

// The gthread class: the loop keeps the sockets; `threads` application
// threads run the requests it hands over (gunicorn/workers/gthread.py,
// with pipelined requests answered in order).
int run_gthread(worker::Process &p);

}  // namespace cunicorn::executor

#endif
