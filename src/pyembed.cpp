// The embedded interpreter: start-up without Python's signal handlers,
// fork helpers, tracebacks and gunicorn-compatible application loading.
#include "cunicorn/pyembed.h"
#include "cunicorn/pyref.h"

#include <cstring>
#include <stdexcept>

#ifndef CUNICORN_PYTHON
#define CUNICORN_PYTHON "python3"
#endif

namespace cunicorn::py {

static bool g_initialized = false;

static void check_status(PyStatus status, PyConfig *config) {
    if (PyStatus_Exception(status)) {
        std::string msg = status.err_msg ? status.err_msg : "unknown error";
        PyConfig_Clear(config);
        throw std::runtime_error("cannot initialise Python: " + msg);
    }
}

void init(const char *argv0) {
    if (g_initialized) return;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    // cunicorn owns SIGINT, SIGTERM and friends; Python must not install
    // its KeyboardInterrupt handler (STYLE.md, "CPython bridge").
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    // sys.executable must be a real interpreter: multiprocessing and
    // subprocess users spawn it. The path is the one we were built against.
    check_status(PyConfig_SetBytesString(&config, &config.program_name, CUNICORN_PYTHON), &config);
    check_status(PyConfig_SetBytesString(&config, &config.executable, CUNICORN_PYTHON), &config);
    char *argv[] = {const_cast<char *>(argv0 ? argv0 : "cunicorn")};
    check_status(PyConfig_SetBytesArgv(&config, 1, argv), &config);
    check_status(Py_InitializeFromConfig(&config), &config);
    PyConfig_Clear(&config);
    g_initialized = true;
}

bool initialized() { return g_initialized; }

std::string exception_message() {
    if (!PyErr_Occurred()) return {};
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    std::string out;
    if (value) {
        Ref s = Ref::steal(PyObject_Str(value));
        if (s) {
            const char *c = PyUnicode_AsUTF8(s.get());
            if (c) out = c;
        }
        PyErr_Clear();
    }
    PyErr_Restore(type, value, tb);
    return out;
}

std::string fetch_traceback() {
    if (!PyErr_Occurred()) return {};
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value) PyException_SetTraceback(value, tb);
    Ref rtype = Ref::steal(type), rvalue = Ref::steal(value), rtb = Ref::steal(tb);
    std::string out;
    Ref mod = Ref::steal(PyImport_ImportModule("traceback"));
    if (mod) {
        Ref lines = Ref::steal(PyObject_CallMethod(mod.get(), "format_exception", "OOO",
                                                   rtype ? rtype.get() : Py_None,
                                                   rvalue ? rvalue.get() : Py_None,
                                                   rtb ? rtb.get() : Py_None));
        if (lines) {
            Ref empty = Ref::steal(PyUnicode_FromString(""));
            Ref joined = Ref::steal(PyUnicode_Join(empty.get(), lines.get()));
            if (joined) {
                const char *c = PyUnicode_AsUTF8(joined.get());
                if (c) out = c;
            }
        }
    }
    PyErr_Clear();
    if (out.empty()) out = "(no traceback available)\n";
    return out;
}

void before_fork() { PyOS_BeforeFork(); }
void after_fork_parent() { PyOS_AfterFork_Parent(); }
void after_fork_child() { PyOS_AfterFork_Child(); }

void finalize() {
    if (!g_initialized) return;
    // Py_FinalizeEx would also wait for non-daemon threads; a worker that
    // is exiting must not hang on them, so only do the parts a user can
    // observe: buffered output and atexit handlers.
    Ref atexit = Ref::steal(PyImport_ImportModule("atexit"));
    if (atexit) Ref::steal(PyObject_CallMethod(atexit.get(), "_run_exitfuncs", nullptr));
    PyErr_Clear();
    for (const char *name : {"stdout", "stderr"}) {
        PyObject *f = PySys_GetObject(name);  // borrowed
        if (f && f != Py_None) Ref::steal(PyObject_CallMethod(f, "flush", nullptr));
        PyErr_Clear();
    }
}

void prepend_sys_path(const std::string &dir) {
    PyObject *path = PySys_GetObject("path");  // borrowed
    if (!path || !PyList_Check(path)) return;
    Ref item = Ref::steal(PyUnicode_DecodeFSDefault(dir.c_str()));
    if (!item) { PyErr_Clear(); return; }
    // Avoid piling up duplicates across HUP reloads.
    int has = PySequence_Contains(path, item.get());
    if (has == 1) {
        Ref idx = Ref::steal(PyObject_CallMethod(path, "remove", "O", item.get()));
    }
    PyErr_Clear();
    PyList_Insert(path, 0, item.get());
}

// The application loader runs as Python code: the rules (ast parsing of a
// factory call with literal arguments, the ".py" hint) are gunicorn's
// util.import_app, and Python's own ast module is the right tool for them.
static const char *IMPORT_APP_SRC = R"PY(
import ast, importlib, os, sys

class AppImportError(Exception):
    pass

def _parse(obj):
    try:
        expr = ast.parse(obj.strip(), mode="eval").body
    except SyntaxError:
        raise AppImportError("Failed to parse %r as an attribute name or function call." % obj)
    if isinstance(expr, ast.Name):
        return expr.id, None, None
    if isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name):
            raise AppImportError("Function reference must be a simple name: %r" % obj)
        try:
            args = [ast.literal_eval(a) for a in expr.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}
        except ValueError:
            raise AppImportError("Failed to parse arguments as literal values: %r" % obj)
        return expr.func.id, args, kwargs
    raise AppImportError("Failed to parse %r as an attribute name or function call." % obj)

def import_app(uri):
    module, _, obj = uri.partition(":")
    if not obj:
        obj = "application"
    name, args, kwargs = _parse(obj)
    try:
        mod = importlib.import_module(module)
    except ImportError:
        if module.endswith(".py") and os.path.exists(module):
            msg = "Failed to find application, did you mean '%s:%s'?"
            raise ImportError(msg % (module.rsplit(".", 1)[0], obj))
        raise
    try:
        app = getattr(mod, name)
    except AttributeError:
        raise AppImportError("Failed to find attribute %r in %r." % (name, module))
    if args is not None:
        try:
            app = app(*args, **kwargs)
        except TypeError as e:
            if e.__traceback__.tb_next is None:
                raise AppImportError("The function %r in %r cannot be called with these arguments: %s" % (name, module, e))
            raise
    if app is None:
        raise AppImportError("Failed to find application object: %r" % obj)
    if not callable(app):
        raise AppImportError("Application object must be callable.")
    return app
)PY";

Ref import_app(const std::string &uri, std::string &error, bool &boot_error) {
    boot_error = false;
    static PyObject *ns = nullptr;  // the loader's globals, kept for the process
    if (!ns) {
        ns = PyDict_New();
        if (!ns) { error = fetch_traceback(); return Ref(); }
        PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins());
        Ref r = Ref::steal(PyRun_String(IMPORT_APP_SRC, Py_file_input, ns, ns));
        if (!r) { error = fetch_traceback(); return Ref(); }
    }
    PyObject *fn = PyDict_GetItemString(ns, "import_app");  // borrowed
    Ref app = Ref::steal(PyObject_CallFunction(fn, "s", uri.c_str()));
    if (app) return app;
    PyObject *app_error = PyDict_GetItemString(ns, "AppImportError");
    if (PyErr_ExceptionMatches(app_error)) {
        error = exception_message();
        PyErr_Clear();
    } else {
        boot_error = true;
        error = fetch_traceback();
    }
    return Ref();
}

}  // namespace cunicorn::py
