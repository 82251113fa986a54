// The thread-pool executor and the gthread worker class: the loop thread
// keeps every socket; each complete request is queued for one of
// `threads` application threads, which runs pre_request, the application
// and post_request on it. Its body source and sink are the engine's
// relayed ones (conn.h), which wait on a mutex and a condition variable
// here while the loop brings body bytes or takes response bytes.
#include "cunicorn/executor.h"

#include "cunicorn/config.h"
#include "cunicorn/conn.h"
#include "cunicorn/ev.h"
#include "cunicorn/hooks.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cunicorn::executor {

namespace {

class ThreadGate final : public conn::Gate {
public:
    void lock() override { mu_.lock(); }
    void unlock() override { mu_.unlock(); }
    bool wait() override {
        std::unique_lock<std::mutex> held(mu_, std::adopt_lock);
        cv_.wait(held);
        held.release();
        return true;
    }
    void notify() override { cv_.notify_all(); }

private:
    std::mutex mu_;
    std::condition_variable cv_;
};

class ThreadExecutor final : public conn::Executor {
public:
    ThreadExecutor(int threads, WorkerStatus *status) : nthreads_(threads > 0 ? threads : 1), status_(status) {
        running_.reserve(static_cast<size_t>(nthreads_));
    }

    std::unique_ptr<conn::Gate> make_gate() override { return std::make_unique<ThreadGate>(); }

    // The loop thread holds the GIL only while it handles events (TLS
    // goes through Python's ssl module), never while it sleeps.
    void attach(ev::Loop &loop) override {
        loop.set_sleep_hooks(wsgi::release_gil, wsgi::acquire_gil, nullptr);
        for (int i = 0; i < nthreads_; ++i) std::thread([this] { run(); }).detach();
    }

    std::string where(const Exchange &ex) override {
        unsigned long ident = 0;
        {
            std::lock_guard<std::mutex> g(mu_);
            for (const Slot &s : running_)
                if (s.ex == &ex) ident = s.ident;
        }
        if (!ident) return "(the request is still queued for a thread)\n";
        return wsgi::thread_stack(ident);
    }

    void submit(Exchange &ex) override {
        {
            std::lock_guard<std::mutex> g(mu_);
            queue_.push_back(&ex);
        }
        cv_.notify_one();
    }

private:
    // One application thread: takes the next request, runs it with the
    // GIL, hands it back to the loop.
    void run() {
        void *state = wsgi::thread_attach();
        size_t me;
        {
            std::lock_guard<std::mutex> g(mu_);
            me = running_.size();
            running_.push_back(Slot{nullptr, wsgi::thread_ident()});
        }
        for (;;) {
            Exchange *ex;
            {
                std::unique_lock<std::mutex> g(mu_);
                cv_.wait(g, [this] { return !queue_.empty(); });
                ex = queue_.front();
                queue_.pop_front();
                running_[me].ex = ex;
            }
            // The status page shows what each thread runs (show workers).
            worker::thread_status_begin(status_, me, ex->req->method, ex->req->target, ex->remote_addr,
                                        ex->submitted_ms);
            wsgi::thread_enter(state);
            serve_relayed(*ex);
            state = wsgi::thread_leave();
            worker::thread_status_end(status_, me);
            {
                std::lock_guard<std::mutex> g(mu_);
                running_[me].ex = nullptr;
            }
            ex->complete();  // the last touch: the loop owns it again
        }
    }

    // What each thread runs, for where().
    struct Slot {
        const Exchange *ex;
        unsigned long ident;
    };

    int nthreads_;
    WorkerStatus *status_;
    std::mutex mu_;
    std::vector<Slot> running_;
    std::condition_variable cv_;
    std::deque<Exchange *> queue_;
};

}  // namespace

void serve_relayed(Exchange &ex) {
    if (hooks::request_hooks()) {
        hooks::RequestInfo hi;
        hi.req = ex.req;
        hi.peer = ex.remote_addr;
        hi.peer_port = ex.remote_port;
        hi.req_number = ex.req_number;
        hi.proxy = ex.proxy;
        hi.nr = static_cast<int64_t>(ex.nr_before);
        hooks::pre_request(ex.hook_req, hi);
    }
    ex.outcome = wsgi::handle(ex, ex.resp);
    ex.hook_req.reset();  // post_request took it, unless the bridge failed first
}

int run_gthread(worker::Process &p) {
    // Never destroyed: at the graceful timeout its threads may still be
    // inside the application while the process exits.
    auto *exec = new ThreadExecutor(p.cfg->threads, p.info.status);
    return conn::serve(p, *exec);
}

}  // namespace cunicorn::executor
