// Setting values as gunicorn holds them (None, bool, int, str, list or a
// Python object): Python's str()/repr()/int() semantics, os.path helpers,
// and the conversions between these values and the interpreter's objects.
#include "cunicorn/config_impl.h"

#include "cunicorn/pyembed.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace cunicorn::conf {

// ---------------------------------------------------------------------------
// Small string helpers with Python's semantics.

bool py_space(char c) {
    // str.strip() / int(): ASCII whitespace, including the separators
    // \x1c-\x1f that Python also treats as space.
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::string strip(const std::string &s) {
    size_t b = 0, e = s.size();
    while (b < e && py_space(s[b])) ++b;
    while (e > b && py_space(s[e - 1])) --e;
    return s.substr(b, e - b);
}

std::string lower(std::string s) {
    for (char &c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

bool starts_with(const std::string &s, const char *p) { return s.rfind(p, 0) == 0; }

bool ends_with(const std::string &s, const std::string &p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// str.split(sep): keeps empty pieces.
std::vector<std::string> split(const std::string &s, const std::string &sep) {
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

std::string join(const std::vector<std::string> &v, const char *sep) {
    std::string out;
    for (size_t k = 0; k < v.size(); ++k) {
        if (k) out += sep;
        out += v[k];
    }
    return out;
}

// repr() of a str: single quotes unless the text has ' and no ".
std::string repr_str(const std::string &s) {
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
IntParse py_int(const std::string &text, int base) {
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
IntParse auto_int(const std::string &x) {
    if (x.size() > 1 && x[0] == '0' && x[1] >= '0' && x[1] <= '9') return py_int("0o" + x.substr(1), 0);
    return py_int(x, 0);
}

// ---------------------------------------------------------------------------
// Rendering values the way Python's str() and repr() do.

std::string py_str(const V &v) {
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

std::string py_repr(const V &v) {
    if (v.kind == V::STR) return repr_str(v.s);
    if (v.kind == V::PYOBJ) return v.repr;
    return py_str(v);
}

// Config.__str__: callables as <QualName()>, everything else str().
std::string shown(const V &v) { return v.kind == V::PYOBJ ? v.shown : py_str(v); }

// ---------------------------------------------------------------------------
// Paths (os.path semantics).

std::string normpath(const std::string &path) {
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

std::string os_getcwd() {
    std::vector<char> buf(PATH_MAX);
    for (;;) {
        if (::getcwd(buf.data(), buf.size())) return buf.data();
        if (errno != ERANGE) return ".";
        buf.resize(buf.size() * 2);
    }
}

// util.getcwd: $PWD when it names the current directory (keeps symlinked
// paths as the user typed them), else getcwd().
std::string gunicorn_getcwd() {
    std::string cwd = os_getcwd();
    const char *pwd = std::getenv("PWD");
    struct stat a, b;
    if (pwd && ::stat(pwd, &a) == 0 && ::stat(cwd.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        return pwd;
    return cwd;
}

std::string abspath(const std::string &p) {
    return normpath(!p.empty() && p[0] == '/' ? p : gunicorn_getcwd() + "/" + p);
}

bool path_exists(const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

bool is_dir(const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// chdir's default: the directory cunicorn was started in. Kept across
// load_config calls because gunicorn computes it once, at import: a HUP
// reload starts again from there, not from the previous --chdir.
static std::string g_startup_dir;

const std::string &startup_dir() {
    if (g_startup_dir.empty()) g_startup_dir = gunicorn_getcwd();
    return g_startup_dir;
}

// ---------------------------------------------------------------------------
// The Python side: the GIL, conversions, and gunicorn's validators that
// must run as Python (callables and their arity, module.func strings) plus
// the config-file loader, kept as Python source so their behaviour and
// messages are gunicorn's own.

// The helpers module of the load_config call in progress (validators are
// plain functions and reach it here). Null outside load_config.
PyObject *g_helpers = nullptr;

std::string utf8(PyObject *o) {
    if (!o) return {};
    Py_ssize_t n = 0;
    const char *c = PyUnicode_AsUTF8AndSize(o, &n);
    if (!c) {
        PyErr_Clear();
        return "<unprintable>";
    }
    return std::string(c, static_cast<size_t>(n));
}

std::string py_obj_str(PyObject *o) {
    py::Ref s = py::Ref::steal(PyObject_Str(o));
    if (!s) PyErr_Clear();
    return utf8(s.get());
}

std::string py_obj_repr(PyObject *o) {
    py::Ref s = py::Ref::steal(PyObject_Repr(o));
    if (!s) PyErr_Clear();
    return utf8(s.get());
}

// The message of the pending exception, cleared.
std::string take_exception() {
    std::string msg = py::exception_message();
    PyErr_Clear();
    return msg;
}

py::Ref call_helper(const char *fn, PyObject *args_tuple) {
    if (!g_helpers) throw Invalid{"a Python value needs the embedded interpreter"};
    PyObject *f = PyDict_GetItemString(PyModule_GetDict(g_helpers), fn);  // borrowed
    if (!f) throw Invalid{std::string("internal: no helper ") + fn};
    return py::Ref::steal(PyObject_CallObject(f, args_tuple));
}

V from_py(PyObject *o) {
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

py::Ref to_py(const V &v) {
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
        // A value known by its text: one of gunicorn's defaults (a hook,
        // a dict) or a tuple made by a validator.
        if (g_helpers) {
            py::Ref args = py::Ref::steal(Py_BuildValue("(s)", v.repr.c_str()));
            return call_helper("builtin_value", args.get());
        }
        return py::Ref::steal(PyUnicode_FromString(v.s.c_str()));
    }
    return {};
}

}  // namespace cunicorn::conf

namespace cunicorn {

void reset_startup_dir() { conf::g_startup_dir.clear(); }

}  // namespace cunicorn
