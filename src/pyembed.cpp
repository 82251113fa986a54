// The embedded interpreter: start-up without Python's signal handlers,
// fork helpers, tracebacks and gunicorn-compatible application loading.
#include "cunicorn/pyembed.h"

#include "cunicorn/log.h"
#include "cunicorn/pyref.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#ifndef CUNICORN_PYTHON
#define CUNICORN_PYTHON "python3"
#endif

namespace cunicorn::py {

static bool g_initialized = false;
static std::string g_virtualenv;  // the one init() started in, absolute

static void check_status(PyStatus status, PyConfig *config) {
    if (PyStatus_Exception(status)) {
        std::string msg = status.err_msg ? status.err_msg : "unknown error";
        PyConfig_Clear(config);
        throw std::runtime_error("cannot initialise Python: " + msg);
    }
}

static bool is_file(const std::string &path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir_path(const std::string &path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static std::string parent_dir(const std::string &path) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// "3.11" from "3.11.2 (main, ...)" or "3.11.2.final.0"; "" if the text
// does not start with two dot-separated numbers.
static std::string major_minor(const std::string &version) {
    size_t k = 0;
    auto digits = [&] {
        size_t start = k;
        while (k < version.size() && version[k] >= '0' && version[k] <= '9') ++k;
        return k > start;
    };
    if (!digits() || k >= version.size() || version[k] != '.') return {};
    ++k;
    if (!digits()) return {};
    return version.substr(0, k);
}

std::string linked_version() {
    // Py_GetVersion() is the runtime library's sys.version and may be
    // called before Py_Initialize.
    return major_minor(Py_GetVersion());
}

std::string inspect_virtualenv(const std::string &dir, Virtualenv &venv) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0)
        return errno == ENOENT ? std::string("no such directory") : std::string("cannot use it: ") + std::strerror(errno);
    if (!S_ISDIR(st.st_mode)) return "not a directory";
    // The file site.py and getpath look for; its absence means this is
    // no virtualenv (perhaps a Python installation: use PYTHONHOME there).
    std::string cfg_path = dir + "/pyvenv.cfg";
    std::ifstream in(cfg_path);
    if (!in) return "not a virtualenv: there is no " + cfg_path;
    Virtualenv v;
    v.dir = dir;
    std::string version_info;
    for (std::string line; std::getline(in, line);) {
        // site.py venv(): key, _, value = line.partition('='), stripped.
        size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        auto trim = [](std::string s) {
            size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
            return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
        };
        std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        for (char &c : key)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (key == "version") v.version = value;  // python3 -m venv
        else if (key == "version_info") version_info = value;  // virtualenv, uv
    }
    if (v.version.empty()) v.version = version_info;
    std::string ours = linked_version();
    if (v.version.empty()) {
        // No version recorded: accept the layout of this Python only.
        if (!is_dir_path(dir + "/lib/python" + ours))
            return cfg_path + " names no version and there is no lib/python" + ours + ": cunicorn runs Python " + ours;
        v.version = ours;
    } else if (major_minor(v.version) != ours) {
        return "made by Python " + (major_minor(v.version).empty() ? v.version : major_minor(v.version)) +
               ", but cunicorn runs Python " + ours + "; recreate it with python" + ours + " -m venv";
    }
    // sys.executable: the venv's own interpreter, as when it runs itself.
    v.python = dir + "/bin/python";
    for (const char *name : {"python", "python3"}) {
        if (is_file(dir + "/bin/" + name)) {
            v.python = dir + "/bin/" + name;
            break;
        }
    }
    venv = v;
    return {};
}

// The prefix of the Python cunicorn was built against: where getpath
// finds the standard library from that interpreter (a directory above it
// holding lib/pythonX.Y/os.py). "" if not found.
static std::string linked_home() {
    char buf[PATH_MAX];
    if (!::realpath(CUNICORN_PYTHON, buf)) return {};
    std::string ver = linked_version();
    for (std::string dir = parent_dir(buf);; dir = parent_dir(dir)) {
        for (const char *lib : {"/lib/python", "/lib64/python"}) {
            std::string base = dir == "/" ? std::string() : dir;
            if (is_file(base + lib + ver + "/os.py")) return dir;
        }
        if (dir == "/") return {};
    }
}

void init(const char *argv0, const std::string &virtualenv) {
    if (g_initialized) return;
    Virtualenv venv;
    if (!virtualenv.empty()) {
        std::string why = inspect_virtualenv(virtualenv, venv);
        if (!why.empty()) throw std::runtime_error("Invalid value for virtualenv: " + virtualenv + " (" + why + ")");
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    // cunicorn owns SIGINT, SIGTERM and friends; Python must not install
    // its KeyboardInterrupt handler (STYLE.md, "CPython bridge").
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    // sys.executable must be a real interpreter: multiprocessing and
    // subprocess users spawn it. The path is the one we were built against,
    // or in a virtualenv its bin/python: that makes site.py find
    // pyvenv.cfg beside it and do what it does for that interpreter, i.e.
    // sys.prefix = sys.exec_prefix = the venv, its site-packages on
    // sys.path, and the system's too with include-system-site-packages.
    // The standard library stays the one of the libpython we run (home),
    // whichever 3.x installation the venv's pyvenv.cfg "home" names.
    // PyConfig.home = the venv would be wrong: no stdlib lives there.
    const char *exe = venv.dir.empty() ? CUNICORN_PYTHON : venv.python.c_str();
    check_status(PyConfig_SetBytesString(&config, &config.program_name, exe), &config);
    check_status(PyConfig_SetBytesString(&config, &config.executable, exe), &config);
    if (!venv.dir.empty()) {
        std::string home = linked_home();
        if (!home.empty()) check_status(PyConfig_SetBytesString(&config, &config.home, home.c_str()), &config);
        // sys._base_executable, which venv and multiprocessing use, as
        // the venv's python reports it: the interpreter behind the links.
        char real[PATH_MAX];
        if (::realpath(CUNICORN_PYTHON, real))
            check_status(PyConfig_SetBytesString(&config, &config.base_executable, real), &config);
    }
    char *argv[] = {const_cast<char *>(argv0 ? argv0 : "cunicorn")};
    check_status(PyConfig_SetBytesArgv(&config, 1, argv), &config);
    check_status(Py_InitializeFromConfig(&config), &config);
    PyConfig_Clear(&config);
    g_initialized = true;
    g_virtualenv = venv.dir;
}

const std::string &virtualenv() { return g_virtualenv; }

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

// linecache's entry for a file that only exists in memory: (size, mtime,
// lines, fullname), where a None mtime keeps checkcache() from dropping it.
static bool register_with_linecache(const Source &src) {
    Ref linecache = Ref::steal(PyImport_ImportModule("linecache"));
    Ref cache = linecache ? Ref::steal(PyObject_GetAttrString(linecache.get(), "cache")) : Ref();
    Ref text = cache ? Ref::steal(PyUnicode_FromString(src.text)) : Ref();
    Ref lines = text ? Ref::steal(PyObject_CallMethod(text.get(), "splitlines", "O", Py_True)) : Ref();
    Ref entry = lines ? Ref::steal(Py_BuildValue("(nOOs)", PyUnicode_GET_LENGTH(text.get()), Py_None,
                                                 lines.get(), src.path))
                      : Ref();
    return entry && PyDict_SetItemString(cache.get(), src.path, entry.get()) == 0;
}

bool exec_source(const Source &src, PyObject *globals) {
    if (!PyDict_GetItemString(globals, "__builtins__") &&
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0)
        return false;
    Ref code = Ref::steal(Py_CompileString(src.text, src.path, Py_file_input));
    if (!code || !register_with_linecache(src)) return false;
    return Ref::steal(PyEval_EvalCode(code.get(), globals, globals)) ? true : false;
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
    Ref item = Ref::steal(PyUnicode_DecodeFSDefault(dir.c_str()));
    // Avoid piling up duplicates across HUP reloads.
    int has = path && item ? PySequence_Contains(path, item.get()) : -1;
    bool ok = has == 0 || (has == 1 && Ref::steal(PyObject_CallMethod(path, "remove", "O", item.get())));
    if (!ok || !PyList_Check(path) || PyList_Insert(path, 0, item.get()) < 0)
        log::write_text(log::Level::ERROR, "cannot add " + dir + " to sys.path\n" + fetch_traceback());
}

void set_environ(const std::string &name, const std::string &value) {
    setenv(name.c_str(), value.c_str(), 1);
    Ref os = Ref::steal(PyImport_ImportModule("os"));
    Ref environ = Ref::steal(os ? PyObject_GetAttrString(os.get(), "environ") : nullptr);
    Ref k = Ref::steal(PyUnicode_DecodeFSDefaultAndSize(name.data(), static_cast<Py_ssize_t>(name.size())));
    Ref v = Ref::steal(PyUnicode_DecodeFSDefaultAndSize(value.data(), static_cast<Py_ssize_t>(value.size())));
    if (!environ || !k || !v || PyObject_SetItem(environ.get(), k.get(), v.get()) < 0)
        log::write_text(log::Level::ERROR, "cannot set os.environ[" + name + "]\n" + fetch_traceback());
}

void apply_raw_env(const std::vector<std::pair<std::string, std::string>> &raw_env) {
    for (const auto &[name, value] : raw_env) set_environ(name, value);
}

// The application loader runs as Python code: the rules (ast parsing of a
// factory call with literal arguments, the ".py" hint) are gunicorn's
// util.import_app, and Python's own ast module is the right tool for them.
static const Source IMPORT_APP_PY = {"src/py/import_app.py",
#include "py/import_app.inc"
};

// The loader's globals (IMPORT_APP_PY, run once), kept for the process;
// null with a Python error set when they cannot be made.
static PyObject *loader_namespace() {
    static PyObject *ns = nullptr;
    if (ns) return ns;
    Ref made = Ref::steal(PyDict_New());
    if (!made || !exec_source(IMPORT_APP_PY, made.get())) return nullptr;
    ns = made.release();
    return ns;
}

// The file a pending SyntaxError names ("" when it names none), leaving the
// exception pending.
static std::string syntax_error_filename() {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    std::string file;
    Ref fname = value ? Ref::steal(PyObject_GetAttrString(value, "filename")) : Ref();
    const char *c = fname && PyUnicode_Check(fname.get()) ? PyUnicode_AsUTF8(fname.get()) : nullptr;
    if (c) file = c;
    PyErr_Clear();  // a SyntaxError without a usable filename names none
    PyErr_Restore(type, value, tb);
    return file;
}

// The arguments of the loader function that cfg calls for.
static Ref loader_args(const Config &cfg) {
    if (cfg.paste.empty()) return Ref::steal(Py_BuildValue("(s)", cfg.wsgi_app.c_str()));
    Ref conf = Ref::steal(PyList_New(0));
    if (!conf) return Ref();
    for (const std::string &entry : cfg.raw_paste_global_conf) {
        Ref item = Ref::steal(PyUnicode_DecodeFSDefault(entry.c_str()));
        if (!item || PyList_Append(conf.get(), item.get()) < 0) return Ref();
    }
    return Ref::steal(Py_BuildValue("(sO)", cfg.wsgi_app.c_str(), conf.get()));
}

AppLoad load_app(const Config &cfg, bool serve_syntax_errors) {
    AppLoad r;
    PyObject *ns = loader_namespace();
    const char *fn = cfg.paste.empty() ? "import_app" : "load_paste_app";
    PyObject *loader = ns ? PyDict_GetItemString(ns, fn) : nullptr;              // borrowed
    PyObject *app_error = ns ? PyDict_GetItemString(ns, "AppImportError") : nullptr;  // borrowed
    if (ns && (!loader || !app_error))
        PyErr_Format(PyExc_NameError, "%s defines no %s or AppImportError", IMPORT_APP_PY.path, fn);
    Ref args = loader && app_error ? loader_args(cfg) : Ref();
    r.app = args ? Ref::steal(PyObject_Call(loader, args.get(), nullptr)) : Ref();
    if (r.app) {
        r.outcome = AppLoad::LOADED;
        return r;
    }
    if (app_error && PyErr_ExceptionMatches(app_error)) {
        r.outcome = AppLoad::APP_ERROR;
        r.error = exception_message();
        PyErr_Clear();
        return r;
    }
    if (serve_syntax_errors && PyErr_ExceptionMatches(PyExc_SyntaxError)) {
        r.syntax_error_file = syntax_error_filename();
        r.error = fetch_traceback();
        PyObject *make = PyDict_GetItemString(ns, "make_fail_app");  // borrowed
        r.app = make ? Ref::steal(PyObject_CallFunction(make, "s", r.error.c_str())) : Ref();
        if (r.app) {
            r.outcome = AppLoad::SERVES_SYNTAX_ERROR;
            return r;
        }
        if (!make) PyErr_Format(PyExc_NameError, "%s defines no make_fail_app", IMPORT_APP_PY.path);
    }
    r.outcome = AppLoad::BOOT_ERROR;
    r.error = fetch_traceback();
    return r;
}

// The application as the worker calls it: the call passed through, and a
// result that is awaitable (a coroutine: an ASGI app that load time could
// not tell apart, a plain function returning one) turned into a TypeError
// that says so, which wsgi.cpp logs and answers 500, as for any failing
// app. The coroutine is closed, so Python does not add a "never awaited"
// warning. Not a Python wrapper: this runs for every request.
namespace {

struct WsgiCallable {
    PyObject_HEAD
    PyObject *app;
#if PY_VERSION_HEX >= 0x03090000
    vectorcallfunc vectorcall;
#endif
};

PyObject *check_result(PyObject *result) {
    if (!result) return nullptr;
    PyAsyncMethods *am = Py_TYPE(result)->tp_as_async;
    if (!am || !am->am_await) return result;
    Ref awaitable = Ref::steal(result);
    Ref closed = Ref::steal(PyObject_CallMethod(awaitable.get(), "close", nullptr));
    PyErr_Clear();  // an awaitable without close() is refused all the same
    PyErr_Format(PyExc_TypeError,
                 "the application returned a %.100s object, not a WSGI response: it is an ASGI application, and cunicorn "
                 "serves WSGI applications only",
                 Py_TYPE(result)->tp_name);
    return nullptr;
}

PyObject *wsgi_callable_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    return check_result(PyObject_Call(reinterpret_cast<WsgiCallable *>(self)->app, args, kwargs));
}

#if PY_VERSION_HEX >= 0x03090000
PyObject *wsgi_callable_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return check_result(PyObject_Vectorcall(reinterpret_cast<WsgiCallable *>(self)->app, args, nargsf, kwnames));
}
#endif

void wsgi_callable_dealloc(PyObject *self) {
    Py_CLEAR(reinterpret_cast<WsgiCallable *>(self)->app);
    Py_TYPE(self)->tp_free(self);
}

PyTypeObject WsgiCallableType = [] {
    PyTypeObject t{};
    Py_SET_REFCNT(reinterpret_cast<PyObject *>(&t), 1);  // a static type's header
    t.tp_name = "cunicorn.WsgiCallable";
    t.tp_basicsize = sizeof(WsgiCallable);
    t.tp_dealloc = wsgi_callable_dealloc;
    t.tp_call = wsgi_callable_call;
    t.tp_flags = Py_TPFLAGS_DEFAULT;
#if PY_VERSION_HEX >= 0x03090000
    t.tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    t.tp_vectorcall_offset = offsetof(WsgiCallable, vectorcall);
#endif
    return t;
}();

}  // namespace

Ref wsgi_callable(PyObject *app) {
    static bool ready = PyType_Ready(&WsgiCallableType) == 0;
    if (!ready) return Ref();
    auto *w = PyObject_New(WsgiCallable, &WsgiCallableType);
    if (!w) return Ref();
    Py_INCREF(app);
    w->app = app;
#if PY_VERSION_HEX >= 0x03090000
    w->vectorcall = wsgi_callable_vectorcall;
#endif
    return Ref::steal(reinterpret_cast<PyObject *>(w));
}

}  // namespace cunicorn::py
