// Settings (gunicorn/config.py) and their sources (gunicorn/app/base.py
// Application.load_config, app/wsgiapp.py). One table drives the argparse
// emulation, the config-file loader, --help and --print-config; values are
// kept the way gunicorn keeps them (its validators' results) until the end,
// then resolved into the typed Config the rest of the server reads.
#include "cunicorn/config.h"

#include "cunicorn/pyembed.h"
#include "cunicorn/pyref.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <type_traits>

#ifndef CUNICORN_VERSION
#define CUNICORN_VERSION "0.0.0"
#endif

namespace cunicorn {

// ---------------------------------------------------------------------------
// Values as gunicorn holds them: None, bool, int, str, list, or any other
// Python object (dicts, callables, classes).

struct SettingValue {
    enum Kind { NONE, BOOL, INT, STR, LIST, PYOBJ } kind = NONE;
    bool b = false;
    long long i = 0;
    std::string s;                    // STR: the text; PYOBJ: str(obj)
    std::vector<SettingValue> list;   // LIST
    // PYOBJ: the object; null for the built-in defaults gunicorn keeps as
    // Python objects (hooks, dicts), which exist here only as text.
    std::shared_ptr<py::Ref> obj;
    std::string repr;                 // PYOBJ: repr(obj)
    std::string shown;                // PYOBJ: --print-config form

    static SettingValue none() { return {}; }
    static SettingValue boolean(bool v) { SettingValue r; r.kind = BOOL; r.b = v; return r; }
    static SettingValue integer(long long v) { SettingValue r; r.kind = INT; r.i = v; return r; }
    static SettingValue str(std::string v) { SettingValue r; r.kind = STR; r.s = std::move(v); return r; }
    static SettingValue strings(const std::vector<std::string> &v) {
        SettingValue r;
        r.kind = LIST;
        for (const auto &e : v) r.list.push_back(str(e));
        return r;
    }
    // A Python value known only by its text (a default, a tuple).
    static SettingValue text(const std::string &str_form, const std::string &repr_form) {
        SettingValue r;
        r.kind = PYOBJ;
        r.s = r.shown = str_form;
        r.repr = repr_form;
        return r;
    }
};

using V = SettingValue;

// A validator's complaint, in gunicorn's words; the caller adds which
// setting and value it was about.
struct Invalid {
    explicit Invalid(std::string why, std::string what = {}) : reason(std::move(why)), value(std::move(what)) {}
    std::string reason;
    std::string value;  // the offending part, when not the whole value
};

// ---------------------------------------------------------------------------
// Small string helpers with Python's semantics.

static bool py_space(char c) {
    // str.strip() / int(): ASCII whitespace, including the separators
    // \x1c-\x1f that Python also treats as space.
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

static std::string strip(const std::string &s) {
    size_t b = 0, e = s.size();
    while (b < e && py_space(s[b])) ++b;
    while (e > b && py_space(s[e - 1])) --e;
    return s.substr(b, e - b);
}

static std::string lower(std::string s) {
    for (char &c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

static bool starts_with(const std::string &s, const char *p) { return s.rfind(p, 0) == 0; }

static bool ends_with(const std::string &s, const std::string &p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// str.split(sep): keeps empty pieces.
static std::vector<std::string> split(const std::string &s, const std::string &sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t at = s.find(sep, start);
        if (at == std::string::npos) break;
        out.push_back(s.substr(start, at - start));
        start = at + sep.size();
    }
    out.push_back(s.substr(start));
    return out;
}

static std::string join(const std::vector<std::string> &v, const char *sep) {
    std::string out;
    for (size_t k = 0; k < v.size(); ++k) {
        if (k) out += sep;
        out += v[k];
    }
    return out;
}

// repr() of a str: single quotes unless the text has ' and no ".
static std::string repr_str(const std::string &s) {
    char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, q);
    for (unsigned char c : s) {
        if (c == static_cast<unsigned char>(q) || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);  // UTF-8 passes through, as printable text
        }
    }
    out += q;
    return out;
}

// Python's int(text, base) for base 10 and base 0 (prefixes 0x/0o/0b,
// underscores between digits, no leading zeros in decimal but "0...0").
struct IntParse {
    bool ok = false;
    bool overflow = false;
    long long value = 0;
};

static IntParse py_int(const std::string &text, int base) {
    IntParse r;
    std::string t = strip(text);
    size_t k = 0;
    bool neg = false;
    if (k < t.size() && (t[k] == '+' || t[k] == '-')) neg = t[k++] == '-';
    int radix = 10;
    bool prefixed = false;
    if (base == 0 && k + 1 < t.size() && t[k] == '0') {
        char p = static_cast<char>(t[k + 1] | 0x20);
        if (p == 'x') radix = 16;
        else if (p == 'o') radix = 8;
        else if (p == 'b') radix = 2;
        if (radix != 10) {
            k += 2;
            prefixed = true;
            if (k < t.size() && t[k] == '_') ++k;  // "0x_1f" is valid
        }
    }
    size_t first = k;
    unsigned long long acc = 0;
    bool any = false, nonzero = false, last_us = false;
    for (; k < t.size(); ++k) {
        char c = t[k];
        if (c == '_') {
            if (!any || last_us) return r;
            last_us = true;
            continue;
        }
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
        else return r;
        if (d >= radix) return r;
        any = true;
        last_us = false;
        if (d) nonzero = true;
        if (acc > (ULLONG_MAX - static_cast<unsigned>(d)) / static_cast<unsigned>(radix)) r.overflow = true;
        else acc = acc * static_cast<unsigned>(radix) + static_cast<unsigned>(d);
    }
    if (!any || last_us) return r;
    // base 0: "010" is an error (ambiguous octal), "000" is zero.
    if (base == 0 && !prefixed && t[first] == '0' && nonzero) return r;
    if (acc > static_cast<unsigned long long>(LLONG_MAX)) r.overflow = true;
    r.ok = true;
    r.value = neg ? -static_cast<long long>(acc) : static_cast<long long>(acc);
    return r;
}

// config.py auto_int: "a leading 0 then a digit" is octal, for umask.
static IntParse auto_int(const std::string &x) {
    if (x.size() > 1 && x[0] == '0' && x[1] >= '0' && x[1] <= '9') return py_int("0o" + x.substr(1), 0);
    return py_int(x, 0);
}

// ---------------------------------------------------------------------------
// Rendering values the way Python's str() and repr() do.

static std::string py_repr(const V &v);

static std::string py_str(const V &v) {
    switch (v.kind) {
    case V::NONE: return "None";
    case V::BOOL: return v.b ? "True" : "False";
    case V::INT: return std::to_string(v.i);
    case V::STR: return v.s;
    case V::LIST: {
        std::vector<std::string> parts;
        for (const auto &e : v.list) parts.push_back(py_repr(e));
        return "[" + join(parts, ", ") + "]";
    }
    case V::PYOBJ: return v.s;
    }
    return {};
}

static std::string py_repr(const V &v) {
    if (v.kind == V::STR) return repr_str(v.s);
    if (v.kind == V::PYOBJ) return v.repr;
    return py_str(v);
}

// Config.__str__: callables as <QualName()>, everything else str().
static std::string shown(const V &v) { return v.kind == V::PYOBJ ? v.shown : py_str(v); }

// ---------------------------------------------------------------------------
// Paths (os.path semantics).

static std::string normpath(const std::string &path) {
    // posixpath.normpath: exactly two leading slashes are kept.
    if (path.empty()) return ".";
    int initial = 0;
    if (path[0] == '/') initial = (starts_with(path, "//") && !starts_with(path, "///")) ? 2 : 1;
    std::vector<std::string> comps;
    for (const auto &comp : split(path, "/")) {
        if (comp.empty() || comp == ".") continue;
        if (comp != ".." || (!initial && comps.empty()) || (!comps.empty() && comps.back() == ".."))
            comps.push_back(comp);
        else if (!comps.empty())
            comps.pop_back();
    }
    std::string out = std::string(static_cast<size_t>(initial), '/') + join(comps, "/");
    return out.empty() ? "." : out;
}

static std::string os_getcwd() {
    std::vector<char> buf(PATH_MAX);
    for (;;) {
        if (::getcwd(buf.data(), buf.size())) return buf.data();
        if (errno != ERANGE) return ".";
        buf.resize(buf.size() * 2);
    }
}

// util.getcwd: $PWD when it names the current directory (keeps symlinked
// paths as the user typed them), else getcwd().
static std::string gunicorn_getcwd() {
    std::string cwd = os_getcwd();
    const char *pwd = std::getenv("PWD");
    struct stat a, b;
    if (pwd && ::stat(pwd, &a) == 0 && ::stat(cwd.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        return pwd;
    return cwd;
}

static std::string abspath(const std::string &p) {
    return normpath(!p.empty() && p[0] == '/' ? p : gunicorn_getcwd() + "/" + p);
}

static bool path_exists(const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

static bool is_dir(const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// chdir's default: the directory cunicorn was started in. Kept across
// load_config calls because gunicorn computes it once, at import: a HUP
// reload starts again from there, not from the previous --chdir.
static std::string g_startup_dir;

static const std::string &startup_dir() {
    if (g_startup_dir.empty()) g_startup_dir = gunicorn_getcwd();
    return g_startup_dir;
}

void reset_startup_dir() { g_startup_dir.clear(); }

// ---------------------------------------------------------------------------
// util.parse_address, for validating bind (and statsd_host) values.

struct ParsedAddress {
    enum Kind { TCP, UNIX, FD } kind = TCP;
    std::string host;
    long long port = 0;
    std::string path;
};

static ParsedAddress parse_address(const std::string &netloc_in, const std::string &default_port) {
    ParsedAddress a;
    std::string netloc = netloc_in;
    if (starts_with(netloc, "unix:")) {
        a.kind = ParsedAddress::UNIX;
        a.path = netloc.substr(starts_with(netloc, "unix://") ? 7 : 5);
        return a;
    }
    if (starts_with(netloc, "fd://")) {
        std::string fd = netloc.substr(5);
        IntParse n = py_int(fd, 10);
        if (!n.ok || n.overflow) throw Invalid{repr_str(fd) + " is not a valid file descriptor."};
        a.kind = ParsedAddress::FD;
        a.port = n.value;
        return a;
    }
    if (starts_with(netloc, "tcp://")) netloc = split(netloc, "tcp://")[1];
    std::string host = netloc, port = default_port;
    if (netloc.find('[') != std::string::npos && netloc.find(']') != std::string::npos) {
        std::string before = split(netloc, "]")[0];
        host = before.empty() ? "" : before.substr(1);
        auto pieces = split(netloc, "]:");
        port = pieces.size() > 1 ? pieces[1] : default_port;
    } else if (netloc.find(':') != std::string::npos) {
        auto pieces = split(netloc, ":");
        host = pieces[0];
        port = pieces[1];
    } else if (netloc.empty()) {
        host = "0.0.0.0";
    }
    IntParse n = py_int(port, 10);
    if (!n.ok || n.overflow) throw Invalid{repr_str(port) + " is not a valid port number."};
    a.host = lower(host);
    a.port = n.value;
    return a;
}

// ---------------------------------------------------------------------------
// The Python side: the GIL, conversions, and gunicorn's validators that
// must run as Python (callables and their arity, module.func strings) plus
// the config-file loader, kept as Python source so their behaviour and
// messages are gunicorn's own.

class Gil {
public:
    Gil() : held_(py::initialized()) {
        if (held_) state_ = PyGILState_Ensure();
    }
    ~Gil() {
        if (held_) PyGILState_Release(state_);
    }
    Gil(const Gil &) = delete;
    Gil &operator=(const Gil &) = delete;

private:
    bool held_;
    PyGILState_STATE state_{};
};

static const char *HELPERS_SRC = R"PY(
import importlib.machinery
import importlib.util
import inspect
import os
import sys


def get_arity(f):
    # util.get_arity: positional parameters only.
    sig = inspect.signature(f)
    arity = 0
    for param in sig.parameters.values():
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD):
            arity += 1
    return arity


def validate_callable(val, arity):
    if isinstance(val, str):
        try:
            mod_name, obj_name = val.rsplit(".", 1)
        except ValueError:
            raise TypeError("Value '%s' is not import string. "
                            "Format: module[.submodules...].object" % val)
        try:
            mod = __import__(mod_name, fromlist=[obj_name])
            val = getattr(mod, obj_name)
        except ImportError as e:
            raise TypeError(str(e))
        except AttributeError:
            raise TypeError("Can not load '%s' from '%s'" % (obj_name, mod_name))
    if not callable(val):
        raise TypeError("Value is not callable: %s" % val)
    if arity != -1 and arity != get_arity(val):
        raise TypeError("Value must have an arity of: %s" % arity)
    return val


def validate_post_request(val):
    val = validate_callable(val, -1)
    largs = get_arity(val)
    if largs == 4:
        return val
    elif largs == 3:
        return lambda worker, req, env, _r: val(worker, req, env)
    elif largs == 2:
        return lambda worker, req, _e, _r: val(worker, req)
    else:
        raise TypeError("Value must have an arity of: 4")


def call_if_function(val):
    # validate_class: a function or method is called for the class.
    if inspect.isfunction(val) or inspect.ismethod(val):
        val = val()
    return val


def shown(v):
    if callable(v):
        try:
            return "<{}()>".format(v.__qualname__)
        except AttributeError:
            return repr(v)
    return str(v)


def warn(msg):
    # util.warn
    print("!!!", file=sys.stderr)
    lines = msg.splitlines()
    for i, line in enumerate(lines):
        if i == 0:
            line = "WARNING: %s" % line
        print("!!! %s" % line, file=sys.stderr)
    print("!!!\n", file=sys.stderr)
    sys.stderr.flush()


def load_file(filename):
    # Application.get_config_from_filename
    ext = os.path.splitext(filename)[1]
    module_name = '__config__'
    if ext in [".py", ".pyc"]:
        spec = importlib.util.spec_from_file_location(module_name, filename)
    else:
        msg = "configuration file should have a valid Python extension.\n"
        warn(msg)
        loader_ = importlib.machinery.SourceFileLoader(module_name, filename)
        spec = importlib.util.spec_from_file_location(module_name, filename, loader=loader_)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = mod
    spec.loader.exec_module(mod)
    return vars(mod)


def load_module(module_name):
    return vars(importlib.import_module(module_name))


def has_logging_config(config_file):
    # pasterapp.has_logging_config
    import configparser
    parser = configparser.ConfigParser()
    parser.read([config_file])
    return parser.has_section('loggers')


def add_path(path):
    # Application.chdir
    if path not in sys.path:
        sys.path.insert(0, path)
)PY";

// The helpers module of the load_config call in progress (validators are
// plain functions and reach it here). Null outside load_config.
static PyObject *g_helpers = nullptr;

static std::string utf8(PyObject *o) {
    if (!o) return {};
    Py_ssize_t n = 0;
    const char *c = PyUnicode_AsUTF8AndSize(o, &n);
    if (!c) {
        PyErr_Clear();
        return "<unprintable>";
    }
    return std::string(c, static_cast<size_t>(n));
}

static std::string py_obj_str(PyObject *o) {
    py::Ref s = py::Ref::steal(PyObject_Str(o));
    if (!s) PyErr_Clear();
    return utf8(s.get());
}

static std::string py_obj_repr(PyObject *o) {
    py::Ref s = py::Ref::steal(PyObject_Repr(o));
    if (!s) PyErr_Clear();
    return utf8(s.get());
}

// The message of the pending exception, cleared.
static std::string take_exception() {
    std::string msg = py::exception_message();
    PyErr_Clear();
    return msg;
}

static py::Ref call_helper(const char *fn, PyObject *args_tuple) {
    if (!g_helpers) throw Invalid{"a Python value needs the embedded interpreter"};
    PyObject *f = PyDict_GetItemString(PyModule_GetDict(g_helpers), fn);  // borrowed
    if (!f) throw Invalid{std::string("internal: no helper ") + fn};
    return py::Ref::steal(PyObject_CallObject(f, args_tuple));
}

static V from_py(PyObject *o) {
    if (o == Py_None) return V::none();
    if (PyBool_Check(o)) return V::boolean(o == Py_True);
    if (PyLong_Check(o)) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (!overflow && !(n == -1 && PyErr_Occurred())) return V::integer(n);
        PyErr_Clear();
    } else if (PyUnicode_Check(o)) {
        return V::str(utf8(o));
    } else if (PyList_Check(o) || PyTuple_Check(o)) {
        // Lists and tuples of strings are what list settings take; the
        // elements are converted one level down as gunicorn iterates them.
        py::Ref seq = py::Ref::steal(PySequence_Fast(o, ""));
        if (seq) {
            V r;
            r.kind = V::LIST;
            Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.get());
            for (Py_ssize_t k = 0; k < n; ++k) {
                py::Ref item = py::Ref::borrow(PySequence_Fast_GET_ITEM(seq.get(), k));
                r.list.push_back(from_py(item.get()));
            }
            if (PyList_Check(o)) return r;
            // A tuple stays a Python object for rendering "(...)", but
            // validators see its items through `list` as well.
            V t = V::text(py_obj_str(o), py_obj_repr(o));
            t.list = std::move(r.list);
            t.obj = std::make_shared<py::Ref>(py::Ref::borrow(o));
            return t;
        }
        PyErr_Clear();
    }
    V r;
    r.kind = V::PYOBJ;
    r.obj = std::make_shared<py::Ref>(py::Ref::borrow(o));
    r.s = py_obj_str(o);
    r.repr = py_obj_repr(o);
    r.shown = r.s;
    if (PyCallable_Check(o) && g_helpers) {
        py::Ref args = py::Ref::steal(Py_BuildValue("(O)", o));
        py::Ref s = call_helper("shown", args.get());
        if (s) r.shown = utf8(s.get());
        else PyErr_Clear();
    }
    return r;
}

static py::Ref to_py(const V &v) {
    switch (v.kind) {
    case V::NONE: return py::Ref::borrow(Py_None);
    case V::BOOL: return py::Ref::borrow(v.b ? Py_True : Py_False);
    case V::INT: return py::Ref::steal(PyLong_FromLongLong(v.i));
    case V::STR: return py::Ref::steal(PyUnicode_FromStringAndSize(v.s.data(), static_cast<Py_ssize_t>(v.s.size())));
    case V::LIST: {
        py::Ref l = py::Ref::steal(PyList_New(0));
        for (const auto &e : v.list) {
            py::Ref item = to_py(e);
            if (l && item) PyList_Append(l.get(), item.get());
        }
        return l;
    }
    case V::PYOBJ:
        if (v.obj) return py::Ref::borrow(v.obj->get());
        return py::Ref::steal(PyUnicode_FromString(v.s.c_str()));
    }
    return {};
}

// ---------------------------------------------------------------------------
// Validators (gunicorn/config.py validate_*), same results, same messages.

static V v_string(const V &v) {
    if (v.kind == V::NONE) return v;
    if (v.kind != V::STR) throw Invalid{"Not a string: " + py_str(v)};
    return V::str(strip(v.s));
}

static V v_pos_int(const V &v) {
    long long n;
    if (v.kind == V::INT) n = v.i;
    else if (v.kind == V::BOOL) n = v.b;  // booleans are ints
    else if (v.kind == V::STR) {
        IntParse p = py_int(v.s, 0);
        if (!p.ok) throw Invalid{"invalid literal for int() with base 0: " + repr_str(v.s)};
        if (p.overflow) throw Invalid{"Value too large: " + strip(v.s)};
        n = p.value;
    } else if (v.kind == V::PYOBJ && v.obj && PyLong_Check(v.obj->get())) {
        throw Invalid{"Value too large: " + v.s};
    } else {
        throw Invalid{"int() can't convert non-string with explicit base"};
    }
    if (n < 0) throw Invalid{"Value must be positive: " + std::to_string(n)};
    return V::integer(n);
}

static V v_bool(const V &v) {
    if (v.kind == V::NONE || v.kind == V::BOOL) return v;
    if (v.kind != V::STR) throw Invalid{"Invalid type for casting: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "true") return V::boolean(true);
    if (t == "false") return V::boolean(false);
    throw Invalid{"Invalid boolean: " + v.s};
}

static V v_dict(const V &v) {
    if (v.kind == V::PYOBJ && v.obj && PyDict_Check(v.obj->get())) return v;
    throw Invalid{"Value is not a dictionary: " + py_str(v) + " "};
}

// The items a list setting was given: a list or tuple, or a plain string
// (legacy syntax, wrapped).
static const std::vector<V> *items_of(const V &v) {
    if (v.kind == V::LIST || (v.kind == V::PYOBJ && v.obj && PyTuple_Check(v.obj->get()))) return &v.list;
    return nullptr;
}

static V v_list_string(const V &v) {
    V out;
    out.kind = V::LIST;
    bool falsy = v.kind == V::NONE || (v.kind == V::BOOL && !v.b) || (v.kind == V::INT && v.i == 0) ||
                 (v.kind == V::STR && v.s.empty()) || (v.kind == V::LIST && v.list.empty());
    if (falsy) return out;
    if (v.kind == V::STR) {
        out.list.push_back(v_string(v));
        return out;
    }
    const std::vector<V> *items = items_of(v);
    if (!items) {
        if (v.kind == V::PYOBJ && v.obj && PyDict_Check(v.obj->get())) throw Invalid{"Value is not a list: " + v.s};
        throw Invalid{"'" + std::string(v.kind == V::INT ? "int" : v.kind == V::BOOL ? "bool" : "object") +
                      "' object is not iterable"};
    }
    for (const auto &e : *items) out.list.push_back(v_string(e));
    return out;
}

// Glob patterns are re-expanded by the reloader at each check (26.x), so
// only plain paths must exist now.
static V v_list_of_existing_files(const V &v) {
    V out = v_list_string(v);
    for (const auto &e : out.list) {
        if (e.kind != V::STR) continue;
        if (e.s.find_first_of("*?[") != std::string::npos) continue;
        if (!path_exists(e.s)) throw Invalid{"File " + e.s + " does not exists."};
    }
    return out;
}

// validate_string_to_list: "a, b" -> ['a', 'b']. Also takes a list, as
// the 26.x list validators do.
static V v_string_to_list(const V &v) {
    if (items_of(v)) return v_list_string(v);
    V s = v_string(v);
    V out;
    out.kind = V::LIST;
    if (s.kind == V::NONE || s.s.empty()) return out;
    for (const auto &piece : split(s.s, ","))
        if (!piece.empty()) out.list.push_back(V::str(strip(piece)));
    return out;
}

static bool ip_or_network(const std::string &text) {
    std::string addr = text, prefix;
    size_t slash = text.find('/');
    if (slash != std::string::npos) {
        addr = text.substr(0, slash);
        prefix = text.substr(slash + 1);
    }
    unsigned char buf[sizeof(struct in6_addr)];
    int max;
    if (inet_pton(AF_INET, addr.c_str(), buf) == 1) max = 32;
    else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) max = 128;
    else return false;
    if (slash == std::string::npos) return true;
    if (prefix.empty() || prefix.size() > 3 || prefix.find_first_not_of("0123456789") != std::string::npos)
        return false;
    return std::atoi(prefix.c_str()) <= max;
}

// forwarded_allow_ips, proxy_allow_ips: addresses, CIDR networks or "*".
static V v_addr_list(const V &v) {
    V out = v_string_to_list(v);
    for (const auto &e : out.list) {
        if (e.kind != V::STR) continue;
        if (e.s == "*" || ip_or_network(e.s)) continue;
        throw Invalid{repr_str(e.s) + " does not appear to be an IPv4 or IPv6 address or network"};
    }
    return out;
}

static V v_raw_env(const V &v) {
    V out = v_list_string(v);
    for (const auto &e : out.list)
        if (e.kind != V::STR || e.s.find('=') == std::string::npos)
            throw Invalid{"environment setting " + py_repr(e) + " invalid"};
    return out;
}

// validate_class: a class (kept as a Python object), a function returning
// one, or an import string.
static V v_class(const V &v) {
    if (v.kind == V::PYOBJ && v.obj) {
        PyObject *o = v.obj->get();
        if (PyType_Check(o)) return v;
        py::Ref args = py::Ref::steal(Py_BuildValue("(O)", o));
        py::Ref r = call_helper("call_if_function", args.get());
        if (!r) throw Invalid{take_exception()};
        V got = from_py(r.get());
        if (got.kind == V::PYOBJ && got.obj && PyType_Check(got.obj->get())) return got;
        return v_string(got);
    }
    return v_string(v);
}

template <int ARITY>
static V v_callable(const V &v) {
    py::Ref val = to_py(v);
    py::Ref args = py::Ref::steal(Py_BuildValue("(Oi)", val.get(), ARITY));
    py::Ref r = call_helper("validate_callable", args.get());
    if (!r) throw Invalid{take_exception()};
    return from_py(r.get());
}

static V v_post_request(const V &v) {
    py::Ref val = to_py(v);
    py::Ref args = py::Ref::steal(Py_BuildValue("(O)", val.get()));
    py::Ref r = call_helper("validate_post_request", args.get());
    if (!r) throw Invalid{take_exception()};
    return from_py(r.get());
}

static V v_user(const V &v) {
    if (v.kind == V::NONE) return V::integer(static_cast<long long>(geteuid()));
    if (v.kind == V::INT || v.kind == V::BOOL) return V::integer(v.kind == V::INT ? v.i : v.b);
    if (v.kind != V::STR) throw Invalid{"'" + py_str(v) + "' object has no attribute 'isdigit'"};
    if (!v.s.empty() && v.s.find_first_not_of("0123456789") == std::string::npos) {
        IntParse p = py_int(v.s, 10);
        if (p.ok && !p.overflow) return V::integer(p.value);
    }
    struct passwd *pw = getpwnam(v.s.c_str());
    if (!pw) throw Invalid{"No such user: '" + v.s + "'"};
    return V::integer(static_cast<long long>(pw->pw_uid));
}

static V v_group(const V &v) {
    if (v.kind == V::NONE) return V::integer(static_cast<long long>(getegid()));
    if (v.kind == V::INT || v.kind == V::BOOL) return V::integer(v.kind == V::INT ? v.i : v.b);
    if (v.kind != V::STR) throw Invalid{"'" + py_str(v) + "' object has no attribute 'isdigit'"};
    if (!v.s.empty() && v.s.find_first_not_of("0123456789") == std::string::npos) {
        IntParse p = py_int(v.s, 10);
        if (p.ok && !p.overflow) return V::integer(p.value);
    }
    struct group *gr = getgrnam(v.s.c_str());
    if (!gr) throw Invalid{"No such group: '" + v.s + "'"};
    return V::integer(static_cast<long long>(gr->gr_gid));
}

static V v_chdir(const V &v) {
    V s = v_string(v);
    if (s.kind == V::NONE) throw Invalid{"expected str, bytes or os.PathLike object, not NoneType"};
    std::string path = abspath(s.s);
    if (!path_exists(path)) throw Invalid{"can't chdir to " + repr_str(s.s)};
    return V::str(path);
}

// virtualenv: made absolute (relative to the start-up directory, where
// the command line and $VIRTUAL_ENV were given); "" means none. Whether
// it is a virtualenv is checked for the final value only (apply), so a
// stale $VIRTUAL_ENV does not matter when a file or option overrides it.
static V v_virtualenv(const V &v) {
    V s = v_string(v);
    if (s.kind == V::NONE || s.s.empty()) return V::none();
    return V::str(abspath(s.s));
}

static V v_statsd_address(const V &v) {
    V s = v_string(v);
    if (s.kind == V::NONE) return s;
    // gunicorn keeps "unix:8125" meaning host "unix", port 8125.
    // The tuple's parts are kept in `list` for apply_statsd_host.
    auto tuple = [](const std::string &host, long long port) {
        std::string t = "(" + repr_str(host) + ", " + std::to_string(port) + ")";
        V r = V::text(t, t);
        r.list = {V::str(host), V::integer(port)};
        return r;
    };
    if (starts_with(s.s, "unix:") && s.s.size() > 5 && s.s.find_first_not_of("0123456789", 5) == std::string::npos)
        return tuple("unix", std::atoll(s.s.c_str() + 5));
    try {
        ParsedAddress a = parse_address(s.s, "8125");
        if (a.kind == ParsedAddress::UNIX) return V::str(a.path);
        if (a.kind == ParsedAddress::FD) return V::integer(a.port);
        return tuple(a.host, a.port);
    } catch (const Invalid &) {
        throw Invalid{"Value must be one of ('host:port', 'unix://PATH')"};
    }
}

static V v_reload_engine(const V &v) {
    if (v.kind == V::STR && (v.s == "auto" || v.s == "poll" || v.s == "inotify")) return v;
    throw Invalid{"Invalid reload_engine: " + py_repr(v)};
}

static V v_header_map(const V &v) {
    if (v.kind == V::NONE) return v;
    if (v.kind != V::STR) throw Invalid{"Invalid type for casting: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "drop" || t == "refuse" || t == "dangerous") return V::str(t);
    throw Invalid{"Invalid header map behaviour: " + v.s};
}

// 26.x: off/v1/v2/auto; the old boolean spellings still work
// (True = detect either version).
static V v_proxy_protocol(const V &v) {
    if (v.kind == V::NONE) return V::str("off");
    if (v.kind == V::BOOL) return V::str(v.b ? "auto" : "off");
    if (v.kind != V::STR) throw Invalid{"Invalid proxy_protocol: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "true" || t == "1") return V::str("auto");
    if (t == "false" || t == "0" || t == "none") return V::str("off");
    if (t == "off" || t == "v1" || t == "v2" || t == "auto") return V::str(t);
    throw Invalid{"Invalid proxy_protocol: " + repr_str(v.s) + " (expected off, v1, v2 or auto)"};
}

static V v_http_protocols(const V &v) {
    std::vector<std::string> names;
    if (v.kind == V::NONE) {
        names = {"h1"};
    } else if (const std::vector<V> *items = items_of(v)) {
        for (const auto &e : *items) names.push_back(strip(lower(v_string(e).s)));
    } else {
        V s = v_string(v);
        for (const auto &p : split(s.s, ","))
            if (!strip(p).empty()) names.push_back(strip(lower(p)));
    }
    if (names.empty()) throw Invalid{"http_protocols must name at least one protocol"};
    for (size_t k = 0; k < names.size(); ++k) {
        if (names[k] != "h1" && names[k] != "h2" && names[k] != "h3")
            throw Invalid{"Invalid HTTP protocol: " + repr_str(names[k]) + " (valid: h1, h2, h3)"};
        for (size_t j = 0; j < k; ++j)
            if (names[j] == names[k]) throw Invalid{"Duplicate HTTP protocol: " + repr_str(names[k])};
    }
    return V::strings(names);
}

static V v_http2_cleartext(const V &v) {
    if (v.kind == V::NONE) return V::str("off");
    if (v.kind == V::BOOL) return V::str(v.b ? "prior-knowledge" : "off");
    if (v.kind != V::STR) throw Invalid{"Invalid http2_cleartext: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "off" || t == "prior-knowledge" || t == "upgrade" || t == "both") return V::str(t);
    throw Invalid{"Invalid http2_cleartext: " + repr_str(v.s) + " (expected off, prior-knowledge, upgrade or both)"};
}

static V v_http2_frame_size(const V &v) {
    V n = v_pos_int(v);
    if (n.i < 16384 || n.i > 16777215)
        throw Invalid{"http2_max_frame_size must be between 16384 and 16777215, got " + std::to_string(n.i)};
    return n;
}

static V choice(const V &v, const char *name, std::initializer_list<const char *> allowed) {
    if (v.kind == V::NONE) return V::str(*allowed.begin());
    if (v.kind != V::STR) throw Invalid{std::string("Invalid ") + name + ": " + py_str(v)};
    std::string t = strip(lower(v.s));
    std::vector<std::string> names;
    for (const char *a : allowed) {
        if (t == a) return V::str(t);
        names.push_back(a);
    }
    throw Invalid{std::string("Invalid ") + name + ": " + repr_str(v.s) + " (expected one of " + join(names, ", ") +
                  ")"};
}

static V v_asgi_loop(const V &v) { return choice(v, "asgi_loop", {"auto", "asyncio", "uvloop"}); }
static V v_asgi_lifespan(const V &v) { return choice(v, "asgi_lifespan", {"auto", "on", "off"}); }
static V v_http_parser(const V &v) { return choice(v, "http_parser", {"auto", "fast", "python"}); }

// Deprecated and ignored by gunicorn too (it only warns).
static V v_ssl_version(const V &v) { return v; }

// ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED. Gunicorn takes any int >= 0
// and fails on the first connection; refused here at start instead.
static V v_cert_reqs(const V &v) {
    V n = v_pos_int(v);
    if (n.i > 2) throw Invalid{"cert_reqs must be 0 (none), 1 (optional) or 2 (required), got " + std::to_string(n.i)};
    return n;
}

// TLS key material is read when the configuration is loaded, so a missing
// file is a configuration error (validate_file_exists's message).
static V v_existing_file(const V &v) {
    V s = v_string(v);
    if (s.kind == V::STR && !s.s.empty() && !path_exists(s.s)) throw Invalid{"File " + s.s + " does not exists."};
    return s;
}

// ---------------------------------------------------------------------------
// Defaults, including those gunicorn reads from the environment at start.

static V d_none() { return V::none(); }
static V d_false() { return V::boolean(false); }
static V d_true() { return V::boolean(true); }
static V d_empty_list() { return V::strings({}); }
static V d_empty_str() { return V::str(""); }
template <long long N>
static V d_int() { return V::integer(N); }

static V d_bind() {
    const char *port = std::getenv("PORT");
    return V::strings({port ? std::string("0.0.0.0:") + port : std::string("127.0.0.1:8000")});
}

static V d_workers() {
    // int(os.environ.get("WEB_CONCURRENCY", 1)): base 10.
    const char *wc = std::getenv("WEB_CONCURRENCY");
    if (!wc) return V::integer(1);
    IntParse p = py_int(wc, 10);
    if (!p.ok || p.overflow)
        throw Invalid{"invalid literal for int() with base 10: " + repr_str(wc) + " (from $WEB_CONCURRENCY)"};
    return V::integer(p.value);
}

static V d_forwarded_allow_ips() {
    const char *env = std::getenv("FORWARDED_ALLOW_IPS");
    return V::str(env ? env : "127.0.0.1,::1");
}

static V d_chdir() { return V::str(startup_dir()); }

static V d_virtualenv() {
    const char *env = std::getenv("VIRTUAL_ENV");
    return env && *env ? V::str(env) : V::none();
}

static V d_user() { return V::integer(static_cast<long long>(geteuid())); }
static V d_group() { return V::integer(static_cast<long long>(getegid())); }

static V d_syslog_addr() {
#if defined(__APPLE__)
    return V::str("unix:///var/run/syslog");
#elif defined(__FreeBSD__) || defined(__DragonFly__)
    return V::str("unix:///var/run/log");
#elif defined(__OpenBSD__)
    return V::str("unix:///dev/log");
#else
    return V::str("udp://localhost:514");
#endif
}

static V d_control_socket() {
    const char *xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && is_dir(xdg)) return V::str(std::string(xdg) + "/gunicorn.ctl");
    const char *home = std::getenv("HOME");
    std::string h = home ? home : "";
    if (h.empty()) {
        struct passwd *pw = getpwuid(geteuid());
        h = pw ? pw->pw_dir : "~";
    }
    return V::str(h + "/.gunicorn/gunicorn.ctl");
}

static V d_secure_scheme_headers() {
    const char *t = "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}";
    return V::text(t, t);
}

static V d_empty_dict() { return V::text("{}", "{}"); }

// The no-op hooks gunicorn defines inside each Setting class; only their
// names show (as <Class.hook()> in --print-config).
#define HOOK_DEFAULT(fn, qual) \
    static V fn() { return V::text("<" qual "()>", "<function " qual ">"); }
HOOK_DEFAULT(d_on_starting, "OnStarting.on_starting")
HOOK_DEFAULT(d_on_reload, "OnReload.on_reload")
HOOK_DEFAULT(d_when_ready, "WhenReady.when_ready")
HOOK_DEFAULT(d_pre_fork, "Prefork.pre_fork")
HOOK_DEFAULT(d_post_fork, "Postfork.post_fork")
HOOK_DEFAULT(d_post_worker_init, "PostWorkerInit.post_worker_init")
HOOK_DEFAULT(d_worker_int, "WorkerInt.worker_int")
HOOK_DEFAULT(d_worker_abort, "WorkerAbort.worker_abort")
HOOK_DEFAULT(d_pre_exec, "PreExec.pre_exec")
HOOK_DEFAULT(d_pre_request, "PreRequest.pre_request")
HOOK_DEFAULT(d_post_request, "PostRequest.post_request")
HOOK_DEFAULT(d_child_exit, "ChildExit.child_exit")
HOOK_DEFAULT(d_worker_exit, "WorkerExit.worker_exit")
HOOK_DEFAULT(d_nworkers_changed, "NumWorkersChanged.nworkers_changed")
HOOK_DEFAULT(d_on_exit, "OnExit.on_exit")
HOOK_DEFAULT(d_ssl_context, "NewSSLContext.ssl_context")
HOOK_DEFAULT(d_on_dirty_starting, "OnDirtyStarting.on_dirty_starting")
HOOK_DEFAULT(d_dirty_post_fork, "DirtyPostFork.dirty_post_fork")
HOOK_DEFAULT(d_dirty_worker_init, "DirtyWorkerInit.dirty_worker_init")
HOOK_DEFAULT(d_dirty_worker_exit, "DirtyWorkerExit.dirty_worker_exit")
#undef HOOK_DEFAULT

// ---------------------------------------------------------------------------
// Storing resolved values into Config.

template <typename T>
struct member_of;
template <typename C, typename T>
struct member_of<T C::*> {
    using type = T;
};

static std::string as_string(const V &v) {
    if (v.kind == V::NONE) return {};
    if (v.kind != V::STR) throw Invalid{"Not a string: " + py_str(v)};
    return v.s;
}

static std::vector<std::string> as_strings(const V &v) {
    std::vector<std::string> out;
    const std::vector<V> *items = items_of(v);
    if (!items) return out;
    for (const auto &e : *items) {
        if (e.kind != V::STR) throw Invalid{"Not a string: " + py_str(e)};
        out.push_back(e.s);
    }
    return out;
}

template <auto M>
static void store(Config &c, const V &v) {
    using T = typename member_of<decltype(M)>::type;
    if constexpr (std::is_same_v<T, int>) {
        long long n = v.kind == V::BOOL ? v.b : v.i;
        if (n > INT_MAX || n < INT_MIN) throw Invalid{"Value too large: " + std::to_string(n)};
        c.*M = static_cast<int>(n);
    } else if constexpr (std::is_same_v<T, long long>) {
        c.*M = v.kind == V::BOOL ? v.b : v.i;
    } else if constexpr (std::is_same_v<T, bool>) {
        c.*M = v.kind == V::BOOL && v.b;
    } else if constexpr (std::is_same_v<T, std::string>) {
        c.*M = as_string(v);
    } else {
        static_assert(std::is_same_v<T, std::vector<std::string>>);
        c.*M = as_strings(v);
    }
}

static void warn(Config &c, const std::string &text) { c.warnings.push_back(text); }

static void apply_bind(Config &c, const V &v) {
    c.bind = as_strings(v);
    // gunicorn finds a bad address only when the arbiter binds; checked
    // here so --check-config catches it too.
    for (const auto &b : c.bind) {
        try {
            parse_address(b, "8000");
        } catch (const Invalid &e) {
            throw Invalid{e.reason, b};
        }
    }
}

// util.SUPPORTED_WORKERS of Gunicorn 26.1 (eventlet was removed in 26.0).
static const char *const WORKER_NAMES[] = {"sync", "gevent", "gevent_wsgi", "gevent_pywsgi", "tornado", "gthread", "asgi"};

const char *const NO_WORKER_CLASS = "only the sync worker class is implemented yet; workers run as sync, one request "
                                    "at a time";
const char *const NO_THREADS = "the threaded (gthread) worker is not implemented yet; each worker runs one request at "
                               "a time";

static bool dotted_name(const std::string &s) {
    if (s.empty()) return false;
    for (const auto &part : split(s, ".")) {
        if (part.empty() || (part[0] >= '0' && part[0] <= '9')) return false;
        for (char ch : part)
            if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  static_cast<unsigned char>(ch) >= 0x80))
                return false;
    }
    return true;
}

// util.load_class's accepted forms: a bundled name (optionally "#name"),
// "egg:dist#name", or a dotted class path. Only sync exists in cunicorn
// so far; anything else runs as sync after a warning.
static void apply_worker_class(Config &c, const V &v) {
    c.worker_class = "sync";
    if (v.kind == V::PYOBJ) {
        warn(c, "worker_class = " + v.shown + " has no effect: " + NO_WORKER_CLASS);
        return;
    }
    std::string uri = as_string(v);
    if (uri.empty()) throw Invalid{"class uri '' invalid or not found"};
    bool sync = false;
    if (starts_with(uri, "egg:")) {
        size_t hash = uri.find('#');
        if (hash == std::string::npos || hash + 1 == uri.size())
            throw Invalid{"class uri " + repr_str(uri) + " invalid or not found"};
        sync = uri.substr(hash + 1) == "sync";
    } else if (uri.find('.') != std::string::npos) {
        if (!dotted_name(uri)) throw Invalid{"class uri " + repr_str(uri) + " invalid or not found"};
        sync = starts_with(uri, "gunicorn.workers.sync.") && ends_with(uri, "SyncWorker");
    } else {
        std::string name = uri[0] == '#' ? uri.substr(1) : uri;
        bool known = false;
        for (const char *w : WORKER_NAMES) known = known || name == w;
        // A name that is not bundled is looked up as an entry point of
        // the gunicorn distribution, which has none: load_class's
        // RuntimeError, which Application.run prints as the whole error
        // (the traceback in brackets shortened to its last line). This
        // is how Gunicorn 26.1 refuses -k eventlet.
        if (!known)
            throw ConfigError("class uri " + repr_str(uri) + " invalid or not found: \n\n[ImportError: Entry point "
                              "('gunicorn.workers', " + repr_str(name) + ") not found\n]\n");
        sync = name == "sync";
    }
    if (!sync) warn(c, "worker_class = " + uri + " has no effect: " + NO_WORKER_CLASS);
}

static void apply_threads(Config &c, const V &v) {
    store<&Config::threads>(c, v);
    if (c.threads > 1) warn(c, "threads = " + std::to_string(c.threads) + " has no effect: " + NO_THREADS);
}

// Config.sendfile: --no-sendfile (or a file value) decides, else
// $SENDFILE, else on. A file's "sendfile = True" means on here; gunicorn
// turns sendfile off for any value that is not None, which surprises.
static void apply_sendfile(Config &c, const V &v) {
    if (v.kind == V::BOOL) {
        c.sendfile = v.b;
        return;
    }
    const char *env = std::getenv("SENDFILE");
    if (!env) {
        c.sendfile = true;
        return;
    }
    std::string e = lower(env);
    c.sendfile = e == "y" || e == "1" || e == "yes" || e == "true";
}

static void apply_user(Config &c, const V &v) {
    c.uid = static_cast<long>(v.i);
    c.user = v.i == static_cast<long long>(geteuid()) ? "" : std::to_string(v.i);
}

static void apply_group(Config &c, const V &v) {
    c.gid = static_cast<long>(v.i);
    c.group = v.i == static_cast<long long>(getegid()) ? "" : std::to_string(v.i);
}

// glogging.py maps unknown names to INFO; the same here, but said aloud.
static void apply_loglevel(Config &c, const V &v) {
    std::string level = lower(as_string(v));
    if (level == "debug" || level == "info" || level == "warning" || level == "error" || level == "critical") {
        c.loglevel = level;
        return;
    }
    c.loglevel = "info";
    warn(c, "loglevel = " + as_string(v) + " is not one of debug, info, warning, error, critical; using info");
}

// Application.run: each comma-separated entry made absolute (relative to
// the final chdir), in the order given.
static void apply_pythonpath(Config &c, const V &v) {
    c.pythonpath.clear();
    if (v.kind == V::NONE) return;
    for (const auto &p : split(as_string(v), ",")) c.pythonpath.push_back(abspath(p));
}

static void apply_virtualenv(Config &c, const V &v) {
    c.virtualenv = as_string(v);
    if (c.virtualenv.empty()) return;
    py::Virtualenv venv;
    std::string why = py::inspect_virtualenv(c.virtualenv, venv);
    if (why.empty()) return;
    const char *env = std::getenv("VIRTUAL_ENV");
    if (env && *env && abspath(strip(env)) == c.virtualenv) why = "from $VIRTUAL_ENV: " + why;
    throw Invalid{why};
}

// The master creates the pidfile and opens the log files after the
// configuration is loaded; a missing directory is found here instead, so
// that --check-config reports it too (the deployment guides'
// "/home/your_path/gunicorn.pid"). Worded as the arbiter's pidfile error.
static void check_parent_dir(const char *setting, const std::string &path) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return;  // the working directory
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    std::string what = std::string(setting) + ": cannot write " + repr_str(path) + ": ";
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT) throw ConfigError(what + "directory " + repr_str(dir) + " does not exist");
        throw ConfigError(what + repr_str(dir) + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) throw ConfigError(what + repr_str(dir) + " is not a directory");
}

static void apply_pidfile(Config &c, const V &v) {
    c.pidfile = as_string(v);
    if (!c.pidfile.empty()) check_parent_dir("pidfile", c.pidfile);
}

// "-" is stdout (accesslog) or stderr (errorlog).
static void apply_accesslog(Config &c, const V &v) {
    c.accesslog = as_string(v);
    if (!c.accesslog.empty() && c.accesslog != "-") check_parent_dir("accesslog", c.accesslog);
}

static void apply_errorlog(Config &c, const V &v) {
    c.errorlog = as_string(v);
    if (!c.errorlog.empty() && c.errorlog != "-") check_parent_dir("errorlog", c.errorlog);
}

// statsd.py connects to the path (a str) or to the (host, port) tuple; a
// file descriptor (fd://N) it cannot use, and sends nothing.
static void apply_statsd_host(Config &c, const V &v) {
    c.statsd_host.clear();
    c.statsd_port = -1;
    if (v.kind == V::STR) {
        c.statsd_host = v.s;
    } else if (v.kind == V::PYOBJ && v.list.size() == 2) {
        if (v.list[1].i < 1 || v.list[1].i > 65535) throw Invalid{std::to_string(v.list[1].i) + " is not a valid port number."};
        c.statsd_host = v.list[0].s;
        c.statsd_port = static_cast<int>(v.list[1].i);
    } else if (v.kind == V::INT) {
        warn(c, "statsd_host = " + std::to_string(v.i) + " has no effect: a file descriptor is not a StatsD address");
    }
}

static void apply_worker_tmp_dir(Config &c, const V &v) {
    c.worker_tmp_dir = as_string(v);
    if (!c.worker_tmp_dir.empty() && !is_dir(c.worker_tmp_dir))
        throw Invalid{"No such directory: " + repr_str(c.worker_tmp_dir)};
}

static void apply_header_map(Config &c, const V &v) { c.header_map = v.kind == V::NONE ? "drop" : v.s; }

static void apply_secure_scheme_headers(Config &c, const V &v) {
    if (!v.obj) return;  // the default, already in Config
    c.secure_scheme_headers.clear();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(v.obj->get(), &pos, &key, &value))
        c.secure_scheme_headers.emplace_back(py_obj_str(key), py_obj_str(value));
}

// ---------------------------------------------------------------------------
// The table, in gunicorn's order (config.py KNOWN_SETTINGS).

namespace {

struct Row {
    Setting s;
    Row(const char *name, const char *section, SettingType type) {
        s.name = name;
        s.section = section;
        s.type = type;
        s.default_value = d_none;
        s.validate = v_string;
    }
    Row &cli(std::vector<std::string> f, CliAction a, CliType t = CliType::STR) {
        s.flags = std::move(f);
        s.action = a;
        s.cli_type = t;
        return *this;
    }
    Row &meta(const char *m) { s.meta = m; return *this; }
    Row &def(V (*f)()) { s.default_value = f; return *this; }
    Row &check(V (*f)(const V &)) { s.validate = f; return *this; }
    Row &to(void (*f)(Config &, const V &)) { s.apply = f; return *this; }
    Row &help(const char *h) { s.help = h; return *this; }
    Row &choices(std::vector<std::string> c) { s.choices = std::move(c); return *this; }
    Row &optional_const(const char *c) { s.optional_const = c; return *this; }
    Row &like_default(bool (*f)(const V &)) { s.same_as_default = f; return *this; }
    Row &no_effect(const char *why) { s.support = Support::ACCEPTED_NO_EFFECT; s.reason = why; return *this; }
    Row &refused(const char *why) { s.support = Support::REFUSED; s.reason = why; return *this; }
    Row &samples(std::vector<SupportSample> v) { s.samples = std::move(v); return *this; }
};

Row int_row(const char *name, const char *section, std::vector<std::string> flags, V (*d)()) {
    Row r(name, section, SettingType::INT);
    r.cli(std::move(flags), CliAction::STORE, CliType::INT).meta("INT").def(d).check(v_pos_int);
    return r;
}

Row flag_row(const char *name, const char *section, std::vector<std::string> flags) {
    Row r(name, section, SettingType::BOOL);
    r.cli(std::move(flags), CliAction::STORE_TRUE).def(d_false).check(v_bool);
    return r;
}

Row str_row(const char *name, const char *section, std::vector<std::string> flags, const char *meta, V (*d)()) {
    Row r(name, section, SettingType::STRING);
    if (!flags.empty()) r.cli(std::move(flags), CliAction::STORE);
    if (meta) r.meta(meta);
    r.def(d);
    return r;
}

Row hook_row(const char *name, const char *section, V (*check)(const V &), V (*d)()) {
    Row r(name, section, SettingType::PYTHON);
    r.def(d).check(check);
    return r;
}

const char *const CONFIG_FILE = "Config File";
const char *const SOCKET = "Server Socket";
const char *const WORKER = "Worker Processes";
const char *const SECURITY = "Security";
const char *const DEBUGGING = "Debugging";
const char *const MECHANICS = "Server Mechanics";
const char *const LOGGING = "Logging";
const char *const NAMING = "Process Naming";
const char *const HOOKS = "Server Hooks";
const char *const SSL = "SSL";
const char *const HTTP2 = "HTTP/2";
const char *const DIRTY = "Dirty Arbiters";
const char *const DIRTY_HOOKS = "Dirty Arbiter Hooks";
const char *const CONTROL = "Control";

const char *const NO_LOGCONFIG = "Python logging configuration is not supported yet";
const char *const NO_HTTP2 = "HTTP/2 is not supported; only HTTP/1.x is served";
const char *const NO_ASGI = "the ASGI worker is not supported";
const char *const NO_DIRTY = "dirty arbiters are not implemented yet";
const char *const NO_CONTROL = "the control socket is not implemented yet";
const char *const NO_UWSGI = "the uwsgi protocol is not implemented yet";

bool protocol_like_default(const V &v) { return !(v.kind == V::STR && v.s == "uwsgi"); }
bool logger_like_default(const V &v) {
    return v.kind == V::STR && (v.s == "simple" || v.s == "gunicorn.glogging.Logger");
}
bool parser_like_default(const V &v) { return v.kind == V::STR && v.s != "python"; }
// cunicorn has no control socket, so disabling it is what already happens.
bool always_default(const V &) { return true; }

std::vector<Setting> build_table() {
    using ST = SettingType;
    using CA = CliAction;
    std::vector<Row> t;

    // Config File
    t.push_back(str_row("config", CONFIG_FILE, {"-c", "--config"}, "CONFIG",
                        [] { return V::str("./gunicorn.conf.py"); })
                    .to(store<&Config::config>)
                    .help("The Gunicorn config file: PATH, file:PATH or python:MODULE_NAME."));
    t.push_back(str_row("wsgi_app", CONFIG_FILE, {}, "STRING", d_none)
                    .to(store<&Config::wsgi_app>)
                    .help("A WSGI application path in pattern $(MODULE_NAME):$(VARIABLE_NAME)."));

    // Server Socket
    t.push_back(Row("bind", SOCKET, ST::LIST)
                    .cli({"-b", "--bind"}, CA::APPEND)
                    .meta("ADDRESS")
                    .def(d_bind)
                    .check(v_list_string)
                    .to(apply_bind)
                    .help("The socket to bind: HOST, HOST:PORT, [V6]:PORT, unix:PATH or fd://FD; repeatable."));
    t.push_back(int_row("backlog", SOCKET, {"--backlog"}, d_int<2048>)
                    .to(store<&Config::backlog>)
                    .help("The maximum number of pending connections."));

    // Worker Processes
    t.push_back(int_row("workers", WORKER, {"-w", "--workers"}, d_workers)
                    .to(store<&Config::workers>)
                    .help("The number of worker processes for handling requests ($WEB_CONCURRENCY or 1)."));
    t.push_back(str_row("worker_class", WORKER, {"-k", "--worker-class"}, "STRING", [] { return V::str("sync"); })
                    .check(v_class)
                    .to(apply_worker_class)
                    .samples({{"sync", "sync"},
                              {"gthread", "gthread"},
                              {"gevent", "gevent"},
                              {"gevent_wsgi", "gevent_wsgi"},
                              {"gevent_pywsgi", "gevent_pywsgi"},
                              {"tornado", "tornado"},
                              {"asgi", "asgi"},
                              {"a class path", "uvicorn.workers.UvicornWorker"},
                              {"eventlet", "eventlet"}})
                    .help("The type of workers to use (only sync is implemented yet; others run as sync)."));
    t.push_back(int_row("threads", WORKER, {"--threads"}, d_int<1>)
                    .to(apply_threads)
                    .samples({{"1", "1"}, {"2 or more", "2"}})
                    .help("The number of worker threads for handling requests (gthread; not implemented yet)."));
    t.push_back(int_row("worker_connections", WORKER, {"--worker-connections"}, d_int<1000>)
                    .to(store<&Config::worker_connections>)
                    .help("The maximum number of simultaneous clients."));
    t.push_back(int_row("max_requests", WORKER, {"--max-requests"}, d_int<0>)
                    .to(store<&Config::max_requests>)
                    .help("The maximum number of requests a worker will process before restarting."));
    t.push_back(int_row("max_requests_jitter", WORKER, {"--max-requests-jitter"}, d_int<0>)
                    .to(store<&Config::max_requests_jitter>)
                    .help("The maximum jitter to add to the max_requests setting."));
    t.push_back(int_row("timeout", WORKER, {"-t", "--timeout"}, d_int<30>)
                    .to(store<&Config::timeout>)
                    .help("Workers silent for more than this many seconds are killed and restarted."));
    t.push_back(int_row("graceful_timeout", WORKER, {"--graceful-timeout"}, d_int<30>)
                    .to(store<&Config::graceful_timeout>)
                    .help("Timeout for graceful workers restart."));
    t.push_back(int_row("keepalive", WORKER, {"--keep-alive"}, d_int<2>)
                    .to(store<&Config::keepalive>)
                    .help("The number of seconds to wait for requests on a Keep-Alive connection."));

    // Security
    t.push_back(int_row("limit_request_line", SECURITY, {"--limit-request-line"}, d_int<4094>)
                    .to(store<&Config::limit_request_line>)
                    .help("The maximum size of HTTP request line in bytes (0 = unlimited, at most 8190)."));
    t.push_back(int_row("limit_request_fields", SECURITY, {"--limit-request-fields"}, d_int<100>)
                    .to(store<&Config::limit_request_fields>)
                    .help("Limit the number of HTTP headers fields in a request (at most 32768)."));
    t.push_back(int_row("limit_request_field_size", SECURITY,
                        {"--limit-request-field_size", "--limit-request-field-size"}, d_int<8190>)
                    .to(store<&Config::limit_request_field_size>)
                    .help("Limit the allowed size of an HTTP request header field."));

    // Debugging
    t.push_back(flag_row("reload", DEBUGGING, {"--reload"})
                    .to(store<&Config::reload>)
                    .help("Restart workers when code changes."));
    t.push_back(str_row("reload_engine", DEBUGGING, {"--reload-engine"}, "STRING", [] { return V::str("auto"); })
                    .check(v_reload_engine)
                    .choices({"auto", "poll", "inotify"})
                    .to(store<&Config::reload_engine>)
                    .help("The implementation that should be used to power reload: auto, poll or inotify."));
    t.back().s.type = ST::CHOICE;
    t.push_back(Row("reload_extra_files", DEBUGGING, ST::LIST)
                    .cli({"--reload-extra-file"}, CA::APPEND)
                    .meta("FILES")
                    .def(d_empty_list)
                    .check(v_list_of_existing_files)
                    .to(store<&Config::reload_extra_files>)
                    .help("Extends reload to also watch and reload on additional files."));
    t.push_back(flag_row("spew", DEBUGGING, {"--spew"})
                    .to(store<&Config::spew>)
                    .help("Install a trace function that spews every line executed by the server."));
    t.push_back(flag_row("check_config", DEBUGGING, {"--check-config"})
                    .to(store<&Config::check_config>)
                    .help("Check the configuration and exit: status 0 if correct, 1 if not."));
    t.push_back(flag_row("print_config", DEBUGGING, {"--print-config"})
                    .to(store<&Config::print_config>)
                    .help("Print the configuration settings as fully resolved. Implies check-config."));

    // Server Mechanics
    t.push_back(flag_row("preload_app", MECHANICS, {"--preload"})
                    .to(store<&Config::preload_app>)
                    .help("Load application code before the worker processes are forked."));
    t.push_back(Row("sendfile", MECHANICS, ST::BOOL)
                    .cli({"--no-sendfile"}, CA::STORE_FALSE)
                    .def(d_none)
                    .check(v_bool)
                    .to(apply_sendfile)
                    .help("Disables the use of sendfile(); if not set, $SENDFILE decides."));
    t.push_back(flag_row("reuse_port", MECHANICS, {"--reuse-port"})
                    .to(store<&Config::reuse_port>)
                    .help("Set the SO_REUSEPORT flag on the listening socket."));
    t.push_back(str_row("chdir", MECHANICS, {"--chdir"}, nullptr, d_chdir)
                    .check(v_chdir)
                    .to(store<&Config::chdir>)
                    .help("Change directory to specified directory before loading apps."));
    t.push_back(flag_row("daemon", MECHANICS, {"-D", "--daemon"})
                    .to(store<&Config::daemon>)
                    .help("Daemonize the Gunicorn process."));
    t.push_back(Row("raw_env", MECHANICS, ST::LIST)
                    .cli({"-e", "--env"}, CA::APPEND)
                    .meta("ENV")
                    .def(d_empty_list)
                    .check(v_raw_env)
                    .to(store<&Config::raw_env>)
                    .help("Set environment variables in the execution environment (KEY=VALUE); repeatable."));
    t.push_back(str_row("pidfile", MECHANICS, {"-p", "--pid"}, "FILE", d_none)
                    .to(apply_pidfile)
                    .help("A filename to use for the PID file."));
    t.push_back(str_row("worker_tmp_dir", MECHANICS, {"--worker-tmp-dir"}, "DIR", d_none)
                    .to(apply_worker_tmp_dir)
                    .help("A directory to use for the worker heartbeat temporary file."));
    t.push_back(str_row("user", MECHANICS, {"-u", "--user"}, "USER", d_user)
                    .check(v_user)
                    .to(apply_user)
                    .help("Switch worker processes to run as this user (name or uid)."));
    t.push_back(str_row("group", MECHANICS, {"-g", "--group"}, "GROUP", d_group)
                    .check(v_group)
                    .to(apply_group)
                    .help("Switch worker process to run as this group (name or gid)."));
    t.push_back(Row("umask", MECHANICS, ST::INT)
                    .cli({"-m", "--umask"}, CA::STORE, CliType::AUTO_INT)
                    .meta("INT")
                    .def(d_int<0>)
                    .check(v_pos_int)
                    .to(store<&Config::umask>)
                    .help("A bit mask for the file mode on files written by Gunicorn (0022 is octal)."));
    t.push_back(flag_row("initgroups", MECHANICS, {"--initgroups"})
                    .to(store<&Config::initgroups>)
                    .help("Set the worker's group access list from all groups of the user, plus the group id."));
    t.push_back(str_row("tmp_upload_dir", MECHANICS, {}, "DIR", d_none)
                    .no_effect("it is unused, as in Gunicorn 26.1")
                    .help("Directory to store temporary request data as they are read."));
    t.push_back(hook_row("secure_scheme_headers", MECHANICS, v_dict, d_secure_scheme_headers)
                    .to(apply_secure_scheme_headers)
                    .help("A dict of headers and values that the front-end proxy uses to indicate HTTPS requests."));
    t.push_back(str_row("forwarded_allow_ips", MECHANICS, {"--forwarded-allow-ips"}, "STRING", d_forwarded_allow_ips)
                    .check(v_addr_list)
                    .to(store<&Config::forwarded_allow_ips>)
                    .help("Front-end IPs allowed to set secure headers (comma separated, * for all)."));
    t.back().s.type = ST::LIST;

    // Logging
    t.push_back(str_row("accesslog", LOGGING, {"--access-logfile"}, "FILE", d_none)
                    .to(apply_accesslog)
                    .help("The Access log file to write to ('-' means stdout)."));
    t.push_back(flag_row("disable_redirect_access_to_syslog", LOGGING, {"--disable-redirect-access-to-syslog"})
                    .to(store<&Config::disable_redirect_access_to_syslog>)
                    .help("Disable redirect access logs to syslog."));
    t.push_back(str_row("access_log_format", LOGGING, {"--access-logformat"}, "STRING",
                        [] { return V::str("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""); })
                    .to(store<&Config::access_log_format>)
                    .help("The access log format."));
    t.push_back(str_row("errorlog", LOGGING, {"--error-logfile", "--log-file"}, "FILE", [] { return V::str("-"); })
                    .to(apply_errorlog)
                    .help("The Error log file to write to ('-' means stderr)."));
    t.push_back(str_row("loglevel", LOGGING, {"--log-level"}, "LEVEL", [] { return V::str("info"); })
                    .to(apply_loglevel)
                    .help("The granularity of Error log outputs: debug, info, warning, error, critical."));
    t.push_back(flag_row("capture_output", LOGGING, {"--capture-output"})
                    .to(store<&Config::capture_output>)
                    .help("Redirect stdout/stderr to specified file in errorlog."));
    t.push_back(str_row("logger_class", LOGGING, {"--logger-class"}, "STRING",
                        [] { return V::str("gunicorn.glogging.Logger"); })
                    .check(v_class)
                    .like_default(logger_like_default)
                    .no_effect("custom logger classes are not supported; cunicorn has its own logger")
                    .help("The logger you want to use to log events in Gunicorn."));
    t.push_back(str_row("logconfig", LOGGING, {"--log-config"}, "FILE", d_none)
                    .no_effect(NO_LOGCONFIG)
                    .help("The log config file to use (Python logging fileConfig format)."));
    t.push_back(hook_row("logconfig_dict", LOGGING, v_dict, d_empty_dict)
                    .no_effect(NO_LOGCONFIG)
                    .help("The log config dictionary to use (Python logging dictConfig format)."));
    t.push_back(str_row("logconfig_json", LOGGING, {"--log-config-json"}, "FILE", d_none)
                    .no_effect(NO_LOGCONFIG)
                    .help("The log config to read config from a JSON file."));
    t.push_back(str_row("syslog_addr", LOGGING, {"--log-syslog-to"}, "SYSLOG_ADDR", d_syslog_addr)
                    .to(store<&Config::syslog_addr>)
                    .help("Address to send syslog messages: unix://PATH#TYPE, udp://HOST:PORT, tcp://HOST:PORT."));
    t.push_back(flag_row("syslog", LOGGING, {"--log-syslog"})
                    .to(store<&Config::syslog>)
                    .help("Send Gunicorn logs to syslog."));
    t.push_back(str_row("syslog_prefix", LOGGING, {"--log-syslog-prefix"}, "SYSLOG_PREFIX", d_none)
                    .to(store<&Config::syslog_prefix>)
                    .help("Makes Gunicorn use the parameter as program-name in the syslog entries."));
    t.push_back(str_row("syslog_facility", LOGGING, {"--log-syslog-facility"}, "SYSLOG_FACILITY",
                        [] { return V::str("user"); })
                    .to(store<&Config::syslog_facility>)
                    .help("Syslog facility name."));
    t.push_back(flag_row("enable_stdio_inheritance", LOGGING, {"-R", "--enable-stdio-inheritance"})
                    .no_effect("not implemented yet")
                    .help("Enable stdio inheritance in daemon mode."));
    t.push_back(str_row("statsd_host", LOGGING, {"--statsd-host"}, "STATSD_ADDR", d_none)
                    .check(v_statsd_address)
                    .to(apply_statsd_host)
                    .help("The address of the StatsD server to log to: HOST:PORT or unix://PATH."));
    t.push_back(str_row("dogstatsd_tags", LOGGING, {"--dogstatsd-tags"}, "DOGSTATSD_TAGS", d_empty_str)
                    .to(store<&Config::dogstatsd_tags>)
                    .help("A comma-delimited list of datadog statsd (dogstatsd) tags to append to statsd metrics."));
    t.push_back(str_row("statsd_prefix", LOGGING, {"--statsd-prefix"}, "STATSD_PREFIX", d_empty_str)
                    .to(store<&Config::statsd_prefix>)
                    .help("Prefix to use when emitting statsd metrics."));
    t.push_back(flag_row("enable_backlog_metric", LOGGING, {"--enable-backlog-metric"})
                    .to(store<&Config::enable_backlog_metric>)
                    .help("Enable socket backlog metric (Linux only)."));

    // Process Naming
    t.push_back(str_row("proc_name", NAMING, {"-n", "--name"}, "STRING", d_none)
                    .to(store<&Config::proc_name>)
                    .help("A base to use with setproctitle for process naming."));
    t.push_back(str_row("default_proc_name", NAMING, {}, nullptr, [] { return V::str("cunicorn"); })
                    .to(store<&Config::default_proc_name>)
                    .help("Internal setting that is adjusted for each type of application."));

    // Server Mechanics
    t.push_back(str_row("pythonpath", MECHANICS, {"--pythonpath"}, "STRING", d_none)
                    .to(apply_pythonpath)
                    .help("A comma-separated list of directories to add to the Python path."));
    t.push_back(str_row("paste", MECHANICS, {"--paste", "--paster"}, "STRING", d_none)
                    .to(store<&Config::paste>)
                    .help("Load a PasteDeploy config file (FILE.ini#section) instead of APP_MODULE."));

    // Server Hooks
    t.push_back(hook_row("on_starting", HOOKS, v_callable<1>, d_on_starting)
                    .help("Called just before the master process is initialized: on_starting(server)."));
    t.push_back(hook_row("on_reload", HOOKS, v_callable<1>, d_on_reload)
                    .help("Called to recycle workers during a reload via SIGHUP: on_reload(server)."));
    t.push_back(hook_row("when_ready", HOOKS, v_callable<1>, d_when_ready)
                    .help("Called just after the server is started: when_ready(server)."));
    t.push_back(hook_row("pre_fork", HOOKS, v_callable<2>, d_pre_fork)
                    .help("Called just before a worker is forked: pre_fork(server, worker)."));
    t.push_back(hook_row("post_fork", HOOKS, v_callable<2>, d_post_fork)
                    .help("Called just after a worker has been forked: post_fork(server, worker)."));
    t.push_back(hook_row("post_worker_init", HOOKS, v_callable<1>, d_post_worker_init)
                    .help("Called just after a worker has initialized the application: post_worker_init(worker)."));
    t.push_back(hook_row("worker_int", HOOKS, v_callable<1>, d_worker_int)
                    .help("Called just after a worker exited on SIGINT or SIGQUIT: worker_int(worker)."));
    t.push_back(hook_row("worker_abort", HOOKS, v_callable<1>, d_worker_abort)
                    .help("Called when a worker received the SIGABRT signal: worker_abort(worker)."));
    t.push_back(hook_row("pre_exec", HOOKS, v_callable<1>, d_pre_exec)
                    .help("Called just before a new master process is forked: pre_exec(server)."));
    t.push_back(hook_row("pre_request", HOOKS, v_callable<2>, d_pre_request)
                    .help("Called just before a worker processes the request: pre_request(worker, req)."));
    t.push_back(hook_row("post_request", HOOKS, v_post_request, d_post_request)
                    .help("Called after a worker processes the request: post_request(worker, req, environ, resp)."));
    t.push_back(hook_row("child_exit", HOOKS, v_callable<2>, d_child_exit)
                    .help("Called just after a worker has been exited, in the master: child_exit(server, worker)."));
    t.push_back(hook_row("worker_exit", HOOKS, v_callable<2>, d_worker_exit)
                    .help("Called just after a worker has been exited, in the worker: worker_exit(server, worker)."));
    t.push_back(hook_row("nworkers_changed", HOOKS, v_callable<3>, d_nworkers_changed)
                    .help("Called just after num_workers has been changed: nworkers_changed(server, new, old)."));
    t.push_back(hook_row("on_exit", HOOKS, v_callable<1>, d_on_exit)
                    .help("Called just before exiting Gunicorn: on_exit(server)."));
    t.push_back(hook_row("ssl_context", HOOKS, v_callable<2>, d_ssl_context)
                    .help("Called when SSLContext is needed: ssl_context(config, default_ssl_context_factory)."));

    // Server Mechanics
    t.push_back(Row("proxy_protocol", MECHANICS, ST::CHOICE)
                    .cli({"--proxy-protocol"}, CA::OPTIONAL)
                    .optional_const("auto")
                    .meta("MODE")
                    .def([] { return V::str("off"); })
                    .check(v_proxy_protocol)
                    .choices({"off", "v1", "v2", "auto"})
                    .to(store<&Config::proxy_protocol>)
                    .help("Accept a PROXY protocol header: off, v1, v2 or auto (a bare flag means auto)."));
    t.push_back(str_row("proxy_allow_ips", MECHANICS, {"--proxy-allow-from"}, nullptr,
                        [] { return V::str("127.0.0.1,::1"); })
                    .check(v_addr_list)
                    .to(store<&Config::proxy_allow_ips>)
                    .help("Front-end IPs allowed to send a PROXY protocol header (comma separated, * for all)."));
    t.back().s.type = ST::LIST;
    t.push_back(str_row("protocol", MECHANICS, {"--protocol"}, "STRING", [] { return V::str("http"); })
                    .like_default(protocol_like_default)
                    .refused("only HTTP is served; the uwsgi protocol is not implemented yet")
                    .help("The protocol to speak: http or uwsgi."));
    t.push_back(str_row("uwsgi_allow_ips", MECHANICS, {"--uwsgi-allow-from"}, nullptr,
                        [] { return V::str("127.0.0.1,::1"); })
                    .check(v_string_to_list)
                    .no_effect(NO_UWSGI)
                    .help("IPs allowed to send uwsgi protocol requests (comma separated, * for all)."));
    t.back().s.type = ST::LIST;

    // SSL
    t.push_back(str_row("keyfile", SSL, {"--keyfile"}, "FILE", d_none)
                    .check(v_existing_file)
                    .to(store<&Config::keyfile>)
                    .help("SSL key file."));
    t.push_back(str_row("certfile", SSL, {"--certfile"}, "FILE", d_none)
                    .check(v_existing_file)
                    .to(store<&Config::certfile>)
                    .help("SSL certificate file."));
    t.push_back(str_row("ssl_version", SSL, {"--ssl-version"}, nullptr, d_int<2>)
                    .check(v_ssl_version)
                    .no_effect("deprecated and ignored, as in Gunicorn: the protocol is negotiated")
                    .help("SSL version to use (deprecated and ignored)."));
    t.push_back(str_row("cert_reqs", SSL, {"--cert-reqs"}, nullptr, d_int<0>)
                    .check(v_cert_reqs)
                    .to(store<&Config::cert_reqs>)
                    .help("Whether client certificate is required: 0 none, 1 optional, 2 required."));
    t.back().s.type = ST::INT;
    t.push_back(str_row("ca_certs", SSL, {"--ca-certs"}, "FILE", d_none)
                    .check(v_existing_file)
                    .to(store<&Config::ca_certs>)
                    .help("CA certificates file."));
    t.push_back(flag_row("suppress_ragged_eofs", SSL, {"--suppress-ragged-eofs"})
                    .def(d_true)
                    .to(store<&Config::suppress_ragged_eofs>)
                    .help("Suppress ragged EOFs (see stdlib ssl module's)."));
    t.push_back(flag_row("do_handshake_on_connect", SSL, {"--do-handshake-on-connect"})
                    .no_effect("the event loop completes every TLS handshake as soon as the client's bytes "
                               "arrive, before the request is read, without blocking the worker")
                    .help("Whether to perform SSL handshake on socket connect."));
    t.push_back(str_row("ciphers", SSL, {"--ciphers"}, nullptr, d_none)
                    .to(store<&Config::ciphers>)
                    .help("SSL Cipher suite to use, in the format of an OpenSSL cipher list."));

    // HTTP/2
    t.push_back(str_row("http_protocols", HTTP2, {"--http-protocols"}, "STRING", [] { return V::str("h1"); })
                    .check(v_http_protocols)
                    .no_effect(NO_HTTP2)
                    .help("HTTP protocols to offer, in preference order: comma list of h1, h2, h3."));
    t.back().s.type = ST::LIST;
    t.push_back(str_row("http2_cleartext", HTTP2, {"--http2-cleartext"}, "MODE", [] { return V::str("off"); })
                    .check(v_http2_cleartext)
                    .choices({"off", "prior-knowledge", "upgrade", "both"})
                    .no_effect(NO_HTTP2)
                    .help("HTTP/2 over cleartext (h2c): off, prior-knowledge, upgrade or both."));
    t.back().s.type = ST::CHOICE;
    t.push_back(int_row("http2_max_concurrent_streams", HTTP2, {"--http2-max-concurrent-streams"}, d_int<100>)
                    .no_effect(NO_HTTP2)
                    .help("HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS."));
    t.push_back(int_row("http2_initial_window_size", HTTP2, {"--http2-initial-window-size"}, d_int<65535>)
                    .no_effect(NO_HTTP2)
                    .help("HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE."));
    t.push_back(int_row("http2_max_frame_size", HTTP2, {"--http2-max-frame-size"}, d_int<16384>)
                    .check(v_http2_frame_size)
                    .no_effect(NO_HTTP2)
                    .help("HTTP/2 SETTINGS_MAX_FRAME_SIZE (16384 to 16777215)."));
    t.push_back(int_row("http2_max_header_list_size", HTTP2, {"--http2-max-header-list-size"}, d_int<65536>)
                    .no_effect(NO_HTTP2)
                    .help("HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE."));

    // Server Mechanics
    t.push_back(Row("raw_paste_global_conf", MECHANICS, ST::LIST)
                    .cli({"--paste-global"}, CA::APPEND)
                    .meta("CONF")
                    .def(d_empty_list)
                    .check(v_list_string)
                    .to(store<&Config::raw_paste_global_conf>)
                    .help("Set a PasteDeploy global config variable in key=value form; repeatable."));
    t.push_back(flag_row("permit_obsolete_folding", MECHANICS, {"--permit-obsolete-folding"})
                    .to(store<&Config::permit_obsolete_folding>)
                    .help("Permit requests employing obsolete HTTP line folding mechanism."));
    t.push_back(flag_row("strip_header_spaces", MECHANICS, {"--strip-header-spaces"})
                    .to(store<&Config::strip_header_spaces>)
                    .help("Strip spaces present between the header name and the ':' (unsafe)."));
    t.push_back(flag_row("permit_unconventional_http_method", MECHANICS, {"--permit-unconventional-http-method"})
                    .to(store<&Config::permit_unconventional_http_method>)
                    .help("Permit HTTP methods not matching conventions, such as IANA registration guidelines."));
    t.push_back(flag_row("permit_unconventional_http_version", MECHANICS, {"--permit-unconventional-http-version"})
                    .to(store<&Config::permit_unconventional_http_version>)
                    .help("Permit HTTP version not matching conventions of 2023."));
    t.push_back(flag_row("casefold_http_method", MECHANICS, {"--casefold-http-method"})
                    .to(store<&Config::casefold_http_method>)
                    .help("Transform received HTTP methods to uppercase."));
    t.push_back(str_row("forwarder_headers", MECHANICS, {"--forwarder-headers"}, nullptr,
                        [] { return V::str("SCRIPT_NAME,PATH_INFO"); })
                    .check(v_string_to_list)
                    .to(store<&Config::forwarder_headers>)
                    .help("Headers with underscores a trusted forwarder may set in environ (comma separated)."));
    t.back().s.type = ST::LIST;
    t.push_back(str_row("header_map", MECHANICS, {"--header-map"}, nullptr, [] { return V::str("drop"); })
                    .check(v_header_map)
                    .choices({"drop", "refuse", "dangerous"})
                    .to(apply_header_map)
                    .help("How header names with underscores map into environ: drop, refuse or dangerous."));
    t.back().s.type = ST::CHOICE;

    // Worker Processes
    t.push_back(str_row("asgi_loop", WORKER, {"--asgi-loop"}, "STRING", [] { return V::str("auto"); })
                    .check(v_asgi_loop)
                    .choices({"auto", "asyncio", "uvloop"})
                    .no_effect(NO_ASGI)
                    .help("Event loop for the ASGI worker: auto, asyncio or uvloop."));
    t.back().s.type = ST::CHOICE;
    t.push_back(str_row("asgi_lifespan", WORKER, {"--asgi-lifespan"}, "STRING", [] { return V::str("auto"); })
                    .check(v_asgi_lifespan)
                    .choices({"auto", "on", "off"})
                    .no_effect(NO_ASGI)
                    .help("ASGI lifespan protocol handling: auto, on or off."));
    t.back().s.type = ST::CHOICE;
    t.push_back(int_row("asgi_disconnect_grace_period", WORKER, {"--asgi-disconnect-grace-period"}, d_int<3>)
                    .no_effect(NO_ASGI)
                    .help("Seconds an ASGI app may run after a client disconnect before it is cancelled."));
    t.push_back(str_row("http_parser", WORKER, {"--http-parser"}, "STRING", [] { return V::str("auto"); })
                    .check(v_http_parser)
                    .choices({"auto", "fast", "python"})
                    .like_default(parser_like_default)
                    .no_effect("cunicorn always uses its own C++ parser")
                    .help("HTTP parser: auto, fast (C) or python."));
    t.back().s.type = ST::CHOICE;

    // Server Mechanics
    t.push_back(str_row("root_path", MECHANICS, {"--root-path"}, "STRING", d_empty_str)
                    .no_effect(NO_ASGI)
                    .help("The ASGI root_path (mount point of the application)."));

    // Dirty Arbiters
    t.push_back(Row("dirty_apps", DIRTY, ST::LIST)
                    .cli({"--dirty-app"}, CA::APPEND)
                    .meta("STRING")
                    .def(d_empty_list)
                    .check(v_list_string)
                    .no_effect(NO_DIRTY)
                    .help("Dirty application to load: module:Class or module:Class:N; repeatable."));
    t.push_back(int_row("dirty_workers", DIRTY, {"--dirty-workers"}, d_int<0>)
                    .no_effect(NO_DIRTY)
                    .help("Number of dirty worker processes (0 disables the dirty arbiter)."));
    t.push_back(int_row("dirty_timeout", DIRTY, {"--dirty-timeout"}, d_int<300>)
                    .no_effect(NO_DIRTY)
                    .help("Timeout in seconds for dirty tasks (0 disables)."));
    t.push_back(int_row("dirty_threads", DIRTY, {"--dirty-threads"}, d_int<1>)
                    .no_effect(NO_DIRTY)
                    .help("Threads per dirty worker."));
    t.push_back(int_row("dirty_graceful_timeout", DIRTY, {"--dirty-graceful-timeout"}, d_int<30>)
                    .no_effect(NO_DIRTY)
                    .help("Seconds dirty workers get to finish when stopping."));

    // Dirty Arbiter Hooks
    t.push_back(hook_row("on_dirty_starting", DIRTY_HOOKS, v_callable<1>, d_on_dirty_starting)
                    .no_effect(NO_DIRTY)
                    .help("Called just before the dirty arbiter starts: on_dirty_starting(arbiter)."));
    t.push_back(hook_row("dirty_post_fork", DIRTY_HOOKS, v_callable<2>, d_dirty_post_fork)
                    .no_effect(NO_DIRTY)
                    .help("Called just after a dirty worker is forked: dirty_post_fork(arbiter, worker)."));
    t.push_back(hook_row("dirty_worker_init", DIRTY_HOOKS, v_callable<1>, d_dirty_worker_init)
                    .no_effect(NO_DIRTY)
                    .help("Called after a dirty worker loaded its apps: dirty_worker_init(worker)."));
    t.push_back(hook_row("dirty_worker_exit", DIRTY_HOOKS, v_callable<2>, d_dirty_worker_exit)
                    .no_effect(NO_DIRTY)
                    .help("Called when a dirty worker exits: dirty_worker_exit(arbiter, worker)."));

    // Control
    t.push_back(str_row("control_socket", CONTROL, {"--control-socket"}, "PATH", d_control_socket)
                    .no_effect(NO_CONTROL)
                    .help("Unix socket path of the control interface."));
    t.push_back(Row("control_socket_mode", CONTROL, ST::INT)
                    .cli({"--control-socket-mode"}, CA::STORE, CliType::AUTO_INT)
                    .meta("INT")
                    .def(d_int<0600>)
                    .check(v_pos_int)
                    .no_effect(NO_CONTROL)
                    .help("Permission bits of the control socket (0600 is octal)."));
    t.push_back(flag_row("control_socket_disable", CONTROL, {"--no-control-socket"})
                    .like_default(always_default)
                    .no_effect("cunicorn has no control socket yet, so it is always disabled")
                    .help("Do not create the control socket."));

    // cunicorn's own settings, after Gunicorn's.
    t.push_back(str_row("virtualenv", MECHANICS, {"--virtualenv"}, "DIR", d_virtualenv)
                    .check(v_virtualenv)
                    .to(apply_virtualenv)
                    .help("The virtualenv to run the application in (python3 -m venv DIR), made by the "
                          "Python cunicorn runs; $VIRTUAL_ENV if not set."));
    t.push_back(int_row("limit_request_header_size", SECURITY, {"--limit-request-header-size"}, d_int<0>)
                    .to(store<&Config::limit_request_header_size>)
                    .help("Limit the size of the request head (request line and header fields) in bytes; "
                          "a larger one is answered with 431 (0 = only the limits above)."));
    t.push_back(int_row("limit_request_body", SECURITY, {"--limit-request-body"}, d_int<0>)
                    .to(store<&Config::limit_request_body>)
                    .help("Limit the size of a request body in bytes; a larger one is answered with 413 "
                          "(0 = unlimited)."));
    t.push_back(flag_row("permit_missing_host", MECHANICS, {"--permit-missing-host"})
                    .to(store<&Config::permit_missing_host>)
                    .help("Permit HTTP/1.1 requests without a Host header, which RFC 9112 answers with 400."));

    std::vector<Setting> out;
    out.reserve(t.size());
    for (auto &r : t) out.push_back(std::move(r.s));
    return out;
}

}  // namespace

const std::vector<Setting> &settings_table() {
    static const std::vector<Setting> table = build_table();
    return table;
}

static size_t index_of(const char *name) {
    const auto &t = settings_table();
    for (size_t k = 0; k < t.size(); ++k)
        if (std::strcmp(t[k].name, name) == 0) return k;
    return t.size();
}

// ---------------------------------------------------------------------------
// --help, laid out as argparse's HelpFormatter does (options column, help
// at column 24, wrapped), grouped by section.

static const char *const PROG = "cunicorn";

static std::string usage_line() { return std::string("usage: ") + PROG + " [OPTIONS] [APP_MODULE]\n"; }

static std::string metavar(const Setting &s) {
    if (s.meta) return s.meta;
    std::string m = s.name;
    for (char &c : m)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return m;
}

static std::string invocation(const Setting &s) {
    std::vector<std::string> parts;
    for (const auto &f : s.flags) {
        switch (s.action) {
        case CliAction::STORE:
        case CliAction::APPEND: parts.push_back(f + " " + metavar(s)); break;
        case CliAction::OPTIONAL: parts.push_back(f + " [" + metavar(s) + "]"); break;
        default: parts.push_back(f); break;
        }
    }
    return join(parts, ", ");
}

static std::vector<std::string> wrap(const std::string &text, size_t width) {
    std::vector<std::string> lines;
    std::string line;
    for (const auto &word : split(text, " ")) {
        if (word.empty()) continue;
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            lines.push_back(line);
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) lines.push_back(line);
    return lines;
}

static void help_entry(std::string &out, const std::string &inv, const std::string &text, size_t width) {
    const size_t help_pos = 24;
    std::string head = "  " + inv;
    std::vector<std::string> lines = wrap(text, width > help_pos + 20 ? width - help_pos : 20);
    if (head.size() <= help_pos - 2) {
        head.resize(help_pos, ' ');
        out += head + (lines.empty() ? "" : lines[0]) + "\n";
        for (size_t k = 1; k < lines.size(); ++k) out += std::string(help_pos, ' ') + lines[k] + "\n";
    } else {
        out += head + "\n";
        for (const auto &l : lines) out += std::string(help_pos, ' ') + l + "\n";
    }
}

std::string format_help() {
    size_t width = 78;
    if (const char *cols = std::getenv("COLUMNS")) {
        int n = std::atoi(cols);
        if (n > 40) width = static_cast<size_t>(n) - 2;
    }
    std::string out = usage_line() + "\n";
    out += "options:\n";
    help_entry(out, "-h, --help", "show this help message and exit", width);
    help_entry(out, "-v, --version", "show program's version number and exit", width);
    std::vector<std::string> sections;
    for (const auto &s : settings_table()) {
        if (s.flags.empty()) continue;
        bool seen = false;
        for (const auto &name : sections) seen = seen || name == s.section;
        if (!seen) sections.push_back(s.section);
    }
    for (const auto &section : sections) {
        out += "\n" + section + ":\n";
        for (const auto &s : settings_table()) {
            if (s.flags.empty() || section != s.section) continue;
            // Setting.add_option: "<first line of desc> [<default>]".
            std::string d;
            try {
                d = py_str(s.default_value());
            } catch (const Invalid &) {
                d = "?";
            }
            std::string text = std::string(s.help) + " [" + d + "]";
            if (s.support == Support::ACCEPTED_NO_EFFECT) text += " (no effect: " + std::string(s.reason) + ")";
            if (s.support == Support::REFUSED) text += " (refused: " + std::string(s.reason) + ")";
            help_entry(out, invocation(s), text, width);
        }
    }
    return out;
}

// ---------------------------------------------------------------------------
// The command line, parsed as argparse parses gunicorn's (allow_abbrev,
// "-w4", "-DR", "--opt=value", "--" and negative numbers as values).

namespace {

enum { OPT_HELP = -1, OPT_VERSION = -2 };

struct OptionString {
    std::string flag;
    int setting;  // index in the table, or OPT_HELP / OPT_VERSION
};

const std::vector<OptionString> &option_strings() {
    static const std::vector<OptionString> opts = [] {
        std::vector<OptionString> o{
            {"-h", OPT_HELP}, {"--help", OPT_HELP}, {"-v", OPT_VERSION}, {"--version", OPT_VERSION}};
        const auto &t = settings_table();
        for (size_t k = 0; k < t.size(); ++k)
            for (const auto &f : t[k].flags) o.push_back({f, static_cast<int>(k)});
        return o;
    }();
    return opts;
}

const OptionString *exact_option(const std::string &flag) {
    for (const auto &o : option_strings())
        if (o.flag == flag) return &o;
    return nullptr;
}

struct Classified {
    enum Kind { POSITIONAL, OPTION, UNKNOWN } kind = POSITIONAL;
    const OptionString *opt = nullptr;
    bool has_explicit = false;
    std::string explicit_arg;
};

// argparse _parse_optional.
Classified classify(const std::string &arg) {
    Classified c;
    if (arg.empty() || arg[0] != '-') return c;
    if (const OptionString *o = exact_option(arg)) {
        c.kind = Classified::OPTION;
        c.opt = o;
        return c;
    }
    if (arg.size() == 1) return c;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
        if (const OptionString *o = exact_option(arg.substr(0, eq))) {
            c.kind = Classified::OPTION;
            c.opt = o;
            c.has_explicit = true;
            c.explicit_arg = arg.substr(eq + 1);
            return c;
        }
    }
    // _get_option_tuples: unique prefixes of long options, "-xVALUE".
    std::vector<Classified> found;
    if (arg[1] == '-') {
        std::string prefix = eq == std::string::npos ? arg : arg.substr(0, eq);
        for (const auto &o : option_strings()) {
            if (o.flag.rfind(prefix, 0) != 0) continue;
            Classified m;
            m.kind = Classified::OPTION;
            m.opt = &o;
            if (eq != std::string::npos) {
                m.has_explicit = true;
                m.explicit_arg = arg.substr(eq + 1);
            }
            found.push_back(m);
        }
    } else {
        std::string short_prefix = arg.substr(0, 2);
        for (const auto &o : option_strings()) {
            Classified m;
            m.kind = Classified::OPTION;
            m.opt = &o;
            if (o.flag == short_prefix) {
                m.has_explicit = true;
                m.explicit_arg = arg.substr(2);
                found.push_back(m);
            } else if (o.flag.rfind(arg, 0) == 0) {
                found.push_back(m);
            }
        }
    }
    if (found.size() > 1) {
        std::vector<std::string> names;
        for (const auto &m : found) names.push_back(m.opt->flag);
        throw UsageError("ambiguous option: " + arg + " could match " + join(names, ", "));
    }
    if (found.size() == 1) return found[0];
    // A negative number is a value (no option looks like one).
    bool negative_number = arg.size() > 1;
    bool dot = false, digits = false;
    for (size_t k = 1; k < arg.size(); ++k) {
        if (arg[k] >= '0' && arg[k] <= '9') digits = true;
        else if (arg[k] == '.' && !dot) dot = true;
        else negative_number = false;
    }
    if (negative_number && digits && !(dot && arg.back() == '.')) return c;
    if (arg.find(' ') != std::string::npos) return c;
    c.kind = Classified::UNKNOWN;
    return c;
}

struct Parsed {
    std::map<size_t, V> values;  // setting index -> argparse namespace value
    std::vector<std::string> positionals;
    int action = 0;  // OPT_HELP or OPT_VERSION when one of them was given
};

std::string arg_name(const Setting &s) { return join(s.flags, "/"); }

V convert(const Setting &s, const std::string &raw) {
    if (s.cli_type == CliType::STR) return V::str(raw);
    IntParse p = s.cli_type == CliType::INT ? py_int(raw, 10) : auto_int(raw);
    if (!p.ok || p.overflow)
        throw UsageError("argument " + arg_name(s) + ": invalid " +
                         (s.cli_type == CliType::INT ? "int" : "auto_int") + " value: " + repr_str(raw));
    return V::integer(p.value);
}

// lenient: collect what can be read and report nothing (help, version
// and errors alike), for early_virtualenv(); load_config parses again.
Parsed parse_args(const std::vector<std::string> &args, bool lenient = false) {
    const auto &table = settings_table();
    Parsed out;
    // argparse classifies every argument before consuming any, so an
    // ambiguous option fails first wherever it is.
    size_t dashdash = args.size();
    std::vector<Classified> kinds;
    for (size_t k = 0; k < args.size(); ++k) {
        if (args[k] == "--") {
            dashdash = k;
            break;
        }
        try {
            kinds.push_back(classify(args[k]));
        } catch (const UsageError &) {
            if (!lenient) throw;
            kinds.emplace_back();
            kinds.back().kind = Classified::UNKNOWN;
        }
    }
    std::vector<std::string> extras;
    for (size_t k = 0; k < dashdash; ++k) {
        Classified c = kinds[k];
        if (c.kind == Classified::POSITIONAL) {
            out.positionals.push_back(args[k]);
            continue;
        }
        if (c.kind == Classified::UNKNOWN) {
            extras.push_back(args[k]);
            continue;
        }
        for (;;) {
            if (c.opt->setting < 0 && lenient) break;
            if (c.opt->setting < 0) {
                // "-hv" acts as -h (it comes first); "--help=x" is an error.
                if (c.has_explicit && c.opt->flag[1] == '-')
                    throw UsageError(std::string("argument ") +
                                     (c.opt->setting == OPT_HELP ? "-h/--help" : "-v/--version") +
                                     ": ignored explicit argument " + repr_str(c.explicit_arg));
                out.action = c.opt->setting;
                return out;
            }
            size_t idx = static_cast<size_t>(c.opt->setting);
            const Setting &s = table[idx];
            if (s.action == CliAction::STORE_TRUE || s.action == CliAction::STORE_FALSE) {
                out.values[idx] = V::boolean(s.action == CliAction::STORE_TRUE);
                if (!c.has_explicit) break;
                // "-DR": the rest of a single-dash flag is more flags.
                if (c.opt->flag[1] != '-' && !c.explicit_arg.empty()) {
                    const OptionString *next = exact_option(std::string("-") + c.explicit_arg[0]);
                    if (!next && lenient) break;
                    if (!next)
                        throw UsageError("argument " + arg_name(s) + ": ignored explicit argument " +
                                         repr_str(c.explicit_arg));
                    std::string rest = c.explicit_arg.substr(1);
                    c.opt = next;
                    c.has_explicit = !rest.empty();
                    c.explicit_arg = rest;
                    continue;
                }
                if (lenient) break;
                throw UsageError("argument " + arg_name(s) + ": ignored explicit argument " + repr_str(c.explicit_arg));
            }
            std::string raw;
            bool have = false;
            if (c.has_explicit) {
                raw = c.explicit_arg;
                have = true;
            } else if (k + 1 < dashdash && kinds[k + 1].kind == Classified::POSITIONAL) {
                raw = args[++k];
                have = true;
            }
            if (s.action == CliAction::OPTIONAL) {
                out.values[idx] = have ? V::str(raw) : V::str(s.optional_const);
                break;
            }
            if (!have && lenient) break;
            if (!have) throw UsageError("argument " + arg_name(s) + ": expected one argument");
            V v;
            try {
                v = convert(s, raw);
            } catch (const UsageError &) {
                if (!lenient) throw;
                break;
            }
            if (s.action == CliAction::APPEND) {
                V &list = out.values[idx];
                list.kind = V::LIST;
                list.list.push_back(v);
            } else {
                out.values[idx] = v;
            }
            break;
        }
    }
    for (size_t k = dashdash + 1; k < args.size(); ++k) out.positionals.push_back(args[k]);
    if (!extras.empty() && !lenient) throw UsageError("unrecognized arguments: " + join(extras, " "));
    return out;
}

// shlex.split (POSIX mode) for GUNICORN_CMD_ARGS.
std::vector<std::string> shlex_split(const std::string &s) {
    std::vector<std::string> out;
    std::string tok;
    bool in_tok = false;
    size_t k = 0;
    while (k < s.size()) {
        char c = s[k];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_tok) out.push_back(tok);
            tok.clear();
            in_tok = false;
            ++k;
        } else if (c == '\\') {
            if (k + 1 >= s.size()) throw ConfigError("No escaped character");
            tok += s[k + 1];
            in_tok = true;
            k += 2;
        } else if (c == '\'') {
            size_t end = s.find('\'', k + 1);
            if (end == std::string::npos) throw ConfigError("No closing quotation");
            tok += s.substr(k + 1, end - k - 1);
            in_tok = true;
            k = end + 1;
        } else if (c == '"') {
            ++k;
            for (;;) {
                if (k >= s.size()) throw ConfigError("No closing quotation");
                if (s[k] == '"') break;
                // Inside double quotes a backslash escapes only " and \.
                if (s[k] == '\\' && k + 1 < s.size() && (s[k + 1] == '"' || s[k + 1] == '\\')) ++k;
                tok += s[k++];
            }
            in_tok = true;
            ++k;
        } else {
            tok += c;
            in_tok = true;
            ++k;
        }
    }
    if (in_tok) out.push_back(tok);
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Loading.

static std::vector<std::string> g_argv;

// The Python objects (hooks, dicts) of each successful load still in use,
// by load number (Config::python_load): the running configuration's and,
// during a HUP reload, the new one's, until keep_python_settings() drops
// the other. Never destroyed: a static destructor would run after
// Py_Finalize.
using PythonObjects = std::map<std::string, py::Ref>;
static std::map<int, PythonObjects> &python_objects() {
    static auto *loads = new std::map<int, PythonObjects>();
    return *loads;
}

static PyObject *find_python_object(const PythonObjects &objects, const std::string &name) {
    auto it = objects.find(name);
    return it == objects.end() ? nullptr : it->second.get();
}

const std::vector<std::string> &original_argv() { return g_argv; }

std::string early_virtualenv(const std::vector<std::string> &argv) {
    size_t idx = index_of("virtualenv");
    auto given = [idx](const std::vector<std::string> &args, std::string &out) {
        Parsed p = parse_args(args, true);
        auto it = p.values.find(idx);
        if (it == p.values.end()) return false;
        out = it->second.s;
        return true;
    };
    std::string dir;
    std::vector<std::string> args(argv.size() > 1 ? argv.begin() + 1 : argv.end(), argv.end());
    bool found = given(args, dir);
    if (!found) {
        if (const char *e = std::getenv("GUNICORN_CMD_ARGS")) {
            try {
                found = given(shlex_split(e), dir);
            } catch (const ConfigError &) {
                // Unbalanced quotes: load_config says so.
            }
        }
    }
    if (!found) {
        const char *e = std::getenv("VIRTUAL_ENV");
        dir = e ? e : "";
    }
    dir = strip(dir);
    return dir.empty() ? dir : abspath(dir);
}

// Two virtualenv values name the same directory ("" = none).
static bool same_virtualenv(const std::string &a, const std::string &b) {
    if (a.empty() || b.empty()) return a == b;
    char ra[PATH_MAX], rb[PATH_MAX];
    if (::realpath(a.c_str(), ra) && ::realpath(b.c_str(), rb)) return std::strcmp(ra, rb) == 0;
    return a == b;
}

// How many load_config calls this process made: the first one is main's
// start-up, later ones are HUP reloads.
static int g_loads = 0;

PyObject *python_setting(const std::string &name) {
    const auto &loads = python_objects();
    return loads.empty() ? nullptr : find_python_object(loads.rbegin()->second, name);
}

PyObject *python_setting(const Config &cfg, const std::string &name) {
    auto it = python_objects().find(cfg.python_load);
    return it == python_objects().end() ? nullptr : find_python_object(it->second, name);
}

void keep_python_settings(const Config &cfg) {
    auto &loads = python_objects();
    for (auto it = loads.begin(); it != loads.end();) it = it->first == cfg.python_load ? std::next(it) : loads.erase(it);
}

static std::string invalid_value(const Setting &s, const V &v, const Invalid &e) {
    return "Invalid value for " + std::string(s.name) + ": " + (e.value.empty() ? py_str(v) : e.value) + " (" +
           e.reason + ")";
}

// One setting's validated value into cfg: refused, warned about or
// applied as the table says.
static void resolve(Config &cfg, const Setting &s, const V &v, const std::string &default_shown) {
    bool is_default = s.same_as_default ? s.same_as_default(v) : shown(v) == default_shown;
    if (s.support == Support::REFUSED && !is_default)
        throw ConfigError("Setting " + std::string(s.name) + " = " + py_str(v) + " is not supported: " + s.reason);
    if (s.support == Support::ACCEPTED_NO_EFFECT && !is_default)
        warn(cfg, std::string(s.name) + " = " + shown(v) + " has no effect: " + s.reason);
    if (s.apply) {
        try {
            s.apply(cfg, v);
        } catch (const Invalid &e) {
            throw ConfigError(invalid_value(s, v, e));
        }
    }
    cfg.rendered[s.name] = shown(v);
}

Support value_support(const Setting &s, const std::string &value, std::string &why) {
    Config cfg;
    why.clear();
    try {
        V given = V::str(value), v;
        try {
            v = s.validate(given);
        } catch (const Invalid &e) {
            throw ConfigError(invalid_value(s, given, e));
        }
        resolve(cfg, s, v, shown(s.validate(s.default_value())));
    } catch (const ConfigError &e) {
        why = e.what();
        return Support::REFUSED;
    }
    if (cfg.warnings.empty()) return Support::IMPLEMENTED;
    why = cfg.warnings.front();
    return Support::ACCEPTED_NO_EFFECT;
}

namespace {

// The table's status column; "refused:" and "no effect:" are followed by
// the reason, wrapped under it.
const char *status_word(Support support) {
    switch (support) {
    case Support::IMPLEMENTED: return "implemented";
    case Support::ACCEPTED_NO_EFFECT: return "no effect:";
    case Support::REFUSED: return "refused:";
    }
    return "?";
}

// A reason for the table: its first line; a warning's "NAME = VALUE has
// no effect: " and an error's trailing colon dropped.
std::string table_reason(std::string why) {
    why = why.substr(0, why.find('\n'));
    size_t cut = why.find(" has no effect: ");
    if (cut != std::string::npos) why = why.substr(cut + 16);
    while (!why.empty() && (why.back() == ':' || why.back() == ' ')) why.pop_back();
    return why;
}

// Appends `words` to the table line in `line`, wrapped at column 79 with
// continuation lines indented to `indent`.
void wrap_into(std::string &out, std::string &line, const std::string &words, size_t indent) {
    std::string word;
    std::istringstream in(words);
    while (in >> word) {
        if (line.size() + 1 + word.size() > 79 && line.size() > indent) {
            out += line + "\n";
            line.assign(indent, ' ');
            line += word;
        } else {
            line += (line.empty() || line.back() == ' ' ? "" : " ") + word;
        }
    }
}

}  // namespace

std::string format_support_table() {
    const auto &table = settings_table();
    size_t width = 0;
    for (const auto &s : table) width = std::max(width, std::strlen(s.name));
    const size_t status_col = 4 + width + 2;
    std::vector<std::string> sections;
    for (const auto &s : table)
        if (std::find(sections.begin(), sections.end(), s.section) == sections.end()) sections.push_back(s.section);
    std::string out;
    for (const auto &section : sections) {
        out += "  " + section + "\n";
        for (const auto &s : table) {
            if (section != s.section) continue;
            // (status, reason) -> labels, in the order first met.
            std::vector<std::pair<std::pair<Support, std::string>, std::string>> groups;
            if (s.samples.empty()) {
                groups.push_back({{s.support, s.reason}, ""});
            } else {
                for (const auto &sample : s.samples) {
                    std::string why;
                    Support support = value_support(s, sample.value, why);
                    std::pair<Support, std::string> key{support, table_reason(why)};
                    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto &e) { return e.first == key; });
                    if (g == groups.end()) groups.push_back({key, sample.label});
                    else g->second += std::string(", ") + sample.label;
                }
            }
            std::string line = "    " + std::string(s.name);
            for (const auto &g : groups) {
                line.resize(status_col, ' ');
                std::string text = status_word(g.first.first);
                // With samples: "implemented: 1", "no effect: 2 or more: why".
                if (!g.second.empty()) text = (text.back() == ':' ? text : text + ":") + " " + g.second;
                if (!g.second.empty() && g.first.first != Support::IMPLEMENTED) text += ":";
                if (g.first.first != Support::IMPLEMENTED) text += " " + g.first.second;
                wrap_into(out, line, text, status_col + 2);
                out += line + "\n";
                line.clear();
            }
        }
    }
    return out;
}

std::string format_support_samples() {
    std::string out;
    for (const auto &s : settings_table()) {
        for (const auto &sample : s.samples) {
            std::string why;
            Support support = value_support(s, sample.value, why);
            out += std::string(s.name) + "\t" + sample.value + "\t" +
                   (support == Support::IMPLEMENTED ? "implemented"
                    : support == Support::REFUSED   ? "refused"
                                                    : "no-effect") +
                   "\n";
        }
    }
    return out;
}

namespace {

struct Loader {
    const std::vector<Setting> &table = settings_table();
    std::vector<V> cur;
    std::vector<std::string> default_shown;

    // Config.set: the validator's result replaces the value.
    void set(size_t idx, const V &v) {
        const Setting &s = table[idx];
        try {
            cur[idx] = s.validate(v);
        } catch (const Invalid &e) {
            throw ConfigError(invalid_value(s, v, e));
        }
    }

    void apply_parsed(const Parsed &p) {
        for (const auto &kv : p.values) set(kv.first, kv.second);
    }

    // Application.chdir: os.chdir, and the directory first on sys.path.
    void enter_chdir() {
        const std::string &dir = cur[index_of("chdir")].s;
        if (::chdir(dir.c_str()) != 0)
            throw ConfigError("[Errno " + std::to_string(errno) + "] " + std::strerror(errno) + ": " + repr_str(dir));
        if (!g_helpers) return;
        py::Ref args = py::Ref::steal(Py_BuildValue("(s)", dir.c_str()));
        py::Ref r = call_helper("add_path", args.get());
        if (!r) throw ConfigError("cannot add " + dir + " to sys.path: " + take_exception());
    }

    // WSGIApplication.init: --paste FILE[#name] made absolute (from the
    // start-up directory, as every load starts there); the file must exist.
    static std::string paste_app_uri(const std::string &given) {
        std::string uri = normpath(!given.empty() && given[0] == '/' ? given : startup_dir() + "/" + given);
        std::string ini = uri.substr(0, uri.find('#'));
        if (!path_exists(ini)) throw ConfigError(repr_str(ini) + " not found (--paste " + given + ")");
        return uri;
    }

    // pasterapp.has_logging_config: the ini file has a [loggers] section.
    static bool has_logging_config(const std::string &ini) {
        if (!g_helpers) return false;
        py::Ref args = py::Ref::steal(Py_BuildValue("(s)", ini.c_str()));
        py::Ref r = call_helper("has_logging_config", args.get());
        if (!r) throw ConfigError("cannot read the PasteDeploy file " + ini + ": " + take_exception());
        return PyObject_IsTrue(r.get()) == 1;
    }

    // Application.load_config_from_module_name_or_filename.
    void read_config(const std::string &location, Config &cfg) {
        if (!g_helpers)
            throw ConfigError("cannot read the config file " + location + ": the Python interpreter is not running");
        py::Ref vars;
        if (starts_with(location, "python:")) {
            std::string module = location.substr(7);
            py::Ref args = py::Ref::steal(Py_BuildValue("(s)", module.c_str()));
            vars = call_helper("load_module", args.get());
            if (!vars) throw ConfigError(take_exception());
            cfg.config_file = location;
        } else {
            std::string filename = starts_with(location, "file:") ? location.substr(5) : location;
            if (!path_exists(filename)) throw ConfigError(repr_str(filename) + " doesn't exist");
            py::Ref args = py::Ref::steal(Py_BuildValue("(s)", filename.c_str()));
            vars = call_helper("load_file", args.get());
            if (!vars) throw ConfigFileError(filename, py::fetch_traceback());
            cfg.config_file = filename;
        }
        if (!PyDict_Check(vars.get())) throw ConfigError("config module namespace is not a dict");
        // Names exactly equal to a setting, in the file's order.
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        std::vector<std::pair<size_t, py::Ref>> found;
        while (PyDict_Next(vars.get(), &pos, &key, &value)) {
            if (!PyUnicode_Check(key)) continue;
            size_t idx = index_of(utf8(key).c_str());
            if (idx < table.size()) found.emplace_back(idx, py::Ref::borrow(value));
        }
        for (auto &f : found) set(f.first, from_py(f.second.get()));
    }

    Config load(const std::vector<std::string> &argv);
};

Config Loader::load(const std::vector<std::string> &argv) {
    Config cfg;
    cur.resize(table.size());
    default_shown.resize(table.size());

    // Defaults, through their validators as Setting.__init__ does (a bad
    // $WEB_CONCURRENCY fails here). The Python-valued ones are texts.
    for (size_t k = 0; k < table.size(); ++k) {
        const Setting &s = table[k];
        V d;
        try {
            d = s.default_value();
        } catch (const Invalid &e) {
            throw ConfigError("Invalid value for " + std::string(s.name) + " (" + e.reason + ")");
        }
        if (s.type == SettingType::PYTHON || d.kind == V::NONE) cur[k] = d;
        else set(k, d);
        default_shown[k] = shown(cur[k]);
    }

    // The command line first: argparse errors come before anything else.
    std::vector<std::string> args(argv.size() > 1 ? argv.begin() + 1 : argv.end(), argv.end());
    Parsed cli = parse_args(args);
    auto act = [](int action) {
        if (action == OPT_HELP) {
            std::fputs(format_help().c_str(), stdout);
            std::fflush(stdout);
            std::exit(0);
        }
        if (action == OPT_VERSION) {
            std::printf("%s (version %s)\n", PROG, CUNICORN_VERSION);
            std::fflush(stdout);
            std::exit(0);
        }
    };
    act(cli.action);

    // WSGIApplication.init: --paste on the command line (only there) names
    // the app and the processes, and any positional app is ignored; else
    // the positional app does.
    std::string app_uri;
    auto paste = cli.values.find(index_of("paste"));
    if (paste != cli.values.end() && !paste->second.s.empty()) {
        app_uri = paste_app_uri(paste->second.s);
        std::string ini = app_uri.substr(0, app_uri.find('#'));
        set(index_of("default_proc_name"), V::str(ini));
        if (has_logging_config(ini)) set(index_of("logconfig"), V::str(ini));
    } else if (!cli.positionals.empty()) {
        app_uri = cli.positionals[0];
        set(index_of("default_proc_name"), V::str(app_uri));
        if (cli.positionals.size() > 1) {
            std::vector<std::string> rest(cli.positionals.begin() + 1, cli.positionals.end());
            warn(cfg, "ignoring extra positional arguments: " + join(rest, " "));
        }
    }

    enter_chdir();

    Parsed env;
    if (const char *e = std::getenv("GUNICORN_CMD_ARGS")) {
        env = parse_args(shlex_split(e));
        act(env.action);
    }

    size_t config_idx = index_of("config");
    auto given_config = [&](const Parsed &p) -> const V * {
        auto it = p.values.find(config_idx);
        return it == p.values.end() ? nullptr : &it->second;
    };
    if (const V *c = given_config(cli)) {
        cfg.config = c->s;
        read_config(c->s, cfg);
    } else if (const V *ce = given_config(env)) {
        cfg.config = ce->s;
        read_config(ce->s, cfg);
    } else {
        std::string path = os_getcwd() + "/gunicorn.conf.py";
        if (path_exists(path)) read_config(path, cfg);
    }

    apply_parsed(env);
    apply_parsed(cli);

    enter_chdir();

    // WSGIApplication.load_config.
    V &wsgi_app = cur[index_of("wsgi_app")];
    if (app_uri.empty() && wsgi_app.kind == V::STR) app_uri = wsgi_app.s;
    if (app_uri.empty()) throw ConfigError("No application module specified.");

    // Resolve into Config; refuse what cannot work, warn about what is
    // ignored.
    std::map<std::string, py::Ref> objects;
    for (size_t k = 0; k < table.size(); ++k) {
        const Setting &s = table[k];
        const V &v = cur[k];
        if (s.type == SettingType::PYTHON) {
            cfg.python_values[s.name] = v.obj != nullptr;
            if (v.obj) objects[s.name] = py::Ref::borrow(v.obj->get());
        }
        resolve(cfg, s, v, default_shown[k]);
    }
    cfg.wsgi_app = app_uri;
    if (!given_config(cli) && !given_config(env)) cfg.config.clear();

    // The interpreter cannot move to another virtualenv: at start-up main
    // re-executes cunicorn in the new one, which then says everything
    // this process would have; a HUP reload keeps the running one.
    bool quiet = false;
    if (py::initialized() && !same_virtualenv(cfg.virtualenv, py::virtualenv())) {
        cfg.virtualenv_restart = true;
        if (g_loads == 1) quiet = true;
        else
            warn(cfg, "virtualenv = " + (cfg.virtualenv.empty() ? std::string("None") : cfg.virtualenv) +
                          " needs a restart (USR2 upgrade, or stop and start): the interpreter was started " +
                          (py::virtualenv().empty() ? std::string("outside any virtualenv") : "in " + py::virtualenv()));
    }

    if (!quiet)
        for (const auto &w : cfg.warnings) std::fprintf(stderr, "Warning: %s\n", w.c_str());
    std::fflush(stderr);
    cfg.python_load = g_loads;
    python_objects()[g_loads] = std::move(objects);
    return cfg;
}

}  // namespace

Config load_config(const std::vector<std::string> &argv) {
    g_argv = argv;
    ++g_loads;
    (void)startup_dir();  // captured before anything changes directory
    Gil gil;
    py::Ref helpers;
    if (py::initialized()) {
        // The helpers live in a module of their own, made anew for each load.
        helpers = py::Ref::steal(PyModule_New("_cunicorn_config"));
        if (helpers) {
            PyObject *dict = PyModule_GetDict(helpers.get());
            PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins());
            py::Ref code = py::Ref::steal(Py_CompileString(HELPERS_SRC, "<cunicorn config>", Py_file_input));
            py::Ref done = code ? py::Ref::steal(PyEval_EvalCode(code.get(), dict, dict)) : py::Ref();
            if (!done) {
                std::string tb = py::fetch_traceback();
                throw ConfigError("cannot set up the config loader: " + tb);
            }
        }
    }
    struct Scope {
        explicit Scope(PyObject *h) { g_helpers = h; }
        ~Scope() { g_helpers = nullptr; }
    } scope(helpers.get());
    try {
        Loader loader;
        return loader.load(argv);
    } catch (const ConfigError &) {
        throw;
    } catch (const Invalid &e) {
        throw ConfigError(e.reason);
    } catch (const std::exception &e) {
        throw ConfigError(std::string("internal error while loading the configuration: ") + e.what());
    }
}

Config load_config(int argc, char **argv) {
    std::vector<std::string> args;
    for (int k = 0; k < argc; ++k) args.emplace_back(argv[k] ? argv[k] : "");
    return load_config(args);
}

std::string format_config(const Config &cfg) {
    const auto &table = settings_table();
    size_t kmax = 0;
    for (const auto &s : table) kmax = std::max(kmax, std::strlen(s.name));
    std::map<std::string, std::string> values = cfg.rendered;
    if (values.empty()) {
        // Not from load_config: the defaults.
        for (const auto &s : table) {
            try {
                V d = s.default_value();
                values[s.name] = shown(s.type == SettingType::PYTHON || d.kind == V::NONE ? d : s.validate(d));
            } catch (const Invalid &) {
                values[s.name] = "?";
            }
        }
    }
    std::string out;
    for (const auto &kv : values) {
        std::string name = kv.first;
        name.resize(std::max(kmax, name.size()), ' ');
        out += name + " = " + kv.second + "\n";
    }
    return out;
}

int report_config_error(const ConfigError &e) {
    if (dynamic_cast<const UsageError *>(&e)) {
        std::fprintf(stderr, "%s%s: error: %s\n", usage_line().c_str(), PROG, e.what());
        std::fflush(stderr);
        return 2;
    }
    if (const auto *f = dynamic_cast<const ConfigFileError *>(&e)) {
        std::fprintf(stderr, "%s\n%s", f->what(), f->traceback.c_str());
        std::fflush(stderr);
        return 1;
    }
    // BaseApplication.do_load_config: a blank line, then the error.
    std::fprintf(stderr, "\nError: %s\n", e.what());
    std::fflush(stderr);
    return 1;
}

}  // namespace cunicorn
