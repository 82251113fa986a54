// The connection engine: listeners, connections, their buffers and
// transports (plain, TLS), keep-alive, pipelining, request framing and
// response writing, driven by the event loop. It knows nothing of how the
// application is called: it hands each complete request, as a request
// object (request.h), to an executor, through the interface below.
#ifndef CUNICORN_CONN_H
#define CUNICORN_CONN_H

#include "cunicorn/request.h"

namespace cunicorn {

namespace ev {
class Loop;
}
namespace worker {
struct Process;
}

namespace conn {

// Runs the application for the requests the engine hands over. The
// engine calls it on the loop thread, one request per connection at a
// time (pipelined requests wait their turn, so responses go out in
// order).
class Executor {
public:
    virtual ~Executor() = default;
    // The loop is made: an executor that runs the application on the loop
    // thread lets other Python threads run while the loop sleeps.
    virtual void attach(ev::Loop &loop) = 0;
    // Runs the application for `ex`, whose body source and sink are
    // ready, and calls ex.complete() once the response is written to the
    // sink. The inline executor does all of this before returning; one
    // that runs the application elsewhere returns at once and completes
    // later, on the loop thread.
    virtual void submit(Exchange &ex) = 0;
};

// Serves the worker's listeners with `exec` until the worker should exit;
// returns its exit status.
int serve(worker::Process &p, Executor &exec);

}  // namespace conn

}  // namespace cunicorn

#endif
