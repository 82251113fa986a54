// Executors: how a worker class runs the application for the requests
// the connection engine (conn.h) hands it, and the classes' run functions
// that the worker's class table (worker.h) names.
#ifndef CUNICORN_EXECUTOR_H
#define CUNICORN_EXECUTOR_H

namespace cunicorn {
struct Exchange;
namespace worker {
struct Process;
}
}  // namespace cunicorn

namespace cunicorn::executor {

// The sync class: the application runs inline, on the loop thread, one
// request at a time; body reads and response writes wait on the client
// in place (gunicorn/workers/sync.py, with keep-alive and pipelining).
int run_sync(worker::Process &p);

// The gthread class: the loop keeps the sockets; `threads` application
// threads take turns at it and run the requests its callbacks hand over
// (gunicorn/workers/gthread.py, with pipelined requests answered in order).
int run_gthread(worker::Process &p);

// The gevent class: each request runs in a greenlet, the engine in the
// main greenlet, driven by gevent's hub (gunicorn/workers/ggevent.py).
int run_gevent(worker::Process &p);
// Before the application is imported in the worker: monkey-patches, as
// gunicorn's GeventWorker.init_process does. False (logged) on failure.
bool gevent_prepare();
// Why the gevent class cannot run here (gevent cannot be imported), or
// null. Asked by the master before anything starts.
const char *gevent_missing();

// A relayed request's application side, where its executor runs it (a
// thread, a greenlet): pre_request, the application, post_request.
void serve_relayed(Exchange &ex);

}  // namespace cunicorn::executor

#endif
