// The thread-pool executor and the gthread worker class. Its threads take
// turns at the engine's loop (conn::Turns): an idle thread waits in the
// loop, runs the callbacks of the events the kernel gave it (with the
// turn and the GIL), and then runs the requests those callbacks queued,
// pre_request, the application and post_request, before it waits again.
// The kernel thus wakes the thread that runs the request, once per
// keep-alive request, as the sync class's single thread is woken; a
// request handed from one thread to another costs two more wake-ups (the
// GIL passes twice), the cost that held an earlier design, where the
// main thread kept the loop and fed a queue, to about two thirds of the
// sync class's rate on small requests. The body source and sink are the
// engine's relayed ones (conn.h), which wait on a mutex and a condition
// variable here while the loop brings body bytes or takes response bytes.
#include "cunicorn/executor.h"

#include "cunicorn/config.h"
#include "cunicorn/conn.h"
#include "cunicorn/ev.h"
#include "cunicorn/hooks.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

#include <atomic>
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

    void attach(ev::Loop &) override {}  // takes turns instead

    bool takes_turns() const override { return true; }

    // The main thread holds the turn and the GIL while it is awake (it
    // runs the housekeeping and the signals); it lets both go while it
    // sleeps, the GIL first, as every thread takes the turn before the GIL.
    void attach_turns(conn::Turns &turns, ev::Loop &main_loop) override {
        turns_ = &turns;
        main_loop.set_sleep_hooks(
            [](void *self) {
                wsgi::release_gil(nullptr);
                static_cast<ThreadExecutor *>(self)->turns_->unlock();
            },
            [](void *self) {
                static_cast<ThreadExecutor *>(self)->turns_->lock();
                wsgi::acquire_gil(nullptr);
            },
            this);
        for (int i = 0; i < nthreads_; ++i) std::thread([this] { run(); }).detach();
    }

    int idle_threads() const override { return nthreads_ - busy_.load(std::memory_order_acquire); }

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

    // Called with the turn. The thread that has it takes the first
    // request it queues itself, once its callbacks are done: only a
    // second one (or one queued by the main thread) wakes another.
    void submit(Exchange &ex) override {
        bool more;
        {
            std::lock_guard<std::mutex> g(mu_);
            queue_.push_back(&ex);
            more = !t_takes_turns || queue_.size() > 1;
        }
        if (more && waiting_.load(std::memory_order_acquire) > 0) turns_->kick();
    }

private:
    // One application thread: waits in the loop for events, runs their
    // callbacks with the turn, then runs the requests they queued, until
    // none is left.
    void run() {
        t_takes_turns = true;
        void *state = wsgi::thread_attach();
        size_t me;
        {
            std::lock_guard<std::mutex> g(mu_);
            me = running_.size();
            running_.push_back(Slot{nullptr, wsgi::thread_ident()});
        }
        std::vector<ev::Loop::Fired> fired;
        fired.reserve(64);
        for (;;) {
            Exchange *ex = next();
            if (ex) {
                wsgi::thread_enter(state);
            } else {
                waiting_.fetch_add(1, std::memory_order_acq_rel);
                turns_->wait(fired);
                waiting_.fetch_sub(1, std::memory_order_acq_rel);
                turns_->lock();
                wsgi::thread_enter(state);
                turns_->run(fired);
                turns_->unlock();
                // The GIL is kept for the request the callbacks queued.
                ex = next();
                if (!ex) {
                    state = wsgi::thread_leave();
                    continue;
                }
            }
            if (busy_.fetch_add(1, std::memory_order_acq_rel) + 1 == nthreads_) turns_->all_busy();
            // The status page shows what each thread runs (show workers).
            worker::thread_status_begin(status_, me, ex->req->method, ex->req->target, ex->remote_addr,
                                        ex->submitted_ms);
            {
                std::lock_guard<std::mutex> g(mu_);
                running_[me].ex = ex;
            }
            serve_relayed(*ex);
            state = wsgi::thread_leave();
            worker::thread_status_end(status_, me);
            {
                std::lock_guard<std::mutex> g(mu_);
                running_[me].ex = nullptr;
            }
            busy_.fetch_sub(1, std::memory_order_acq_rel);
            ex->complete();  // the last touch: the loop owns it again
        }
    }

    // The next queued request, if any; wakes another thread for the rest.
    Exchange *next() {
        Exchange *ex;
        bool more;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (queue_.empty()) return nullptr;
            ex = queue_.front();
            queue_.pop_front();
            more = !queue_.empty();
        }
        if (more && waiting_.load(std::memory_order_acquire) > 0) turns_->kick();
        return ex;
    }

    // What each thread runs, for where().
    struct Slot {
        const Exchange *ex;
        unsigned long ident;
    };

    static thread_local bool t_takes_turns;

    int nthreads_;
    WorkerStatus *status_;
    conn::Turns *turns_ = nullptr;
    std::atomic<int> busy_{0};     // threads running a request
    std::atomic<int> waiting_{0};  // threads waiting in the loop
    std::mutex mu_;
    std::vector<Slot> running_;
    std::deque<Exchange *> queue_;
};

thread_local bool ThreadExecutor::t_takes_turns = false;

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
