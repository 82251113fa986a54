// The inline executor and the sync worker class: the application runs on
// the loop thread, for one request at a time. The request's body source
// and sink are the engine's direct ones, which read and write the socket
// in place, waiting for the client when they must; the loop resumes once
// the response is complete.
#include "cunicorn/executor.h"

#include "cunicorn/conn.h"
#include "cunicorn/ev.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

namespace cunicorn::executor {

namespace {

class InlineExecutor final : public conn::Executor {
public:
    explicit InlineExecutor(worker::Process &p) : p_(p) {}

    // The loop thread holds the GIL, except while it sleeps.
    void attach(ev::Loop &loop) override { loop.set_sleep_hooks(wsgi::release_gil, wsgi::acquire_gil, nullptr); }

    void submit(Exchange &ex) override {
        ex.status = p_.info.status;  // one request at a time: the one slot
        worker::status_begin(ex.status, ex.req->method, ex.req->target, ex.remote_addr, ex.submitted_ms);
        worker::app_call_begin();
        ex.outcome = wsgi::handle(ex, ex.resp);
        worker::app_call_end();
        worker::status_end(ex.status);
        ex.complete();
    }

private:
    worker::Process &p_;
};

}  // namespace

int run_sync(worker::Process &p) {
    InlineExecutor exec(p);
    return conn::serve(p, exec);
}

}  // namespace cunicorn::executor
