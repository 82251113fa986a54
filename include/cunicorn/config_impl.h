// The inside of the configuration loader, shared by its files and by
// nothing else: setting values as gunicorn holds them (config_value.cpp),
// gunicorn's validators and the resolution into Config
// (config_validate.cpp), the settings table (settings.cpp), the command
// line (cli.cpp) and the loading of the sources (config.cpp).
#ifndef CUNICORN_CONFIG_IMPL_H
#define CUNICORN_CONFIG_IMPL_H

#include "cunicorn/config.h"
#include "cunicorn/pyref.h"

#include <climits>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

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

namespace conf {

using V = SettingValue;

// A validator's complaint, in gunicorn's words; the caller adds which
// setting and value it was about.
struct Invalid {
    explicit Invalid(std::string why, std::string what = {}) : reason(std::move(why)), value(std::move(what)) {}
    std::string reason;
    std::string value;  // the offending part, when not the whole value
};

// config_value.cpp: strings with Python's semantics.
bool py_space(char c);
std::string strip(const std::string &s);
std::string lower(std::string s);
bool starts_with(const std::string &s, const char *p);
bool ends_with(const std::string &s, const std::string &p);
std::vector<std::string> split(const std::string &s, const std::string &sep);  // str.split(sep)
std::string join(const std::vector<std::string> &v, const char *sep);
std::string repr_str(const std::string &s);

// Python's int(text, base) for base 10 and base 0.
struct IntParse {
    bool ok = false;
    bool overflow = false;
    long long value = 0;
};
IntParse py_int(const std::string &text, int base);
IntParse auto_int(const std::string &x);  // config.py auto_int

// str() and repr() of a value; shown() is Config.__str__'s form.
std::string py_str(const V &v);
std::string py_repr(const V &v);
std::string shown(const V &v);

// os.path and util.getcwd.
std::string normpath(const std::string &path);
std::string os_getcwd();
std::string gunicorn_getcwd();
std::string abspath(const std::string &p);
bool path_exists(const std::string &p);
bool is_dir(const std::string &p);
// chdir's default: the directory cunicorn was started in.
const std::string &startup_dir();

// The interpreter side. g_helpers is the helpers module (src/py/config.py)
// of the load_config call in progress; null outside load_config.
extern PyObject *g_helpers;
std::string utf8(PyObject *o);
std::string py_obj_str(PyObject *o);
std::string py_obj_repr(PyObject *o);
std::string take_exception();  // the pending exception's message, cleared
py::Ref call_helper(const char *fn, PyObject *args_tuple);
V from_py(PyObject *o);
py::Ref to_py(const V &v);

// config_validate.cpp: gunicorn's validators.
V v_string(const V &v);
V v_pos_int(const V &v);
V v_bool(const V &v);
V v_dict(const V &v);
const std::vector<V> *items_of(const V &v);
V v_list_string(const V &v);
V v_list_of_existing_files(const V &v);
V v_string_to_list(const V &v);
V v_addr_list(const V &v);
V v_raw_env(const V &v);
V v_class(const V &v);
V v_post_request(const V &v);
V v_user(const V &v);
V v_group(const V &v);
V v_chdir(const V &v);
V v_virtualenv(const V &v);
V v_statsd_address(const V &v);
V v_prometheus_bind(const V &v);
V v_reload_engine(const V &v);
V v_header_map(const V &v);
V v_proxy_protocol(const V &v);
V v_http_protocols(const V &v);
V v_http2_cleartext(const V &v);
V v_http2_frame_size(const V &v);
V v_asgi_loop(const V &v);
V v_asgi_lifespan(const V &v);
V v_http_parser(const V &v);
V v_ssl_version(const V &v);
V v_cert_reqs(const V &v);
V v_existing_file(const V &v);

// validate_callable with gunicorn's arity check, in Python.
template <int ARITY>
V v_callable(const V &v) {
    py::Ref val = to_py(v);
    py::Ref args = py::Ref::steal(Py_BuildValue("(Oi)", val.get(), ARITY));
    py::Ref r = call_helper("validate_callable", args.get());
    if (!r) throw Invalid{take_exception()};
    return from_py(r.get());
}

// Storing resolved values into Config.
std::string as_string(const V &v);
std::vector<std::string> as_strings(const V &v);
void warn(Config &c, const std::string &text);

template <typename T>
struct member_of;
template <typename C, typename T>
struct member_of<T C::*> {
    using type = T;
};

template <auto M>
void store(Config &c, const V &v) {
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

void apply_bind(Config &c, const V &v);
void apply_worker_class(Config &c, const V &v);
void apply_threads(Config &c, const V &v);
void apply_sendfile(Config &c, const V &v);
void apply_user(Config &c, const V &v);
void apply_group(Config &c, const V &v);
void apply_loglevel(Config &c, const V &v);
void apply_pythonpath(Config &c, const V &v);
void apply_virtualenv(Config &c, const V &v);
void apply_pidfile(Config &c, const V &v);
void apply_accesslog(Config &c, const V &v);
void apply_errorlog(Config &c, const V &v);
void apply_logger_class(Config &c, const V &v);
void apply_statsd_host(Config &c, const V &v);
void apply_worker_tmp_dir(Config &c, const V &v);
void apply_header_map(Config &c, const V &v);
void apply_proxy_protocol(Config &c, const V &v);
void apply_reload_engine(Config &c, const V &v);
void apply_raw_env(Config &c, const V &v);
void apply_forwarder_headers(Config &c, const V &v);
void apply_limit(Config &c, const V &v, long long Config::*field);

template <long long Config::*M>
void store_limit(Config &c, const V &v) {
    apply_limit(c, v, M);
}

// A boolean of the HTTP parser's options.
template <bool http::Options::*M>
void store_http(Config &c, const V &v) {
    c.http.*M = v.kind == V::BOOL && v.b;
}

// forwarded_allow_ips, proxy_allow_ips: v_addr_list checked them with the
// same parser.
template <IpAllowList Config::*M>
void store_allow_list(Config &c, const V &v) {
    c.*M = IpAllowList::parse(as_strings(v));
}
void apply_secure_scheme_headers(Config &c, const V &v);

// "Invalid value for NAME: VALUE (why)".
std::string invalid_value(const Setting &s, const V &v, const Invalid &e);
// One setting's validated value into cfg: refused, warned about or
// applied as the table says.
void resolve(Config &cfg, const Setting &s, const V &v, const std::string &default_shown);

// settings.cpp: a setting's row by name (the table's size when unknown).
size_t index_of(const char *name);

// cli.cpp: the command line.
extern const char *const PROG;
std::string usage_line();
enum { OPT_HELP = -1, OPT_VERSION = -2 };
struct Parsed {
    std::map<size_t, V> values;  // setting index -> argparse namespace value
    std::vector<std::string> positionals;
    int action = 0;  // OPT_HELP or OPT_VERSION when one of them was given
};
// lenient: collect what can be read and report nothing (help, version
// and errors alike), for early_virtualenv(); load_config parses again.
Parsed parse_args(const std::vector<std::string> &args, bool lenient = false);
std::vector<std::string> shlex_split(const std::string &s);  // for GUNICORN_CMD_ARGS

}  // namespace conf
}  // namespace cunicorn

#endif
