// Gunicorn's validators (config.py validate_*), same results, same
// messages, and the resolution of each validated value into the typed
// Config the rest of the server reads.
#include "cunicorn/config_impl.h"

#include "cunicorn/pyembed.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <algorithm>

namespace cunicorn::conf {

// ---------------------------------------------------------------------------
// Validators (gunicorn/config.py validate_*), same results, same messages.

V v_string(const V &v) {
    if (v.kind == V::NONE) return v;
    if (v.kind != V::STR) throw Invalid{"Not a string: " + py_str(v)};
    return V::str(strip(v.s));
}

V v_pos_int(const V &v) {
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

V v_bool(const V &v) {
    if (v.kind == V::NONE || v.kind == V::BOOL) return v;
    if (v.kind != V::STR) throw Invalid{"Invalid type for casting: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "true") return V::boolean(true);
    if (t == "false") return V::boolean(false);
    throw Invalid{"Invalid boolean: " + v.s};
}

V v_dict(const V &v) {
    if (v.kind == V::PYOBJ && v.obj && PyDict_Check(v.obj->get())) return v;
    throw Invalid{"Value is not a dictionary: " + py_str(v) + " "};
}

// The items a list setting was given: a list or tuple, or a plain string
// (legacy syntax, wrapped).
const std::vector<V> *items_of(const V &v) {
    if (v.kind == V::LIST || (v.kind == V::PYOBJ && v.obj && PyTuple_Check(v.obj->get()))) return &v.list;
    return nullptr;
}

V v_list_string(const V &v) {
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
V v_list_of_existing_files(const V &v) {
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
V v_string_to_list(const V &v) {
    if (items_of(v)) return v_list_string(v);
    V s = v_string(v);
    V out;
    out.kind = V::LIST;
    if (s.kind == V::NONE || s.s.empty()) return out;
    for (const auto &piece : split(s.s, ","))
        if (!piece.empty()) out.list.push_back(V::str(strip(piece)));
    return out;
}

// forwarded_allow_ips, proxy_allow_ips: addresses, CIDR networks or "*".
// The workers' parser (IpAllowList) decides.
V v_addr_list(const V &v) {
    V out = v_string_to_list(v);
    std::vector<std::string> items;
    for (const auto &e : out.list)
        if (e.kind == V::STR) items.push_back(e.s);
    try {
        IpAllowList::parse(items);
    } catch (const std::invalid_argument &e) {
        throw Invalid{e.what()};
    }
    return out;
}

V v_raw_env(const V &v) {
    V out = v_list_string(v);
    for (const auto &e : out.list)
        if (e.kind != V::STR || e.s.find('=') == std::string::npos)
            throw Invalid{"environment setting " + py_repr(e) + " invalid"};
    return out;
}

// validate_class: a class (kept as a Python object), a function returning
// one, or an import string.
V v_class(const V &v) {
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

V v_post_request(const V &v) {
    py::Ref val = to_py(v);
    py::Ref args = py::Ref::steal(Py_BuildValue("(O)", val.get()));
    py::Ref r = call_helper("validate_post_request", args.get());
    if (!r) throw Invalid{take_exception()};
    return from_py(r.get());
}

// validate_user / validate_group: None is the effective id, a number is
// the id itself, anything else a name to look up (-1: no such name).
static V id_of(const V &v, long long effective, long long (*lookup)(const char *), const char *what) {
    if (v.kind == V::NONE) return V::integer(effective);
    if (v.kind == V::INT || v.kind == V::BOOL) return V::integer(v.kind == V::INT ? v.i : v.b);
    if (v.kind != V::STR) throw Invalid{"'" + py_str(v) + "' object has no attribute 'isdigit'"};
    if (!v.s.empty() && v.s.find_first_not_of("0123456789") == std::string::npos) {
        IntParse p = py_int(v.s, 10);
        if (p.ok && !p.overflow) return V::integer(p.value);
    }
    long long id = lookup(v.s.c_str());
    if (id < 0) throw Invalid{std::string("No such ") + what + ": '" + v.s + "'"};
    return V::integer(id);
}

V v_user(const V &v) {
    return id_of(v, static_cast<long long>(geteuid()), [](const char *name) {
        struct passwd *pw = getpwnam(name);
        return pw ? static_cast<long long>(pw->pw_uid) : -1LL;
    }, "user");
}

V v_group(const V &v) {
    return id_of(v, static_cast<long long>(getegid()), [](const char *name) {
        struct group *gr = getgrnam(name);
        return gr ? static_cast<long long>(gr->gr_gid) : -1LL;
    }, "group");
}

V v_chdir(const V &v) {
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
V v_virtualenv(const V &v) {
    V s = v_string(v);
    if (s.kind == V::NONE || s.s.empty()) return V::none();
    return V::str(abspath(s.s));
}

V v_statsd_address(const V &v) {
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
        Address a = parse_address(s.s, 8125);
        if (a.kind == Address::UNIX) return V::str(a.host);
        if (a.kind == Address::FD) return V::integer(a.fd);
        return tuple(a.host, a.port);
    } catch (const std::invalid_argument &) {
        throw Invalid{"Value must be one of ('host:port', 'unix://PATH')"};
    }
}

V v_prometheus_bind(const V &v) {
    V s = v_string(v);
    if (s.kind == V::NONE || s.s.empty()) return V::str("");
    try {
        if (parse_address(s.s).kind != Address::FD) return s;
    } catch (const std::invalid_argument &e) {
        throw Invalid{e.what()};
    }
    throw Invalid{"an address is HOST:PORT or unix:PATH, not a file descriptor"};
}

V v_reload_engine(const V &v) {
    if (v.kind == V::STR && (v.s == "auto" || v.s == "poll" || v.s == "inotify")) return v;
    throw Invalid{"Invalid reload_engine: " + py_repr(v)};
}

V v_header_map(const V &v) {
    if (v.kind == V::NONE) return v;
    if (v.kind != V::STR) throw Invalid{"Invalid type for casting: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "drop" || t == "refuse" || t == "dangerous") return V::str(t);
    throw Invalid{"Invalid header map behaviour: " + v.s};
}

// 26.x: off/v1/v2/auto; the old boolean spellings still work
// (True = detect either version).
V v_proxy_protocol(const V &v) {
    if (v.kind == V::NONE) return V::str("off");
    if (v.kind == V::BOOL) return V::str(v.b ? "auto" : "off");
    if (v.kind != V::STR) throw Invalid{"Invalid proxy_protocol: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "true" || t == "1") return V::str("auto");
    if (t == "false" || t == "0" || t == "none") return V::str("off");
    if (t == "off" || t == "v1" || t == "v2" || t == "auto") return V::str(t);
    throw Invalid{"Invalid proxy_protocol: " + repr_str(v.s) + " (expected off, v1, v2 or auto)"};
}

V v_http_protocols(const V &v) {
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

V v_http2_cleartext(const V &v) {
    if (v.kind == V::NONE) return V::str("off");
    if (v.kind == V::BOOL) return V::str(v.b ? "prior-knowledge" : "off");
    if (v.kind != V::STR) throw Invalid{"Invalid http2_cleartext: " + py_str(v)};
    std::string t = strip(lower(v.s));
    if (t == "off" || t == "prior-knowledge" || t == "upgrade" || t == "both") return V::str(t);
    throw Invalid{"Invalid http2_cleartext: " + repr_str(v.s) + " (expected off, prior-knowledge, upgrade or both)"};
}

V v_http2_frame_size(const V &v) {
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

V v_asgi_loop(const V &v) { return choice(v, "asgi_loop", {"auto", "asyncio", "uvloop"}); }
V v_asgi_lifespan(const V &v) { return choice(v, "asgi_lifespan", {"auto", "on", "off"}); }
V v_http_parser(const V &v) { return choice(v, "http_parser", {"auto", "fast", "python"}); }

// Deprecated and ignored by gunicorn too (it only warns).
V v_ssl_version(const V &v) { return v; }

// ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED. Gunicorn takes any int >= 0
// and fails on the first connection; refused here at start instead.
V v_cert_reqs(const V &v) {
    V n = v_pos_int(v);
    if (n.i > 2) throw Invalid{"cert_reqs must be 0 (none), 1 (optional) or 2 (required), got " + std::to_string(n.i)};
    return n;
}

// TLS key material is read when the configuration is loaded, so a missing
// file is a configuration error (validate_file_exists's message).
V v_existing_file(const V &v) {
    V s = v_string(v);
    if (s.kind == V::STR && !s.s.empty() && !path_exists(s.s)) throw Invalid{"File " + s.s + " does not exists."};
    return s;
}

// ---------------------------------------------------------------------------
// Storing resolved values into Config.

std::string as_string(const V &v) {
    if (v.kind == V::NONE) return {};
    if (v.kind != V::STR) throw Invalid{"Not a string: " + py_str(v)};
    return v.s;
}

std::vector<std::string> as_strings(const V &v) {
    std::vector<std::string> out;
    const std::vector<V> *items = items_of(v);
    if (!items) return out;
    for (const auto &e : *items) {
        if (e.kind != V::STR) throw Invalid{"Not a string: " + py_str(e)};
        out.push_back(e.s);
    }
    return out;
}

void warn(Config &c, const std::string &text) { c.warnings.push_back(text); }

// gunicorn finds a bad address only when the arbiter binds; parsed here,
// with the parser the listeners are made from, so that --check-config
// catches it too (and what can be checked before binding, check_address).
void apply_bind(Config &c, const V &v) {
    c.bind = as_strings(v);
    c.address.clear();
    for (const auto &b : c.bind) {
        try {
            c.address.push_back(parse_address(b));
            check_address(c.address.back());
        } catch (const std::invalid_argument &e) {
            throw Invalid{e.what(), b};
        }
    }
}

// util.SUPPORTED_WORKERS of Gunicorn 26.1 (eventlet was removed in 26.0).
const char *const WORKER_NAMES[] = {"sync", "gevent", "gevent_wsgi", "gevent_pywsgi", "tornado", "gthread", "asgi"};

const char *const NO_WORKER_CLASS = "only the sync, gthread and gevent worker classes are implemented yet; "
                                    "workers run as sync, one request at a time";

// The classes cunicorn runs, by the names util.load_class accepts for
// them: bundled names and gunicorn's class paths.
struct KnownClass {
    const char *name;
    const char *path;  // gunicorn's module path + class
};
const KnownClass KNOWN_CLASSES[] = {
    {"sync", "gunicorn.workers.sync.SyncWorker"},
    {"gthread", "gunicorn.workers.gthread.ThreadWorker"},
    {"gevent", "gunicorn.workers.ggevent.GeventWorker"},
    {"gevent_wsgi", "gunicorn.workers.ggevent.GeventPyWSGIWorker"},
    {"gevent_pywsgi", "gunicorn.workers.ggevent.GeventPyWSGIWorker"},
};

// The class a bundled name or a class path means, or "" for one cunicorn
// does not run.
static std::string known_class(const std::string &name) {
    for (const KnownClass &k : KNOWN_CLASSES)
        if (name == k.name || name == k.path) return k.name;
    // Subclass paths ending like gunicorn's (a project's own SyncWorker
    // re-export) keep meaning sync and gthread, as before.
    if (starts_with(name, "gunicorn.workers.sync.") && ends_with(name, "SyncWorker")) return "sync";
    if (starts_with(name, "gunicorn.workers.gthread.") && ends_with(name, "ThreadWorker")) return "gthread";
    return "";
}

// Gunicorn's Config.worker_class: sync with more than one thread is gthread.
static void resolve_class(Config &c) {
    if (c.worker_class == "sync" && c.threads > 1) c.worker_class = "gthread";
}

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
// "egg:dist#name", or a dotted class path. The classes of KNOWN_CLASSES
// run; anything else runs as sync after a warning.
void apply_worker_class(Config &c, const V &v) {
    c.worker_class = "sync";
    if (v.kind == V::PYOBJ) {
        warn(c, "worker_class = " + v.shown + " has no effect: " + NO_WORKER_CLASS);
        return;
    }
    std::string uri = as_string(v);
    if (uri.empty()) throw Invalid{"class uri '' invalid or not found"};
    std::string cls;
    if (starts_with(uri, "egg:")) {
        size_t hash = uri.find('#');
        if (hash == std::string::npos || hash + 1 == uri.size())
            throw Invalid{"class uri " + repr_str(uri) + " invalid or not found"};
        cls = known_class(uri.substr(hash + 1));
    } else if (uri.find('.') != std::string::npos) {
        if (!dotted_name(uri)) throw Invalid{"class uri " + repr_str(uri) + " invalid or not found"};
        cls = known_class(uri);
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
        cls = known_class(name);
    }
    if (!cls.empty()) c.worker_class = cls;
    else warn(c, "worker_class = " + uri + " has no effect: " + NO_WORKER_CLASS);
    resolve_class(c);
}

void apply_threads(Config &c, const V &v) {
    store<&Config::threads>(c, v);
    resolve_class(c);
}

// Config.sendfile: --no-sendfile (or a file value) decides, else
// $SENDFILE, else on. A file's "sendfile = True" means on here; gunicorn
// turns sendfile off for any value that is not None, which surprises.
void apply_sendfile(Config &c, const V &v) {
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

void apply_user(Config &c, const V &v) {
    c.uid = static_cast<long>(v.i);
    c.user = v.i == static_cast<long long>(geteuid()) ? "" : std::to_string(v.i);
}

void apply_group(Config &c, const V &v) {
    c.gid = static_cast<long>(v.i);
    c.group = v.i == static_cast<long long>(getegid()) ? "" : std::to_string(v.i);
}

// glogging.py maps unknown names to INFO; the same here, but said aloud.
void apply_loglevel(Config &c, const V &v) {
    std::string name = as_string(v);
    c.loglevel = log::parse_level(name);
    if (c.loglevel == log::Level::INFO && lower(name) != "info")
        warn(c, "loglevel = " + name + " is not one of debug, info, warning, error, critical; using info");
}

// Application.run: each comma-separated entry made absolute (relative to
// the final chdir), in the order given.
void apply_pythonpath(Config &c, const V &v) {
    c.pythonpath.clear();
    if (v.kind == V::NONE) return;
    for (const auto &p : split(as_string(v), ",")) c.pythonpath.push_back(abspath(p));
}

void apply_virtualenv(Config &c, const V &v) {
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

void apply_pidfile(Config &c, const V &v) {
    c.pidfile = as_string(v);
    if (!c.pidfile.empty()) check_parent_dir("pidfile", c.pidfile);
}

// "-" is stdout (accesslog) or stderr (errorlog).
void apply_accesslog(Config &c, const V &v) {
    c.accesslog = as_string(v);
    if (!c.accesslog.empty() && c.accesslog != "-") check_parent_dir("accesslog", c.accesslog);
}

// statsd.py connects to the path (a str) or to the (host, port) tuple; a
// file descriptor (fd://N) it cannot use, and sends nothing.
void apply_statsd_host(Config &c, const V &v) {
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

// load_class's names for the built-in logger; a class object is the
// user's own.
void apply_logger_class(Config &c, const V &v) {
    c.logger_class_custom = !(v.kind == V::STR && (v.s == "simple" || v.s == "gunicorn.glogging.Logger"));
}

void apply_errorlog(Config &c, const V &v) {
    c.errorlog = as_string(v);
    if (!c.errorlog.empty() && c.errorlog != "-") check_parent_dir("errorlog", c.errorlog);
}

void apply_worker_tmp_dir(Config &c, const V &v) {
    c.worker_tmp_dir = as_string(v);
    if (!c.worker_tmp_dir.empty() && !is_dir(c.worker_tmp_dir))
        throw Invalid{"No such directory: " + repr_str(c.worker_tmp_dir)};
}

// v_header_map's names.
void apply_header_map(Config &c, const V &v) {
    c.http.header_map = v.kind == V::STR && v.s == "refuse"      ? http::HeaderMap::REFUSE
                        : v.kind == V::STR && v.s == "dangerous" ? http::HeaderMap::DANGEROUS
                                                                 : http::HeaderMap::DROP;
}

// v_reload_engine's names.
void apply_reload_engine(Config &c, const V &v) {
    std::string name = as_string(v);
    c.reload_engine = name == "poll"      ? Config::ReloadEngine::POLL
                      : name == "inotify" ? Config::ReloadEngine::INOTIFY
                                          : Config::ReloadEngine::AUTO;
}

// v_raw_env made sure each entry has an "=".
void apply_raw_env(Config &c, const V &v) {
    c.raw_env.clear();
    for (const std::string &kv : as_strings(v)) {
        size_t eq = kv.find('=');
        c.raw_env.emplace_back(kv.substr(0, eq), eq == std::string::npos ? std::string() : kv.substr(eq + 1));
    }
}

// v_proxy_protocol's names.
void apply_proxy_protocol(Config &c, const V &v) {
    std::string mode = as_string(v);
    c.proxy_protocol = mode == "v1"     ? http::ProxyProtocol::V1
                       : mode == "v2"   ? http::ProxyProtocol::V2
                       : mode == "auto" ? http::ProxyProtocol::AUTO
                                        : http::ProxyProtocol::OFF;
}

void apply_forwarder_headers(Config &c, const V &v) { c.http.forwarder_headers = as_strings(v); }

void apply_secure_scheme_headers(Config &c, const V &v) {
    if (!v.obj) return;  // the default, already in http::Options
    c.http.secure_scheme_headers.clear();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(v.obj->get(), &pos, &key, &value))
        c.http.secure_scheme_headers.emplace_back(py_obj_str(key), py_obj_str(value));
}

// The raw limit, and the parser's limits clamped from all of them again
// (message.py), so the last one resolved leaves them right.
void apply_limit(Config &c, const V &v, long long Config::*field) {
    c.*field = v.kind == V::BOOL ? v.b : v.i;
    http::Options o =
        http::Options::from_settings(c.limit_request_line, c.limit_request_fields, c.limit_request_field_size);
    c.http.limit_request_line = o.limit_request_line;
    c.http.limit_request_fields = o.limit_request_fields;
    c.http.limit_request_field_size = o.limit_request_field_size;
    c.http.limit_request_header_size = static_cast<size_t>(std::max(0LL, c.limit_request_header_size));
    c.http.limit_request_body = static_cast<uint64_t>(std::max(0LL, c.limit_request_body));
}

std::string invalid_value(const Setting &s, const V &v, const Invalid &e) {
    return "Invalid value for " + std::string(s.name) + ": " + (e.value.empty() ? py_str(v) : e.value) + " (" +
           e.reason + ")";
}

// One setting's validated value into cfg: refused, warned about or
// applied as the table says.
void resolve(Config &cfg, const Setting &s, const V &v, const std::string &default_shown) {
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

}  // namespace cunicorn::conf
