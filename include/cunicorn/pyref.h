// Python objects in C++: owned references and the helpers that need
// Python types. Included only by config, pyembed and wsgi.
#ifndef CUNICORN_PYREF_H
#define CUNICORN_PYREF_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cunicorn/config.h"

#include <string>
#include <utility>
#include <vector>

namespace cunicorn::py {

// A move-only owned reference (CPython "Reference Count Details").
class Ref {
public:
    Ref() = default;
    static Ref steal(PyObject *p) { return Ref(p); }
    static Ref borrow(PyObject *p) { Py_XINCREF(p); return Ref(p); }
    Ref(Ref &&o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    Ref &operator=(Ref &&o) noexcept { std::swap(p_, o.p_); return *this; }
    Ref(const Ref &) = delete;
    Ref &operator=(const Ref &) = delete;
    ~Ref() { Py_XDECREF(p_); }

    PyObject *get() const { return p_; }
    // Gives the reference away, for stealing calls (PyTuple_SET_ITEM).
    PyObject *release() { PyObject *p = p_; p_ = nullptr; return p; }
    explicit operator bool() const { return p_ != nullptr; }
    void reset() { Py_CLEAR(p_); }

private:
    explicit Ref(PyObject *p) : p_(p) {}
    PyObject *p_ = nullptr;
};

// One of the server's own Python files (src/py/), built into the binary by
// the Makefile: its path in the source tree, which tracebacks show, and its
// text.
struct Source {
    const char *path;
    const char *text;
};

// Runs `src` as a module body in the dict `globals`, which gets
// __builtins__ when it has none. The text is registered with linecache
// under src.path, so tracebacks show its lines though no such file is
// installed. False, with the Python error set, when the code fails.
bool exec_source(const Source &src, PyObject *globals);

// Formats and clears the pending Python exception as a traceback text
// (what traceback.format_exc() gives). Empty if none is pending.
std::string fetch_traceback();

// The str() of the pending exception's value, without clearing it.
std::string exception_message();

// The outcome of loading the application (load_app).
struct AppLoad {
    enum Outcome {
        LOADED,
        // --reload and a SyntaxError: `app` answers 500 with the traceback
        // (gunicorn's load_wsgi), which is in `error`; the broken file is
        // in no module's __file__, so it is named for the reloader to watch.
        SERVES_SYNTAX_ERROR,
        // An exception while importing the module or calling the factory:
        // the traceback is in `error`; a worker exits 3 (WORKER_BOOT_ERROR).
        BOOT_ERROR,
        // An unusable app object (gunicorn's AppImportError: no such
        // attribute, not callable, an ASGI app, ...): the message is in
        // `error`; a worker exits 4 (APP_LOAD_ERROR).
        APP_ERROR,
    };
    Outcome outcome = BOOT_ERROR;
    Ref app;  // set for LOADED and SERVES_SYNTAX_ERROR
    std::string error;
    std::string syntax_error_file;
};

// Loads the application cfg names, as gunicorn's WSGIApplication.load:
// util.import_app ("module", "module:name", "module:factory(literal
// args)"), or, when the paste setting is set, pasterapp.get_wsgi_app:
// paste.deploy.loadapp(uri) relative to the current directory, where a uri
// without a scheme is an ini file ("FILE.ini#name" picks [app:name]), with
// global_conf made of the raw_paste_global_conf entries (KEY=VALUE, "\="
// escapes "="). A SyntaxError is SERVES_SYNTAX_ERROR only with
// serve_syntax_errors (--reload in a worker).
AppLoad load_app(const Config &cfg, bool serve_syntax_errors);

// The callable the worker calls for `app` (a new reference; null with a
// Python error set on failure): calls app, and makes an awaitable result
// (an ASGI application that load time did not recognise) a TypeError
// saying so. Load time refuses an async def app, or one whose __call__
// is async def (AppImportError).
Ref wsgi_callable(PyObject *app);

// PyUnicode from latin-1 bytes (WSGI "native strings").
inline PyObject *latin1(const char *p, size_t n) { return PyUnicode_DecodeLatin1(p, static_cast<Py_ssize_t>(n), nullptr); }

}  // namespace cunicorn::py

#endif
