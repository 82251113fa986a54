// The settings table: one row per Gunicorn 26.1 setting, in gunicorn's
// order (config.py KNOWN_SETTINGS), with its defaults; and the support
// table derived from it.
#include "cunicorn/config_impl.h"
#include "cunicorn/control.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace cunicorn {

using namespace conf;

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

static V d_control_socket() { return V::str(control::default_socket_path()); }

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
    Row &type(SettingType t) { s.type = t; return *this; }
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

const char *const NO_HTTP2 = "HTTP/2 is not supported; only HTTP/1.x is served";
const char *const NO_ASGI = "the ASGI worker is not supported";
const char *const NO_DIRTY = "dirty arbiters are not implemented yet";
const char *const NO_UWSGI = "the uwsgi protocol is not implemented yet";

bool protocol_like_default(const V &v) { return !(v.kind == V::STR && v.s == "uwsgi"); }
bool logger_like_default(const V &v) {
    return v.kind == V::STR && (v.s == "simple" || v.s == "gunicorn.glogging.Logger");
}
bool parser_like_default(const V &v) { return v.kind == V::STR && v.s != "python"; }

using ST = SettingType;
using CA = CliAction;

const Row ROWS[] = {
    // Config File
    str_row("config", CONFIG_FILE, {"-c", "--config"}, "CONFIG",
            [] { return V::str("./gunicorn.conf.py"); })
        .to(store<&Config::config>)
        .help("The Gunicorn config file: PATH, file:PATH or python:MODULE_NAME."),
    str_row("wsgi_app", CONFIG_FILE, {}, "STRING", d_none)
        .to(store<&Config::wsgi_app>)
        .help("A WSGI application path in pattern $(MODULE_NAME):$(VARIABLE_NAME)."),

    // Server Socket
    Row("bind", SOCKET, ST::LIST)
        .cli({"-b", "--bind"}, CA::APPEND)
        .meta("ADDRESS")
        .def(d_bind)
        .check(v_list_string)
        .to(apply_bind)
        .help("The socket to bind: HOST, HOST:PORT, [V6]:PORT, unix:PATH or fd://FD; repeatable."),
    int_row("backlog", SOCKET, {"--backlog"}, d_int<2048>)
        .to(store<&Config::backlog>)
        .help("The maximum number of pending connections."),

    // Worker Processes
    int_row("workers", WORKER, {"-w", "--workers"}, d_workers)
        .to(store<&Config::workers>)
        .help("The number of worker processes for handling requests ($WEB_CONCURRENCY or 1)."),
    str_row("worker_class", WORKER, {"-k", "--worker-class"}, "STRING", [] { return V::str("sync"); })
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
        .help("The type of workers to use (sync, gthread or gevent; others run as sync)."),
    int_row("threads", WORKER, {"--threads"}, d_int<1>)
        .to(apply_threads)
        .samples({{"1", "1"}, {"2 or more", "2"}})
        .help("The number of worker threads for handling requests (more than 1 makes sync gthread)."),
    int_row("worker_connections", WORKER, {"--worker-connections"}, d_int<1000>)
        .to(store<&Config::worker_connections>)
        .help("The maximum number of simultaneous clients."),
    int_row("max_requests", WORKER, {"--max-requests"}, d_int<0>)
        .to(store<&Config::max_requests>)
        .help("The maximum number of requests a worker will process before restarting."),
    int_row("max_requests_jitter", WORKER, {"--max-requests-jitter"}, d_int<0>)
        .to(store<&Config::max_requests_jitter>)
        .help("The maximum jitter to add to the max_requests setting."),
    int_row("timeout", WORKER, {"-t", "--timeout"}, d_int<30>)
        .to(store<&Config::timeout>)
        .help("Workers silent for more than this many seconds are killed and restarted."),
    int_row("graceful_timeout", WORKER, {"--graceful-timeout"}, d_int<30>)
        .to(store<&Config::graceful_timeout>)
        .help("Timeout for graceful workers restart."),
    int_row("keepalive", WORKER, {"--keep-alive"}, d_int<2>)
        .to(store<&Config::keepalive>)
        .help("The number of seconds to wait for requests on a Keep-Alive connection."),

    // Security
    int_row("limit_request_line", SECURITY, {"--limit-request-line"}, d_int<4094>)
        .to(store_limit<&Config::limit_request_line>)
        .help("The maximum size of HTTP request line in bytes (0 = unlimited, at most 8190)."),
    int_row("limit_request_fields", SECURITY, {"--limit-request-fields"}, d_int<100>)
        .to(store_limit<&Config::limit_request_fields>)
        .help("Limit the number of HTTP headers fields in a request (at most 32768)."),
    int_row("limit_request_field_size", SECURITY,
            {"--limit-request-field_size", "--limit-request-field-size"}, d_int<8190>)
        .to(store_limit<&Config::limit_request_field_size>)
        .help("Limit the allowed size of an HTTP request header field."),

    // Debugging
    flag_row("reload", DEBUGGING, {"--reload"})
        .to(store<&Config::reload>)
        .help("Restart workers when code changes."),
    str_row("reload_engine", DEBUGGING, {"--reload-engine"}, "STRING", [] { return V::str("auto"); })
        .check(v_reload_engine)
        .choices({"auto", "poll", "inotify"})
        .to(apply_reload_engine)
        .help("The implementation that should be used to power reload: auto, poll or inotify.")
        .type(ST::CHOICE),
    Row("reload_extra_files", DEBUGGING, ST::LIST)
        .cli({"--reload-extra-file"}, CA::APPEND)
        .meta("FILES")
        .def(d_empty_list)
        .check(v_list_of_existing_files)
        .to(store<&Config::reload_extra_files>)
        .help("Extends reload to also watch and reload on additional files."),
    flag_row("spew", DEBUGGING, {"--spew"})
        .to(store<&Config::spew>)
        .help("Install a trace function that spews every line executed by the server."),
    flag_row("check_config", DEBUGGING, {"--check-config"})
        .to(store<&Config::check_config>)
        .help("Check the configuration and exit: status 0 if correct, 1 if not."),
    flag_row("print_config", DEBUGGING, {"--print-config"})
        .to(store<&Config::print_config>)
        .help("Print the configuration settings as fully resolved. Implies check-config."),

    // Server Mechanics
    flag_row("preload_app", MECHANICS, {"--preload"})
        .to(store<&Config::preload_app>)
        .help("Load application code before the worker processes are forked."),
    Row("sendfile", MECHANICS, ST::BOOL)
        .cli({"--no-sendfile"}, CA::STORE_FALSE)
        .def(d_none)
        .check(v_bool)
        .to(apply_sendfile)
        .help("Disables the use of sendfile(); if not set, $SENDFILE decides."),
    flag_row("reuse_port", MECHANICS, {"--reuse-port"})
        .to(store<&Config::reuse_port>)
        .help("Set the SO_REUSEPORT flag on the listening socket."),
    str_row("chdir", MECHANICS, {"--chdir"}, nullptr, d_chdir)
        .check(v_chdir)
        .to(store<&Config::chdir>)
        .help("Change directory to specified directory before loading apps."),
    flag_row("daemon", MECHANICS, {"-D", "--daemon"})
        .to(store<&Config::daemon>)
        .help("Daemonize the Gunicorn process."),
    Row("raw_env", MECHANICS, ST::LIST)
        .cli({"-e", "--env"}, CA::APPEND)
        .meta("ENV")
        .def(d_empty_list)
        .check(v_raw_env)
        .to(apply_raw_env)
        .help("Set environment variables in the execution environment (KEY=VALUE); repeatable."),
    str_row("pidfile", MECHANICS, {"-p", "--pid"}, "FILE", d_none)
        .to(apply_pidfile)
        .help("A filename to use for the PID file."),
    str_row("worker_tmp_dir", MECHANICS, {"--worker-tmp-dir"}, "DIR", d_none)
        .to(apply_worker_tmp_dir)
        .help("A directory to use for the worker heartbeat temporary file."),
    str_row("user", MECHANICS, {"-u", "--user"}, "USER", d_user)
        .check(v_user)
        .to(apply_user)
        .help("Switch worker processes to run as this user (name or uid)."),
    str_row("group", MECHANICS, {"-g", "--group"}, "GROUP", d_group)
        .check(v_group)
        .to(apply_group)
        .help("Switch worker process to run as this group (name or gid)."),
    Row("umask", MECHANICS, ST::INT)
        .cli({"-m", "--umask"}, CA::STORE, CliType::AUTO_INT)
        .meta("INT")
        .def(d_int<0>)
        .check(v_pos_int)
        .to(store<&Config::umask>)
        .help("A bit mask for the file mode on files written by Gunicorn (0022 is octal)."),
    flag_row("initgroups", MECHANICS, {"--initgroups"})
        .to(store<&Config::initgroups>)
        .help("Set the worker's group access list from all groups of the user, plus the group id."),
    str_row("tmp_upload_dir", MECHANICS, {}, "DIR", d_none)
        .no_effect("it is unused, as in Gunicorn 26.1")
        .help("Directory to store temporary request data as they are read."),
    hook_row("secure_scheme_headers", MECHANICS, v_dict, d_secure_scheme_headers)
        .to(apply_secure_scheme_headers)
        .help("A dict of headers and values that the front-end proxy uses to indicate HTTPS requests."),
    str_row("forwarded_allow_ips", MECHANICS, {"--forwarded-allow-ips"}, "STRING", d_forwarded_allow_ips)
        .check(v_addr_list)
        .to(store_allow_list<&Config::forwarded_allow_ips>)
        .help("Front-end IPs allowed to set secure headers (comma separated, * for all).")
        .type(ST::LIST),

    // Logging
    str_row("accesslog", LOGGING, {"--access-logfile"}, "FILE", d_none)
        .to(apply_accesslog)
        .help("The Access log file to write to ('-' means stdout)."),
    flag_row("disable_redirect_access_to_syslog", LOGGING, {"--disable-redirect-access-to-syslog"})
        .to(store<&Config::disable_redirect_access_to_syslog>)
        .help("Disable redirect access logs to syslog."),
    str_row("access_log_format", LOGGING, {"--access-logformat"}, "STRING",
            [] { return V::str("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""); })
        .to(store<&Config::access_log_format>)
        .help("The access log format."),
    str_row("errorlog", LOGGING, {"--error-logfile", "--log-file"}, "FILE", [] { return V::str("-"); })
        .to(apply_errorlog)
        .help("The Error log file to write to ('-' means stderr)."),
    str_row("loglevel", LOGGING, {"--log-level"}, "LEVEL", [] { return V::str("info"); })
        .to(apply_loglevel)
        .help("The granularity of Error log outputs: debug, info, warning, error, critical."),
    flag_row("capture_output", LOGGING, {"--capture-output"})
        .to(store<&Config::capture_output>)
        .help("Redirect stdout/stderr to specified file in errorlog."),
    str_row("logger_class", LOGGING, {"--logger-class"}, "STRING",
            [] { return V::str("gunicorn.glogging.Logger"); })
        .check(v_class)
        .like_default(logger_like_default)
        .to(apply_logger_class)
        .help("The logger you want to use to log events in Gunicorn."),
    str_row("logconfig", LOGGING, {"--log-config"}, "FILE", d_none)
        .to(store<&Config::logconfig>)
        .help("The log config file to use (Python logging fileConfig format)."),
    hook_row("logconfig_dict", LOGGING, v_dict, d_empty_dict)
        .help("The log config dictionary to use (Python logging dictConfig format)."),
    str_row("logconfig_json", LOGGING, {"--log-config-json"}, "FILE", d_none)
        .to(store<&Config::logconfig_json>)
        .help("The log config to read config from a JSON file."),
    str_row("syslog_addr", LOGGING, {"--log-syslog-to"}, "SYSLOG_ADDR", d_syslog_addr)
        .to(store<&Config::syslog_addr>)
        .help("Address to send syslog messages: unix://PATH#TYPE, udp://HOST:PORT, tcp://HOST:PORT."),
    flag_row("syslog", LOGGING, {"--log-syslog"})
        .to(store<&Config::syslog>)
        .help("Send Gunicorn logs to syslog."),
    str_row("syslog_prefix", LOGGING, {"--log-syslog-prefix"}, "SYSLOG_PREFIX", d_none)
        .to(store<&Config::syslog_prefix>)
        .help("Makes Gunicorn use the parameter as program-name in the syslog entries."),
    str_row("syslog_facility", LOGGING, {"--log-syslog-facility"}, "SYSLOG_FACILITY",
            [] { return V::str("user"); })
        .to(store<&Config::syslog_facility>)
        .help("Syslog facility name."),
    flag_row("enable_stdio_inheritance", LOGGING, {"-R", "--enable-stdio-inheritance"})
        .no_effect("not implemented yet")
        .help("Enable stdio inheritance in daemon mode."),
    str_row("statsd_host", LOGGING, {"--statsd-host"}, "STATSD_ADDR", d_none)
        .check(v_statsd_address)
        .to(apply_statsd_host)
        .help("The address of the StatsD server to log to: HOST:PORT or unix://PATH."),
    str_row("dogstatsd_tags", LOGGING, {"--dogstatsd-tags"}, "DOGSTATSD_TAGS", d_empty_str)
        .to(store<&Config::dogstatsd_tags>)
        .help("A comma-delimited list of datadog statsd (dogstatsd) tags to append to statsd metrics."),
    str_row("statsd_prefix", LOGGING, {"--statsd-prefix"}, "STATSD_PREFIX", d_empty_str)
        .to(store<&Config::statsd_prefix>)
        .help("Prefix to use when emitting statsd metrics."),
    flag_row("enable_backlog_metric", LOGGING, {"--enable-backlog-metric"})
        .to(store<&Config::enable_backlog_metric>)
        .help("Enable socket backlog metric (Linux only)."),

    // Process Naming
    str_row("proc_name", NAMING, {"-n", "--name"}, "STRING", d_none)
        .to(store<&Config::proc_name>)
        .help("A base to use with setproctitle for process naming."),
    str_row("default_proc_name", NAMING, {}, nullptr, [] { return V::str("cunicorn"); })
        .to(store<&Config::default_proc_name>)
        .help("Internal setting that is adjusted for each type of application."),

    // Server Mechanics
    str_row("pythonpath", MECHANICS, {"--pythonpath"}, "STRING", d_none)
        .to(apply_pythonpath)
        .help("A comma-separated list of directories to add to the Python path."),
    str_row("paste", MECHANICS, {"--paste", "--paster"}, "STRING", d_none)
        .to(store<&Config::paste>)
        .help("Load a PasteDeploy config file (FILE.ini#section) instead of APP_MODULE."),

    // Server Hooks
    hook_row("on_starting", HOOKS, v_callable<1>, d_on_starting)
        .help("Called just before the master process is initialized: on_starting(server)."),
    hook_row("on_reload", HOOKS, v_callable<1>, d_on_reload)
        .help("Called to recycle workers during a reload via SIGHUP: on_reload(server)."),
    hook_row("when_ready", HOOKS, v_callable<1>, d_when_ready)
        .help("Called just after the server is started: when_ready(server)."),
    hook_row("pre_fork", HOOKS, v_callable<2>, d_pre_fork)
        .help("Called just before a worker is forked: pre_fork(server, worker)."),
    hook_row("post_fork", HOOKS, v_callable<2>, d_post_fork)
        .help("Called just after a worker has been forked: post_fork(server, worker)."),
    hook_row("post_worker_init", HOOKS, v_callable<1>, d_post_worker_init)
        .help("Called just after a worker has initialized the application: post_worker_init(worker)."),
    hook_row("worker_int", HOOKS, v_callable<1>, d_worker_int)
        .help("Called just after a worker exited on SIGINT or SIGQUIT: worker_int(worker)."),
    hook_row("worker_abort", HOOKS, v_callable<1>, d_worker_abort)
        .help("Called when a worker received the SIGABRT signal: worker_abort(worker)."),
    hook_row("pre_exec", HOOKS, v_callable<1>, d_pre_exec)
        .help("Called just before a new master process is forked: pre_exec(server)."),
    hook_row("pre_request", HOOKS, v_callable<2>, d_pre_request)
        .help("Called just before a worker processes the request: pre_request(worker, req)."),
    hook_row("post_request", HOOKS, v_post_request, d_post_request)
        .help("Called after a worker processes the request: post_request(worker, req, environ, resp)."),
    hook_row("child_exit", HOOKS, v_callable<2>, d_child_exit)
        .help("Called just after a worker has been exited, in the master: child_exit(server, worker)."),
    hook_row("worker_exit", HOOKS, v_callable<2>, d_worker_exit)
        .help("Called just after a worker has been exited, in the worker: worker_exit(server, worker)."),
    hook_row("nworkers_changed", HOOKS, v_callable<3>, d_nworkers_changed)
        .help("Called just after num_workers has been changed: nworkers_changed(server, new, old)."),
    hook_row("on_exit", HOOKS, v_callable<1>, d_on_exit)
        .help("Called just before exiting Gunicorn: on_exit(server)."),
    hook_row("ssl_context", HOOKS, v_callable<2>, d_ssl_context)
        .help("Called when SSLContext is needed: ssl_context(config, default_ssl_context_factory)."),

    // Server Mechanics
    Row("proxy_protocol", MECHANICS, ST::CHOICE)
        .cli({"--proxy-protocol"}, CA::OPTIONAL)
        .optional_const("auto")
        .meta("MODE")
        .def([] { return V::str("off"); })
        .check(v_proxy_protocol)
        .choices({"off", "v1", "v2", "auto"})
        .to(apply_proxy_protocol)
        .help("Accept a PROXY protocol header: off, v1, v2 or auto (a bare flag means auto)."),
    str_row("proxy_allow_ips", MECHANICS, {"--proxy-allow-from"}, nullptr,
            [] { return V::str("127.0.0.1,::1"); })
        .check(v_addr_list)
        .to(store_allow_list<&Config::proxy_allow_ips>)
        .help("Front-end IPs allowed to send a PROXY protocol header (comma separated, * for all).")
        .type(ST::LIST),
    str_row("protocol", MECHANICS, {"--protocol"}, "STRING", [] { return V::str("http"); })
        .like_default(protocol_like_default)
        .refused("only HTTP is served; the uwsgi protocol is not implemented yet")
        .help("The protocol to speak: http or uwsgi."),
    str_row("uwsgi_allow_ips", MECHANICS, {"--uwsgi-allow-from"}, nullptr,
            [] { return V::str("127.0.0.1,::1"); })
        .check(v_string_to_list)
        .no_effect(NO_UWSGI)
        .help("IPs allowed to send uwsgi protocol requests (comma separated, * for all).")
        .type(ST::LIST),

    // SSL
    str_row("keyfile", SSL, {"--keyfile"}, "FILE", d_none)
        .check(v_existing_file)
        .to(store<&Config::keyfile>)
        .help("SSL key file."),
    str_row("certfile", SSL, {"--certfile"}, "FILE", d_none)
        .check(v_existing_file)
        .to(store<&Config::certfile>)
        .help("SSL certificate file."),
    str_row("ssl_version", SSL, {"--ssl-version"}, nullptr, d_int<2>)
        .check(v_ssl_version)
        .no_effect("deprecated and ignored, as in Gunicorn: the protocol is negotiated")
        .help("SSL version to use (deprecated and ignored)."),
    str_row("cert_reqs", SSL, {"--cert-reqs"}, nullptr, d_int<0>)
        .check(v_cert_reqs)
        .to(store<&Config::cert_reqs>)
        .help("Whether client certificate is required: 0 none, 1 optional, 2 required.")
        .type(ST::INT),
    str_row("ca_certs", SSL, {"--ca-certs"}, "FILE", d_none)
        .check(v_existing_file)
        .to(store<&Config::ca_certs>)
        .help("CA certificates file."),
    flag_row("suppress_ragged_eofs", SSL, {"--suppress-ragged-eofs"})
        .def(d_true)
        .to(store<&Config::suppress_ragged_eofs>)
        .help("Suppress ragged EOFs (see stdlib ssl module's)."),
    flag_row("do_handshake_on_connect", SSL, {"--do-handshake-on-connect"})
        .no_effect("the event loop completes every TLS handshake as soon as the client's bytes "
                   "arrive, before the request is read, without blocking the worker")
        .help("Whether to perform SSL handshake on socket connect."),
    str_row("ciphers", SSL, {"--ciphers"}, nullptr, d_none)
        .to(store<&Config::ciphers>)
        .help("SSL Cipher suite to use, in the format of an OpenSSL cipher list."),

    // HTTP/2
    str_row("http_protocols", HTTP2, {"--http-protocols"}, "STRING", [] { return V::str("h1"); })
        .check(v_http_protocols)
        .no_effect(NO_HTTP2)
        .help("HTTP protocols to offer, in preference order: comma list of h1, h2, h3.")
        .type(ST::LIST),
    str_row("http2_cleartext", HTTP2, {"--http2-cleartext"}, "MODE", [] { return V::str("off"); })
        .check(v_http2_cleartext)
        .choices({"off", "prior-knowledge", "upgrade", "both"})
        .no_effect(NO_HTTP2)
        .help("HTTP/2 over cleartext (h2c): off, prior-knowledge, upgrade or both.")
        .type(ST::CHOICE),
    int_row("http2_max_concurrent_streams", HTTP2, {"--http2-max-concurrent-streams"}, d_int<100>)
        .no_effect(NO_HTTP2)
        .help("HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS."),
    int_row("http2_initial_window_size", HTTP2, {"--http2-initial-window-size"}, d_int<65535>)
        .no_effect(NO_HTTP2)
        .help("HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE."),
    int_row("http2_max_frame_size", HTTP2, {"--http2-max-frame-size"}, d_int<16384>)
        .check(v_http2_frame_size)
        .no_effect(NO_HTTP2)
        .help("HTTP/2 SETTINGS_MAX_FRAME_SIZE (16384 to 16777215)."),
    int_row("http2_max_header_list_size", HTTP2, {"--http2-max-header-list-size"}, d_int<65536>)
        .no_effect(NO_HTTP2)
        .help("HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE."),

    // Server Mechanics
    Row("raw_paste_global_conf", MECHANICS, ST::LIST)
        .cli({"--paste-global"}, CA::APPEND)
        .meta("CONF")
        .def(d_empty_list)
        .check(v_list_string)
        .to(store<&Config::raw_paste_global_conf>)
        .help("Set a PasteDeploy global config variable in key=value form; repeatable."),
    flag_row("permit_obsolete_folding", MECHANICS, {"--permit-obsolete-folding"})
        .to(store_http<&http::Options::permit_obsolete_folding>)
        .help("Permit requests employing obsolete HTTP line folding mechanism."),
    flag_row("strip_header_spaces", MECHANICS, {"--strip-header-spaces"})
        .to(store_http<&http::Options::strip_header_spaces>)
        .help("Strip spaces present between the header name and the ':' (unsafe)."),
    flag_row("permit_unconventional_http_method", MECHANICS, {"--permit-unconventional-http-method"})
        .to(store_http<&http::Options::permit_unconventional_http_method>)
        .help("Permit HTTP methods not matching conventions, such as IANA registration guidelines."),
    flag_row("permit_unconventional_http_version", MECHANICS, {"--permit-unconventional-http-version"})
        .to(store_http<&http::Options::permit_unconventional_http_version>)
        .help("Permit HTTP version not matching conventions of 2023."),
    flag_row("casefold_http_method", MECHANICS, {"--casefold-http-method"})
        .to(store_http<&http::Options::casefold_http_method>)
        .help("Transform received HTTP methods to uppercase."),
    str_row("forwarder_headers", MECHANICS, {"--forwarder-headers"}, nullptr,
            [] { return V::str("SCRIPT_NAME,PATH_INFO"); })
        .check(v_string_to_list)
        .to(apply_forwarder_headers)
        .help("Headers with underscores a trusted forwarder may set in environ (comma separated).")
        .type(ST::LIST),
    str_row("header_map", MECHANICS, {"--header-map"}, nullptr, [] { return V::str("drop"); })
        .check(v_header_map)
        .choices({"drop", "refuse", "dangerous"})
        .to(apply_header_map)
        .help("How header names with underscores map into environ: drop, refuse or dangerous.")
        .type(ST::CHOICE),

    // Worker Processes
    str_row("asgi_loop", WORKER, {"--asgi-loop"}, "STRING", [] { return V::str("auto"); })
        .check(v_asgi_loop)
        .choices({"auto", "asyncio", "uvloop"})
        .no_effect(NO_ASGI)
        .help("Event loop for the ASGI worker: auto, asyncio or uvloop.")
        .type(ST::CHOICE),
    str_row("asgi_lifespan", WORKER, {"--asgi-lifespan"}, "STRING", [] { return V::str("auto"); })
        .check(v_asgi_lifespan)
        .choices({"auto", "on", "off"})
        .no_effect(NO_ASGI)
        .help("ASGI lifespan protocol handling: auto, on or off.")
        .type(ST::CHOICE),
    int_row("asgi_disconnect_grace_period", WORKER, {"--asgi-disconnect-grace-period"}, d_int<3>)
        .no_effect(NO_ASGI)
        .help("Seconds an ASGI app may run after a client disconnect before it is cancelled."),
    str_row("http_parser", WORKER, {"--http-parser"}, "STRING", [] { return V::str("auto"); })
        .check(v_http_parser)
        .choices({"auto", "fast", "python"})
        .like_default(parser_like_default)
        .no_effect("cunicorn always uses its own C++ parser")
        .help("HTTP parser: auto, fast (C) or python.")
        .type(ST::CHOICE),

    // Server Mechanics
    str_row("root_path", MECHANICS, {"--root-path"}, "STRING", d_empty_str)
        .no_effect(NO_ASGI)
        .help("The ASGI root_path (mount point of the application)."),

    // Dirty Arbiters
    Row("dirty_apps", DIRTY, ST::LIST)
        .cli({"--dirty-app"}, CA::APPEND)
        .meta("STRING")
        .def(d_empty_list)
        .check(v_list_string)
        .no_effect(NO_DIRTY)
        .help("Dirty application to load: module:Class or module:Class:N; repeatable."),
    int_row("dirty_workers", DIRTY, {"--dirty-workers"}, d_int<0>)
        .no_effect(NO_DIRTY)
        .help("Number of dirty worker processes (0 disables the dirty arbiter)."),
    int_row("dirty_timeout", DIRTY, {"--dirty-timeout"}, d_int<300>)
        .no_effect(NO_DIRTY)
        .help("Timeout in seconds for dirty tasks (0 disables)."),
    int_row("dirty_threads", DIRTY, {"--dirty-threads"}, d_int<1>)
        .no_effect(NO_DIRTY)
        .help("Threads per dirty worker."),
    int_row("dirty_graceful_timeout", DIRTY, {"--dirty-graceful-timeout"}, d_int<30>)
        .no_effect(NO_DIRTY)
        .help("Seconds dirty workers get to finish when stopping."),

    // Dirty Arbiter Hooks
    hook_row("on_dirty_starting", DIRTY_HOOKS, v_callable<1>, d_on_dirty_starting)
        .no_effect(NO_DIRTY)
        .help("Called just before the dirty arbiter starts: on_dirty_starting(arbiter)."),
    hook_row("dirty_post_fork", DIRTY_HOOKS, v_callable<2>, d_dirty_post_fork)
        .no_effect(NO_DIRTY)
        .help("Called just after a dirty worker is forked: dirty_post_fork(arbiter, worker)."),
    hook_row("dirty_worker_init", DIRTY_HOOKS, v_callable<1>, d_dirty_worker_init)
        .no_effect(NO_DIRTY)
        .help("Called after a dirty worker loaded its apps: dirty_worker_init(worker)."),
    hook_row("dirty_worker_exit", DIRTY_HOOKS, v_callable<2>, d_dirty_worker_exit)
        .no_effect(NO_DIRTY)
        .help("Called when a dirty worker exits: dirty_worker_exit(arbiter, worker)."),

    // Control
    str_row("control_socket", CONTROL, {"--control-socket"}, "PATH", d_control_socket)
        .to(store<&Config::control_socket>)
        .help("Unix socket path of the control interface."),
    Row("control_socket_mode", CONTROL, ST::INT)
        .cli({"--control-socket-mode"}, CA::STORE, CliType::AUTO_INT)
        .meta("INT")
        .def(d_int<0600>)
        .check(v_pos_int)
        .to(store<&Config::control_socket_mode>)
        .help("Permission bits of the control socket (0600 is octal)."),
    flag_row("control_socket_disable", CONTROL, {"--no-control-socket"})
        .to(store<&Config::control_socket_disable>)
        .help("Do not create the control socket."),

    // cunicorn's own settings, after Gunicorn's.
    str_row("virtualenv", MECHANICS, {"--virtualenv"}, "DIR", d_virtualenv)
        .check(v_virtualenv)
        .to(apply_virtualenv)
        .help("The virtualenv to run the application in (python3 -m venv DIR), made by the "
              "Python cunicorn runs; $VIRTUAL_ENV if not set."),
    int_row("limit_request_header_size", SECURITY, {"--limit-request-header-size"}, d_int<0>)
        .to(store_limit<&Config::limit_request_header_size>)
        .help("Limit the size of the request head (request line and header fields) in bytes; "
              "a larger one is answered with 431 (0 = only the limits above)."),
    int_row("limit_request_body", SECURITY, {"--limit-request-body"}, d_int<0>)
        .to(store_limit<&Config::limit_request_body>)
        .help("Limit the size of a request body in bytes; a larger one is answered with 413 "
              "(0 = unlimited)."),
    flag_row("permit_missing_host", MECHANICS, {"--permit-missing-host"})
        .to(store_http<&http::Options::permit_missing_host>)
        .help("Permit HTTP/1.1 requests without a Host header, which RFC 9112 answers with 400."),
    int_row("request_timeout", WORKER, {"--request-timeout"}, d_int<0>)
        .to(store<&Config::request_timeout>)
        .help("A request still in the application after this many seconds is logged with its "
              "Python stack and the worker restarts gracefully (gthread; 0 = off)."),
    flag_row("access_log_json", LOGGING, {"--access-log-json"})
        .to(store<&Config::access_log_json>)
        .help("Write the access log as one JSON object per line, with every atom "
              "(access_log_format is then used only for its {name}e atoms)."),
    str_row("prometheus_bind", CONTROL, {"--prometheus-bind"}, "ADDRESS", d_empty_str)
        .check(v_prometheus_bind)
        .to(store<&Config::prometheus_bind>)
        .help("Serve the metrics in Prometheus's text format at http://ADDRESS/metrics, from the "
              "master: HOST:PORT or unix:PATH (off by default)."),
};

}  // namespace

const std::vector<Setting> &settings_table() {
    static const std::vector<Setting> table = [] {
        std::vector<Setting> out;
        for (const Row &r : ROWS) out.push_back(r.s);
        return out;
    }();
    return table;
}

size_t conf::index_of(const char *name) {
    const auto &t = settings_table();
    for (size_t k = 0; k < t.size(); ++k)
        if (std::strcmp(t[k].name, name) == 0) return k;
    return t.size();
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

}  // namespace cunicorn
