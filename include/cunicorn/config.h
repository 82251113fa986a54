// Settings: the one table of Gunicorn's settings (name, flags, type,
// default, validation, help), and the layering of their sources as
// gunicorn/app/base.py does it: defaults < config file < GUNICORN_CMD_ARGS
// < command line. The config file is executed by the embedded interpreter.
#ifndef CUNICORN_CONFIG_H
#define CUNICORN_CONFIG_H

#include "cunicorn/http_parser.h"
#include "cunicorn/log.h"
#include "cunicorn/sock.h"

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// CPython's object type, declared here so this header does not pull in
// Python.h (the same typedef Python.h makes; repeating it is allowed).
struct _object;
typedef struct _object PyObject;

namespace cunicorn {

// A start-up error in the settings: main prints "Error: <what()>" and
// exits 1, as gunicorn's do_load_config does. Two subtypes need other
// output; report_config_error() below prints any of the three correctly.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An argparse-style command-line error (unknown option, missing value,
// "invalid int value"): usage line, then "cunicorn: error: <what()>",
// exit status 2 as argparse's parser.error().
struct UsageError : ConfigError {
    using ConfigError::ConfigError;
};

// The config file raised while executing. what() is
// "Failed to read config file: PATH"; the traceback follows it on stderr
// and the exit status is 1 (gunicorn's get_config_from_filename).
struct ConfigFileError : ConfigError {
    ConfigFileError(const std::string &path, std::string tb)
        : ConfigError("Failed to read config file: " + path), traceback(std::move(tb)) {}
    std::string traceback;
};

// Prints a ConfigError (or subtype) to stderr the way gunicorn would and
// returns the exit status main should use (1, or 2 for a UsageError).
int report_config_error(const ConfigError &e);

// Resolved settings. Field names are gunicorn's setting names. Values are
// resolved at load into the types their users need (addresses, networks,
// enums, the HTTP parser's options) by the parser those users own, so
// that what load_config accepts is what the server uses.
struct Config {
    // Config File
    std::string config;                 // -c as given ("" = default lookup)
    std::string wsgi_app;               // positional APP_MODULE, else wsgi_app

    // Server Socket
    std::vector<std::string> bind{"127.0.0.1:8000"};  // as given
    std::vector<Address> address{parse_address("127.0.0.1:8000")};  // bind, parsed (gunicorn's cfg.address)
    int backlog = 2048;

    // Worker Processes
    int workers = 1;
    std::string worker_class = "sync";
    int threads = 1;
    int worker_connections = 1000;
    int max_requests = 0;
    int max_requests_jitter = 0;
    int timeout = 30;
    int graceful_timeout = 30;
    int request_timeout = 0;       // seconds; 0 = off (gthread)
    int keepalive = 2;

    // Security (raw values as given; http::Options::from_settings clamps
    // them into `http` below)
    long long limit_request_line = 4094;
    long long limit_request_fields = 100;
    long long limit_request_field_size = 8190;
    // cunicorn's own, 0 = none (see http::Options)
    long long limit_request_header_size = 0;
    long long limit_request_body = 0;
    // The HTTP parser's options: the limits above, clamped, and the
    // permit_*, strip_header_spaces, casefold_http_method, header_map,
    // forwarder_headers and secure_scheme_headers settings.
    http::Options http;

    // Debugging
    bool reload = false;
    // inotify also names kqueue on the BSDs (gunicorn's choice of words).
    enum class ReloadEngine { AUTO, POLL, INOTIFY };
    ReloadEngine reload_engine = ReloadEngine::AUTO;
    std::vector<std::string> reload_extra_files;  // paths or glob patterns
    bool spew = false;
    bool check_config = false;          // main: load the app, exit 0/1
    bool print_config = false;          // main: print format_config(), then as check_config

    // Server Mechanics
    bool preload_app = false;
    bool sendfile = true;               // already resolved (--no-sendfile, $SENDFILE)
    bool reuse_port = false;
    std::string chdir;                  // absolute
    bool daemon = false;
    // raw_env's KEY=VALUE entries, split at the first "=".
    std::vector<std::pair<std::string, std::string>> raw_env;
    std::string pidfile;
    std::string worker_tmp_dir;
    std::string user, group;            // the uid/gid in decimal when set to other than
                                        // the launcher's ("" = nothing to switch)
    long uid = -1, gid = -1;            // resolved: the id given (names looked up), else
                                        // geteuid()/getegid() as gunicorn; workers switch
                                        // only when non-zero (util.set_owner_process)
    int umask = 0;
    bool initgroups = false;
    std::vector<std::string> pythonpath;  // comma list split, made absolute
    // PasteDeploy: when paste is set (from any source), wsgi_app is loaded
    // with paste.deploy.loadapp; it is then the absolute "FILE.ini[#name]"
    // of --paste, or the app URI as given when --paste was not on the
    // command line (gunicorn's WSGIApplication does the same).
    std::string paste;                  // "" = None
    std::vector<std::string> raw_paste_global_conf;  // KEY=VALUE, "\\=" escapes "="
    // cunicorn's own (uWSGI's "home"): absolute; "" = none. $VIRTUAL_ENV is
    // the default. The interpreter is started in it before the config file
    // is read (early_virtualenv()); when the file changes it,
    // virtualenv_restart is set and main re-executes cunicorn.
    std::string virtualenv;
    bool virtualenv_restart = false;    // differs from py::virtualenv()
    IpAllowList forwarded_allow_ips = IpAllowList::parse({"127.0.0.1", "::1"});
    http::ProxyProtocol proxy_protocol = http::ProxyProtocol::OFF;
    IpAllowList proxy_allow_ips = IpAllowList::parse({"127.0.0.1", "::1"});

    // SSL (TLS is on when certfile or keyfile is set, as gunicorn's is_ssl)
    std::string keyfile, certfile, ca_certs, ciphers;  // "" = None
    int cert_reqs = 0;                  // ssl.CERT_NONE / OPTIONAL / REQUIRED
    bool suppress_ragged_eofs = true;
    bool is_ssl() const { return !certfile.empty() || !keyfile.empty(); }
    // The ssl.SSLContext built by tls::load_context (shared by the copies
    // of this configuration, released with the last).
    std::shared_ptr<PyObject> tls_context;

    // Logging
    std::string accesslog;              // "" = off, "-" = stdout
    std::string access_log_format =
        "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";
    std::string errorlog = "-";         // "" only if the file set it to None
    log::Level loglevel = log::Level::INFO;  // unknown names became INFO
    bool capture_output = false;
    // Python logging (pylog.h): any of these makes the gunicorn.error and
    // gunicorn.access loggers' handlers and the Logger class decide where
    // lines go. logconfig_dict lives in Python (python_values).
    std::string logconfig, logconfig_json;  // "" = None
    bool logger_class_custom = false;   // not gunicorn.glogging.Logger / simple
    bool access_log_json = false;       // cunicorn's own: JSON access lines
    // Syslog (glogging.py _set_syslog_handler; log::configure checks the
    // address and facility when syslog is on) and StatsD (statsd.py).
    bool syslog = false;
    std::string syslog_addr;
    std::string syslog_prefix;          // "" = proc_name with ':' -> '.'
    std::string syslog_facility = "user";
    bool disable_redirect_access_to_syslog = false;
    std::string statsd_host;            // "" = off; a unix socket path when statsd_port < 0
    int statsd_port = -1;
    std::string statsd_prefix, dogstatsd_tags;
    bool enable_backlog_metric = false;

    // Control (control.h): the path as given (made absolute against the
    // working directory when the master starts it).
    std::string control_socket;
    int control_socket_mode = 0600;
    bool control_socket_disable = false;
    std::string prometheus_bind;        // "" = no Prometheus endpoint

    // Process Naming
    std::string proc_name;              // "" = default_proc_name
    std::string default_proc_name = "cunicorn";

    // Settings whose value lives in Python (hooks, dicts): name -> present.
    // The objects themselves are held by the config module (see
    // python_setting()). Every Python-only setting has an entry; true when
    // the config file set it.
    std::map<std::string, bool> python_values;
    // The load_config call that made those objects: python_setting(cfg,
    // name) finds them by it.
    int python_load = 0;

    // The config file actually executed ("" = none); a path, or
    // "python:MODULE".
    std::string config_file;

    // Every setting as --print-config shows it (Python's str() of gunicorn's
    // value), by name: a snapshot taken by load_config.
    std::map<std::string, std::string> rendered;

    // The warnings load_config printed (settings accepted without effect).
    std::vector<std::string> warnings;

    // Effective process title base.
    const std::string &name() const { return proc_name.empty() ? default_proc_name : proc_name; }
};

// Parses argv (and $GUNICORN_CMD_ARGS, and the config file, which needs the
// interpreter: call py::init first). Handles -h/--help and -v/--version by
// printing and exiting 0. Throws ConfigError on any invalid value, with a
// one-line message naming the setting and the value.
// Side effects, as gunicorn's Application.load_config: the working
// directory becomes cfg.chdir (also put first on sys.path), the config file
// is imported as module __config__, warnings go to stderr. Callable again
// (HUP): every call starts from the start-up directory and the defaults,
// and replaces the Python objects python_setting() returns only when it
// succeeds. When the resolved virtualenv is not the interpreter's, the
// first call of the process sets virtualenv_restart and prints no
// warnings (main re-executes, and the new process prints them); later
// calls (HUP) warn that the change needs a restart.
Config load_config(int argc, char **argv);
Config load_config(const std::vector<std::string> &argv);

// The virtualenv to start the interpreter in, found without it (so before
// any config file): --virtualenv on the command line, else in
// $GUNICORN_CMD_ARGS, else $VIRTUAL_ENV; made absolute; "" for none.
// Command-line errors are left for load_config to report.
std::string early_virtualenv(const std::vector<std::string> &argv);

// The original argv, kept for a USR2 re-exec and for HUP reloads: the
// argv given to the last load_config call.
const std::vector<std::string> &original_argv();

// --print-config output: every setting, sorted by name, "name = value"
// with the names padded to the longest, one per line, each ending in "\n".
std::string format_config(const Config &cfg);

// --help output (usage, then the options grouped by section).
std::string format_help();

// The Python object of a Python-valued setting set by the config file
// (a hook, already checked callable with gunicorn's arity, post_request
// wrapped to take 4 arguments; or a dict), borrowed; null when the setting
// keeps its default (hooks: gunicorn's no-op defaults). This one is of
// the last successful load_config; valid until keep_python_settings()
// drops it.
PyObject *python_setting(const std::string &name);
// The same, of the load that made cfg: a HUP reload's new configuration
// brings its own objects while the running one keeps using its own.
PyObject *python_setting(const Config &cfg, const std::string &name);
// Every setting's value as gunicorn's Config holds it (validated; hooks
// and dicts as the Python objects, gunicorn's no-op hooks for the
// defaults), a dict by name, of the load that made cfg: what the cfg
// object handed to hooks reads. Borrowed, as python_setting(); null
// without the interpreter.
PyObject *setting_values(const Config &cfg);
// Drops the Python objects of every load but cfg's (a HUP reload was
// confirmed, cfg is the new configuration; or it failed, cfg is the old
// one). Needs the GIL.
void keep_python_settings(const Config &cfg);

// The settings table: one entry per Gunicorn 26.1 setting, in Gunicorn's
// order. Everything else (CLI parser, --help, --print-config, the man page
// check) is derived from it.
enum class SettingType { INT, BOOL, STRING, LIST, CHOICE, PYTHON };
enum class Support {
    IMPLEMENTED,         // honoured
    ACCEPTED_NO_EFFECT,  // validated, then ignored with a warning if not default
    REFUSED              // a non-default value is a start-up error
};
enum class CliAction { NONE, STORE, STORE_TRUE, STORE_FALSE, APPEND, OPTIONAL };
enum class CliType { STR, INT, AUTO_INT };  // argparse type=: str, int, auto_int

struct SettingValue;  // config.cpp

// A value of a setting whose support depends on the value (worker_class,
// threads): the support table lists each apart, with what the code does
// with it (value_support), and the test suite starts the binary with it.
struct SupportSample {
    const char *label;   // as the table shows it: "sync", "2 or more"
    const char *value;   // the value given on the command line
};

struct Setting {
    const char *name;
    const char *section;
    std::vector<std::string> flags;      // CLI spellings; empty = config file only
    SettingType type;
    CliAction action = CliAction::NONE;
    CliType cli_type = CliType::STR;
    const char *meta = nullptr;          // metavar; null = NAME upper-cased
    const char *optional_const = nullptr;  // CliAction::OPTIONAL: value of a bare flag
    std::vector<std::string> choices;    // SettingType::CHOICE: accepted values
    Support support = Support::IMPLEMENTED;
    const char *reason = "";             // why ACCEPTED_NO_EFFECT / REFUSED
    std::vector<SupportSample> samples;  // values whose support differs
    const char *help = "";               // one or two sentences
    // Behaviour, used by config.cpp only.
    SettingValue (*default_value)() = nullptr;
    SettingValue (*validate)(const SettingValue &) = nullptr;
    void (*apply)(Config &, const SettingValue &) = nullptr;
    bool (*same_as_default)(const SettingValue &) = nullptr;  // null: compare renderings
};

const std::vector<Setting> &settings_table();

// What load_config does with `value` (command-line text) for setting s:
// REFUSED when it is an error, ACCEPTED_NO_EFFECT when it warns that the
// value changes nothing, IMPLEMENTED otherwise. `why` gets the reason of
// the first two ("" for IMPLEMENTED). Nothing is printed.
Support value_support(const Setting &s, const std::string &value, std::string &why);

// The support table of the README, one setting a line, grouped by section
// (tests/unit/unit-tests --settings-support prints it); the samples of a
// setting are grouped by what value_support() says of them. And the same
// samples as "name<TAB>value<TAB>status" lines, status one of implemented,
// no-effect, refused, for the test that starts the binary with each.
std::string format_support_table();
std::string format_support_samples();

// Forgets the start-up directory the first load_config captured (chdir's
// default, where ./gunicorn.conf.py is looked for). For tests.
void reset_startup_dir();

}  // namespace cunicorn

#endif
