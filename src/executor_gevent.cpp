// The greenlet executor and the gevent worker class (gunicorn's
// GeventWorker, workers/ggevent.py). gevent's hub owns the thread; the
// connection engine runs in the main greenlet and still does all the
// socket work, parsing and response writing natively:
//
//   - the engine's poll descriptor (epoll or kqueue, itself pollable) is a
//     read watcher in the hub, with a timer for the engine's next
//     housekeeping; where the engine would sleep in the kernel, the main
//     greenlet switches to the hub (ev::Loop::set_waiter), and the hub
//     switches back once the engine has events;
//   - each complete request runs in a greenlet of its own (pre_request,
//     the application, post_request); its body source and sink are the
//     engine's relayed ones (conn.h), whose waits switch to the hub through
//     a Gate (src/py/gevent_worker.py) until the engine notifies it.
//
// A slow client costs a connection, never a greenlet: a request reaches a
// greenlet only once its head (and a small body) has arrived. Greenlets
// are bounded by worker_connections, as the engine holds at most that many
// connections and runs one request per connection at a time.
#include "cunicorn/executor.h"

#include "cunicorn/conn.h"
#include "cunicorn/ev.h"
#include "cunicorn/log.h"
#include "cunicorn/pyref.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

#include <unordered_map>
#include <vector>

namespace cunicorn::executor {

namespace {

using py::Ref;

const py::Source GEVENT_PY = {"src/py/gevent_worker.py",
#include "py/gevent_worker.inc"
};

// GEVENT_PY's names, looked up once the module body has run.
struct Names {
    PyObject *Runners, *LoopWaiter, *Gate, *stack;
    PyObject *wait, *notify, *sleep, *wake, *submit;  // method names
};
Names N{};

bool load_names(PyObject *ns) {
    for (auto [slot, name] : {std::pair{&N.Runners, "Runners"}, {&N.LoopWaiter, "LoopWaiter"}, {&N.Gate, "Gate"},
                              {&N.stack, "stack"}})
        if (!(*slot = Py_XNewRef(PyDict_GetItemString(ns, name)))) {
            PyErr_Format(PyExc_NameError, "%s defines no %s", GEVENT_PY.path, name);
            return false;
        }
    for (auto [slot, name] : {std::pair{&N.wait, "wait"}, {&N.notify, "notify"}, {&N.sleep, "sleep"},
                              {&N.wake, "wake"}, {&N.submit, "submit"}})
        if (!(*slot = PyUnicode_InternFromString(name))) return false;
    return true;
}

// Logs and clears a Python error the worker cannot hand to anyone.
void log_python_error(const char *what) {
    std::string tb = py::fetch_traceback();
    LOG_ERROR("%s:\n%s", what, tb.c_str());
}

class GreenletGate final : public conn::Gate {
public:
    explicit GreenletGate(Ref gate) : gate_(std::move(gate)) {}
    ~GreenletGate() override {
        // Freed on the loop, which holds the GIL.
        gate_.reset();
    }

    // Greenlets of one thread switch only where they wait: nothing to lock.
    void lock() override {}
    void unlock() override {}

    bool wait() override {
        if (Ref::steal(PyObject_CallMethodNoArgs(gate_.get(), N.wait))) return true;
        // Something was thrown into the request's greenlet while it
        // waited (a gevent.Timeout of the application's): it stays pending
        // for the application to see.
        return false;
    }

    void notify() override {
        if (!Ref::steal(PyObject_CallMethodNoArgs(gate_.get(), N.notify))) log_python_error("gevent: notify failed");
    }

private:
    Ref gate_;
};

class GreenletExecutor final : public conn::Executor {
public:
    explicit GreenletExecutor(WorkerStatus *status) : status_(status) {
        for (size_t i = THREAD_SLOTS; i > 0; --i) free_slots_.push_back(i - 1);
    }

    std::unique_ptr<conn::Gate> make_gate() override {
        Ref gate = Ref::steal(PyObject_CallNoArgs(N.Gate));
        if (!gate) {
            log_python_error("gevent: cannot make a gate");
            return nullptr;  // the connection's requests run inline
        }
        return std::make_unique<GreenletGate>(std::move(gate));
    }

    void attach(ev::Loop &loop) override {
        waiter_ = Ref::steal(PyObject_CallFunction(N.LoopWaiter, "i", loop.poll_fd()));
        // A METH_FASTCALL function goes into PyMethodDef as a PyCFunction.
        static PyMethodDef run_def = {"cunicorn_request", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(run)),
                                      METH_FASTCALL, nullptr};
        Ref self = Ref::steal(PyCapsule_New(this, nullptr, nullptr));
        Ref run_fn = self ? Ref::steal(PyCFunction_New(&run_def, self.get())) : Ref();
        runners_ = run_fn ? Ref::steal(PyObject_CallOneArg(N.Runners, run_fn.get())) : Ref();
        if (!waiter_ || !runners_) {
            // Requests then run on the loop, one at a time; the loop
            // sleeps in the kernel.
            log_python_error("gevent: cannot start the greenlets");
            waiter_.reset();
            return;
        }
        loop.set_waiter(sleep_in_hub, this);
    }

    // Requests' greenlets run on the loop's thread, between its turns.
    bool on_loop_thread() const override { return waiter_ ? true : false; }

    void wake_loop() override {
        if (!Ref::steal(PyObject_CallMethodNoArgs(waiter_.get(), N.wake))) log_python_error("gevent: wake failed");
    }

    std::string where(const Exchange &ex) override {
        auto at = running_.find(&ex);
        if (at == running_.end()) return "(the request's greenlet has not started)\n";
        Ref text = Ref::steal(PyObject_CallOneArg(N.stack, at->second));
        const char *utf8 = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
        std::string out = utf8 ? utf8 : "(no Python stack for the greenlet)\n";
        PyErr_Clear();
        return out;
    }

    void submit(Exchange &ex) override {
        Ref capsule = runners_ ? Ref::steal(PyCapsule_New(&ex, nullptr, nullptr)) : Ref();
        if (!capsule || !Ref::steal(PyObject_CallMethodOneArg(runners_.get(), N.submit, capsule.get()))) {
            // No greenlet: the request runs here, as the sync class would.
            if (runners_) log_python_error("gevent: cannot start a greenlet");
            serve_relayed(ex);
            ex.complete();
        }
    }

private:
    // What a request's greenlet runs: run(capsule of the Exchange, the greenlet).
    static PyObject *run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
        auto *exec = static_cast<GreenletExecutor *>(PyCapsule_GetPointer(self, nullptr));
        auto *ex = nargs == 2 ? static_cast<Exchange *>(PyCapsule_GetPointer(args[0], nullptr)) : nullptr;
        if (!exec || !ex) return nullptr;
        exec->running_[ex] = args[1];  // borrowed: the greenlet outlives its request
        // The status page shows the first THREAD_SLOTS requests in flight
        // one by one, and counts the others (show workers).
        size_t slot = THREAD_SLOTS;
        if (!exec->free_slots_.empty()) {
            slot = exec->free_slots_.back();
            exec->free_slots_.pop_back();
        }
        worker::thread_status_begin(exec->status_, slot, ex->req->method, ex->req->target, ex->remote_addr,
                                    ex->submitted_ms);
        serve_relayed(*ex);
        worker::thread_status_end(exec->status_, slot);
        if (slot < THREAD_SLOTS) exec->free_slots_.push_back(slot);
        exec->running_.erase(ex);
        ex->complete();
        Py_RETURN_NONE;
    }

    static void sleep_in_hub(void *arg, int timeout_ms) {
        auto *self = static_cast<GreenletExecutor *>(arg);
        Ref ms = Ref::steal(PyLong_FromLong(timeout_ms));
        if (!ms || !Ref::steal(PyObject_CallMethodOneArg(self->waiter_.get(), N.sleep, ms.get())))
            log_python_error("gevent: the hub failed");
    }

    WorkerStatus *status_;
    std::vector<size_t> free_slots_;  // status slots no greenlet shows
    Ref waiter_;
    Ref runners_;
    // The greenlet of each request in flight, for where() (borrowed).
    std::unordered_map<const Exchange *, PyObject *> running_;
};

}  // namespace

const char *gevent_missing() {
    Ref util = Ref::steal(PyImport_ImportModule("importlib.util"));
    Ref spec = util ? Ref::steal(PyObject_CallMethod(util.get(), "find_spec", "s", "gevent")) : Ref();
    PyErr_Clear();
    if (spec && spec.get() != Py_None) return nullptr;
    return "the gevent worker class needs gevent, which this Python cannot import: install python3-gevent "
           "(Debian, Ubuntu), py311-gevent (FreeBSD), py3-gevent (Alpine) or `pip install gevent`";
}

bool gevent_prepare() {
    Ref ns = Ref::steal(PyDict_New());
    if (!ns || !py::exec_source(GEVENT_PY, ns.get()) || !load_names(ns.get())) {
        log_python_error("cannot start the gevent worker");
        return false;
    }
    wsgi::set_cooperative(true);
    return true;
}

int run_gevent(worker::Process &p) {
    // Never destroyed: at the graceful timeout greenlets may still be
    // inside the application while the process exits.
    auto *exec = new GreenletExecutor(p.info.status);
    return conn::serve(p, *exec);
}

}  // namespace cunicorn::executor
