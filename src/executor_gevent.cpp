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

namespace cunicorn::executor {

namespace {

using py::Ref;

const py::Source GEVENT_PY = {"src/py/gevent_worker.py",
#include "py/gevent_worker.inc"
};

// GEVENT_PY's names, looked up once the module body has run.
struct Names {
    PyObject *spawn, *make_sleep, *Gate, *stack;
    PyObject *wait, *notify;  // method names
};
Names N{};

bool load_names(PyObject *ns) {
    for (auto [slot, name] : {std::pair{&N.spawn, "spawn"}, {&N.make_sleep, "make_sleep"}, {&N.Gate, "Gate"},
                              {&N.stack, "stack"}})
        if (!(*slot = Py_XNewRef(PyDict_GetItemString(ns, name)))) {
            PyErr_Format(PyExc_NameError, "%s defines no %s", GEVENT_PY.path, name);
            return false;
        }
    N.wait = PyUnicode_InternFromString("wait");
    N.notify = PyUnicode_InternFromString("notify");
    return N.wait && N.notify;
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
    std::unique_ptr<conn::Gate> make_gate() override {
        Ref gate = Ref::steal(PyObject_CallNoArgs(N.Gate));
        if (!gate) {
            log_python_error("gevent: cannot make a gate");
            return nullptr;  // the connection's requests run inline
        }
        return std::make_unique<GreenletGate>(std::move(gate));
    }

    void attach(ev::Loop &loop) override {
        sleep_ = Ref::steal(PyObject_CallFunction(N.make_sleep, "i", loop.poll_fd()));
        if (!sleep_) {
            log_python_error("gevent: cannot watch the event loop");
            return;  // the loop sleeps in the kernel; requests still run
        }
        loop.set_waiter(sleep_in_hub, this);
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
        Ref capsule = Ref::steal(PyCapsule_New(&ex, nullptr, nullptr));
        Ref greenlet = capsule ? Ref::steal(PyObject_CallFunctionObjArgs(N.spawn, run_fn(), capsule.get(), nullptr))
                               : Ref();
        if (!greenlet) {
            // No greenlet: the request runs here, as the sync class would.
            log_python_error("gevent: cannot spawn a greenlet");
            serve_relayed(ex);
            ex.complete();
            return;
        }
        running_.emplace(&ex, greenlet.release());
    }

private:
    // The greenlet's body: one request.
    static PyObject *run(PyObject *self, PyObject *capsule) {
        auto *exec = static_cast<GreenletExecutor *>(PyCapsule_GetPointer(self, nullptr));
        auto *ex = static_cast<Exchange *>(PyCapsule_GetPointer(capsule, nullptr));
        if (!exec || !ex) return nullptr;
        serve_relayed(*ex);
        auto at = exec->running_.find(ex);
        if (at != exec->running_.end()) {
            Py_DECREF(at->second);
            exec->running_.erase(at);
        }
        ex->complete();
        Py_RETURN_NONE;
    }

    // run() as a Python callable bound to this executor, made once.
    PyObject *run_fn() {
        if (!run_fn_) {
            static PyMethodDef def = {"cunicorn_request", run, METH_O, nullptr};
            Ref self = Ref::steal(PyCapsule_New(this, nullptr, nullptr));
            run_fn_ = self ? Ref::steal(PyCFunction_New(&def, self.get())) : Ref();
        }
        return run_fn_.get();
    }

    static void sleep_in_hub(void *arg, int timeout_ms) {
        auto *self = static_cast<GreenletExecutor *>(arg);
        if (!Ref::steal(PyObject_CallFunction(self->sleep_.get(), "i", timeout_ms)))
            log_python_error("gevent: the hub failed");
    }

    Ref sleep_;
    Ref run_fn_;
    // The greenlet of each request in flight, for where() (owned refs).
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
    auto *exec = new GreenletExecutor();
    return conn::serve(p, *exec);
}

}  // namespace cunicorn::executor
