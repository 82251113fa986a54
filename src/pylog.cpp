// The Python side of logging: src/py/glogging.py's Logger, its loggers and
// handlers, and the route that sends log.cpp's lines to them when a
// Python logging configuration is active (pylog.h).
#include "cunicorn/pylog.h"

#include "cunicorn/config.h"
#include "cunicorn/log.h"
#include "cunicorn/pyref.h"
#include "cunicorn/statsd.h"

#include <stdexcept>
#include <string>

#include <unistd.h>

namespace cunicorn::pylog {

using py::Ref;

namespace {

const py::Source GLOGGING_PY = {"src/py/glogging.py",
#include "py/glogging.inc"
};

// Created once, never destroyed (no static destructor may run after the
// interpreter is gone).
PyObject *g_mod = nullptr;       // the glogging module
PyObject *g_Logger = nullptr;    // its Logger class
PyObject *g_logger = nullptr;    // the instance (server.log, worker.log)
PyObject *g_cfg_obj = nullptr;   // the Config its last successful setup had
PyObject *g_access = nullptr;    // glogging.access
PyObject *g_error = nullptr;     // glogging.error

// logging's numeric levels, by the nearest level at or below.
log::Level level_of(long levelno) {
    if (levelno >= 50) return log::Level::CRITICAL;
    if (levelno >= 40) return log::Level::ERROR;
    if (levelno >= 30) return log::Level::WARNING;
    if (levelno >= 20) return log::Level::INFO;
    return log::Level::DEBUG;
}

// --- _cunicorn_log: what glogging.py's handlers call ------------------------

PyObject *fn_write(PyObject *, PyObject *args) {
    long levelno;
    const char *text;
    Py_ssize_t n;
    int prefixed;
    if (!PyArg_ParseTuple(args, "ls#p", &levelno, &text, &n, &prefixed)) return nullptr;
    log::write_line(level_of(levelno), std::string_view(text, static_cast<size_t>(n)), prefixed != 0);
    Py_RETURN_NONE;
}

PyObject *fn_access_line(PyObject *, PyObject *args) {
    const char *text;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "s#", &text, &n)) return nullptr;
    log::write_access_line(std::string_view(text, static_cast<size_t>(n)));
    Py_RETURN_NONE;
}

PyObject *fn_reopen(PyObject *, PyObject *) {
    log::reopen_files();
    Py_RETURN_NONE;
}

PyObject *fn_statsd(PyObject *, PyObject *args) {
    const char *name, *value, *type;
    if (!PyArg_ParseTuple(args, "sss", &name, &value, &type)) return nullptr;
    statsd::metric(name, value, type);
    Py_RETURN_NONE;
}

PyObject *fn_statsd_on(PyObject *, PyObject *) { return PyBool_FromLong(statsd::enabled()); }

PyMethodDef FUNCTIONS[] = {
    {"_write", fn_write, METH_VARARGS, nullptr},
    {"_access_line", fn_access_line, METH_VARARGS, nullptr},
    {"_reopen", fn_reopen, METH_NOARGS, nullptr},
    {"_statsd", fn_statsd, METH_VARARGS, nullptr},
    {"_statsd_on", fn_statsd_on, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// A Python exception as a std::runtime_error: RuntimeError's message as
// is (gunicorn's own wording, which base.py prints after "Error: "),
// anything else with its type; `what` (if any) first.
[[noreturn]] void throw_python_error(const char *what) {
    std::string msg = py::exception_message();
    PyObject *type = PyErr_Occurred();
    bool runtime = type && PyErr_GivenExceptionMatches(type, PyExc_RuntimeError);
    if (!runtime && type) msg = std::string(reinterpret_cast<PyTypeObject *>(type)->tp_name) + ": " + msg;
    std::string tb = py::fetch_traceback();
    if (msg.empty()) msg = tb;
    throw std::runtime_error(what ? std::string(what) + ": " + msg : msg);
}

bool set_module(PyObject *modules, const char *name, PyObject *mod) {
    return PyDict_SetItemString(modules, name, mod) == 0;
}

// A package module holding `glogging` (cunicorn, or gunicorn's stand-in).
bool add_package(PyObject *modules, const char *name) {
    Ref pkg = Ref::steal(PyModule_New(name));
    Ref path = Ref::steal(PyList_New(0));
    return pkg && path && PyObject_SetAttrString(pkg.get(), "__path__", path.get()) == 0 &&
           PyObject_SetAttrString(pkg.get(), "glogging", g_mod) == 0 && set_module(modules, name, pkg.get());
}

// --- the route (log::Route) --------------------------------------------------

PyObject *text_object(std::string_view s) {
    return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "backslashreplace");
}

// The GIL for a route call, and the caller's pending exception (a line
// may be logged while one is being handled) kept aside meanwhile.
class RouteCall {
public:
    RouteCall() : gs_(PyGILState_Ensure()) { PyErr_Fetch(&et_, &ev_, &etb_); }
    ~RouteCall() {
        PyErr_Restore(et_, ev_, etb_);
        PyGILState_Release(gs_);
    }
    RouteCall(const RouteCall &) = delete;
    RouteCall &operator=(const RouteCall &) = delete;

private:
    PyGILState_STATE gs_;
    PyObject *et_ = nullptr, *ev_ = nullptr, *etb_ = nullptr;
};

// Errors of the Logger's own methods: a traceback in the error log,
// written natively (the route is off while it runs).
void report(const char *what) {
    std::string tb = py::fetch_traceback();
    log::write_line(log::Level::ERROR, std::string(what) + "\n" + tb, true);
}

void route_error(log::Level level, std::string_view text) {
    RouteCall call;
    Ref line = Ref::steal(text_object(text));
    Ref r = line ? Ref::steal(PyObject_CallFunction(g_error, "OiO", g_logger, static_cast<int>(level), line.get()))
                 : Ref();
    if (!r) report("Error in the logger class's method");
}

// [(name, value)] of header pairs (latin-1, as WSGI has them).
template <typename Headers>
PyObject *header_list(const Headers *headers) {
    Ref list = Ref::steal(PyList_New(0));
    if (!list || !headers) return list.release();
    for (const auto &h : *headers) {
        std::string_view k = h.first, v = h.second;
        Ref item = Ref::steal(Py_BuildValue("(NN)", py::latin1(k.data(), k.size()), py::latin1(v.data(), v.size())));
        if (!item || PyList_Append(list.get(), item.get()) < 0) return nullptr;
    }
    return list.release();
}

PyObject *str(std::string_view s) { return py::latin1(s.data(), s.size()); }

// None for "", else the str (a new reference either way).
PyObject *none_or(std::string_view s) {
    if (!s.empty()) return str(s);
    Py_INCREF(Py_None);
    return Py_None;
}

void route_access(const log::AccessRecord &rec) {
    RouteCall call;
    // wsgi.cpp sets environ_ctx to the environ dict with environ_lookup.
    PyObject *environ = rec.environ_lookup && rec.environ_ctx ? static_cast<PyObject *>(rec.environ_ctx) : Py_None;
    Ref r = Ref::steal(PyObject_CallFunction(
        g_access, "OONNNNNNNKLNN", g_logger, environ, str(rec.method), str(rec.raw_uri), str(rec.path_info),
        str(rec.query), str(rec.protocol), str(rec.remote_addr), str(rec.status),
        static_cast<unsigned long long>(rec.bytes_sent), static_cast<long long>(rec.duration_us),
        header_list(rec.request_headers), header_list(rec.response_headers)));
    if (!r) report("Error in the logger class's access()");
}

void route_reopen() {
    RouteCall call;
    // Logger.reopen_files reopens the FileHandlers of every logger; ours
    // also reopens the native files, another class's does not know them.
    int own = g_logger ? PyObject_IsInstance(g_logger, g_Logger) : 0;
    if (own != 1) {
        PyErr_Clear();
        log::reopen_files();
    }
    if (g_logger) {
        Ref r = Ref::steal(PyObject_CallMethod(g_logger, "reopen_files", nullptr));
        if (!r) report("Error in the logger class's reopen_files()");
    }
}

// --- configuration -----------------------------------------------------------

bool truthy(PyObject *values, const char *name) {
    PyObject *v = values ? PyDict_GetItemString(values, name) : nullptr;  // borrowed
    int t = v ? PyObject_IsTrue(v) : 0;
    if (t < 0) PyErr_Clear();
    return t == 1;
}

// The class logger_class names (a new reference), or throws.
Ref logger_class(const Config &cfg, PyObject *values) {
    if (!cfg.logger_class_custom) return Ref::borrow(g_Logger);
    PyObject *uri = values ? PyDict_GetItemString(values, "logger_class") : nullptr;
    Ref cls = Ref::steal(PyObject_CallMethod(g_mod, "load_class", "O", uri ? uri : Py_None));
    if (!cls) throw_python_error("logger_class");
    return cls;
}

}  // namespace

void install() {
    if (g_mod || !Py_IsInitialized()) return;
    PyObject *modules = PyImport_GetModuleDict();  // borrowed
    Ref native = Ref::steal(PyModule_New("_cunicorn_log"));
    if (!native || PyModule_AddFunctions(native.get(), FUNCTIONS) < 0 ||
        !set_module(modules, "_cunicorn_log", native.get()))
        throw_python_error("logging");
    Ref mod = Ref::steal(PyModule_New("cunicorn.glogging"));
    if (!mod || !py::exec_source(GLOGGING_PY, PyModule_GetDict(mod.get()))) throw_python_error("src/py/glogging.py");
    g_mod = mod.release();
    g_Logger = PyObject_GetAttrString(g_mod, "Logger");
    g_access = PyObject_GetAttrString(g_mod, "access");
    g_error = PyObject_GetAttrString(g_mod, "error");
    if (!g_Logger || !g_access || !g_error) throw_python_error("src/py/glogging.py");
    bool ok = set_module(modules, "cunicorn.glogging", g_mod);
    if (ok && !PyDict_GetItemString(modules, "cunicorn")) ok = add_package(modules, "cunicorn");
    // A logger_class written for gunicorn subclasses gunicorn.glogging.Logger:
    // the real one when gunicorn is installed, else this one.
    Ref real = Ref::steal(PyImport_ImportModule("gunicorn"));
    if (!real) {
        PyErr_Clear();
        ok = ok && add_package(modules, "gunicorn") && set_module(modules, "gunicorn.glogging", g_mod);
    }
    if (!ok) throw_python_error("logging");
}

void check(const Config &cfg) {
    bool python = Py_IsInitialized();
    PyObject *values = python ? setting_values(cfg) : nullptr;  // borrowed
    // glogging.py setup(), checked before anything is opened or replaced:
    // logconfig is read only without logconfig_dict and logconfig_json.
    if (!cfg.logconfig.empty() && cfg.logconfig_json.empty() && !truthy(values, "logconfig_dict") &&
        ::access(cfg.logconfig.c_str(), F_OK) != 0)
        throw std::runtime_error("Error: log config '" + cfg.logconfig + "' not found");
    if (!python) return;
    install();
    (void)logger_class(cfg, values);
}

void configure(const Config &cfg) {
    if (!Py_IsInitialized()) return;
    install();
    PyObject *values = setting_values(cfg);  // borrowed
    bool python_route = !cfg.logconfig.empty() || !cfg.logconfig_json.empty() || cfg.logger_class_custom ||
                        truthy(values, "logconfig_dict");
    Ref cls = logger_class(cfg, values);
    // The settings as gunicorn's Config holds them, and what its
    // properties add.
    Ref vals = Ref::steal(values ? PyDict_Copy(values) : PyDict_New());
    Ref derived = Ref::steal(Py_BuildValue("{sNsisi}", "proc_name", str(cfg.name()), "uid",
                                           static_cast<int>(cfg.uid), "gid", static_cast<int>(cfg.gid)));
    // What a Config not made by load_config (unit tests) lacks.
    static const char *const LEVELS[] = {"debug", "info", "warning", "error", "critical"};
    Ref fallback = Ref::steal(Py_BuildValue(
        "{sssNsNsssOsOsOsNsNsOsN}", "loglevel", LEVELS[static_cast<int>(cfg.loglevel)], "errorlog", str(cfg.errorlog),
        "accesslog", none_or(cfg.accesslog), "access_log_format",
        cfg.access_log_format.c_str(), "capture_output", cfg.capture_output ? Py_True : Py_False, "syslog",
        cfg.syslog ? Py_True : Py_False, "disable_redirect_access_to_syslog",
        cfg.disable_redirect_access_to_syslog ? Py_True : Py_False, "logconfig",
        none_or(cfg.logconfig), "logconfig_json",
        none_or(cfg.logconfig_json), "logconfig_dict", Py_None,
        "logger_class", str("gunicorn.glogging.Logger")));
    Ref cfg_obj = vals && derived && fallback
                      ? Ref::steal(PyObject_CallMethod(g_mod, "Config", "OOO", vals.get(), derived.get(), fallback.get()))
                      : Ref();
    if (!cfg_obj) throw_python_error("logging");
    // HUP: the same class is set up again, as gunicorn's arbiter does
    // (self.log.setup(cfg)); another class replaces the instance. On
    // failure the previous route and instance stay.
    if (g_logger && reinterpret_cast<PyObject *>(Py_TYPE(g_logger)) == cls.get()) {
        Ref r = Ref::steal(PyObject_CallMethod(g_logger, "setup", "O", cfg_obj.get()));
        if (!r) {
            // A dictConfig that fails has already dropped the handlers:
            // set the running configuration up again (arbiter.py restores
            // it too), then report.
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            if (g_cfg_obj) {
                Ref back = Ref::steal(PyObject_CallMethod(g_logger, "setup", "O", g_cfg_obj));
                if (!back) PyErr_Clear();
            }
            PyErr_Restore(et, ev, etb);
            throw_python_error(nullptr);
        }
    } else {
        Ref inst = Ref::steal(PyObject_CallFunctionObjArgs(cls.get(), cfg_obj.get(), nullptr));
        if (!inst) throw_python_error(nullptr);
        Py_XSETREF(g_logger, inst.release());
    }
    // arbiter.py start(): the log files are not inherited by exec'd programs.
    if (PyObject_HasAttrString(g_logger, "close_on_exec")) {
        Ref coe = Ref::steal(PyObject_CallMethod(g_logger, "close_on_exec", nullptr));
        if (!coe) report("Error in the logger class's close_on_exec()");
    }
    Py_INCREF(cfg_obj.get());
    Py_XSETREF(g_cfg_obj, cfg_obj.get());
    log::Route route;
    route.reopen = route_reopen;
    if (python_route) {
        route.error = route_error;
        route.access = route_access;
    }
    log::set_route(route);
}

PyObject *logger() { return g_logger; }

}  // namespace cunicorn::pylog
