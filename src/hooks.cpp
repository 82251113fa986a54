// Server hooks: the config file's callables and the Python stand-ins for
// the objects gunicorn hands them (reference section h). The stand-ins are
// small Python classes run once in this process (src/py/hooks.py); C++
// fills their attributes from the arbiter's and the worker's state.
#include "cunicorn/hooks.h"

#include "cunicorn/http_parser.h"
#include "cunicorn/http_writer.h"
#include "cunicorn/log.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/pylog.h"
#include "cunicorn/pyref.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <set>
#include <stdexcept>

namespace cunicorn::hooks {

namespace detail {
bool g_request_hooks = false;
}

using py::Ref;

namespace {

// Attribute names are gunicorn's; the classes keep only what config files
// use in practice (reference section h, "Objects handed to hooks").
const py::Source HOOKS_PY = {"src/py/hooks.py",
#include "py/hooks.inc"
};

// The Python side, created on first use and never destroyed (no static
// destructor may run after the interpreter is gone).
struct Objects {
    PyObject *ns = nullptr;
    PyObject *Logger = nullptr, *Config = nullptr, *Listener = nullptr, *App = nullptr, *Pidfile = nullptr,
             *Arbiter = nullptr, *Worker = nullptr, *Request = nullptr, *Response = nullptr;
    PyObject *log = nullptr;       // the one Logger
    PyObject *cfg = nullptr;       // Config of the last Config seen
    PyObject *app = nullptr;       // App
    PyObject *server = nullptr;    // Arbiter
    PyObject *workers = nullptr;   // server.WORKERS (kept, updated in place)
    PyObject *self = nullptr;      // this worker process's Worker
    PyObject *wsgi = nullptr;      // the loaded application (borrowed from wsgi.cpp's setup)
    PyObject *wsgi_own = nullptr;  // imported here by app.wsgi()
};
Objects O;
bool g_failed = false;

// The Config the cfg object was built from.
const Config *g_cfg_src = nullptr;
int g_cfg_load = 0;  // its python_load: a reload brings new values
// Master: Worker objects by age. A worker inherits the map at fork.
std::map<int, PyObject *> *g_by_age = nullptr;
int *g_num_workers = nullptr;

// Worker process.
WorkerProcess g_wp;
bool g_in_worker = false;
bool g_alive_shown = true;
bool g_exit_done = false;
// Signals whose hooks run inside a busy application (arm_handler).
volatile sig_atomic_t g_abort_armed = 0;
volatile sig_atomic_t g_quit_armed = 0;
bool g_aborting = false;
bool g_quitting = false;

void log_hook_error(const char *name) {
    std::string tb = py::fetch_traceback();
    log::write_text(log::Level::ERROR, std::string("Exception in ") + name + " hook\n" + tb);
}

// The hook `name` of cfg. A HUP reload's new configuration brings its own
// hooks: its workers and the master's calls about them (on_reload,
// pre_fork) use them at once, the master's other calls only once the
// reload is confirmed and cfg is the arbiter's configuration.
PyObject *hook(const char *name, const Config *cfg) { return cfg ? python_setting(*cfg, name) : nullptr; }

// In a worker process: the configuration it runs (post_fork's until
// worker_init).
const Config *worker_cfg() { return g_wp.cfg ? g_wp.cfg : g_cfg_src; }

// Calls fn(*args); an exception is logged with its traceback, never raised.
void call_hook(const char *name, PyObject *fn, std::initializer_list<PyObject *> args) {
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);  // nothing should be pending; keep it if it is
    Ref tuple = Ref::steal(PyTuple_New(static_cast<Py_ssize_t>(args.size())));
    if (tuple) {
        Py_ssize_t i = 0;
        for (PyObject *a : args) {
            PyObject *v = a ? a : Py_None;
            Py_INCREF(v);
            PyTuple_SET_ITEM(tuple.get(), i++, v);
        }
        Ref r = Ref::steal(PyObject_Call(fn, tuple.get(), nullptr));
        if (!r) log_hook_error(name);
    } else {
        log_hook_error(name);
    }
    PyErr_Restore(et, ev, etb);
}

// Sets obj.name = value (a new reference, stolen); errors are dropped.
void set_attr(PyObject *obj, const char *name, PyObject *value) {
    Ref v = Ref::steal(value);
    if (!obj || !v || PyObject_SetAttrString(obj, name, v.get()) < 0) PyErr_Clear();
}

PyObject *new_ref(PyObject *o) {
    Py_INCREF(o);
    return o;
}

// server.log and worker.log: the Logger instance (pylog.h), or the
// stand-in when logging has no Python side (unit tests).
PyObject *log_object() {
    PyObject *l = pylog::logger();
    return l ? l : O.log;
}

PyObject *str(std::string_view s) { return py::latin1(s.data(), s.size()); }

// ---------------------------------------------------------------------
// C functions the Python side calls.
// ---------------------------------------------------------------------

PyObject *fn_write(PyObject *, PyObject *args) {
    int level;
    const char *text;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "is#", &level, &text, &n)) return nullptr;
    level = std::max(0, std::min(4, level));
    log::write_text(static_cast<log::Level>(level), std::string_view(text, static_cast<size_t>(n)));
    Py_RETURN_NONE;
}

PyObject *fn_reopen(PyObject *, PyObject *) {
    log::reopen();
    Py_RETURN_NONE;
}

PyObject *fn_heartbeat(PyObject *, PyObject *arg) {
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) return nullptr;
    heartbeat(static_cast<int>(fd));
    Py_RETURN_NONE;
}

PyObject *fn_wsgi(PyObject *, PyObject *) {
    if (O.wsgi) return new_ref(O.wsgi);
    if (O.wsgi_own) return new_ref(O.wsgi_own);
    const Config *cfg = g_in_worker ? g_wp.cfg : g_cfg_src;
    if (!cfg) Py_RETURN_NONE;
    // Not loaded in this process (the master without --preload): import
    // it, as gunicorn's app.wsgi() does.
    py::AppLoad loaded = py::load_app(*cfg, false);
    if (!loaded.app) {
        PyErr_SetString(PyExc_ImportError, loaded.error.c_str());
        return nullptr;
    }
    O.wsgi_own = loaded.app.release();
    return new_ref(O.wsgi_own);
}

// server.num_workers = n from a hook: the arbiter's count follows, then
// nworkers_changed fires (arbiter.py _set_num_workers).
PyObject *fn_num_workers_changed(PyObject *, PyObject *args) {
    PyObject *server, *value, *old;
    if (!PyArg_ParseTuple(args, "OOO", &server, &value, &old)) return nullptr;
    if (g_num_workers && PyLong_Check(value)) {
        long n = PyLong_AsLong(value);
        if (n == -1 && PyErr_Occurred()) return nullptr;
        if (n >= 0 && n <= 1000000) *g_num_workers = static_cast<int>(n);
    }
    if (PyObject *fn = hook("nworkers_changed", g_cfg_src)) call_hook("nworkers_changed", fn, {server, value, old});
    Py_RETURN_NONE;
}

// The Python-level handlers arm_handler installs. They run in the main
// thread at a bytecode boundary, possibly inside the application or inside
// a hook the loop's own path for the same signal is running.
PyObject *fn_on_abort(PyObject *, PyObject *) {
    if (!g_aborting) abort_worker();
    Py_RETURN_NONE;
}

PyObject *fn_on_quit(PyObject *, PyObject *) {
    if (!g_quitting) quit_worker();
    Py_RETURN_NONE;
}

PyMethodDef FUNCTIONS[] = {
    {"_write", fn_write, METH_VARARGS, nullptr},
    {"_reopen", fn_reopen, METH_NOARGS, nullptr},
    {"_heartbeat", fn_heartbeat, METH_O, nullptr},
    {"_wsgi", fn_wsgi, METH_NOARGS, nullptr},
    {"_num_workers_changed", fn_num_workers_changed, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};
PyMethodDef ON_ABORT = {"_on_abort", fn_on_abort, METH_VARARGS, nullptr};
PyMethodDef ON_QUIT = {"_on_quit", fn_on_quit, METH_VARARGS, nullptr};

// The functions src/py/hooks.py imports from C++, as the module
// _cunicorn_hooks in sys.modules.
bool add_native_module() {
    Ref mod = Ref::steal(PyModule_New("_cunicorn_hooks"));
    return mod && PyModule_AddFunctions(mod.get(), FUNCTIONS) == 0 &&
           PyDict_SetItemString(PyImport_GetModuleDict(), "_cunicorn_hooks", mod.get()) == 0;
}

bool ensure_ns() {
    if (O.ns) return true;
    if (g_failed) return false;
    Ref ns = Ref::steal(PyDict_New());
    Ref name = ns ? Ref::steal(PyUnicode_FromString("cunicorn.hooks")) : Ref();
    if (!name || PyDict_SetItemString(ns.get(), "__name__", name.get()) < 0 || !add_native_module() ||
        !py::exec_source(HOOKS_PY, ns.get())) {
        log_hook_error("setup");
        g_failed = true;
        return false;
    }
    struct {
        PyObject **slot;
        const char *name;
    } classes[] = {{&O.Logger, "Logger"},   {&O.Config, "Config"},   {&O.Listener, "Listener"},
                   {&O.App, "App"},         {&O.Pidfile, "Pidfile"}, {&O.Arbiter, "Arbiter"},
                   {&O.Worker, "Worker"},   {&O.Request, "Request"}, {&O.Response, "Response"}};
    for (auto &c : classes) {
        *c.slot = PyDict_GetItemString(ns.get(), c.name);  // borrowed; ns lives on
        if (!*c.slot) {
            PyErr_Format(PyExc_NameError, "src/py/hooks.py defines no %s", c.name);
            log_hook_error("setup");
            g_failed = true;
            return false;
        }
    }
    O.log = PyObject_CallObject(O.Logger, nullptr);
    if (!O.log) {
        log_hook_error("setup");
        g_failed = true;
        return false;
    }
    O.ns = ns.release();
    g_by_age = new std::map<int, PyObject *>();
    return true;
}

// ---------------------------------------------------------------------
// cfg, listeners, app
// ---------------------------------------------------------------------

// gunicorn's cfg.address: (host, port) tuples, unix paths, fds.
PyObject *address_list(const Config &cfg) {
    Ref list = Ref::steal(PyList_New(0));
    if (!list) return nullptr;
    for (const Address &a : cfg.address) {
        Ref item;
        if (a.kind == Address::TCP)
            item = Ref::steal(Py_BuildValue("(Ni)", str(a.host), a.port));
        else if (a.kind == Address::UNIX)
            item = Ref::steal(str(a.host));
        else
            item = Ref::steal(PyLong_FromLong(a.fd));
        if (!item || PyList_Append(list.get(), item.get()) < 0) return nullptr;
    }
    return list.release();
}

// A Config object for cfg, rebuilt when cfg is another load's (HUP): its
// settings are the values the loader holds (setting_values), the objects
// themselves, not renderings of them.
PyObject *cfg_object(const Config &cfg) {
    if (O.cfg && g_cfg_src == &cfg && g_cfg_load == cfg.python_load) return O.cfg;
    PyObject *values = setting_values(cfg);  // borrowed
    Ref rows = Ref::steal(PyList_New(0));
    if (!rows) return nullptr;
    for (const Setting &s : settings_table()) {
        PyObject *value = values ? PyDict_GetItemString(values, s.name) : nullptr;  // borrowed
        Ref row = Ref::steal(Py_BuildValue("(ssO)", s.name, s.section, value ? value : Py_None));
        if (!row || PyList_Append(rows.get(), row.get()) < 0) return nullptr;
    }
    // The properties of gunicorn's Config that hooks read.
    Ref derived = Ref::steal(PyDict_New());
    Ref env = Ref::steal(PyDict_New());
    if (!derived || !env) return nullptr;
    for (const auto &[name, value] : cfg.raw_env) {
        Ref k = Ref::steal(str(name));
        Ref v = Ref::steal(str(value));
        if (!k || !v || PyDict_SetItem(env.get(), k.get(), v.get()) < 0) return nullptr;
    }
    struct {
        const char *name;
        PyObject *value;
    } items[] = {
        {"proc_name", str(cfg.name())},
        {"uid", PyLong_FromLong(cfg.uid)},
        {"gid", PyLong_FromLong(cfg.gid)},
        {"worker_class_str", str(cfg.worker_class)},
        {"worker_class", str(cfg.worker_class)},
        {"address", address_list(cfg)},
        {"env", new_ref(env.get())},
        {"is_ssl", PyBool_FromLong(cfg.is_ssl())},
        {"ssl_options", PyDict_New()},
        {"sendfile", PyBool_FromLong(cfg.sendfile)},
    };
    bool ok = true;
    for (auto &item : items) {
        Ref v = Ref::steal(item.value);
        if (!v || PyDict_SetItemString(derived.get(), item.name, v.get()) < 0) ok = false;
    }
    if (!ok) return nullptr;
    Ref obj = Ref::steal(PyObject_CallFunctionObjArgs(O.Config, rows.get(), derived.get(), nullptr));
    if (!obj) return nullptr;
    Py_XSETREF(O.cfg, obj.release());
    g_cfg_src = &cfg;
    g_cfg_load = cfg.python_load;
    if (O.app) set_attr(O.app, "cfg", new_ref(O.cfg));
    return O.cfg;
}

PyObject *app_object(PyObject *cfg) {
    if (!O.app) O.app = PyObject_CallFunctionObjArgs(O.App, cfg, nullptr);
    return O.app;
}

// Listener objects; str() is the URL, https:// with TLS as in gunicorn.
PyObject *listener_list(const std::vector<Listener> *listeners, bool tls) {
    Ref list = Ref::steal(PyList_New(0));
    if (!list || !listeners) return list.release();
    for (const Listener &l : *listeners) {
        Ref address;
        if (l.family == AF_UNIX)
            address = Ref::steal(str(l.unix_path));
        else
            address = Ref::steal(Py_BuildValue("(Ni)", str(l.server_name), std::atoi(l.server_port.c_str())));
        Ref item = Ref::steal(PyObject_CallFunction(O.Listener, "iiNO", l.fd, l.family, str(l.url(tls)),
                                                    address ? address.get() : Py_None));
        if (!item || PyList_Append(list.get(), item.get()) < 0) return nullptr;
    }
    return list.release();
}

// A new Worker object (arbiter.py spawn_worker builds it before fork).
PyObject *make_worker(int age, pid_t ppid, const std::vector<Listener> *listeners, bool tls, PyObject *cfg,
                      int tmp_fd, uint64_t max_requests, int timeout) {
    Ref sockets = Ref::steal(listener_list(listeners, tls));
    PyObject *app = app_object(cfg);
    if (!sockets || !app) return nullptr;
    Ref maxr = Ref::steal(max_requests ? PyLong_FromUnsignedLongLong(max_requests)
                                       : PyLong_FromSsize_t(PY_SSIZE_T_MAX));  // sys.maxsize
    return PyObject_CallFunction(O.Worker, "iiOOdOOiO", age, static_cast<int>(ppid), sockets.get(), app,
                                 timeout / 2.0, cfg, log_object(), tmp_fd, maxr.get());
}

// ---------------------------------------------------------------------
// The server object
// ---------------------------------------------------------------------

void drop_worker(int age) {
    auto it = g_by_age->find(age);
    if (it == g_by_age->end()) return;
    Py_DECREF(it->second);
    g_by_age->erase(it);
}

// The Worker object of slot w (made on first sight), borrowed.
PyObject *worker_object(const Server &s, const WorkerSlot &w, PyObject *cfg) {
    PyObject *obj;
    auto it = g_by_age->find(w.age);
    if (it != g_by_age->end()) {
        obj = it->second;
    } else {
        uint64_t maxr = s.cfg->max_requests > 0 ? static_cast<uint64_t>(s.cfg->max_requests) : 0;
        obj = make_worker(w.age, s.pid, s.listeners, s.cfg->is_ssl(), cfg, w.tmp_fd, maxr, s.cfg->timeout);
        if (!obj) return nullptr;
        (*g_by_age)[w.age] = obj;
    }
    set_attr(obj, "pid", w.pid ? PyLong_FromLong(w.pid) : PyUnicode_FromString("[booting]"));
    if (w.aborted) set_attr(obj, "aborted", new_ref(Py_True));
    return obj;
}

// Brings the server object up to date with s, borrowed. `keep_age`: a
// worker object to keep although s.workers no longer (or not yet) has it.
PyObject *sync_server(const Server &s, int keep_age = -1) {
    if (!s.cfg || !ensure_ns()) return nullptr;
    PyObject *cfg = cfg_object(*s.cfg);
    if (!cfg || !app_object(cfg)) return nullptr;
    if (!O.server) {
        O.server = PyObject_CallObject(O.Arbiter, nullptr);
        O.workers = PyDict_New();
        if (!O.server || !O.workers) return nullptr;
    }
    if (s.num_workers) g_num_workers = s.num_workers;
    PyObject *srv = O.server;
    set_attr(srv, "cfg", new_ref(cfg));
    set_attr(srv, "app", new_ref(O.app));
    set_attr(srv, "log", new_ref(log_object()));
    set_attr(srv, "pid", PyLong_FromLong(s.pid));
    if (s.num_workers) set_attr(srv, "_num_workers", PyLong_FromLong(*s.num_workers));
    set_attr(srv, "worker_age", PyLong_FromLong(s.worker_age));
    set_attr(srv, "timeout", PyLong_FromLong(s.cfg->timeout));
    set_attr(srv, "proc_name", str(s.cfg->name()));
    set_attr(srv, "master_name", str(s.master_name));
    set_attr(srv, "master_pid", PyLong_FromLong(s.master_pid));
    set_attr(srv, "reexec_pid", PyLong_FromLong(s.reexec_pid));
    set_attr(srv, "pidfile", s.cfg->pidfile.empty() ? new_ref(Py_None)
                                                    : PyObject_CallFunction(O.Pidfile, "N", str(s.cfg->pidfile)));
    set_attr(srv, "LISTENERS", listener_list(s.listeners, s.cfg->is_ssl()));
    set_attr(srv, "address", PyObject_GetAttrString(cfg, "address"));
    set_attr(srv, "worker_class", str(s.cfg->worker_class));
    std::set<int> ages;
    PyDict_Clear(O.workers);
    for (const WorkerSlot &w : s.workers) {
        PyObject *obj = worker_object(s, w, cfg);
        if (!obj) continue;
        ages.insert(w.age);
        Ref pid = Ref::steal(PyLong_FromLong(w.pid));
        if (pid) PyDict_SetItem(O.workers, pid.get(), obj);
    }
    set_attr(srv, "WORKERS", new_ref(O.workers));
    for (auto it = g_by_age->begin(); it != g_by_age->end();) {
        if (ages.count(it->first) || it->first == keep_age || it->second == O.self) {
            ++it;
        } else {
            Py_DECREF(it->second);
            it = g_by_age->erase(it);
        }
    }
    PyErr_Clear();
    return srv;
}

// Calls a master hook taking (server).
void server_hook(const char *name, const Server &s) {
    PyObject *fn = hook(name, s.cfg);
    if (!fn) return;
    PyObject *srv = sync_server(s);
    if (!srv) {
        log_hook_error(name);
        return;
    }
    call_hook(name, fn, {srv});
}

// ---------------------------------------------------------------------
// Worker process
// ---------------------------------------------------------------------

bool any_worker_hook(const Config *cfg) {
    for (const char *name : {"post_fork", "post_worker_init", "pre_request", "post_request", "worker_int",
                             "worker_abort", "worker_exit"})
        if (hook(name, cfg)) return true;
    return false;
}

// worker.nr and worker.alive as the worker has them now.
void refresh_self(int64_t nr = -1) {
    if (!O.self) return;
    if (nr >= 0) set_attr(O.self, "nr", PyLong_FromLongLong(nr));
    else if (g_wp.nr) set_attr(O.self, "nr", PyLong_FromUnsignedLongLong(*g_wp.nr));
    g_alive_shown = !(g_wp.stopping && *g_wp.stopping);
    set_attr(O.self, "alive", PyBool_FromLong(g_alive_shown));
}

// A hook set worker.alive = False: the worker finishes and exits.
void check_alive() {
    if (!O.self || !g_alive_shown || !g_wp.stop) return;
    Ref alive = Ref::steal(PyObject_GetAttrString(O.self, "alive"));
    int truth = alive ? PyObject_IsTrue(alive.get()) : 1;
    PyErr_Clear();
    if (truth == 0) {
        g_alive_shown = false;
        g_wp.stop();
    }
}

// The server object a worker shows: the one post_fork synchronised, or a
// minimal one made from the worker's own view.
PyObject *worker_server() {
    if (O.server) return O.server;
    if (!g_in_worker || !g_wp.cfg || !ensure_ns()) return nullptr;
    PyObject *cfg = cfg_object(*g_wp.cfg);
    if (!cfg || !app_object(cfg)) return nullptr;
    O.server = PyObject_CallObject(O.Arbiter, nullptr);
    if (!O.server) return nullptr;
    set_attr(O.server, "cfg", new_ref(cfg));
    set_attr(O.server, "app", new_ref(O.app));
    set_attr(O.server, "log", new_ref(log_object()));
    set_attr(O.server, "pid", PyLong_FromLong(g_wp.info.ppid));
    set_attr(O.server, "_num_workers", PyLong_FromLong(g_wp.cfg->workers));
    set_attr(O.server, "timeout", PyLong_FromLong(g_wp.cfg->timeout));
    set_attr(O.server, "proc_name", str(g_wp.cfg->name()));
    set_attr(O.server, "LISTENERS", listener_list(g_wp.listeners, g_wp.cfg->is_ssl()));
    PyErr_Clear();
    return O.server;
}

// Installs `def` as the Python-level handler of `sig`, so that
// PyErr_SetInterruptEx from the worker's C handler makes the main thread
// run it at the next bytecode boundary, even inside a busy application
// (and interrupts time.sleep and friends). signal.signal() also installs
// CPython's C handler: the worker's own goes back at once.
bool arm_handler(int sig, PyMethodDef *def, const char *hook_name) {
#if PY_VERSION_HEX >= 0x030A0000
    struct sigaction old;
    sigaction(sig, nullptr, &old);
    Ref handler = Ref::steal(PyCFunction_New(def, nullptr));
    Ref sigmod = Ref::steal(PyImport_ImportModule("signal"));
    Ref r = handler && sigmod ? Ref::steal(PyObject_CallMethod(sigmod.get(), "signal", "iO", sig, handler.get()))
                              : Ref();
    sigaction(sig, &old, nullptr);
    if (!r) {
        log_hook_error(hook_name);
        return false;
    }
#else
    (void)sig;
    (void)def;
    (void)hook_name;
#endif
    return true;
}

// Before Python 3.10 (no PyErr_SetInterruptEx for other signals than
// SIGINT), the same through a pending call.
int pending_abort(void *) {
    if (!g_aborting) abort_worker();
    return 0;
}

int pending_quit(void *) {
    if (!g_quitting) quit_worker();
    return 0;
}

// From a C signal handler: asks the interpreter to run the handler armed
// for sig (async-signal-safe, CPython docs).
void interrupt_interpreter(int sig, int (*pending)(void *)) {
#if PY_VERSION_HEX >= 0x030A0000
    (void)pending;
    PyErr_SetInterruptEx(sig);
#else
    (void)sig;
    Py_AddPendingCall(pending, nullptr);
#endif
}

}  // namespace

PyObject *config_object(const Config &cfg) { return ensure_ns() ? cfg_object(cfg) : nullptr; }

// ---------------------------------------------------------------------
// Master side
// ---------------------------------------------------------------------

void on_starting(const Server &s) { server_hook("on_starting", s); }
void when_ready(const Server &s) { server_hook("when_ready", s); }
void on_reload(const Server &s) { server_hook("on_reload", s); }
void on_exit(const Server &s) { server_hook("on_exit", s); }
void pre_exec(const Server &s) { server_hook("pre_exec", s); }

void pre_fork(const Server &s, const WorkerSlot &w) {
    PyObject *fn = hook("pre_fork", s.cfg);
    if (!fn) return;
    PyObject *srv = sync_server(s, w.age);
    PyObject *obj = srv ? worker_object(s, w, O.cfg) : nullptr;
    if (!obj) {
        log_hook_error("pre_fork");
        return;
    }
    call_hook("pre_fork", fn, {srv, obj});
}

void post_fork(const Server &s, const WorkerSlot &w) {
    if (!any_worker_hook(s.cfg)) return;
    PyObject *srv = sync_server(s, w.age);
    WorkerSlot me = w;
    me.pid = getpid();
    PyObject *obj = srv ? worker_object(s, me, O.cfg) : nullptr;
    if (!obj) {
        log_hook_error("post_fork");
        return;
    }
    Py_INCREF(obj);
    Py_XSETREF(O.self, obj);
    if (PyObject *fn = hook("post_fork", s.cfg)) call_hook("post_fork", fn, {srv, obj});
}

void child_exit(const Server &s, const WorkerSlot &w) {
    PyObject *fn = hook("child_exit", s.cfg);
    if (!fn) return;
    PyObject *srv = sync_server(s, w.age);
    PyObject *obj = srv ? worker_object(s, w, O.cfg) : nullptr;
    if (!obj) {
        log_hook_error("child_exit");
        return;
    }
    Ref keep = Ref::borrow(obj);
    drop_worker(w.age);
    call_hook("child_exit", fn, {srv, keep.get()});
}

void worker_exit(const Server &s, const WorkerSlot &w) {
    if (getpid() != s.pid) {
        // A worker process: its own exit.
        if (g_exit_done || !hook("worker_exit", s.cfg)) return;
        sync_server(s, w.age);
        worker_exit();
        return;
    }
    PyObject *fn = hook("worker_exit", s.cfg);
    if (!fn) return;
    PyObject *srv = sync_server(s, w.age);
    PyObject *obj = srv ? worker_object(s, w, O.cfg) : nullptr;
    if (!obj) {
        log_hook_error("worker_exit");
        return;
    }
    Ref keep = Ref::borrow(obj);
    drop_worker(w.age);
    call_hook("worker_exit", fn, {srv, keep.get()});
}

void nworkers_changed(const Server &s, int new_value, int old_value) {
    PyObject *fn = hook("nworkers_changed", s.cfg);
    if (!fn) return;
    PyObject *srv = sync_server(s);
    if (!srv) {
        log_hook_error("nworkers_changed");
        return;
    }
    Ref nv = Ref::steal(PyLong_FromLong(new_value));
    Ref ov = old_value < 0 ? Ref::borrow(Py_None) : Ref::steal(PyLong_FromLong(old_value));
    set_attr(srv, "_num_workers", PyLong_FromLong(new_value));
    call_hook("nworkers_changed", fn, {srv, nv.get(), ov.get()});
}

// ---------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------

void worker_init(const WorkerProcess &w) {
    g_wp = w;
    g_in_worker = true;
    detail::g_request_hooks = hook("pre_request", w.cfg) || hook("post_request", w.cfg);
    if (!any_worker_hook(w.cfg) || !ensure_ns()) {
        detail::g_request_hooks = false;
        return;
    }
    PyObject *cfg = cfg_object(*w.cfg);
    if (!cfg) {
        log_hook_error("post_worker_init");
        detail::g_request_hooks = false;
        return;
    }
    if (!O.self) {
        // post_fork did not run (or found nothing to do): make it now.
        O.self = make_worker(w.info.age, w.info.ppid, w.listeners, w.cfg->is_ssl(), cfg, w.info.heartbeat_fd,
                             w.max_requests, w.cfg->timeout);
        if (!O.self) {
            log_hook_error("post_worker_init");
            detail::g_request_hooks = false;
            return;
        }
    }
    set_attr(O.self, "pid", PyLong_FromLong(getpid()));
    set_attr(O.self, "ppid", PyLong_FromLong(w.info.ppid));
    set_attr(O.self, "max_requests", w.max_requests ? PyLong_FromUnsignedLongLong(w.max_requests)
                                                    : PyLong_FromSsize_t(PY_SSIZE_T_MAX));
    set_attr(O.self, "cfg", new_ref(cfg));
    bool exit_hook = hook("worker_exit", w.cfg) != nullptr;
    if ((hook("worker_abort", w.cfg) || exit_hook) && arm_handler(SIGABRT, &ON_ABORT, "worker_abort"))
        g_abort_armed = 1;
    if ((hook("worker_int", w.cfg) || exit_hook) && arm_handler(SIGINT, &ON_QUIT, "worker_int") &&
        arm_handler(SIGQUIT, &ON_QUIT, "worker_int"))
        g_quit_armed = 1;
}

void post_worker_init() {
    if (!O.self) return;
    set_attr(O.self, "wsgi", new_ref(O.wsgi ? O.wsgi : Py_None));
    if (PyObject *fn = hook("post_worker_init", worker_cfg())) {
        refresh_self();
        call_hook("post_worker_init", fn, {O.self});
        check_alive();
    }
    set_attr(O.self, "booted", new_ref(Py_True));
}

RequestRef &RequestRef::operator=(RequestRef &&o) noexcept {
    std::swap(p_, o.p_);
    return *this;
}

RequestRef::~RequestRef() { Py_XDECREF(p_); }

void RequestRef::reset(PyObject *p) { Py_XSETREF(p_, p); }

void pre_request(RequestRef &slot, const RequestInfo &info) {
    if (!O.self || !info.req) return;
    const http::Request &r = *info.req;
    Ref headers = Ref::steal(PyList_New(static_cast<Py_ssize_t>(r.headers.size())));
    if (!headers) {
        log_hook_error("pre_request");
        return;
    }
    std::string upper;
    for (size_t i = 0; i < r.headers.size(); ++i) {
        const http::Header &h = r.headers[i];
        upper.assign(h.name);
        for (char &ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        PyObject *t = Py_BuildValue("(NN)", str(upper), str(h.value));
        if (!t) {
            log_hook_error("pre_request");
            return;
        }
        PyList_SET_ITEM(headers.get(), static_cast<Py_ssize_t>(i), t);
    }
    Ref peer = info.peer.empty() ? Ref::steal(PyUnicode_FromString(""))
                                 : Ref::steal(Py_BuildValue("(Ni)", str(info.peer), info.peer_port));
    Ref proxy;
    if (info.proxy) {
        const http::ProxyInfo &p = *info.proxy;
        proxy = Ref::steal(Py_BuildValue("{s:N,s:N,s:i,s:N,s:i}", "proxy_protocol", str(p.protocol), "client_addr",
                                         str(p.client_addr), "client_port", p.client_port, "proxy_addr",
                                         str(p.proxy_addr), "proxy_port", p.proxy_port));
    } else {
        proxy = Ref::borrow(Py_None);
    }
    std::string_view scheme = r.scheme.empty() ? std::string_view("http") : r.scheme;
    Ref req = Ref::steal(PyObject_CallFunction(
        O.Request, "NNNNN(ii)ONOiOOO", str(r.method), str(r.target), str(r.path), str(r.query), str(r.fragment),
        r.version_major, r.version_minor, headers.get(), str(scheme), peer ? peer.get() : Py_None, info.req_number,
        r.must_close ? Py_True : Py_False, proxy ? proxy.get() : Py_None, r.keep_alive ? Py_True : Py_False));
    if (!req) {
        log_hook_error("pre_request");
        return;
    }
    slot.reset(req.release());
    if (PyObject *fn = hook("pre_request", worker_cfg())) {
        refresh_self(info.nr);
        call_hook("pre_request", fn, {O.self, slot.get()});
        check_alive();
    }
}

void post_request(RequestRef &slot, PyObject *environ, const http::Response &resp) {
    Ref req = Ref::steal(slot.release());
    PyObject *fn = hook("post_request", worker_cfg());
    if (!fn || !req || !O.self) return;
    Ref headers = Ref::steal(PyList_New(static_cast<Py_ssize_t>(resp.headers.size())));
    if (!headers) {
        log_hook_error("post_request");
        return;
    }
    for (size_t i = 0; i < resp.headers.size(); ++i) {
        PyObject *t = Py_BuildValue("(NN)", str(resp.headers[i].first), str(resp.headers[i].second));
        if (!t) {
            log_hook_error("post_request");
            return;
        }
        PyList_SET_ITEM(headers.get(), static_cast<Py_ssize_t>(i), t);
    }
    Ref length = resp.content_length >= 0 ? Ref::steal(PyLong_FromLongLong(resp.content_length))
                                          : Ref::borrow(Py_None);
    Ref robj = Ref::steal(PyObject_CallFunction(
        O.Response, "NiONOOOOOs", str(resp.status), resp.status_code, headers.get(),
        PyLong_FromUnsignedLongLong(resp.sent), length.get(), resp.chunked ? Py_True : Py_False,
        resp.headers_sent ? Py_True : Py_False, resp.must_close ? Py_True : Py_False,
        resp.upgrade ? Py_True : Py_False, "HTTP/1.1"));
    Ref env = environ ? Ref::borrow(environ) : Ref::steal(PyDict_New());
    if (!robj || !env) {
        log_hook_error("post_request");
        return;
    }
    refresh_self();
    call_hook("post_request", fn, {O.self, req.get(), env.get(), robj.get()});
    check_alive();
}

void set_app(PyObject *app) { O.wsgi = app; }

void worker_int() {
    PyObject *fn = hook("worker_int", worker_cfg());
    if (!fn || !O.self) return;
    refresh_self();
    set_attr(O.self, "alive", new_ref(Py_False));
    call_hook("worker_int", fn, {O.self});
}

void worker_exit() {
    if (g_exit_done) return;
    g_exit_done = true;
    PyObject *fn = hook("worker_exit", worker_cfg());
    if (!fn || !O.self) return;
    PyObject *srv = worker_server();
    if (!srv) {
        log_hook_error("worker_exit");
        return;
    }
    refresh_self();
    call_hook("worker_exit", fn, {srv, O.self});
}

bool signal_abort() {
    if (!g_abort_armed) return false;
    interrupt_interpreter(SIGABRT, pending_abort);
    return true;
}

bool signal_quit(int sig) {
    if (!g_quit_armed) return false;
    interrupt_interpreter(sig, pending_quit);
    return true;
}

void quit_worker() {
    g_quitting = true;
    worker_int();
    LOG_INFO("Worker exiting (pid: %d)", getpid());
    worker_exit();
    py::finalize();
    _exit(0);
}

void abort_worker() {
    g_aborting = true;
    if (PyObject *fn = hook("worker_abort", worker_cfg())) {
        if (O.self) {
            refresh_self();
            set_attr(O.self, "alive", new_ref(Py_False));
            call_hook("worker_abort", fn, {O.self});
        }
    }
    LOG_INFO("Worker exiting (pid: %d)", getpid());
    worker_exit();
    py::finalize();
    _exit(1);
}

}  // namespace cunicorn::hooks
