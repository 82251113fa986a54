// The WSGI bridge (PEP 3333; environ as gunicorn/http/wsgi.py builds it).
//
// One boundary for Python errors: handle() calls the app, iterates the
// result and always calls its close(); any exception ends up there, is
// logged with its traceback and becomes a 500 (head not sent yet) or a
// closed connection (head sent).
#include "cunicorn/wsgi.h"

#include "cunicorn/config.h"
#include "cunicorn/hooks.h"
#include "cunicorn/log.h"
#include "cunicorn/pyref.h"
#include "cunicorn/reloader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#ifndef CUNICORN_VERSION
#define CUNICORN_VERSION "0.0.0"
#endif

namespace cunicorn::wsgi {

using py::Ref;

namespace {

// Per-request state shared by start_response, write() and wsgi.input.
struct State {
    Exchange *ctx = nullptr;
    http::Response *resp = nullptr;
    bool start_called = false;
    bool warned_no_body = false;
    bool body_error = false;
    http::Error body_error_code = http::Error::NONE;
    std::string body_error_message;
    bool client_gone = false;
    std::string scratch;   // head and chunk framing
};

// Interned constants, created once per process.
struct Names {
    PyObject *REQUEST_METHOD, *SCRIPT_NAME, *PATH_INFO, *QUERY_STRING, *RAW_URI, *SERVER_PROTOCOL,
        *CONTENT_TYPE, *CONTENT_LENGTH, *REMOTE_ADDR, *REMOTE_PORT, *SERVER_NAME, *SERVER_PORT,
        *wsgi_input, *wsgi_url_scheme, *HTTP_1_0, *HTTP_1_1, *http, *https, *empty, *close;
} N;

PyObject *g_app = nullptr;
PyObject *g_base_environ = nullptr;  // the keys every request shares
PyObject *g_file_wrapper_type = nullptr;
bool g_sendfile = true;
std::unordered_map<std::string, PyObject *> g_header_keys;  // name as sent -> environ key
bool g_cooperative = false;  // set_cooperative
// Method strings seen so far (bounded: clients choose them).
std::unordered_map<std::string, PyObject *> g_methods;

PyObject *intern(const char *s) { return PyUnicode_InternFromString(s); }

// A zeroed static type object with the header PyVarObject_HEAD_INIT gives.
PyTypeObject new_type() {
    PyTypeObject t{};
    Py_SET_REFCNT(reinterpret_cast<PyObject *>(&t), 1);
    return t;
}

// Lets other threads run while the request waits for its client (the
// body source and the sink may block). Greenlets keep the GIL: their waits
// switch to the hub, in Python (set_cooperative).
class ClientWait {
public:
    ClientWait() : saved_(g_cooperative ? nullptr : PyEval_SaveThread()) {}
    ~ClientWait() {
        if (saved_) PyEval_RestoreThread(saved_);
    }
    ClientWait(const ClientWait &) = delete;
    ClientWait &operator=(const ClientWait &) = delete;

private:
    PyThreadState *saved_;
};

// ---------------------------------------------------------------------
// wsgi.input
// ---------------------------------------------------------------------

struct InputObject {
    PyObject_HEAD
    State *st;           // null once the request is over
    std::string *buf;    // bytes read ahead by readline()
    bool eof;
};

// Pulls up to n more body bytes into in->buf; returns false on error
// (Python exception set).
bool input_fill(InputObject *in, size_t n) {
    if (!in->st) {
        PyErr_SetString(PyExc_ValueError, "I/O operation on a finished request body");
        return false;
    }
    if (in->eof) return true;
    size_t old = in->buf->size();
    in->buf->resize(old + n);
    long got;
    BodySource *src = in->st->ctx->body;
    {
        ClientWait outside;
        got = src->read(&(*in->buf)[old], n);
    }
    if (got < 0) {
        in->buf->resize(old);
        in->st->body_error = true;
        in->st->body_error_message = src->error();
        in->st->body_error_code = src->error_code();
        // An exception thrown into a waiting greenlet is the one to raise.
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_OSError, src->error().c_str());
        return false;
    }
    in->buf->resize(old + static_cast<size_t>(got));
    if (got == 0) in->eof = true;
    return true;
}

PyObject *take(InputObject *in, size_t n) {
    n = std::min(n, in->buf->size());
    PyObject *out = PyBytes_FromStringAndSize(in->buf->data(), static_cast<Py_ssize_t>(n));
    in->buf->erase(0, n);
    return out;
}

bool size_arg(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t &size) {
    size = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "expected at most one argument");
        return false;
    }
    if (nargs == 1 && args[0] != Py_None) {
        size = PyLong_AsSsize_t(args[0]);
        if (size == -1 && PyErr_Occurred()) return false;
    }
    return true;
}

constexpr size_t READ_STEP = 65536;

PyObject *input_read(InputObject *in, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (!size_arg(args, nargs, size)) return nullptr;
    if (size < 0) {
        while (!in->eof)
            if (!input_fill(in, READ_STEP)) return nullptr;
        return take(in, in->buf->size());
    }
    // Like gunicorn's Body.read(n): block until n bytes or the end.
    auto want = static_cast<size_t>(size);
    while (in->buf->size() < want && !in->eof)
        if (!input_fill(in, std::max(want - in->buf->size(), static_cast<size_t>(8192)))) return nullptr;
    return take(in, want);
}

PyObject *input_readline(InputObject *in, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (!size_arg(args, nargs, size)) return nullptr;
    size_t limit = size < 0 ? SIZE_MAX : static_cast<size_t>(size);
    size_t scanned = 0;
    for (;;) {
        const char *b = in->buf->data();
        size_t avail = std::min(in->buf->size(), limit);
        const void *nl = scanned < avail ? std::memchr(b + scanned, '\n', avail - scanned) : nullptr;
        if (nl) return take(in, static_cast<size_t>(static_cast<const char *>(nl) - b) + 1);
        if (in->buf->size() >= limit || in->eof) return take(in, avail);
        scanned = avail;
        if (!input_fill(in, 8192)) return nullptr;
    }
}

PyObject *input_readlines(InputObject *in, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t hint;
    if (!size_arg(args, nargs, hint)) return nullptr;
    Ref lines = Ref::steal(PyList_New(0));
    if (!lines) return nullptr;
    Py_ssize_t total = 0;
    for (;;) {
        Ref line = Ref::steal(input_readline(in, nullptr, 0));
        if (!line) return nullptr;
        Py_ssize_t n = PyBytes_GET_SIZE(line.get());
        if (n == 0) break;
        if (PyList_Append(lines.get(), line.get()) < 0) return nullptr;
        total += n;
        if (hint > 0 && total >= hint) break;
    }
    return lines.release();
}

PyObject *input_iternext(PyObject *self) {
    auto *in = reinterpret_cast<InputObject *>(self);
    PyObject *line = input_readline(in, nullptr, 0);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return nullptr;  // StopIteration
    }
    return line;
}

void input_dealloc(PyObject *self) {
    auto *in = reinterpret_cast<InputObject *>(self);
    delete in->buf;
    Py_TYPE(self)->tp_free(self);
}

PyMethodDef input_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_read)), METH_FASTCALL, "read([size]) -> bytes"},
    {"readline", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_readline)), METH_FASTCALL, "readline([size]) -> bytes"},
    {"readlines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_readlines)), METH_FASTCALL, "readlines([hint]) -> list"},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject InputType = [] {
    PyTypeObject t = new_type();
    t.tp_name = "cunicorn.Input";
    t.tp_basicsize = sizeof(InputObject);
    t.tp_flags = Py_TPFLAGS_DEFAULT;
    t.tp_dealloc = input_dealloc;
    t.tp_iter = PyObject_SelfIter;
    t.tp_iternext = input_iternext;
    t.tp_methods = input_methods;
    t.tp_doc = "wsgi.input: the request body";
    return t;
}();

// ---------------------------------------------------------------------
// wsgi.errors
// ---------------------------------------------------------------------

struct ErrorsObject {
    PyObject_HEAD
};

PyObject *errors_write(PyObject *, PyObject *arg) {
    Py_ssize_t n;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : nullptr;
    if (!s) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "wsgi.errors.write() takes a str");
        return nullptr;
    }
    log::write_raw(std::string_view(s, static_cast<size_t>(n)));
    Py_RETURN_NONE;
}

PyObject *errors_writelines(PyObject *self, PyObject *seq) {
    Ref it = Ref::steal(PyObject_GetIter(seq));
    if (!it) return nullptr;
    while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
        Ref r = Ref::steal(errors_write(self, item.get()));
        if (!r) return nullptr;
    }
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
}

PyObject *errors_flush(PyObject *, PyObject *) { Py_RETURN_NONE; }

PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "write(str)"},
    {"writelines", errors_writelines, METH_O, "writelines(seq)"},
    {"flush", errors_flush, METH_NOARGS, "flush()"},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject ErrorsType = [] {
    PyTypeObject t = new_type();
    t.tp_name = "cunicorn.Errors";
    t.tp_basicsize = sizeof(ErrorsObject);
    t.tp_flags = Py_TPFLAGS_DEFAULT;
    t.tp_methods = errors_methods;
    t.tp_doc = "wsgi.errors: writes to the error log";
    return t;
}();

// ---------------------------------------------------------------------
// Response writing
// ---------------------------------------------------------------------

// A sink call failed: the client is gone, or an exception was thrown into
// the request's greenlet while it waited for the client. Either way the
// response cannot be finished; the exception is logged.
void response_cut(State *st) {
    st->client_gone = true;
    if (PyErr_Occurred())
        log::write_text(log::Level::ERROR, "Error while writing the response\n" + py::fetch_traceback());
}

bool sink_write(State *st, const char *p, size_t n) {
    if (st->client_gone) return false;
    bool ok;
    {
        ClientWait outside;
        ok = st->ctx->sink->write(p, n);
    }
    if (!ok) response_cut(st);
    return ok;
}

bool send_head(State *st) {
    http::Response &r = *st->resp;
    http::decide_framing(r, *st->ctx->req, st->ctx->force_close);
    st->scratch.clear();
    http::serialize_head(r, *st->ctx->req, st->scratch);
    r.headers_sent = true;
    return sink_write(st, st->scratch.data(), st->scratch.size());
}

// Writes body bytes with the response's framing. Python exception set
// only for misuse (no start_response yet).
bool send_body(State *st, const char *p, size_t n) {
    http::Response &r = *st->resp;
    if (!r.headers_sent) {
        if (!st->start_called) {
            PyErr_SetString(PyExc_AssertionError, "write() before start_response()");
            return false;
        }
        send_head(st);
    }
    if (r.no_body) {
        if (n && !st->warned_no_body) {
            st->warned_no_body = true;
            LOG_WARNING("WSGI app sent body bytes on a no-body response (%.*s %d); discarded",
                        static_cast<int>(st->ctx->req->method.size()), st->ctx->req->method.data(),
                        r.status_code);
        }
        return true;
    }
    if (r.content_length >= 0) {
        // Bytes beyond the announced length would corrupt the connection.
        uint64_t left = static_cast<uint64_t>(r.content_length) - std::min(r.sent, static_cast<uint64_t>(r.content_length));
        if (n > left) n = static_cast<size_t>(left);
    }
    if (n == 0) return true;
    if (r.chunked) {
        st->scratch.clear();
        http::append_chunk_size(st->scratch, n);
        if (!sink_write(st, st->scratch.data(), st->scratch.size())) return true;
        if (!sink_write(st, p, n)) return true;
        sink_write(st, "\r\n", 2);
    } else {
        sink_write(st, p, n);
    }
    r.sent += n;
    return true;
}

// Sends one block the application produced on demand (an iterable that is
// not a list or tuple, or the write() callable), then hands everything
// queued to the socket before the application is asked for more: PEP 3333
// forbids holding a block back while the application computes the next
// one. Blocks already in hand (a list body) are only queued, and go out
// together.
bool send_streamed_block(State *st, const char *p, size_t n) {
    if (!send_body(st, p, n)) return false;
    if (n == 0 || st->client_gone) return true;
    bool ok;
    {
        ClientWait outside;
        ok = st->ctx->sink->flush();
    }
    if (!ok) response_cut(st);
    return true;
}

// ---------------------------------------------------------------------
// start_response and write()
// ---------------------------------------------------------------------

struct StartResponseObject {
    PyObject_HEAD
    State *st;
};

PyObject *latin1_bytes(PyObject *s, const char *what, std::string &out) {
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(s)->tp_name);
        return nullptr;
    }
    Ref b = Ref::steal(PyUnicode_AsLatin1String(s));
    if (!b) return nullptr;
    out.assign(PyBytes_AS_STRING(b.get()), static_cast<size_t>(PyBytes_GET_SIZE(b.get())));
    return Py_None;
}

PyObject *start_response_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    auto *sr = reinterpret_cast<StartResponseObject *>(self);
    State *st = sr->st;
    static const char *kwlist[] = {"status", "headers", "exc_info", nullptr};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", const_cast<char **>(kwlist), &status,
                                     &headers, &exc_info))
        return nullptr;
    if (!st) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after the request ended");
        return nullptr;
    }
    if (exc_info != Py_None) {
        // PEP 3333: with exc_info after the head went out, re-raise it.
        if (st->resp->headers_sent) {
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                PyErr_SetString(PyExc_TypeError, "exc_info must be a 3-tuple");
                return nullptr;
            }
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            Py_XINCREF(t);
            Py_XINCREF(v);
            Py_XINCREF(tb);
            PyErr_Restore(t, v, tb == Py_None ? nullptr : tb);
            if (tb == Py_None) Py_DECREF(tb);
            return nullptr;
        }
    } else if (st->start_called) {
        PyErr_SetString(PyExc_AssertionError, "Response headers already set!");
        return nullptr;
    }
    http::Response &r = *st->resp;
    r.clear();
    if (!latin1_bytes(status, "status", r.status)) return nullptr;
    if (!http::parse_status(r.status, r.status_code)) {
        PyErr_Format(PyExc_ValueError, "Invalid status: %R", status);
        return nullptr;
    }
    Ref seq = Ref::steal(PySequence_Fast(headers, "headers must be a list of (name, value) tuples"));
    if (!seq) return nullptr;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.get());
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq.get(), i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "header must be a (name, value) tuple, not %R", item);
            return nullptr;
        }
        std::string name, value;
        if (!latin1_bytes(PyTuple_GET_ITEM(item, 0), "header name", name) ||
            !latin1_bytes(PyTuple_GET_ITEM(item, 1), "header value", value))
            return nullptr;
        if (const char *err = http::add_app_header(r, std::move(name), std::move(value))) {
            // CR/LF injection and friends end here, as a 500.
            PyErr_Format(PyExc_ValueError, "%s: %R", err, item);
            return nullptr;
        }
    }
    st->start_called = true;
    return PyObject_GetAttrString(self, "write");
}

PyObject *write_method(PyObject *self, PyObject *data) {
    auto *sr = reinterpret_cast<StartResponseObject *>(self);
    if (!sr->st) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after the request ended");
        return nullptr;
    }
    Py_buffer view;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s", Py_TYPE(data)->tp_name);
        return nullptr;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return nullptr;
    bool ok = send_streamed_block(sr->st, static_cast<const char *>(view.buf), static_cast<size_t>(view.len));
    PyBuffer_Release(&view);
    if (!ok) return nullptr;
    if (sr->st->client_gone) {
        PyErr_SetString(PyExc_OSError, "client disconnected");
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef start_response_methods[] = {
    {"write", write_method, METH_O, "write(bytes): the PEP 3333 write() callable"},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject StartResponseType = [] {
    PyTypeObject t = new_type();
    t.tp_name = "cunicorn.StartResponse";
    t.tp_basicsize = sizeof(StartResponseObject);
    t.tp_flags = Py_TPFLAGS_DEFAULT;
    t.tp_call = start_response_call;
    t.tp_methods = start_response_methods;
    t.tp_doc = "start_response(status, headers, exc_info=None)";
    return t;
}();

// ---------------------------------------------------------------------
// wsgi.file_wrapper
// ---------------------------------------------------------------------

struct FileWrapperObject {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t blksize;
};

int file_wrapper_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    auto *fw = reinterpret_cast<FileWrapperObject *>(self);
    static const char *kwlist[] = {"filelike", "blksize", nullptr};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:FileWrapper", const_cast<char **>(kwlist), &filelike,
                                     &blksize))
        return -1;
    Py_INCREF(filelike);
    Py_XSETREF(fw->filelike, filelike);
    fw->blksize = blksize > 0 ? blksize : 8192;
    return 0;
}

void file_wrapper_dealloc(PyObject *self) {
    Py_XDECREF(reinterpret_cast<FileWrapperObject *>(self)->filelike);
    Py_TYPE(self)->tp_free(self);
}

PyObject *file_wrapper_next(PyObject *self) {
    auto *fw = reinterpret_cast<FileWrapperObject *>(self);
    Ref data = Ref::steal(PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize));
    if (!data) return nullptr;
    if (PyObject_IsTrue(data.get()) <= 0) return nullptr;  // StopIteration (or error)
    return data.release();
}

PyObject *file_wrapper_close(PyObject *self, PyObject *) {
    auto *fw = reinterpret_cast<FileWrapperObject *>(self);
    if (PyObject_HasAttrString(fw->filelike, "close")) return PyObject_CallMethod(fw->filelike, "close", nullptr);
    Py_RETURN_NONE;
}

PyMethodDef file_wrapper_methods[] = {
    {"close", file_wrapper_close, METH_NOARGS, "close the wrapped file"},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject FileWrapperType = [] {
    PyTypeObject t = new_type();
    t.tp_name = "cunicorn.FileWrapper";
    t.tp_basicsize = sizeof(FileWrapperObject);
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
    t.tp_new = PyType_GenericNew;
    t.tp_init = file_wrapper_init;
    t.tp_dealloc = file_wrapper_dealloc;
    t.tp_iter = PyObject_SelfIter;
    t.tp_iternext = file_wrapper_next;
    t.tp_methods = file_wrapper_methods;
    t.tp_doc = "wsgi.file_wrapper(filelike, blksize=8192)";
    return t;
}();

// Sends a wrapped file with sendfile when it has a real descriptor.
// Returns false when the caller should iterate the wrapper instead.
bool try_send_file(State *st, PyObject *result) {
    auto *fw = reinterpret_cast<FileWrapperObject *>(result);
    Ref fileno = Ref::steal(PyObject_CallMethod(fw->filelike, "fileno", nullptr));
    if (!fileno) {
        PyErr_Clear();
        return false;
    }
    int fd = static_cast<int>(PyLong_AsLong(fileno.get()));
    if (fd < 0 || PyErr_Occurred()) {
        PyErr_Clear();
        return false;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) return false;
    // Python-level buffering may have read ahead; tell() is the truth.
    Ref pos = Ref::steal(PyObject_CallMethod(fw->filelike, "tell", nullptr));
    off_t offset = pos ? static_cast<off_t>(PyLong_AsLongLong(pos.get())) : lseek(fd, 0, SEEK_CUR);
    if (PyErr_Occurred() || offset < 0) {
        PyErr_Clear();
        return false;
    }
    http::Response &r = *st->resp;
    uint64_t size = sb.st_size > offset ? static_cast<uint64_t>(sb.st_size - offset) : 0;
    if (!r.headers_sent && !st->start_called) return false;  // the iteration path reports it
    if (!r.headers_sent && !send_head(st)) return true;
    if (r.no_body) return true;
    if (r.content_length >= 0) size = std::min(size, static_cast<uint64_t>(r.content_length) - r.sent);
    if (size == 0) return true;
    if (r.chunked) {
        st->scratch.clear();
        http::append_chunk_size(st->scratch, size);
        if (!sink_write(st, st->scratch.data(), st->scratch.size())) return true;
    }
    bool ok;
    {
        ClientWait outside;
        ok = st->ctx->sink->send_file(fd, offset, static_cast<size_t>(size));
    }
    if (!ok) {
        response_cut(st);
        return true;
    }
    r.sent += size;
    if (r.chunked) sink_write(st, "\r\n", 2);
    return true;
}

// ---------------------------------------------------------------------
// environ
// ---------------------------------------------------------------------

int set_str(PyObject *env, PyObject *key, const char *p, size_t n) {
    Ref v = Ref::steal(py::latin1(p, n));
    return v ? PyDict_SetItem(env, key, v.get()) : -1;
}

int set_sv(PyObject *env, PyObject *key, std::string_view s) { return set_str(env, key, s.data(), s.size()); }

// Returns a new reference to the environ key for a header name.
PyObject *header_key(std::string_view name) {
    auto it = g_header_keys.find(std::string(name));
    if (it != g_header_keys.end()) {
        Py_INCREF(it->second);
        return it->second;
    }
    std::string key;
    if (http::iequals(name, "content-type")) key = "CONTENT_TYPE";
    else if (http::iequals(name, "content-length")) key = "CONTENT_LENGTH";
    else {
        key = "HTTP_";
        for (char c : name) key.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    PyObject *k = py::latin1(key.data(), key.size());
    if (!k) return nullptr;
    PyUnicode_InternInPlace(&k);
    // Clients choose header names: keep the cache bounded.
    if (g_header_keys.size() < 1024) {
        Py_INCREF(k);
        g_header_keys.emplace(std::string(name), k);
    }
    return k;
}

PyObject *method_value(std::string_view m) {
    auto it = g_methods.find(std::string(m));
    if (it != g_methods.end()) {
        Py_INCREF(it->second);
        return it->second;
    }
    PyObject *v = py::latin1(m.data(), m.size());
    if (v && g_methods.size() < 64) {
        Py_INCREF(v);
        g_methods.emplace(std::string(m), v);
    }
    return v;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// urllib.parse.unquote_to_bytes: invalid escapes stay as they are.
void percent_decode(std::string_view in, std::string &out) {
    out.clear();
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h >= 0 && l >= 0) {
                out.push_back(static_cast<char>(h * 16 + l));
                i += 2;
                continue;
            }
        }
        out.push_back(in[i]);
    }
}

struct EnvironError {
    int status = 0;
    std::string message;
};

// Builds the environ (gunicorn/http/wsgi.py create()). Returns null with a
// Python exception, or with `err` set for a configuration problem.
PyObject *build_environ(State *st, PyObject *input, EnvironError &err) {
    const Exchange &ctx = *st->ctx;
    const http::Request &req = *ctx.req;
    Ref env = Ref::steal(PyDict_Copy(g_base_environ));
    if (!env) return nullptr;
    PyObject *e = env.get();
    if (PyDict_SetItem(e, N.wsgi_input, input) < 0) return nullptr;
    Ref method = Ref::steal(method_value(req.method));
    if (!method || PyDict_SetItem(e, N.REQUEST_METHOD, method.get()) < 0) return nullptr;
    if (set_sv(e, N.QUERY_STRING, req.query) < 0 || set_sv(e, N.RAW_URI, req.target) < 0) return nullptr;
    PyObject *proto = nullptr;
    if (req.version_major == 1) proto = req.version_minor == 1 ? N.HTTP_1_1 : req.version_minor == 0 ? N.HTTP_1_0 : nullptr;
    if (proto) {
        if (PyDict_SetItem(e, N.SERVER_PROTOCOL, proto) < 0) return nullptr;
    } else {
        char buf[16];
        int n = std::snprintf(buf, sizeof buf, "HTTP/%d.%d", req.version_major, req.version_minor);
        if (set_str(e, N.SERVER_PROTOCOL, buf, static_cast<size_t>(n)) < 0) return nullptr;
    }

    std::string_view script_header;
    std::string_view host_header;
    for (const http::Header &h : req.headers) {
        Ref key_ref = Ref::steal(header_key(h.name));
        if (!key_ref) return nullptr;
        PyObject *key = key_ref.get();
        if (http::iequals(h.name, "host")) host_header = h.value;
        if (ctx.peer_trusted && http::iequals(h.name, "script_name")) script_header = h.value;
        PyObject *old = PyDict_GetItemWithError(e, key);  // borrowed
        if (old) {
            // Repeated fields are joined with "," (RFC 9110 section 5.3).
            Ref add = Ref::steal(py::latin1(h.value.data(), h.value.size()));
            Ref comma = Ref::steal(PyUnicode_FromString(","));
            if (!add || !comma) return nullptr;
            Ref joined = Ref::steal(PyUnicode_Concat(old, comma.get()));
            if (!joined) return nullptr;
            Ref joined2 = Ref::steal(PyUnicode_Concat(joined.get(), add.get()));
            if (!joined2 || PyDict_SetItem(e, key, joined2.get()) < 0) return nullptr;
        } else {
            if (PyErr_Occurred()) return nullptr;
            if (set_sv(e, key, h.value) < 0) return nullptr;
        }
    }

    // RFC 9112 3.2.2: with an absolute-form target, its authority is the
    // host, whatever Host says (Gunicorn keeps the field).
    std::string_view authority = http::target_authority(req.target);
    if (!authority.empty()) {
        Ref key = Ref::steal(header_key("Host"));
        if (!key || set_sv(e, key.get(), authority) < 0) return nullptr;
        host_header = authority;
    }

    std::string_view scheme = req.scheme.empty() ? ctx.url_scheme : req.scheme;
    if (PyDict_SetItem(e, N.wsgi_url_scheme, scheme == "https" ? N.https : N.http) < 0) return nullptr;

    if (ctx.proxy) {
        // The PROXY header names the real client (f.1).
        const http::ProxyInfo &p = *ctx.proxy;
        auto port_str = [](int port) { return port < 0 ? std::string("None") : std::to_string(port); };
        std::string cport = port_str(p.client_port), pport = port_str(p.proxy_port);
        if (PyDict_SetItemString(e, "PROXY_PROTOCOL", Ref::steal(PyUnicode_FromString(p.protocol.c_str())).get()) < 0 ||
            set_sv(e, N.REMOTE_ADDR, p.client_addr) < 0 || set_sv(e, N.REMOTE_PORT, cport) < 0)
            return nullptr;
        Ref paddr = Ref::steal(py::latin1(p.proxy_addr.data(), p.proxy_addr.size()));
        Ref pport_obj = Ref::steal(py::latin1(pport.data(), pport.size()));
        if (!paddr || !pport_obj || PyDict_SetItemString(e, "PROXY_ADDR", paddr.get()) < 0 ||
            PyDict_SetItemString(e, "PROXY_PORT", pport_obj.get()) < 0)
            return nullptr;
    } else if (ctx.remote_port >= 0) {
        if (set_sv(e, N.REMOTE_ADDR, ctx.remote_addr) < 0) return nullptr;
        char port[8];
        int n = std::snprintf(port, sizeof port, "%d", ctx.remote_port);
        if (set_str(e, N.REMOTE_PORT, port, static_cast<size_t>(n)) < 0) return nullptr;
    } else if (set_sv(e, N.REMOTE_ADDR, ctx.remote_addr) < 0) {
        return nullptr;
    }

    if (!ctx.server_port.empty() || host_header.empty()) {
        if (set_sv(e, N.SERVER_NAME, ctx.server_name) < 0 || set_sv(e, N.SERVER_PORT, ctx.server_port) < 0)
            return nullptr;
    } else {
        // A unix socket has no port: take them from Host, as gunicorn does.
        std::string_view host = host_header, port = scheme == "https" ? "443" : "80";
        size_t colon = host.rfind(':');
        if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
            port = host.substr(colon + 1);
            host = host.substr(0, colon);
        }
        if (set_sv(e, N.SERVER_NAME, host) < 0 || set_sv(e, N.SERVER_PORT, port) < 0) return nullptr;
    }

    // SCRIPT_NAME: the process environment (raw_env), or a trusted proxy's header.
    std::string_view script_name = script_header;
    if (script_name.empty()) {
        const char *s = std::getenv("SCRIPT_NAME");
        if (s) script_name = s;
    }
    std::string_view path = req.path;
    if (!script_name.empty()) {
        if (path.substr(0, script_name.size()) != script_name) {
            err.status = 500;
            err.message = "Request path " + std::string(path) + " does not start with SCRIPT_NAME " +
                          std::string(script_name);
            return nullptr;
        }
        path.remove_prefix(script_name.size());
    }
    if (set_sv(e, N.SCRIPT_NAME, script_name) < 0) return nullptr;
    std::string decoded;
    percent_decode(path, decoded);
    if (set_str(e, N.PATH_INFO, decoded.data(), decoded.size()) < 0) return nullptr;
    return env.release();
}

std::string environ_lookup(void *ctx, std::string_view key) {
    auto *env = static_cast<PyObject *>(ctx);
    Ref k = Ref::steal(py::latin1(key.data(), key.size()));
    if (!k) {
        PyErr_Clear();
        return "";
    }
    PyObject *v = PyDict_GetItemWithError(env, k.get());
    if (!v) {
        PyErr_Clear();
        return "";
    }
    Ref s = Ref::steal(PyObject_Str(v));
    Py_ssize_t n = 0;
    const char *c = s ? PyUnicode_AsUTF8AndSize(s.get(), &n) : nullptr;
    if (!c) {
        PyErr_Clear();
        return "";
    }
    return std::string(c, static_cast<size_t>(n));  // a NUL (%00 in a path) included
}

void access_log(const State &st, PyObject *environ, int64_t duration_us) {
    const http::Request &req = *st.ctx->req;
    static thread_local std::vector<std::pair<std::string_view, std::string_view>> headers;
    headers.clear();
    for (const http::Header &h : req.headers) headers.emplace_back(h.name, h.value);
    char proto[16];
    int n = std::snprintf(proto, sizeof proto, "HTTP/%d.%d", req.version_major, req.version_minor);
    log::AccessRecord rec;
    rec.remote_addr = st.ctx->remote_addr;
    rec.method = req.method;
    rec.raw_uri = req.target;
    rec.path_info = req.path;
    rec.query = req.query;
    rec.protocol = std::string_view(proto, static_cast<size_t>(n));
    rec.status = st.resp->status;
    rec.bytes_sent = st.resp->sent;
    rec.duration_us = duration_us;
    rec.request_headers = &headers;
    rec.response_headers = &st.resp->headers;
    std::string path_info;
    if (environ) {
        rec.environ_lookup = environ_lookup;
        rec.environ_ctx = environ;
        // %(U)s is PATH_INFO, as Gunicorn's atoms() takes it: decoded, and
        // without SCRIPT_NAME.
        path_info = environ_lookup(environ, "PATH_INFO");
        rec.path_info = path_info;
    }
    log::access(rec);
}

void log_app_error(const Exchange &ctx) {
    std::string tb = py::fetch_traceback();
    std::string line = "Error handling request " + std::string(ctx.req->method) + " " + std::string(ctx.req->target);
    log::write_text(log::Level::ERROR, line + "\n" + tb);
}

bool ready = false;

// False, with the Python error set, when a type or a name cannot be made.
bool init_types() {
    if (PyType_Ready(&InputType) < 0 || PyType_Ready(&ErrorsType) < 0 || PyType_Ready(&StartResponseType) < 0 ||
        PyType_Ready(&FileWrapperType) < 0)
        return false;
    const struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&N.REQUEST_METHOD, "REQUEST_METHOD"}, {&N.SCRIPT_NAME, "SCRIPT_NAME"},
        {&N.PATH_INFO, "PATH_INFO"},           {&N.QUERY_STRING, "QUERY_STRING"},
        {&N.RAW_URI, "RAW_URI"},               {&N.SERVER_PROTOCOL, "SERVER_PROTOCOL"},
        {&N.CONTENT_TYPE, "CONTENT_TYPE"},     {&N.CONTENT_LENGTH, "CONTENT_LENGTH"},
        {&N.REMOTE_ADDR, "REMOTE_ADDR"},       {&N.REMOTE_PORT, "REMOTE_PORT"},
        {&N.SERVER_NAME, "SERVER_NAME"},       {&N.SERVER_PORT, "SERVER_PORT"},
        {&N.wsgi_input, "wsgi.input"},         {&N.wsgi_url_scheme, "wsgi.url_scheme"},
        {&N.HTTP_1_0, "HTTP/1.0"},             {&N.HTTP_1_1, "HTTP/1.1"},
        {&N.http, "http"},                     {&N.https, "https"},
        {&N.empty, ""},                        {&N.close, "close"},
    };
    for (const auto &n : names)
        if (!*n.slot && !(*n.slot = intern(n.text))) return false;
    return true;
}

}  // namespace

bool setup(PyObject *app, const Config &cfg) {
    if (!ready && !init_types()) return false;
    ready = true;
    // The worker calls the app through a check that gives a coroutine
    // result (an ASGI app) a clear error; the hooks see the app itself,
    // which the check keeps alive.
    Ref callable = py::wsgi_callable(app);
    Ref env = Ref::steal(PyDict_New());
    Ref errors = Ref::steal(reinterpret_cast<PyObject *>(PyObject_New(ErrorsObject, &ErrorsType)));
    Ref version = Ref::steal(Py_BuildValue("(ii)", 1, 0));
    Ref software = Ref::steal(PyUnicode_FromString("cunicorn/" CUNICORN_VERSION));
    if (!callable || !env || !errors || !version || !software) return false;
    const struct {
        const char *key;
        PyObject *value;
    } items[] = {
        {"wsgi.errors", errors.get()},
        {"wsgi.version", version.get()},
        {"wsgi.multithread", cfg.worker_class == "sync" ? Py_False : Py_True},
        {"wsgi.multiprocess", cfg.workers > 1 ? Py_True : Py_False},
        {"wsgi.run_once", Py_False},
        {"wsgi.file_wrapper", reinterpret_cast<PyObject *>(&FileWrapperType)},
        {"wsgi.input_terminated", Py_True},
        {"SERVER_SOFTWARE", software.get()},
    };
    for (const auto &item : items)
        if (PyDict_SetItemString(env.get(), item.key, item.value) < 0) return false;
    Py_XSETREF(g_app, callable.release());
    Py_XSETREF(g_base_environ, env.release());
    hooks::set_app(app);  // worker.wsgi, app.wsgi()
    g_sendfile = cfg.sendfile;
    g_file_wrapper_type = reinterpret_cast<PyObject *>(&FileWrapperType);
    return true;
}

void send_continue(Exchange &ctx) {
    static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ctx.sink->write(CONTINUE, sizeof CONTINUE - 1);
}

Outcome handle(Exchange &ctx, http::Response &resp) {
    auto started = std::chrono::steady_clock::now();
    resp.clear();
    State st;
    st.ctx = &ctx;
    st.resp = &resp;
    Outcome out;

    auto *input = PyObject_New(InputObject, &InputType);
    auto *sr = PyObject_New(StartResponseObject, &StartResponseType);
    if (!input || !sr) {
        Py_XDECREF(reinterpret_cast<PyObject *>(input));
        Py_XDECREF(reinterpret_cast<PyObject *>(sr));
        log::write_text(log::Level::ERROR, py::fetch_traceback());
        return out;
    }
    input->st = &st;
    input->buf = new std::string();
    input->eof = false;
    sr->st = &st;
    Ref input_ref = Ref::steal(reinterpret_cast<PyObject *>(input));
    Ref sr_ref = Ref::steal(reinterpret_cast<PyObject *>(sr));

    EnvironError env_err;
    Ref environ = Ref::steal(build_environ(&st, input_ref.get(), env_err));
    bool failed = false;
    if (!environ) {
        if (env_err.status) {
            LOG_ERROR("Configuration problem: %s", env_err.message.c_str());
            std::string page = http::error_response(500, "Bad Request", "Configuration problem: " + env_err.message);
            resp.status = "500 Bad Request";
            resp.status_code = 500;
            ctx.sink->write(page.data(), page.size());
            resp.headers_sent = true;
            resp.must_close = true;
        } else {
            log_app_error(ctx);
            failed = true;
        }
    } else {
        if (ctx.req->expect_continue) send_continue(ctx);
        Ref result = Ref::steal(PyObject_CallFunctionObjArgs(g_app, environ.get(), sr_ref.get(), nullptr));
        if (!result) {
            failed = true;
        } else {
            bool sent_file = false;
            if (Py_TYPE(result.get()) == &FileWrapperType && g_sendfile) sent_file = try_send_file(&st, result.get());
            if (!sent_file && !PyErr_Occurred()) {
                if (PyList_CheckExact(result.get()) || PyTuple_CheckExact(result.get())) {
                    Ref seq = Ref::borrow(result.get());
                    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.get());
                    for (Py_ssize_t i = 0; i < n && !st.client_gone; ++i) {
                        Ref item = Ref::borrow(PySequence_Fast_GET_ITEM(seq.get(), i));
                        if (!PyBytes_Check(item.get())) {
                            PyErr_Format(PyExc_TypeError, "response body items must be bytes, not %.100s",
                                         Py_TYPE(item.get())->tp_name);
                            failed = true;
                            break;
                        }
                        if (!send_body(&st, PyBytes_AS_STRING(item.get()), static_cast<size_t>(PyBytes_GET_SIZE(item.get())))) {
                            failed = true;
                            break;
                        }
                    }
                } else {
                    Ref it = Ref::steal(PyObject_GetIter(result.get()));
                    if (!it) failed = true;
                    while (it && !st.client_gone) {
                        // Generators call start_response late: pull the first
                        // item before checking it ran.
                        Ref item = Ref::steal(PyIter_Next(it.get()));
                        if (!item) {
                            if (PyErr_Occurred()) failed = true;
                            break;
                        }
                        if (!PyBytes_Check(item.get())) {
                            PyErr_Format(PyExc_TypeError, "response body items must be bytes, not %.100s",
                                         Py_TYPE(item.get())->tp_name);
                            failed = true;
                            break;
                        }
                        if (!send_streamed_block(&st, PyBytes_AS_STRING(item.get()),
                                                 static_cast<size_t>(PyBytes_GET_SIZE(item.get())))) {
                            failed = true;
                            break;
                        }
                    }
                }
            } else if (PyErr_Occurred()) {
                failed = true;
            }
            // PEP 3333: close() exactly once, whatever happened.
            if (PyObject_HasAttrString(result.get(), "close")) {
                PyObject *pending_type = nullptr, *pending_value = nullptr, *pending_tb = nullptr;
                PyErr_Fetch(&pending_type, &pending_value, &pending_tb);
                Ref r = Ref::steal(PyObject_CallMethod(result.get(), "close", nullptr));
                if (!r) {
                    if (pending_type) {
                        log_app_error(ctx);  // the close() error; the first one follows
                    } else {
                        failed = true;
                        pending_type = nullptr;
                    }
                }
                if (pending_type) PyErr_Restore(pending_type, pending_value, pending_tb);
            }
        }
        if (!failed && !resp.headers_sent) {
            if (!st.start_called) {
                PyErr_SetString(PyExc_AssertionError, "The application returned without calling start_response()");
                failed = true;
            } else {
                send_head(&st);
            }
        }
    }

    if (failed) {
        if (st.client_gone) {
            PyErr_Clear();
            LOG_DEBUG("Client went away during %.*s %.*s", static_cast<int>(ctx.req->method.size()),
                      ctx.req->method.data(), static_cast<int>(ctx.req->target.size()), ctx.req->target.data());
        } else if (st.body_error) {
            PyErr_Clear();
            LOG_WARNING("Invalid request from ip=%.*s: %s", static_cast<int>(ctx.remote_addr.size()),
                        ctx.remote_addr.data(), st.body_error_message.c_str());
        } else {
            log_app_error(ctx);
        }
        if (!resp.headers_sent && !st.client_gone) {
            // RFC 9112 section 6.3: a body that cannot be framed is the
            // client's error; gunicorn just closes, we can still say so.
            std::string page = !st.body_error ? http::error_response(500, "Internal Server Error", "")
                               : st.body_error_code != http::Error::NONE
                                   ? http::error_response(st.body_error_code, st.body_error_message)
                                   : http::error_response(400, "Bad Request", st.body_error_message);
            // For the access log: the status of the page, after "HTTP/1.1 ".
            resp.status = page.substr(9, page.find('\r') - 9);
            resp.status_code = std::atoi(resp.status.c_str());
            resp.headers.clear();
            ctx.sink->write(page.data(), page.size());
            resp.headers_sent = true;
        }
        resp.must_close = true;
    } else if (resp.chunked && !st.client_gone) {
        sink_write(&st, "0\r\n\r\n", 5);
    } else if (resp.content_length >= 0 && !resp.no_body && resp.sent < static_cast<uint64_t>(resp.content_length)) {
        // The app promised more than it sent: the client would wait for the
        // rest, so the connection cannot be reused (RFC 9112 section 6.3).
        resp.must_close = true;
    }

    input->st = nullptr;
    sr->st = nullptr;
    out.client_gone = st.client_gone;
    out.body_error = st.body_error;
    out.keep_alive = !resp.must_close && !st.client_gone && !st.body_error;

    if (log::access_enabled()) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
        access_log(st, environ.get(), us);
    }
    PyErr_Clear();
    if (hooks::request_hooks()) hooks::post_request(ctx.hook_req, environ.get(), resp);  // finished or failed
    return out;
}

}  // namespace cunicorn::wsgi

namespace cunicorn::wsgi {

int load_app(const Config &cfg) {
    py::AppLoad loaded = py::load_app(cfg, cfg.reload);
    switch (loaded.outcome) {
    case py::AppLoad::LOADED: break;
    case py::AppLoad::SERVES_SYNTAX_ERROR:
        // The app answers 500 with the traceback until the file is fixed.
        log::write_text(log::Level::ERROR, loaded.error);
        if (!loaded.syntax_error_file.empty()) reloader::add_file(loaded.syntax_error_file);
        break;
    // Mirrors arbiter.py spawn_worker: AppImportError exits 4, anything
    // else while booting exits 3; the master halts on either at boot.
    case py::AppLoad::BOOT_ERROR:
        log::write_text(log::Level::ERROR, "Exception in worker process\n" + loaded.error);
        return 3;
    case py::AppLoad::APP_ERROR:
        log::write_text(log::Level::ERROR, loaded.error);
        return 4;
    }
    if (!setup(loaded.app.get(), cfg)) {
        log::write_text(log::Level::ERROR, "Exception in worker process\n" + py::fetch_traceback());
        return 3;
    }
    return 0;
}

bool app_loaded() { return g_app != nullptr; }

// --spew's trace function, gunicorn's debug.spew().
static const py::Source SPEW_PY = {"src/py/spew.py",
#include "py/spew.inc"
};

void spew() {
    PyGILState_STATE gil = PyGILState_Ensure();
    Ref ns = Ref::steal(PyDict_New());
    bool done = ns && py::exec_source(SPEW_PY, ns.get());
    PyObject *tracer = done ? PyDict_GetItemString(ns.get(), "spew") : nullptr;  // borrowed; settrace keeps it
    Ref sys = tracer ? Ref::steal(PyImport_ImportModule("sys")) : Ref();
    Ref r = sys ? Ref::steal(PyObject_CallMethod(sys.get(), "settrace", "O", tracer)) : Ref();
    if (!r) log::write_text(log::Level::ERROR, "spew: cannot install the trace function\n" + py::fetch_traceback());
    PyGILState_Release(gil);
}

static thread_local PyThreadState *g_saved_thread = nullptr;

void release_gil(void *) { g_saved_thread = PyEval_SaveThread(); }

void set_cooperative(bool on) { g_cooperative = on; }

void acquire_gil(void *) {
    if (g_saved_thread) PyEval_RestoreThread(g_saved_thread);
    g_saved_thread = nullptr;
}

void *thread_attach() {
    PyGILState_Ensure();  // the thread's own state, kept until the process exits
    return PyEval_SaveThread();
}

void thread_enter(void *state) { PyEval_RestoreThread(static_cast<PyThreadState *>(state)); }

void *thread_leave() { return PyEval_SaveThread(); }

unsigned long thread_ident() { return PyThread_get_thread_ident(); }

std::string thread_stack(unsigned long ident) {
    Ref sys = Ref::steal(PyImport_ImportModule("sys"));
    Ref frames = sys ? Ref::steal(PyObject_CallMethod(sys.get(), "_current_frames", nullptr)) : Ref();
    Ref key = Ref::steal(PyLong_FromUnsignedLong(ident));
    PyObject *frame = frames && key ? PyDict_GetItem(frames.get(), key.get()) : nullptr;  // borrowed
    Ref tb = frame ? Ref::steal(PyImport_ImportModule("traceback")) : Ref();
    Ref lines = tb ? Ref::steal(PyObject_CallMethod(tb.get(), "format_stack", "O", frame)) : Ref();
    Ref empty = lines ? Ref::steal(PyUnicode_FromString("")) : Ref();
    Ref text = empty ? Ref::steal(PyUnicode_Join(empty.get(), lines.get())) : Ref();
    const char *utf8 = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
    PyErr_Clear();
    return utf8 ? std::string(utf8) : std::string("(no Python stack for this thread)\n");
}

}  // namespace cunicorn::wsgi
