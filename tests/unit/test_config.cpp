// Settings: the table, the argparse emulation, GUNICORN_CMD_ARGS, config
// files (run by the embedded interpreter), validation and its messages,
// the layering of sources, --print-config. Expected values and messages
// are gunicorn's (config.py validators, app/base.py, util.parse_address).
#include "harness.h"

#include "cunicorn/config.h"
#include "cunicorn/pyembed.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using cunicorn::Config;
using cunicorn::ConfigError;
using cunicorn::ConfigFileError;
using cunicorn::UsageError;
namespace http = cunicorn::http;

namespace {

std::string tmpdir() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/cunicorn-test-config-XXXXXX";
        const char *d = mkdtemp(tmpl);
        return std::string(d ? d : "/tmp");
    }();
    return dir;
}

// Each config file gets a new name: Python caches bytecode by path and
// mtime, and a file rewritten within a second could be read stale.
std::string write_file(const std::string &name, const std::string &text) {
    static int serial = 0;
    std::string path = tmpdir() + "/" + std::to_string(++serial) + "_" + name;
    std::ofstream(path) << text;
    return path;
}

std::string cwd() {
    char buf[PATH_MAX];
    return getcwd(buf, sizeof buf) ? buf : "";
}

// Every test runs with the variables that change defaults unset, and gets
// its working directory back (load_config chdirs).
struct Fixture {
    const char *names[7] = {"GUNICORN_CMD_ARGS", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "SENDFILE", "COLUMNS",
                            "VIRTUAL_ENV"};
    std::vector<std::pair<std::string, std::string>> saved;
    std::string dir = cwd();
    Fixture() {
        cunicorn::py::init("cunicorn");
        for (const char *n : names) {
            if (const char *v = std::getenv(n)) saved.emplace_back(n, v);
            unsetenv(n);
        }
    }
    ~Fixture() {
        for (const char *n : names) unsetenv(n);
        for (const auto &kv : saved) setenv(kv.first.c_str(), kv.second.c_str(), 1);
        if (chdir(dir.c_str()) != 0) std::perror("chdir");
    }
};

Config load(std::vector<std::string> args) {
    args.insert(args.begin(), "cunicorn");
    return cunicorn::load_config(args);
}

// The message of the error load() throws: "usage: ..." for argparse-style
// errors, "file: ..." for a failing config file, else the ConfigError text.
std::string error_of(std::vector<std::string> args) {
    try {
        load(std::move(args));
    } catch (const UsageError &e) {
        return std::string("usage: ") + e.what();
    } catch (const ConfigFileError &e) {
        return std::string("file: ") + e.what();
    } catch (const ConfigError &e) {
        return e.what();
    }
    return "(no error)";
}

std::string joined(const std::vector<std::string> &v) {
    std::string out;
    for (const auto &s : v) out += (out.empty() ? "" : "|") + s;
    return out;
}

// raw_env as (name, value) pairs, shown as "name -> value".
std::string joined(const std::vector<std::pair<std::string, std::string>> &v) {
    std::string out;
    for (const auto &[name, value] : v) out += (out.empty() ? "" : "|") + name + " -> " + value;
    return out;
}

bool has_warning(const Config &c, const std::string &part) {
    for (const auto &w : c.warnings)
        if (w.find(part) != std::string::npos) return true;
    return false;
}

const cunicorn::Setting *find_setting(const std::string &name) {
    for (const auto &s : cunicorn::settings_table())
        if (name == s.name) return &s;
    return nullptr;
}

// gunicorn 26.1's KNOWN_SETTINGS, in order (shared/reference/gunicorn-settings.txt).
const char *const GUNICORN_SETTINGS[] = {
    "config", "wsgi_app", "bind", "backlog", "workers", "worker_class", "threads", "worker_connections",
    "max_requests", "max_requests_jitter", "timeout", "graceful_timeout", "keepalive", "limit_request_line",
    "limit_request_fields", "limit_request_field_size", "reload", "reload_engine", "reload_extra_files", "spew",
    "check_config", "print_config", "preload_app", "sendfile", "reuse_port", "chdir", "daemon", "raw_env",
    "pidfile", "worker_tmp_dir", "user", "group", "umask", "initgroups", "tmp_upload_dir",
    "secure_scheme_headers", "forwarded_allow_ips", "accesslog", "disable_redirect_access_to_syslog",
    "access_log_format", "errorlog", "loglevel", "capture_output", "logger_class", "logconfig", "logconfig_dict",
    "logconfig_json", "syslog_addr", "syslog", "syslog_prefix", "syslog_facility", "enable_stdio_inheritance",
    "statsd_host", "dogstatsd_tags", "statsd_prefix", "enable_backlog_metric", "proc_name", "default_proc_name",
    "pythonpath", "paste", "on_starting", "on_reload", "when_ready", "pre_fork", "post_fork", "post_worker_init",
    "worker_int", "worker_abort", "pre_exec", "pre_request", "post_request", "child_exit", "worker_exit",
    "nworkers_changed", "on_exit", "ssl_context", "proxy_protocol", "proxy_allow_ips", "protocol",
    "uwsgi_allow_ips", "keyfile", "certfile", "ssl_version", "cert_reqs", "ca_certs", "suppress_ragged_eofs",
    "do_handshake_on_connect", "ciphers", "http_protocols", "http2_cleartext", "http2_max_concurrent_streams",
    "http2_initial_window_size", "http2_max_frame_size", "http2_max_header_list_size", "raw_paste_global_conf",
    "permit_obsolete_folding", "strip_header_spaces", "permit_unconventional_http_method",
    "permit_unconventional_http_version", "casefold_http_method", "forwarder_headers", "header_map", "asgi_loop",
    "asgi_lifespan", "asgi_disconnect_grace_period", "http_parser", "root_path", "dirty_apps", "dirty_workers",
    "dirty_timeout", "dirty_threads", "dirty_graceful_timeout", "on_dirty_starting", "dirty_post_fork",
    "dirty_worker_init", "dirty_worker_exit", "control_socket", "control_socket_mode", "control_socket_disable",
};

// cunicorn's own, after gunicorn's.
const char *const CUNICORN_SETTINGS[] = {"virtualenv", "limit_request_header_size", "limit_request_body",
                                         "permit_missing_host", "request_timeout", "access_log_json",
                                         "prometheus_bind"};

// A virtualenv as python3 -m venv leaves it, as far as cunicorn looks:
// pyvenv.cfg with the given version line.
std::string make_venv(const std::string &name, const std::string &cfg_lines) {
    std::string dir = tmpdir() + "/" + name;
    mkdir(dir.c_str(), 0755);
    mkdir((dir + "/bin").c_str(), 0755);
    std::ofstream(dir + "/pyvenv.cfg") << "home = /usr/bin\ninclude-system-site-packages = false\n" << cfg_lines;
    return dir;
}

}  // namespace

// ---------------------------------------------------------------------------
// The table.

TEST(config_table_is_gunicorns_settings_in_order) {
    const auto &t = cunicorn::settings_table();
    std::vector<std::string> names(std::begin(GUNICORN_SETTINGS), std::end(GUNICORN_SETTINGS));
    names.insert(names.end(), std::begin(CUNICORN_SETTINGS), std::end(CUNICORN_SETTINGS));
    CHECK_EQ(t.size(), names.size());
    for (size_t k = 0; k < names.size() && k < t.size(); ++k) CHECK_EQ(std::string(t[k].name), names[k]);
}

TEST(config_table_entries_are_complete) {
    std::set<std::string> flags;
    for (const auto &s : cunicorn::settings_table()) {
        CHECK(s.section && *s.section);
        CHECK(s.help && *s.help);
        CHECK(s.default_value && s.validate);
        if (s.support != cunicorn::Support::IMPLEMENTED) CHECK(s.reason && *s.reason);
        CHECK_EQ(s.flags.empty(), s.action == cunicorn::CliAction::NONE);
        for (const auto &f : s.flags) {
            CHECK(f.size() > 1 && f[0] == '-');
            CHECK(flags.insert(f).second);  // no flag twice
        }
        if (s.type == cunicorn::SettingType::PYTHON) CHECK(s.flags.empty());
        if (s.type == cunicorn::SettingType::CHOICE) CHECK(!s.choices.empty());
    }
}

TEST(config_table_flags_are_gunicorns_spellings) {
    auto flags = [](const char *name) { return joined(find_setting(name)->flags); };
    CHECK_EQ(flags("config"), "-c|--config");
    CHECK_EQ(flags("bind"), "-b|--bind");
    CHECK_EQ(flags("workers"), "-w|--workers");
    CHECK_EQ(flags("worker_class"), "-k|--worker-class");
    CHECK_EQ(flags("keepalive"), "--keep-alive");
    CHECK_EQ(flags("limit_request_field_size"), "--limit-request-field_size|--limit-request-field-size");
    CHECK_EQ(flags("errorlog"), "--error-logfile|--log-file");
    CHECK_EQ(flags("accesslog"), "--access-logfile");
    CHECK_EQ(flags("access_log_format"), "--access-logformat");
    CHECK_EQ(flags("paste"), "--paste|--paster");
    CHECK_EQ(flags("pidfile"), "-p|--pid");
    CHECK_EQ(flags("preload_app"), "--preload");
    CHECK_EQ(flags("sendfile"), "--no-sendfile");
    CHECK_EQ(flags("proc_name"), "-n|--name");
    CHECK_EQ(flags("enable_stdio_inheritance"), "-R|--enable-stdio-inheritance");
    CHECK_EQ(flags("proxy_allow_ips"), "--proxy-allow-from");
    CHECK_EQ(flags("raw_paste_global_conf"), "--paste-global");
    CHECK_EQ(flags("control_socket_disable"), "--no-control-socket");
    CHECK_EQ(flags("reload_extra_files"), "--reload-extra-file");
    CHECK_EQ(flags("syslog_addr"), "--log-syslog-to");
    CHECK_EQ(flags("virtualenv"), "--virtualenv");
    CHECK_EQ(flags("prometheus_bind"), "--prometheus-bind");
    CHECK_EQ(flags("wsgi_app"), "");
    CHECK_EQ(flags("post_fork"), "");
    CHECK(find_setting("proxy_protocol")->action == cunicorn::CliAction::OPTIONAL);
    CHECK(find_setting("umask")->cli_type == cunicorn::CliType::AUTO_INT);
    CHECK(find_setting("workers")->cli_type == cunicorn::CliType::INT);
}

TEST(config_table_support_status) {
    using cunicorn::Support;
    for (const char *n : {"bind", "workers", "worker_class", "timeout", "chdir", "raw_env", "umask", "post_fork",
                          "pre_request", "secure_scheme_headers", "proxy_protocol", "header_map", "accesslog",
                          "reload", "reload_engine", "reload_extra_files", "spew", "paste", "raw_paste_global_conf",
                          "certfile", "keyfile", "ca_certs", "cert_reqs", "ciphers", "suppress_ragged_eofs",
                          "ssl_context", "statsd_host", "syslog", "control_socket", "control_socket_mode",
                          "control_socket_disable", "prometheus_bind"})
        CHECK(find_setting(n)->support == Support::IMPLEMENTED);
    for (const char *n : {"protocol"}) CHECK(find_setting(n)->support == Support::REFUSED);
    for (const char *n : {"http_protocols", "dirty_workers", "ssl_version", "do_handshake_on_connect"})
        CHECK(find_setting(n)->support == Support::ACCEPTED_NO_EFFECT);
}

TEST(config_help_lists_every_flag_by_section) {
    Fixture f;
    std::string help = cunicorn::format_help();
    CHECK_EQ(help.rfind("usage: cunicorn [OPTIONS] [APP_MODULE]\n", 0), 0u);
    for (const auto &s : cunicorn::settings_table())
        for (const auto &fl : s.flags) CHECK(help.find(fl) != std::string::npos);
    CHECK(help.find("\nServer Socket:\n") != std::string::npos);
    CHECK(help.find("\nSSL:\n") != std::string::npos);
    CHECK(help.find("-w INT, --workers INT") != std::string::npos);
    CHECK(help.find("--proxy-protocol [MODE]") != std::string::npos);
    CHECK(help.find("(refused:") != std::string::npos);
    CHECK(help.find("(no effect: ") != std::string::npos);
    CHECK(help.find("Server Hooks") == std::string::npos);  // file-only section
}

// ---------------------------------------------------------------------------
// Defaults.

TEST(config_defaults) {
    Fixture f;
    Config c = load({"app:app"});
    CHECK_EQ(c.wsgi_app, "app:app");
    CHECK_EQ(joined(c.bind), "127.0.0.1:8000");
    CHECK_EQ(c.workers, 1);
    CHECK_EQ(c.worker_class, "sync");
    CHECK_EQ(c.timeout, 30);
    CHECK_EQ(c.keepalive, 2);
    CHECK_EQ(c.limit_request_line, 4094);
    CHECK_EQ(c.limit_request_field_size, 8190);
    CHECK_EQ(c.sendfile, true);
    char real_chdir[PATH_MAX], real_cwd[PATH_MAX];  // chdir may be $PWD, a symlinked spelling
    CHECK(realpath(c.chdir.c_str(), real_chdir) && realpath(f.dir.c_str(), real_cwd));
    CHECK_EQ(std::string(real_chdir), std::string(real_cwd));
    CHECK_EQ(joined(c.forwarded_allow_ips.items()), "127.0.0.1|::1");
    CHECK_EQ(joined(c.proxy_allow_ips.items()), "127.0.0.1|::1");
    CHECK_EQ(joined(c.http.forwarder_headers), "SCRIPT_NAME|PATH_INFO");
    CHECK(c.proxy_protocol == http::ProxyProtocol::OFF);
    CHECK(c.http.header_map == http::HeaderMap::DROP);
    CHECK_EQ(c.errorlog, "-");
    CHECK_EQ(c.accesslog, "");
    CHECK(c.loglevel == cunicorn::log::Level::INFO);
    CHECK_EQ(c.default_proc_name, "app:app");
    CHECK_EQ(c.name(), "app:app");
    CHECK_EQ(c.uid, static_cast<long>(geteuid()));
    CHECK_EQ(c.user, "");
    CHECK_EQ(c.config, "");
    CHECK_EQ(c.config_file, "");
    CHECK_EQ(c.http.secure_scheme_headers.size(), 3u);
    CHECK(c.warnings.empty());
    CHECK_EQ(c.python_values.count("post_fork"), 1u);
    CHECK(!c.python_values["post_fork"]);
    CHECK(cunicorn::python_setting("post_fork") == nullptr);
}

TEST(config_defaults_from_environment) {
    Fixture f;
    setenv("PORT", "9999", 1);
    setenv("WEB_CONCURRENCY", "3", 1);
    setenv("FORWARDED_ALLOW_IPS", "10.0.0.1, 10.0.0.2", 1);
    Config c = load({"app:app"});
    CHECK_EQ(joined(c.bind), "0.0.0.0:9999");
    CHECK_EQ(c.workers, 3);
    CHECK_EQ(joined(c.forwarded_allow_ips.items()), "10.0.0.1|10.0.0.2");
    setenv("WEB_CONCURRENCY", "-2", 1);
    CHECK_EQ(error_of({"app:app"}), "Invalid value for workers: -2 (Value must be positive: -2)");
    setenv("WEB_CONCURRENCY", "many", 1);
    CHECK(error_of({"app:app"}).find("'many'") != std::string::npos);
    unsetenv("WEB_CONCURRENCY");
    // A bad $PORT only matters when no -b replaces the default.
    setenv("PORT", "http", 1);
    CHECK_EQ(joined(load({"-b", "127.0.0.1:1", "app:app"}).bind), "127.0.0.1:1");
    CHECK_EQ(error_of({"app:app"}), "Invalid value for bind: 0.0.0.0:http ('http' is not a valid port number.)");
}

TEST(config_sendfile_sources) {
    Fixture f;
    CHECK(load({"app:app"}).sendfile);
    CHECK(!load({"--no-sendfile", "app:app"}).sendfile);
    setenv("SENDFILE", "0", 1);
    CHECK(!load({"app:app"}).sendfile);
    setenv("SENDFILE", "Yes", 1);
    CHECK(load({"app:app"}).sendfile);
    CHECK(!load({"--no-sendfile", "app:app"}).sendfile);
    CHECK_EQ(load({"app:app"}).rendered["sendfile"], "None");
    CHECK_EQ(load({"--no-sendfile", "app:app"}).rendered["sendfile"], "False");
}

// ---------------------------------------------------------------------------
// The command line (argparse semantics).

TEST(config_cli_option_forms) {
    Fixture f;
    CHECK_EQ(load({"-w4", "app:app"}).workers, 4);
    CHECK_EQ(load({"-w", "4", "app:app"}).workers, 4);
    CHECK_EQ(load({"--workers=5", "app:app"}).workers, 5);
    CHECK_EQ(load({"--workers", "5", "app:app"}).workers, 5);
    CHECK_EQ(load({"-w=6", "app:app"}).workers, 6);
    CHECK_EQ(load({"app:app", "--workers", "7"}).workers, 7);  // options after the app
    CHECK_EQ(load({"--back", "8", "app:app"}).backlog, 8);       // a unique prefix
    CHECK_EQ(load({"--max-requests-j", "9", "app:app"}).max_requests_jitter, 9);
    CHECK_EQ(load({"-t", "60", "--graceful-timeout=5", "--keep-alive", "0", "app:app"}).timeout, 60);
    CHECK_EQ(load({"--limit-request-field-size", "100", "app:app"}).limit_request_field_size, 100);
    CHECK_EQ(load({"--limit-request-field_size", "200", "app:app"}).limit_request_field_size, 200);
    Config c = load({"-D", "--preload", "--reuse-port", "--access-logfile", "-", "--log-file=/tmp/e.log", "app:app"});
    CHECK(c.daemon && c.preload_app && c.reuse_port);
    CHECK_EQ(c.accesslog, "-");
    CHECK_EQ(c.errorlog, "/tmp/e.log");
    // "-DR": single-dash flags combine.
    Config dr = load({"-DR", "app:app"});
    CHECK(dr.daemon);
    CHECK(has_warning(dr, "enable_stdio_inheritance = True has no effect"));
    CHECK_EQ(load({"--", "app:app"}).wsgi_app, "app:app");
    CHECK_EQ(load({"--check-config", "app:app"}).check_config, true);
    CHECK_EQ(load({"--print-config", "app:app"}).print_config, true);
}

TEST(config_cli_int_is_base_ten) {
    Fixture f;
    // argparse type=int: Python int(x), base 10, leading zeros allowed.
    CHECK_EQ(load({"-w", "010", "app:app"}).workers, 10);
    CHECK_EQ(load({"-w", " 7 ", "app:app"}).workers, 7);
    CHECK_EQ(load({"-w", "1_0", "app:app"}).workers, 10);
    CHECK_EQ(load({"-w", "+3", "app:app"}).workers, 3);
    CHECK_EQ(error_of({"-w", "0x4", "app:app"}), "usage: argument -w/--workers: invalid int value: '0x4'");
    CHECK_EQ(error_of({"-w", "abc", "app:app"}), "usage: argument -w/--workers: invalid int value: 'abc'");
    CHECK_EQ(error_of({"-w", "", "app:app"}), "usage: argument -w/--workers: invalid int value: ''");
    // "-1" is a value, not an option: then the validator refuses it.
    CHECK_EQ(error_of({"-w", "-1", "app:app"}), "Invalid value for workers: -1 (Value must be positive: -1)");
    CHECK_EQ(error_of({"--backlog=-5", "app:app"}), "Invalid value for backlog: -5 (Value must be positive: -5)");
    // No clamping here: the parser clamps limit_request_* itself.
    Config c = load({"--limit-request-line", "10000", "--limit-request-fields", "0", "app:app"});
    CHECK_EQ(c.limit_request_line, 10000);
    CHECK_EQ(c.limit_request_fields, 0);
    CHECK_EQ(error_of({"-w", "99999999999", "app:app"}),
             "Invalid value for workers: 99999999999 (Value too large: 99999999999)");
}

TEST(config_cli_umask_is_auto_int) {
    Fixture f;
    CHECK_EQ(load({"-m", "0022", "app:app"}).umask, 18);
    CHECK_EQ(load({"-m", "022", "app:app"}).umask, 18);
    CHECK_EQ(load({"--umask=0o17", "app:app"}).umask, 15);
    CHECK_EQ(load({"-m", "0x1f", "app:app"}).umask, 31);
    CHECK_EQ(load({"-m", "0b11", "app:app"}).umask, 3);
    CHECK_EQ(load({"-m", "22", "app:app"}).umask, 22);
    CHECK_EQ(load({"-m", "0", "app:app"}).umask, 0);
    CHECK_EQ(error_of({"-m", "08", "app:app"}), "usage: argument -m/--umask: invalid auto_int value: '08'");
    CHECK_EQ(error_of({"-m", "x", "app:app"}), "usage: argument -m/--umask: invalid auto_int value: 'x'");
}

TEST(config_cli_usage_errors) {
    Fixture f;
    CHECK_EQ(error_of({"--foo", "app:app"}), "usage: unrecognized arguments: --foo");
    CHECK_EQ(error_of({"--foo=1", "-x", "app:app"}), "usage: unrecognized arguments: --foo=1 -x");
    CHECK_EQ(error_of({"-b"}), "usage: argument -b/--bind: expected one argument");
    CHECK_EQ(error_of({"app:app", "-w"}), "usage: argument -w/--workers: expected one argument");
    CHECK_EQ(error_of({"-w", "--preload", "app:app"}), "usage: argument -w/--workers: expected one argument");
    CHECK_EQ(error_of({"--daemon=1", "app:app"}), "usage: argument -D/--daemon: ignored explicit argument '1'");
    CHECK_EQ(error_of({"-Dx", "app:app"}), "usage: argument -D/--daemon: ignored explicit argument 'x'");
    CHECK_EQ(error_of({"--work", "3", "app:app"}),
             "usage: ambiguous option: --work could match --workers, --worker-class, --worker-connections, "
             "--worker-tmp-dir");
    // The exit statuses main gets.
    CHECK_EQ(cunicorn::report_config_error(UsageError("unrecognized arguments: --foo")), 2);
    CHECK_EQ(cunicorn::report_config_error(ConfigError("No application module specified.")), 1);
    CHECK_EQ(cunicorn::report_config_error(ConfigFileError("x.py", "Traceback...\n")), 1);
}

TEST(config_cli_lists_and_flags) {
    Fixture f;
    Config c = load({"-b", "127.0.0.1:1", "--bind=[::1]:2", "-e", "A=1", "--env", "B=x=y", "app:app"});
    CHECK_EQ(joined(c.bind), "127.0.0.1:1|[::1]:2");  // -b replaces the default
    CHECK_EQ(joined(c.raw_env), "A -> 1|B -> x=y");
    CHECK_EQ(error_of({"-e", "FOO", "app:app"}), "Invalid value for raw_env: ['FOO'] (environment setting 'FOO' invalid)");
    CHECK_EQ(joined(load({"--forwarded-allow-ips", "10.0.0.0/8, 192.168.1.1,::1", "app:app"}).forwarded_allow_ips.items()),
             "10.0.0.0/8|192.168.1.1|::1");
    CHECK_EQ(joined(load({"--forwarded-allow-ips=*", "app:app"}).forwarded_allow_ips.items()), "*");
    CHECK_EQ(error_of({"--forwarded-allow-ips", "proxy.local", "app:app"}),
             "Invalid value for forwarded_allow_ips: proxy.local ('proxy.local' does not appear to be an IPv4 or "
             "IPv6 address or network)");
    CHECK_EQ(joined(load({"--proxy-allow-from", "10.1.2.3", "app:app"}).proxy_allow_ips.items()), "10.1.2.3");
    CHECK_EQ(joined(load({"--forwarder-headers", "SCRIPT_NAME, X_USER", "app:app"}).http.forwarder_headers),
             "SCRIPT_NAME|X_USER");
    Config p = load({"--pythonpath", "/opt/lib,rel", "app:app"});
    CHECK_EQ(joined(p.pythonpath), "/opt/lib|" + p.chdir + "/rel");
}

TEST(config_cli_strings_are_stripped) {
    Fixture f;
    CHECK_EQ(load({"-n", "  web  ", "app:app"}).proc_name, "web");
    CHECK_EQ(load({"-n", "web", "app:app"}).name(), "web");
    CHECK_EQ(load({"-p", " /tmp/x.pid", "app:app"}).pidfile, "/tmp/x.pid");
}

TEST(config_choices) {
    Fixture f;
    CHECK(load({"--header-map", "REFUSE", "app:app"}).http.header_map == http::HeaderMap::REFUSE);
    CHECK(load({"--header-map=dangerous", "app:app"}).http.header_map == http::HeaderMap::DANGEROUS);
    CHECK_EQ(error_of({"--header-map", "keep", "app:app"}),
             "Invalid value for header_map: keep (Invalid header map behaviour: keep)");
    // nargs='?' takes a following app as its value, as argparse does.
    CHECK(error_of({"--proxy-protocol", "app:app"}).find("Invalid value for proxy_protocol: app:app") == 0);
    CHECK(load({"app:app", "--proxy-protocol"}).proxy_protocol == http::ProxyProtocol::AUTO);
    CHECK(load({"--proxy-protocol=v2", "app:app"}).proxy_protocol == http::ProxyProtocol::V2);
    CHECK(load({"--proxy-protocol", "V1", "app:app"}).proxy_protocol == http::ProxyProtocol::V1);
    CHECK(load({"--proxy-protocol=true", "app:app"}).proxy_protocol == http::ProxyProtocol::AUTO);
    CHECK(load({"--proxy-protocol=none", "app:app"}).proxy_protocol == http::ProxyProtocol::OFF);
    CHECK(error_of({"--proxy-protocol=v3", "app:app"}).find("Invalid value for proxy_protocol: v3") == 0);
    CHECK(load({"--log-level", "DEBUG", "app:app"}).loglevel == cunicorn::log::Level::DEBUG);
    Config c = load({"--log-level", "warn", "app:app"});
    CHECK(c.loglevel == cunicorn::log::Level::INFO);  // glogging: unknown -> INFO
    CHECK(has_warning(c, "loglevel = warn"));
    CHECK_EQ(error_of({"--reload-engine", "fsevents", "app:app"}),
             "Invalid value for reload_engine: fsevents (Invalid reload_engine: 'fsevents')");
    CHECK(error_of({"--http-parser", "rust", "app:app"}).find("Invalid value for http_parser: rust") == 0);
}

TEST(config_worker_class) {
    Fixture f;
    Config c = load({"-k", "gevent", "app:app"});
    CHECK_EQ(c.worker_class, "gevent");
    CHECK(c.warnings.empty());
    CHECK_EQ(load({"-k", "gunicorn.workers.ggevent.GeventWorker", "app:app"}).worker_class, "gevent");
    CHECK_EQ(load({"-k", "egg:gunicorn#gevent_wsgi", "app:app"}).worker_class, "gevent_wsgi");
    CHECK_EQ(load({"-k", "gunicorn.workers.ggevent.GeventPyWSGIWorker", "app:app"}).worker_class, "gevent_wsgi");
    CHECK_EQ(load({"-k", "gevent", "--threads", "3", "app:app"}).worker_class, "gevent");  // threads: no effect
    Config tornado = load({"-k", "tornado", "app:app"});
    CHECK_EQ(tornado.worker_class, "sync");
    CHECK(has_warning(tornado, "worker_class = tornado has no effect: only the sync, gthread and gevent worker "
                               "classes are implemented yet"));
    CHECK_EQ(tornado.rendered["worker_class"], "tornado");
    CHECK(load({"-k", "sync", "app:app"}).warnings.empty());
    CHECK(load({"-k", "gunicorn.workers.sync.SyncWorker", "app:app"}).warnings.empty());
    CHECK(load({"-k", "egg:gunicorn#sync", "app:app"}).warnings.empty());
    CHECK(has_warning(load({"-k", "uvicorn.workers.UvicornWorker", "app:app"}), "workers run as sync"));
    CHECK_EQ(error_of({"-k", "", "app:app"}), "Invalid value for worker_class:  (class uri '' invalid or not found)");
    // Not a bundled name: util.load_class's entry-point lookup fails. So
    // does eventlet, removed in Gunicorn 26.0.
    CHECK_EQ(error_of({"-k", "fast", "app:app"}),
             "class uri 'fast' invalid or not found: \n\n[ImportError: Entry point ('gunicorn.workers', 'fast') "
             "not found\n]\n");
    CHECK_EQ(error_of({"-k", "eventlet", "app:app"}),
             "class uri 'eventlet' invalid or not found: \n\n[ImportError: Entry point ('gunicorn.workers', "
             "'eventlet') not found\n]\n");
    CHECK(error_of({"-k", "#eventlet", "app:app"}).find("class uri '#eventlet' invalid or not found") == 0);
    CHECK(error_of({"-k", "a..b", "app:app"}).find("invalid or not found") != std::string::npos);
    Config t = load({"--threads", "4", "app:app"});
    CHECK_EQ(t.threads, 4);
    CHECK(!has_warning(t, "has no effect"));
    CHECK_EQ(t.worker_class, "gthread");  // sync with threads is gthread, as in Gunicorn
    CHECK_EQ(load({"-k", "gthread", "app:app"}).worker_class, "gthread");
    CHECK_EQ(load({"-k", "sync", "--threads", "1", "app:app"}).worker_class, "sync");
}

// The support of a value is what loading it does: a warning is "no
// effect", an error "refused"; the table groups the samples by it.
TEST(config_value_support) {
    Fixture f;
    const cunicorn::Setting *worker_class = nullptr, *threads = nullptr;
    for (const auto &s : cunicorn::settings_table()) {
        if (std::strcmp(s.name, "worker_class") == 0) worker_class = &s;
        if (std::strcmp(s.name, "threads") == 0) threads = &s;
    }
    CHECK(worker_class && threads);
    if (!worker_class || !threads) return;
    std::string why;
    CHECK(cunicorn::value_support(*worker_class, "sync", why) == cunicorn::Support::IMPLEMENTED);
    CHECK_EQ(why, "");
    CHECK(cunicorn::value_support(*worker_class, "gthread", why) == cunicorn::Support::IMPLEMENTED);
    CHECK(cunicorn::value_support(*worker_class, "gevent", why) == cunicorn::Support::IMPLEMENTED);
    CHECK(cunicorn::value_support(*worker_class, "tornado", why) == cunicorn::Support::ACCEPTED_NO_EFFECT);
    CHECK(why.find("worker_class = tornado has no effect: ") == 0);
    CHECK(cunicorn::value_support(*worker_class, "eventlet", why) == cunicorn::Support::REFUSED);
    CHECK(why.find("class uri 'eventlet' invalid or not found") == 0);
    CHECK(cunicorn::value_support(*threads, "1", why) == cunicorn::Support::IMPLEMENTED);
    CHECK(cunicorn::value_support(*threads, "8", why) == cunicorn::Support::IMPLEMENTED);
    CHECK(cunicorn::value_support(*threads, "-1", why) == cunicorn::Support::REFUSED);
    std::string table = cunicorn::format_support_table();
    CHECK(table.find("    worker_class                        implemented: sync, gthread, gevent,\n") !=
          std::string::npos);
    CHECK(table.find("    threads                             implemented: 1, 2 or more\n") != std::string::npos);
    CHECK(table.find("refused: eventlet: class uri 'eventlet'") != std::string::npos);
    CHECK(cunicorn::format_support_samples().find("worker_class\ttornado\tno-effect\n") != std::string::npos);
}

// ---------------------------------------------------------------------------
// Addresses (util.parse_address).

TEST(config_bind_forms) {
    Fixture f;
    // fd://N must name an open socket when the configuration is loaded.
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(sock >= 0);
    std::string fd = "fd://" + std::to_string(sock);
    for (std::string ok : {"127.0.0.1", "127.0.0.1:8080", "localhost:80", "[::1]:9000", "[::1]", "unix:/tmp/a.sock",
                           "unix:///tmp/a.sock", fd.c_str(), "tcp://127.0.0.1:80", "tcp://[::]:80", "0.0.0.0:0",
                           "Example.COM", ":80", ""})
        CHECK_EQ(joined(load({"-b", ok, "app:app"}).bind), ok);
    Config c = load({"-b", "Example.COM", "-b", "[::1]", "-b", ":80", "-b", fd, "-b", "unix:///tmp/a.sock", "app:app"});
    CHECK_EQ(c.address.size(), 5u);
    CHECK_EQ(c.address[0].host, "example.com");
    CHECK_EQ(c.address[0].port, 8000);
    CHECK_EQ(c.address[1].host, "::1");
    CHECK_EQ(c.address[2].host, "0.0.0.0");
    CHECK_EQ(c.address[2].port, 80);
    CHECK(c.address[3].kind == cunicorn::Address::FD && c.address[3].fd == sock);
    CHECK(c.address[4].kind == cunicorn::Address::UNIX && c.address[4].host == "/tmp/a.sock");
    close(sock);
    CHECK_EQ(error_of({"-b", fd, "app:app"}),
             "Invalid value for " + ("bind: " + fd) + " (file descriptor " + std::to_string(sock) +
                 " is not an open socket: Bad file descriptor)");
    CHECK_EQ(error_of({"-b", "1.2.3.4:x", "app:app"}), "Invalid value for bind: 1.2.3.4:x ('x' is not a valid port number.)");
    CHECK_EQ(error_of({"-b", "localhost:", "app:app"}), "Invalid value for bind: localhost: ('' is not a valid port number.)");
    CHECK_EQ(error_of({"-b", "::1", "app:app"}),
             "Invalid value for bind: ::1 (more than one ':'; an IPv6 address is written [ADDRESS]:PORT)");
    CHECK_EQ(error_of({"-b", "a:80:x", "app:app"}),
             "Invalid value for bind: a:80:x (more than one ':'; an IPv6 address is written [ADDRESS]:PORT)");
    CHECK_EQ(error_of({"-b", "[::1]:http", "app:app"}),
             "Invalid value for bind: [::1]:http ('http' is not a valid port number.)");
    CHECK_EQ(error_of({"-b", "[::1]x", "app:app"}), "Invalid value for bind: [::1]x (unexpected 'x' after ']')");
    CHECK_EQ(error_of({"-b", "127.0.0.1:65536", "app:app"}),
             "Invalid value for bind: 127.0.0.1:65536 ('65536' is not a valid port number.)");
    CHECK_EQ(error_of({"-b", "8000", "app:app"}),
             "Invalid value for bind: 8000 ('8000' is not a host (a port alone is written :8000))");
    CHECK_EQ(error_of({"-b", "fd://x", "app:app"}), "Invalid value for bind: fd://x ('x' is not a valid file descriptor.)");
    CHECK_EQ(error_of({"-b", "fd://99999999999", "app:app"}),
             "Invalid value for bind: fd://99999999999 ('99999999999' is not a valid file descriptor.)");
    CHECK_EQ(error_of({"-b", "unix:", "app:app"}), "Invalid value for bind: unix: (the unix socket path is empty)");
    CHECK_EQ(error_of({"-b", "unix:/nonexistent-dir/a.sock", "app:app"}),
             "Invalid value for bind: unix:/nonexistent-dir/a.sock (directory '/nonexistent-dir': No such file or "
             "directory)");
    CHECK_EQ(error_of({"-b", "unix:/etc/passwd", "app:app"}),
             "Invalid value for bind: unix:/etc/passwd ('/etc/passwd' exists and is not a socket)");
    CHECK_EQ(error_of({"-b", "127.0.0.1:1", "-b", "tcp://h:p", "app:app"}),
             "Invalid value for bind: tcp://h:p ('p' is not a valid port number.)");
}

// ---------------------------------------------------------------------------
// Config files.

TEST(config_file_values_and_validation) {
    Fixture f;
    std::string path = write_file("basic.py",
                                  "import multiprocessing\n"
                                  "workers = multiprocessing.cpu_count() * 2 + 1\n"
                                  "bind = '0.0.0.0:5000'\n"
                                  "daemon = 'false'\n"
                                  "raw_env = 'APE_API_ENV=DEV'\n"
                                  "backlog = '0x1F'\n"
                                  "timeout = '0o17'\n"
                                  "keepalive = '0b11'\n"
                                  "max_requests = ' 12 '\n"
                                  "graceful_timeout = True\n"
                                  "umask = 0o22\n"
                                  "preload_app = ' TRUE '\n"
                                  "proc_name = '  web  '\n"
                                  "pidfile = None\n"
                                  "loglevel = 'debug'\n"
                                  "loglevel = 'warning'\n"
                                  "Workers = 99\n"
                                  "unrelated = object()\n"
                                  "forwarded_allow_ips = ['10.0.0.1', ' 10.0.0.2 ']\n"
                                  "pythonpath = '/opt/a'\n");
    Config c = load({"-c", path, "app:app"});
    CHECK(c.workers >= 3 && c.workers % 2 == 1);
    CHECK_EQ(joined(c.bind), "0.0.0.0:5000");
    CHECK(!c.daemon);
    CHECK_EQ(joined(c.raw_env), "APE_API_ENV -> DEV");
    CHECK_EQ(c.backlog, 31);
    CHECK_EQ(c.timeout, 15);
    CHECK_EQ(c.keepalive, 3);
    CHECK_EQ(c.max_requests, 12);
    CHECK_EQ(c.graceful_timeout, 1);
    CHECK_EQ(c.umask, 18);
    CHECK(c.preload_app);
    CHECK_EQ(c.proc_name, "web");
    CHECK_EQ(c.pidfile, "");
    CHECK(c.loglevel == cunicorn::log::Level::WARNING);
    CHECK_EQ(joined(c.forwarded_allow_ips.items()), "10.0.0.1|10.0.0.2");
    CHECK_EQ(joined(c.pythonpath), "/opt/a");
    CHECK_EQ(c.config, path);
    CHECK_EQ(c.config_file, path);
    CHECK_EQ(c.rendered["config"], path);
}

TEST(config_file_invalid_values) {
    Fixture f;
    auto err = [](const std::string &body) { return error_of({"-c", write_file("bad.py", body), "app:app"}); };
    CHECK_EQ(err("workers = '010'\n"), "Invalid value for workers: 010 (invalid literal for int() with base 0: '010')");
    CHECK_EQ(err("workers = -1\n"), "Invalid value for workers: -1 (Value must be positive: -1)");
    CHECK_EQ(err("workers = 2.5\n"), "Invalid value for workers: 2.5 (int() can't convert non-string with explicit base)");
    CHECK_EQ(err("umask = '0022'\n"), "Invalid value for umask: 0022 (invalid literal for int() with base 0: '0022')");
    CHECK_EQ(err("daemon = 'yes'\n"), "Invalid value for daemon: yes (Invalid boolean: yes)");
    CHECK_EQ(err("daemon = 1\n"), "Invalid value for daemon: 1 (Invalid type for casting: 1)");
    CHECK_EQ(err("pidfile = 5\n"), "Invalid value for pidfile: 5 (Not a string: 5)");
    CHECK_EQ(err("raw_env = ['A=1', 'B']\n"), "Invalid value for raw_env: ['A=1', 'B'] (environment setting 'B' invalid)");
    CHECK_EQ(err("secure_scheme_headers = 'x'\n"), "Invalid value for secure_scheme_headers: x (Value is not a dictionary: x )");
    CHECK_EQ(err("chdir = '/no/such/dir'\n"), "Invalid value for chdir: /no/such/dir (can't chdir to '/no/such/dir')");
    CHECK_EQ(err("user = 'no-such-user-here'\n"),
             "Invalid value for user: no-such-user-here (No such user: 'no-such-user-here')");
    CHECK_EQ(err("group = 'no-such-group-here'\n"),
             "Invalid value for group: no-such-group-here (No such group: 'no-such-group-here')");
    CHECK_EQ(err("worker_tmp_dir = '/no/such/dir'\n"),
             "Invalid value for worker_tmp_dir: /no/such/dir (No such directory: '/no/such/dir')");
    CHECK_EQ(err("reload_extra_files = ['/no/such/file']\n"),
             "Invalid value for reload_extra_files: ['/no/such/file'] (File /no/such/file does not exists.)");
    CHECK_EQ(err("http2_max_frame_size = 100\n"),
             "Invalid value for http2_max_frame_size: 100 (http2_max_frame_size must be between 16384 and 16777215, "
             "got 100)");
    CHECK_EQ(err("http_protocols = 'h1,h1'\n"), "Invalid value for http_protocols: h1,h1 (Duplicate HTTP protocol: 'h1')");
    CHECK_EQ(err("statsd_host = 'a:b'\n"),
             "Invalid value for statsd_host: a:b (Value must be one of ('host:port', 'unix://PATH'))");
}

TEST(config_file_user_group_and_dirs) {
    Fixture f;
    Config c = load({"-c", write_file("ug.py", "user = 'root'\ngroup = '0'\nworker_tmp_dir = '/tmp'\n"), "app:app"});
    CHECK_EQ(c.uid, 0);
    CHECK_EQ(c.gid, 0);
    CHECK_EQ(c.worker_tmp_dir, "/tmp");
    CHECK_EQ(c.rendered["user"], "0");
    Config n = load({"-u", "12345", "-g", "54321", "app:app"});
    CHECK_EQ(n.uid, 12345);
    CHECK_EQ(n.user, "12345");
    CHECK_EQ(n.gid, 54321);
}

TEST(config_file_forms_and_errors) {
    Fixture f;
    std::string path = write_file("forms.py", "workers = 6\nproc_name = __name__\nwsgi_app = __file__\n");
    Config a = load({"-c", path});
    CHECK_EQ(a.workers, 6);
    CHECK_EQ(a.proc_name, "__config__");
    CHECK_EQ(a.wsgi_app, path);  // __file__ is the path given
    CHECK_EQ(load({"-c", "file:" + path, "app:app"}).workers, 6);
    // A name without .py is still Python (with gunicorn's warning banner).
    CHECK_EQ(load({"-c", write_file("gunicorn.conf", "workers = 7\n"), "app:app"}).workers, 7);
    CHECK_EQ(error_of({"-c", "/no/such/file.py", "app:app"}), "'/no/such/file.py' doesn't exist");
    CHECK_EQ(error_of({"-c", "file:/no/such/file.py", "app:app"}), "'/no/such/file.py' doesn't exist");
    std::string bad = write_file("raises.py", "workers = 2\nx = 1 / 0\n");
    CHECK_EQ(error_of({"-c", bad, "app:app"}), "file: Failed to read config file: " + bad);
    try {
        load({"-c", bad, "app:app"});
    } catch (const ConfigFileError &e) {
        CHECK(e.traceback.find("Traceback (most recent call last)") != std::string::npos);
        CHECK(e.traceback.find("ZeroDivisionError") != std::string::npos);
        CHECK(e.traceback.find(bad) != std::string::npos);
    }
    std::string syntax = write_file("syntax.py", "workers = (\n");
    CHECK_EQ(error_of({"-c", syntax, "app:app"}), "file: Failed to read config file: " + syntax);
    CHECK(error_of({"-c", "python:no_such_module_xyz", "app:app"}).find("No module named 'no_such_module_xyz'") !=
          std::string::npos);
}

TEST(config_file_default_and_python_module) {
    Fixture f;
    // ./gunicorn.conf.py of the start-up directory; --chdir does not move
    // the lookup (the first chdir is to the default, as gunicorn does).
    std::string dir = tmpdir() + "/startup";
    mkdir(dir.c_str(), 0755);
    mkdir((dir + "/sub").c_str(), 0755);
    std::ofstream(dir + "/gunicorn.conf.py") << "workers = 11\n";
    std::ofstream(dir + "/sub/gunicorn.conf.py") << "workers = 12\n";
    std::ofstream(dir + "/mycfg.py") << "workers = 13\n";
    CHECK_EQ(chdir(dir.c_str()), 0);
    cunicorn::reset_startup_dir();
    Config c = load({"app:app"});
    CHECK_EQ(c.workers, 11);
    CHECK_EQ(c.config_file, dir + "/gunicorn.conf.py");
    CHECK_EQ(c.config, "");
    Config s = load({"--chdir", "sub", "app:app"});
    CHECK_EQ(s.workers, 11);
    CHECK_EQ(s.chdir, dir + "/sub");
    CHECK_EQ(cwd(), dir + "/sub");
    // A reload starts again from the start-up directory.
    CHECK_EQ(load({"--chdir", "sub", "app:app"}).chdir, dir + "/sub");
    // python:MODULE imports from sys.path, where chdir was put.
    CHECK_EQ(load({"-c", "python:mycfg", "app:app"}).workers, 13);
    CHECK_EQ(load({"-c", "python:mycfg", "app:app"}).config_file, "python:mycfg");
    // -c replaces the default file.
    CHECK_EQ(load({"-c", "sub/gunicorn.conf.py", "app:app"}).workers, 12);
    CHECK_EQ(chdir(f.dir.c_str()), 0);
    cunicorn::reset_startup_dir();
}

TEST(config_chdir) {
    Fixture f;
    std::string dir = tmpdir() + "/chdir-target";
    mkdir(dir.c_str(), 0755);
    Config c = load({"--chdir", dir, "app:app"});
    CHECK_EQ(c.chdir, dir);
    CHECK_EQ(cwd(), dir);
    CHECK_EQ(c.rendered["chdir"], dir);
    CHECK_EQ(load({"--chdir", dir + "/../chdir-target/.", "app:app"}).chdir, dir);
    CHECK_EQ(error_of({"--chdir", "no-such-dir-xyz", "app:app"}),
             "Invalid value for chdir: no-such-dir-xyz (can't chdir to 'no-such-dir-xyz')");
    // The config file may move it too; the final chdir follows.
    Config g = load({"-c", write_file("cd.py", "chdir = '" + dir + "'\n"), "app:app"});
    CHECK_EQ(g.chdir, dir);
    CHECK_EQ(cwd(), dir);
}

// ---------------------------------------------------------------------------
// GUNICORN_CMD_ARGS and the layering of sources.

TEST(config_precedence_file_env_cli) {
    Fixture f;
    std::string path = write_file("prec.py", "workers = 2\nbind = ['127.0.0.1:1']\ntimeout = 11\nkeepalive = 9\n");
    setenv("GUNICORN_CMD_ARGS", "-w 3 --timeout=12", 1);
    Config all = load({"-c", path, "-w", "4", "app:app"});
    CHECK_EQ(all.workers, 4);  // CLI over env over file
    CHECK_EQ(all.timeout, 12);  // env over file
    CHECK_EQ(all.keepalive, 9);  // file over default
    CHECK_EQ(joined(all.bind), "127.0.0.1:1");
    CHECK_EQ(load({"-c", path, "app:app"}).workers, 3);
    unsetenv("GUNICORN_CMD_ARGS");
    CHECK_EQ(load({"-c", path, "app:app"}).workers, 2);
    CHECK_EQ(joined(load({"-c", path, "-b", "127.0.0.1:2", "app:app"}).bind), "127.0.0.1:2");
}

TEST(config_env_args) {
    Fixture f;
    // The guides' example; positionals inside the variable are ignored.
    setenv("GUNICORN_CMD_ARGS", "--bind=127.0.0.1 --workers=3 other:app", 1);
    Config c = load({"app:app"});
    CHECK_EQ(joined(c.bind), "127.0.0.1");
    CHECK_EQ(c.workers, 3);
    CHECK_EQ(c.wsgi_app, "app:app");
    CHECK_EQ(c.default_proc_name, "app:app");
    CHECK_EQ(error_of({}), "No application module specified.");
    // shlex quoting.
    setenv("GUNICORN_CMD_ARGS", "--access-logformat '%(h)s \"%(r)s\"' -n \"a b\" -e X=\\\"q\\\"", 1);
    Config q = load({"app:app"});
    CHECK_EQ(q.access_log_format, "%(h)s \"%(r)s\"");
    CHECK_EQ(q.proc_name, "a b");
    CHECK_EQ(joined(q.raw_env), "X -> \"q\"");
    setenv("GUNICORN_CMD_ARGS", "-n 'open", 1);
    CHECK_EQ(error_of({"app:app"}), "No closing quotation");
    setenv("GUNICORN_CMD_ARGS", "--bogus", 1);
    CHECK_EQ(error_of({"app:app"}), "usage: unrecognized arguments: --bogus");
    setenv("GUNICORN_CMD_ARGS", "-w -3", 1);
    CHECK_EQ(error_of({"app:app"}), "Invalid value for workers: -3 (Value must be positive: -3)");
}

TEST(config_env_config_file) {
    Fixture f;
    std::string env_file = write_file("envc.py", "workers = 21\n");
    std::string cli_file = write_file("clic.py", "workers = 22\n");
    setenv("GUNICORN_CMD_ARGS", ("-c " + env_file).c_str(), 1);
    Config c = load({"app:app"});
    CHECK_EQ(c.workers, 21);
    CHECK_EQ(c.config, env_file);
    CHECK_EQ(load({"-c", cli_file, "app:app"}).workers, 22);  // the command line's -c wins
}

TEST(config_app_module) {
    Fixture f;
    CHECK_EQ(error_of({}), "No application module specified.");
    CHECK_EQ(error_of({"-w", "2"}), "No application module specified.");
    std::string path = write_file("app.py", "wsgi_app = 'pkg.mod:application'\n");
    Config c = load({"-c", path});
    CHECK_EQ(c.wsgi_app, "pkg.mod:application");
    CHECK_EQ(c.default_proc_name, "cunicorn");  // only a positional names the processes
    CHECK_EQ(load({"-c", path, "other:app"}).wsgi_app, "other:app");
    // gunicorn sets default_proc_name before reading the file, so the file wins.
    std::string named = write_file("named.py", "default_proc_name = 'fromfile'\n");
    CHECK_EQ(load({"-c", named, "other:app"}).default_proc_name, "fromfile");
    Config extra = load({"a:app", "b:app"});
    CHECK_EQ(extra.wsgi_app, "a:app");
    CHECK(has_warning(extra, "ignoring extra positional arguments: b:app"));
}

// ---------------------------------------------------------------------------
// Python-valued settings.

TEST(config_hooks) {
    Fixture f;
    std::string path = write_file("hooks.py",
                                  "calls = []\n"
                                  "def post_fork(server, worker):\n    calls.append('post_fork')\n"
                                  "def post_request(worker, req):\n    pass\n"
                                  "def pre_request(worker, req, *args, extra=1):\n    pass\n"
                                  "on_starting = 'os.path.join'\n"
                                  "secure_scheme_headers = {'X-PROTO': 'https', 'X-SSL': 'on'}\n");
    Config c = load({"-c", path, "app:app"});
    CHECK(c.python_values["post_fork"]);
    CHECK(c.python_values["pre_request"]);
    CHECK(c.python_values["on_starting"]);
    CHECK(!c.python_values["when_ready"]);
    PyObject *pf = cunicorn::python_setting("post_fork");
    CHECK(pf != nullptr);
    CHECK(cunicorn::python_setting("post_request") != nullptr);
    CHECK(cunicorn::python_setting("on_starting") != nullptr);
    CHECK(cunicorn::python_setting("when_ready") == nullptr);
    CHECK(cunicorn::python_setting("no_such_setting") == nullptr);
    CHECK_EQ(c.rendered["post_fork"], "<post_fork()>");
    CHECK_EQ(c.rendered["post_request"], "<validate_post_request.<locals>.<lambda>()>");  // wrapped to 4 args
    CHECK_EQ(c.rendered["when_ready"], "<WhenReady.when_ready()>");
    CHECK_EQ(c.http.secure_scheme_headers.size(), 2u);
    CHECK_EQ(c.http.secure_scheme_headers[0].first, "X-PROTO");
    CHECK_EQ(c.http.secure_scheme_headers[1].second, "on");
    CHECK(cunicorn::python_setting("secure_scheme_headers") != nullptr);
    // A reload without hooks drops the old objects.
    load({"app:app"});
    CHECK(cunicorn::python_setting("post_fork") == nullptr);
}

TEST(config_hook_validation) {
    Fixture f;
    auto err = [](const std::string &body) { return error_of({"-c", write_file("hookbad.py", body), "app:app"}); };
    CHECK(err("def when_ready(a, b):\n    pass\n").find("(Value must have an arity of: 1)") != std::string::npos);
    CHECK(err("def post_request(a):\n    pass\n").find("(Value must have an arity of: 4)") != std::string::npos);
    CHECK_EQ(err("post_fork = 5\n"), "Invalid value for post_fork: 5 (Value is not callable: 5)");
    CHECK_EQ(err("post_fork = 'nodots'\n"),
             "Invalid value for post_fork: nodots (Value 'nodots' is not import string. Format: "
             "module[.submodules...].object)");
    CHECK_EQ(err("post_fork = 'no_such_mod_xyz.f'\n"),
             "Invalid value for post_fork: no_such_mod_xyz.f (No module named 'no_such_mod_xyz')");
    CHECK_EQ(err("post_fork = 'os.no_such_attr'\n"),
             "Invalid value for post_fork: os.no_such_attr (Can not load 'no_such_attr' from 'os')");
    // A failed load keeps the previous hooks.
    load({"-c", write_file("keep.py", "def post_fork(s, w):\n    pass\n"), "app:app"});
    err("post_fork = 5\n");
    CHECK(cunicorn::python_setting("post_fork") != nullptr);
}

// ---------------------------------------------------------------------------
// Support status: warnings and refusals.

TEST(config_no_effect_and_refused) {
    Fixture f;
    Config c = load({"--spew", "--statsd-host", "localhost", "--http-protocols", "h1,h2", "app:app"});
    CHECK(!has_warning(c, "spew = True"));
    CHECK(!has_warning(c, "statsd_host"));
    CHECK_EQ(c.statsd_host, "localhost");
    CHECK_EQ(c.statsd_port, 8125);
    CHECK(has_warning(c, "http_protocols = ['h1', 'h2'] has no effect: HTTP/2 is not supported"));
    CHECK(c.spew);
    CHECK(load({"--reload", "app:app"}).warnings.empty());
    CHECK(load({"--no-control-socket", "--protocol", "http", "--http-parser", "fast", "app:app"}).warnings.empty());
    CHECK(load({"--suppress-ragged-eofs", "--http-protocols", "H1", "app:app"}).warnings.empty());
    CHECK(load({"--logger-class", "my.Logger", "app:app"}).warnings.empty());
    CHECK(load({"--logger-class", "my.Logger", "app:app"}).logger_class_custom);
    CHECK(!load({"--logger-class", "gunicorn.glogging.Logger", "app:app"}).logger_class_custom);
    CHECK(load({"--logger-class", "simple", "app:app"}).warnings.empty());
    CHECK_EQ(error_of({"--certfile", "/nonexistent/cert.pem", "app:app"}),
             "Invalid value for certfile: /nonexistent/cert.pem (File /nonexistent/cert.pem does not exists.)");
    CHECK(error_of({"--cert-reqs", "3", "app:app"}).find("cert_reqs must be 0 (none), 1 (optional) or 2") !=
          std::string::npos);
    CHECK(has_warning(load({"--do-handshake-on-connect", "app:app"}), "do_handshake_on_connect = True has no effect"));
    CHECK(error_of({"--paste", "dev.ini#main", "app:app"}).find("dev.ini' not found (--paste dev.ini#main)") !=
          std::string::npos);
    CHECK(error_of({"--protocol", "uwsgi", "app:app"}).find("Setting protocol = uwsgi is not supported") == 0);
    CHECK(load({"-c", write_file("nocert.py", "certfile = None\nkeyfile = None\n"), "app:app"}).warnings.empty());
}

// ---------------------------------------------------------------------------
// --print-config, reloads.

TEST(config_format_config) {
    Fixture f;
    std::string path = write_file("print.py", "def post_fork(server, worker):\n    pass\n");
    Config c = load({"-c", path, "-w", "3", "-b", "127.0.0.1:9000", "--print-config", "app:app"});
    std::string out = cunicorn::format_config(c);
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < out.size()) {
        size_t nl = out.find('\n', start);
        lines.push_back(out.substr(start, nl - start));
        start = nl + 1;
    }
    CHECK_EQ(lines.size(), cunicorn::settings_table().size());
    CHECK_EQ(out.back(), '\n');
    // Sorted by name, "=" in one column: the longest name plus one space.
    const size_t col = std::strlen("permit_unconventional_http_version") + 1;
    for (size_t k = 0; k < lines.size(); ++k) {
        CHECK_EQ(lines[k].substr(col, 2), "= ");
        if (k) CHECK(lines[k - 1] < lines[k]);
    }
    auto line = [&](const std::string &name) {
        for (const auto &l : lines)
            if (l.compare(0, name.size() + 1, name + " ") == 0) return l.substr(col + 2);
        return std::string("(missing)");
    };
    CHECK_EQ(line("workers"), "3");
    CHECK_EQ(line("bind"), "['127.0.0.1:9000']");
    CHECK_EQ(line("accesslog"), "None");
    CHECK_EQ(line("daemon"), "False");
    CHECK_EQ(line("print_config"), "True");
    CHECK_EQ(line("dogstatsd_tags"), "");
    CHECK_EQ(line("raw_env"), "[]");
    CHECK_EQ(line("umask"), "0");
    CHECK_EQ(line("control_socket_mode"), "384");
    CHECK_EQ(line("access_log_format"), "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"");
    CHECK_EQ(line("secure_scheme_headers"),
             "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}");
    CHECK_EQ(line("logconfig_dict"), "{}");
    CHECK_EQ(line("on_starting"), "<OnStarting.on_starting()>");
    CHECK_EQ(line("pre_fork"), "<Prefork.pre_fork()>");
    CHECK_EQ(line("post_fork"), "<post_fork()>");
    CHECK_EQ(line("http_protocols"), "['h1']");
    CHECK_EQ(line("forwarded_allow_ips"), "['127.0.0.1', '::1']");
    CHECK_EQ(line("default_proc_name"), "app:app");
    CHECK_EQ(line("config"), path);
    CHECK_EQ(line("ssl_version"), "2");
    // Quotes as Python's repr() picks them.
    Config q = load({"-e", "A='x'", "-e", "B=\"y\"", "-e", "C='\"", "app:app"});
    CHECK_EQ(q.rendered["raw_env"], "[\"A='x'\", 'B=\"y\"', 'C=\\'\"']");
    // A Config not made by load_config prints the defaults.
    CHECK(cunicorn::format_config(Config()).find("workers                            = 1\n") != std::string::npos);
}

TEST(config_load_twice_and_argv) {
    Fixture f;
    Config a = load({"-w", "2", "app:app"});
    Config b = load({"-w", "2", "app:app"});
    CHECK_EQ(a.workers, b.workers);
    CHECK_EQ(joined(a.bind), joined(b.bind));
    CHECK_EQ(a.rendered == b.rendered, true);
    CHECK_EQ(joined(cunicorn::original_argv()), "cunicorn|-w|2|app:app");
    std::vector<std::string> argv{"cunicorn", "-w", "5", "app:app"};
    std::vector<char *> cargv;
    for (auto &s : argv) cargv.push_back(&s[0]);
    cargv.push_back(nullptr);
    CHECK_EQ(cunicorn::load_config(4, cargv.data()).workers, 5);
    CHECK_EQ(joined(cunicorn::original_argv()), "cunicorn|-w|5|app:app");
}

// ---------------------------------------------------------------------------
// Directories the master will need, checked at load time.

TEST(config_missing_directories_name_the_setting) {
    Fixture f;
    CHECK_EQ(error_of({"-p", "/no/such/dir/app.pid", "app:app"}),
             "pidfile: cannot write '/no/such/dir/app.pid': directory '/no/such/dir' does not exist");
    CHECK_EQ(error_of({"--access-logfile", "/log/flask.log", "app:app"}),
             "accesslog: cannot write '/log/flask.log': directory '/log' does not exist");
    CHECK_EQ(error_of({"-c", write_file("logs.py", "errorlog = 'log/debug.log'\n"), "app:app"}),
             "errorlog: cannot write 'log/debug.log': directory 'log' does not exist");
    std::string file = write_file("plain", "");
    CHECK_EQ(error_of({"--error-logfile", file + "/x.log", "app:app"}),
             "errorlog: cannot write '" + file + "/x.log': '" + file + "' is not a directory");
    // Relative paths count from the final chdir, where the master opens them.
    std::string dir = tmpdir() + "/with-log";
    mkdir(dir.c_str(), 0755);
    mkdir((dir + "/log").c_str(), 0755);
    Config c = load({"--chdir", dir, "--access-logfile", "log/a.log", "--error-logfile", "log/e.log", "-p", "x.pid",
                     "app:app"});
    CHECK_EQ(c.accesslog, "log/a.log");
    CHECK_EQ(c.errorlog, "log/e.log");
    CHECK_EQ(c.pidfile, "x.pid");
    CHECK_EQ(load({"--access-logfile", "-", "--error-logfile", "-", "app:app"}).accesslog, "-");
}

// ---------------------------------------------------------------------------
// virtualenv: found before the interpreter starts, checked at load.

TEST(config_virtualenv_inspect) {
    std::string ours = cunicorn::py::linked_version();
    CHECK(ours.rfind("3.", 0) == 0);
    cunicorn::py::Virtualenv v;
    std::string venv = make_venv("venv-ok", "version = " + ours + ".2\n");
    CHECK_EQ(cunicorn::py::inspect_virtualenv(venv, v), "");
    CHECK_EQ(v.dir, venv);
    CHECK_EQ(v.python, venv + "/bin/python");
    CHECK_EQ(v.version, ours + ".2");
    // virtualenv and uv write version_info; keys are case-insensitive.
    std::string vinfo = make_venv("venv-info", "Version_Info = " + ours + ".1.final.0\n");
    CHECK_EQ(cunicorn::py::inspect_virtualenv(vinfo, v), "");
    CHECK_EQ(v.version, ours + ".1.final.0");
    CHECK_EQ(cunicorn::py::inspect_virtualenv(make_venv("venv-39", "version = 3.9.2\n"), v),
             "made by Python 3.9, but cunicorn runs Python " + ours + "; recreate it with python" + ours +
                 " -m venv");
    // No version line: only this Python's layout is accepted.
    std::string bare = make_venv("venv-bare", "");
    CHECK_EQ(cunicorn::py::inspect_virtualenv(bare, v),
             bare + "/pyvenv.cfg names no version and there is no lib/python" + ours + ": cunicorn runs Python " +
                 ours);
    mkdir((bare + "/lib").c_str(), 0755);
    mkdir((bare + "/lib/python" + ours).c_str(), 0755);
    CHECK_EQ(cunicorn::py::inspect_virtualenv(bare, v), "");
    CHECK_EQ(cunicorn::py::inspect_virtualenv(tmpdir(), v),
             "not a virtualenv: there is no " + tmpdir() + "/pyvenv.cfg");
    CHECK_EQ(cunicorn::py::inspect_virtualenv("/no/such/venv", v), "no such directory");
}

TEST(config_virtualenv_early_sources) {
    Fixture f;
    using cunicorn::early_virtualenv;
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app"}), "");
    CHECK_EQ(early_virtualenv({"cunicorn", "--virtualenv", "/srv/a", "app:app"}), "/srv/a");
    CHECK_EQ(early_virtualenv({"cunicorn", "--virtualenv=/srv/b/", "app:app"}), "/srv/b");
    CHECK_EQ(early_virtualenv({"cunicorn", "--virtu", "/srv/c", "app:app"}), "/srv/c");  // argparse prefix
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app", "--virtualenv", "/srv/d"}), "/srv/d");
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app", "--", "--virtualenv", "/srv/e"}), "");
    CHECK_EQ(early_virtualenv({"cunicorn", "--virtualenv", "rel", "app:app"}), cwd() + "/rel");
    // Errors elsewhere are load_config's to report.
    CHECK_EQ(early_virtualenv({"cunicorn", "--bogus", "-w", "x", "--virtualenv", "/srv/f", "-h", "app:app"}),
             "/srv/f");
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app", "--virtualenv"}), "");
    // Command line > GUNICORN_CMD_ARGS > $VIRTUAL_ENV.
    setenv("VIRTUAL_ENV", "/srv/env", 1);
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app"}), "/srv/env");
    setenv("GUNICORN_CMD_ARGS", "-w 2 --virtualenv /srv/args", 1);
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app"}), "/srv/args");
    CHECK_EQ(early_virtualenv({"cunicorn", "--virtualenv", "/srv/cli", "app:app"}), "/srv/cli");
    setenv("GUNICORN_CMD_ARGS", "-n 'open", 1);
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app"}), "/srv/env");
    setenv("VIRTUAL_ENV", "", 1);
    CHECK_EQ(early_virtualenv({"cunicorn", "app:app"}), "");
}

TEST(config_virtualenv_setting) {
    Fixture f;
    std::string ours = cunicorn::py::linked_version();
    std::string good = make_venv("venv-good", "version = " + ours + ".0\n");
    std::string other = make_venv("venv-other", "version = " + ours + ".0\n");
    std::string old = make_venv("venv-old", "version = 3.9.18\n");
    Config none = load({"app:app"});
    CHECK_EQ(none.virtualenv, "");
    CHECK(!none.virtualenv_restart);
    CHECK_EQ(none.rendered["virtualenv"], "None");
    // The unit tests' interpreter runs in no virtualenv: any other value
    // asks for a restart, which after the first load is a warning.
    Config c = load({"--virtualenv", good, "app:app"});
    CHECK_EQ(c.virtualenv, good);
    CHECK_EQ(c.rendered["virtualenv"], good);
    CHECK(c.virtualenv_restart);
    CHECK(has_warning(c, "virtualenv = " + good + " needs a restart"));
    // Layering: default ($VIRTUAL_ENV) < file < GUNICORN_CMD_ARGS < CLI.
    std::string conf = write_file("venv.py", "virtualenv = '" + other + "'\n");
    setenv("VIRTUAL_ENV", good.c_str(), 1);
    CHECK_EQ(load({"app:app"}).virtualenv, good);
    CHECK_EQ(load({"-c", conf, "app:app"}).virtualenv, other);
    setenv("GUNICORN_CMD_ARGS", ("--virtualenv " + good).c_str(), 1);
    CHECK_EQ(load({"-c", conf, "app:app"}).virtualenv, good);
    CHECK_EQ(load({"-c", conf, "--virtualenv", other, "app:app"}).virtualenv, other);
    unsetenv("GUNICORN_CMD_ARGS");
    // Only the final value must be a virtualenv: a stale $VIRTUAL_ENV is
    // fine when the file overrides it, and named when it is used.
    setenv("VIRTUAL_ENV", old.c_str(), 1);
    CHECK_EQ(load({"-c", conf, "app:app"}).virtualenv, other);
    CHECK_EQ(error_of({"app:app"}), "Invalid value for virtualenv: " + old + " (from $VIRTUAL_ENV: made by Python 3.9, "
                                        "but cunicorn runs Python " + ours + "; recreate it with python" + ours +
                                        " -m venv)");
    unsetenv("VIRTUAL_ENV");
    CHECK_EQ(error_of({"--virtualenv", old, "app:app"}),
             "Invalid value for virtualenv: " + old + " (made by Python 3.9, but cunicorn runs Python " + ours +
                 "; recreate it with python" + ours + " -m venv)");
    CHECK_EQ(error_of({"--virtualenv", tmpdir(), "app:app"}),
             "Invalid value for virtualenv: " + tmpdir() + " (not a virtualenv: there is no " + tmpdir() +
                 "/pyvenv.cfg)");
    CHECK_EQ(error_of({"-c", write_file("venvnone.py", "virtualenv = '/no/such/venv'\n"), "app:app"}),
             "Invalid value for virtualenv: /no/such/venv (no such directory)");
    // The file may also turn it off.
    setenv("VIRTUAL_ENV", good.c_str(), 1);
    Config off = load({"-c", write_file("venvoff.py", "virtualenv = None\n"), "app:app"});
    CHECK_EQ(off.virtualenv, "");
    CHECK(!off.virtualenv_restart);
}
