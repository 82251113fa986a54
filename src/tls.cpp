// TLS through the interpreter's ssl module (see tls.h).
#include "cunicorn/tls.h"

#include "cunicorn/hooks.h"
#include "cunicorn/pyref.h"

#include <climits>

namespace cunicorn::tls {

using py::Ref;

namespace {

// What the C++ side calls, written once in Python: the context factory
// gunicorn's sslcontext() builds (each failure names the setting), the
// hook call, and the per-connection objects.
const py::Source HELPERS_PY = {"src/py/tls.py",
#include "py/tls.inc"
};

struct Names {
    PyObject *build, *session;                            // HELPERS_PY's functions
    PyObject *WantRead, *ZeroReturn, *Eof;                // ssl's exceptions
    PyObject *read, *write, *write_eof, *do_handshake, *shutdown, *pending;  // method names
};
Names N{};

// False, with the Python error set, when the helpers or ssl's names
// cannot be had.
bool init_names() {
    if (N.build) return true;
    Ref ns = Ref::steal(PyDict_New());
    if (!ns || !py::exec_source(HELPERS_PY, ns.get())) return false;
    Ref ssl = Ref::steal(PyImport_ImportModule("ssl"));
    if (!ssl) return false;
    for (auto [slot, name] : {std::pair{&N.session, "session"}, {&N.build, "build"}})
        if (!(*slot = Py_XNewRef(PyDict_GetItemString(ns.get(), name)))) {
            PyErr_Format(PyExc_NameError, "%s defines no %s", HELPERS_PY.path, name);
            return false;
        }
    for (auto [slot, name] : {std::pair{&N.WantRead, "SSLWantReadError"}, {&N.ZeroReturn, "SSLZeroReturnError"},
                              {&N.Eof, "SSLEOFError"}})
        if (!(*slot = PyObject_GetAttrString(ssl.get(), name))) return false;
    for (auto [slot, name] : {std::pair{&N.read, "read"}, {&N.write, "write"}, {&N.write_eof, "write_eof"},
                              {&N.do_handshake, "do_handshake"}, {&N.shutdown, "shutdown"}, {&N.pending, "pending"}})
        if (!(*slot = PyUnicode_InternFromString(name))) return false;
    return true;
}

// Holds the GIL whether or not the caller did (see tls.h).
class Gil {
public:
    Gil() : state_(PyGILState_Ensure()) {}
    ~Gil() { PyGILState_Release(state_); }
    Gil(const Gil &) = delete;
    Gil &operator=(const Gil &) = delete;

private:
    PyGILState_STATE state_;
};

PyObject *str_or_none(const std::string &s) {
    if (s.empty()) Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefaultAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

void release_context(PyObject *ctx) {
    if (!ctx || !Py_IsInitialized()) return;
    Gil gil;
    Py_DECREF(ctx);
}

}  // namespace

void load_context(Config &cfg) {
    cfg.tls_context.reset();
    if (!cfg.is_ssl()) return;
    Gil gil;
    if (!init_names()) throw ConfigError("TLS needs the interpreter's ssl module: " + py::fetch_traceback());
    PyObject *hook = cfg.python_values.count("ssl_context") && cfg.python_values.at("ssl_context")
                         ? python_setting("ssl_context")
                         : nullptr;
    Ref config;
    if (hook) {
        config = Ref::borrow(hooks::config_object(cfg));
        if (!config) throw ConfigError("ssl_context: " + py::fetch_traceback());
    }
    Ref ctx = Ref::steal(PyObject_CallFunction(N.build, "OOiNNNiN", hook ? hook : Py_None,
                                               config ? config.get() : Py_None, cfg.suppress_ragged_eofs ? 1 : 0,
                                               str_or_none(cfg.certfile),
                                               str_or_none(cfg.keyfile), str_or_none(cfg.ca_certs), cfg.cert_reqs,
                                               str_or_none(cfg.ciphers)));
    if (!ctx && hook) throw ConfigError("Exception in ssl_context hook:\n" + py::fetch_traceback());
    if (!ctx) {
        std::string reason = py::exception_message();
        PyErr_Clear();
        throw ConfigError("Invalid TLS configuration: " + reason);
    }
    cfg.tls_context = std::shared_ptr<PyObject>(ctx.release(), release_context);
}

Session::Session(const Config &cfg) : suppress_ragged_eofs_(cfg.suppress_ragged_eofs) {
    Gil gil;
    PyObject *parts = init_names() ? PyObject_CallOneArg(N.session, cfg.tls_context.get()) : nullptr;
    if (!parts || !PyArg_ParseTuple(parts, "OOO", &obj_, &incoming_, &outgoing_)) {
        obj_ = incoming_ = outgoing_ = nullptr;
        Py_XDECREF(parts);
        fail("cannot create the TLS session");
        return;
    }
    Py_INCREF(obj_);
    Py_INCREF(incoming_);
    Py_INCREF(outgoing_);
    Py_DECREF(parts);
}

Session::~Session() {
    if (!Py_IsInitialized()) return;
    Gil gil;
    Py_XDECREF(obj_);
    Py_XDECREF(incoming_);
    Py_XDECREF(outgoing_);
}

// Records the pending exception as the reason and clears it.
bool Session::fail(const char *what) {
    std::string msg = PyErr_Occurred() ? py::exception_message() : std::string();
    PyErr_Clear();
    error_ = msg.empty() ? what : std::string(what) + ": " + msg;
    return false;
}

bool Session::feed(const char *p, size_t n) {
    Gil gil;
    Ref view = Ref::steal(PyMemoryView_FromMemory(const_cast<char *>(p), static_cast<Py_ssize_t>(n), PyBUF_READ));
    Ref r = Ref::steal(view ? PyObject_CallMethodOneArg(incoming_, N.write, view.get()) : nullptr);
    input_waiting_ = true;
    return r || fail("TLS input");
}

void Session::feed_eof() {
    Gil gil;
    eof_fed_ = true;
    input_waiting_ = true;
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(incoming_, N.write_eof));
    if (!r) PyErr_Clear();
}

// The outcome of a failed SSLObject call, from its exception.
long Session::classify(const char *what) {
    if (PyErr_ExceptionMatches(N.WantRead)) {
        PyErr_Clear();
        input_waiting_ = false;
        // With the input ended, nothing more can come.
        return eof_fed_ ? ragged_eof() : WANT_MORE;
    }
    if (PyErr_ExceptionMatches(N.ZeroReturn)) {
        PyErr_Clear();
        return 0;
    }
    if (PyErr_ExceptionMatches(N.Eof)) {
        PyErr_Clear();
        return ragged_eof();
    }
    fail(what);
    return FAILED;
}

// The peer closed the connection without close_notify.
long Session::ragged_eof() {
    if (suppress_ragged_eofs_) return 0;
    error_ = "the peer closed the connection without a TLS close_notify";
    return FAILED;
}

long Session::read(char *dst, size_t n) {
    Gil gil;
    if (!handshake_done_) {
        Ref r = Ref::steal(PyObject_CallMethodNoArgs(obj_, N.do_handshake));
        if (!r) return classify("TLS handshake");
        handshake_done_ = true;
    }
    // Without new input since read() last ran dry it would only raise
    // SSLWantReadError, which costs more than knowing it.
    if (!input_waiting_) return WANT_MORE;
    if (n > INT_MAX) n = INT_MAX;
    Ref len = Ref::steal(PyLong_FromSize_t(n));
    Ref view = Ref::steal(PyMemoryView_FromMemory(dst, static_cast<Py_ssize_t>(n), PyBUF_WRITE));
    if (!len || !view) return classify("TLS read");
    Ref got = Ref::steal(PyObject_CallMethodObjArgs(obj_, N.read, len.get(), view.get(), nullptr));
    if (!got) return classify("TLS read");
    // 0: close_notify arrived (_ssl returns b'' for SSL_ERROR_ZERO_RETURN).
    long count = PyLong_AsLong(got.get());
    if (count > 0 && !eof_fed_ && nothing_buffered()) input_waiting_ = false;
    return count;
}

// Neither undecrypted input nor decrypted plaintext is waiting.
bool Session::nothing_buffered() {
    Ref in = Ref::steal(PyObject_GetAttr(incoming_, N.pending));
    if (!in || PyLong_AsLong(in.get()) != 0) {
        PyErr_Clear();
        return false;
    }
    Ref plain = Ref::steal(PyObject_CallMethodNoArgs(obj_, N.pending));
    bool none = plain && PyLong_AsLong(plain.get()) == 0;
    PyErr_Clear();
    return none;
}

bool Session::write(const char *p, size_t n) {
    Gil gil;
    while (n > 0) {
        size_t piece = n > INT_MAX ? INT_MAX : n;
        Ref view = Ref::steal(PyMemoryView_FromMemory(const_cast<char *>(p), static_cast<Py_ssize_t>(piece), PyBUF_READ));
        Ref r = Ref::steal(view ? PyObject_CallMethodOneArg(obj_, N.write, view.get()) : nullptr);
        if (!r) return fail("TLS write");
        long done = PyLong_AsLong(r.get());
        if (done <= 0) return fail("TLS write");
        p += done;
        n -= static_cast<size_t>(done);
    }
    return true;
}

void Session::close_notify() {
    Gil gil;
    if (!handshake_done_) return;
    // shutdown() writes close_notify, then waits for the peer's (WantRead).
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(obj_, N.shutdown));
    if (!r) PyErr_Clear();
}

void Session::take_output(std::string &out) {
    Gil gil;
    Ref bytes = Ref::steal(PyObject_CallMethodNoArgs(outgoing_, N.read));
    if (!bytes) {
        PyErr_Clear();
        return;
    }
    char *p;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(bytes.get(), &p, &n) == 0 && n > 0) out.append(p, static_cast<size_t>(n));
    PyErr_Clear();
}

}  // namespace cunicorn::tls
