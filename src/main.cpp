// argv -> Config -> Arbiter::run(), and the exit statuses gunicorn uses.
#include "cunicorn/arbiter.h"
#include "cunicorn/config.h"
#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/wsgi.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#ifndef CUNICORN_VERSION
#define CUNICORN_VERSION "0.0.0"
#endif

using namespace cunicorn;

// util.daemonize: detach from the terminal and the session, stdio to
// /dev/null. Not again in a re-executed master (GUNICORN_FD set).
static void daemonize() {
    for (int i = 0; i < 2; ++i) {
        py::before_fork();
        pid_t pid = fork();
        if (pid < 0) {
            std::perror("fork");
            std::exit(1);
        }
        if (pid > 0) _exit(0);
        py::after_fork_child();
        if (i == 0) setsid();
    }
    umask(022);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        for (int fd = 0; fd < 3; ++fd) dup2(null, fd);
        if (null > 2) close(null);
    }
}

int main(int argc, char **argv) {
    platform::proctitle_init(argc, argv);
    try {
        py::init(argv[0]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "Error: %s\n", e.what());
        return 1;
    }

    Config cfg;
    try {
        cfg = load_config(argc, argv);
    } catch (const ConfigError &e) {
        return report_config_error(e);
    }

    try {
        log::configure(cfg.errorlog, log::parse_level(cfg.loglevel), cfg.accesslog, cfg.access_log_format);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "Error: %s\n", e.what());
        return 1;
    }
    if (cfg.capture_output && cfg.errorlog != "-" && !log::fds().empty()) {
        // print() output of the app goes to the error log file.
        dup2(log::fds()[0], 1);
        dup2(log::fds()[0], 2);
    }

    // As arbiter.py setup(): the app sees the server it runs under.
    setenv("SERVER_SOFTWARE", "cunicorn/" CUNICORN_VERSION, 1);
    for (const std::string &kv : cfg.raw_env) {
        size_t eq = kv.find('=');
        if (eq != std::string::npos) setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
    }
    // Each entry goes to the front in turn, as gunicorn inserts them.
    for (const std::string &dir : cfg.pythonpath) py::prepend_sys_path(dir);

    if (cfg.print_config) std::fputs(format_config(cfg).c_str(), stdout);
    if (cfg.check_config || cfg.print_config) {
        // Load the app here, as gunicorn's --check-config does; no socket
        // is bound and no worker forked.
        int rc = wsgi::load_app(cfg);
        if (rc != 0) {
            std::fprintf(stderr, "Error while loading the application\n");
            return 1;
        }
        return 0;
    }

    if (cfg.daemon && !std::getenv("GUNICORN_FD")) daemonize();
    try {
        Arbiter arbiter(cfg);
        return arbiter.run();
    } catch (const std::exception &e) {
        // Logged once; echoed on stderr only when the log goes elsewhere.
        LOG_ERROR("%s", e.what());
        if (cfg.errorlog != "-") std::fprintf(stderr, "Error: %s\n", e.what());
        return 1;
    }
}
