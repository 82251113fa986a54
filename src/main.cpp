// argv -> Config -> Arbiter::run(), and the exit statuses gunicorn uses.
#include "cunicorn/arbiter.h"
#include "cunicorn/config.h"
#include "cunicorn/control.h"
#include "cunicorn/log.h"
#include "cunicorn/platform.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/pylog.h"
#include "cunicorn/tls.h"
#include "cunicorn/worker.h"
#include "cunicorn/wsgi.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

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

// Set in the environment of the re-executed process (below), so that a
// config file that keeps naming another virtualenv cannot loop.
static const char *const REEXEC_MARK = "CUNICORN_VIRTUALENV_REEXEC";

// The config file named a virtualenv other than the one the interpreter
// was started in (it is read by that interpreter): start again with the
// same argv in the start-up directory, the virtualenv passed on as
// $VIRTUAL_ENV, which early_virtualenv() reads and which has the lowest
// precedence, so the file still decides after the re-exec. Returns only on
// failure.
static int reexec_in_virtualenv(const Config &cfg, const std::string &startup_cwd) {
    if (std::getenv(REEXEC_MARK)) {
        std::fprintf(stderr, "\nError: virtualenv changed again after cunicorn restarted in %s (now %s); "
                             "give it with --virtualenv instead\n",
                     py::virtualenv().empty() ? "no virtualenv" : py::virtualenv().c_str(),
                     cfg.virtualenv.empty() ? "None" : cfg.virtualenv.c_str());
        return 1;
    }
    if (cfg.virtualenv.empty()) unsetenv("VIRTUAL_ENV");
    else setenv("VIRTUAL_ENV", cfg.virtualenv.c_str(), 1);
    setenv(REEXEC_MARK, "1", 1);
    if (!startup_cwd.empty() && chdir(startup_cwd.c_str()) != 0) {
        std::fprintf(stderr, "Error: chdir %s: %s\n", startup_cwd.c_str(), std::strerror(errno));
        return 1;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    const std::vector<std::string> &args = original_argv();
    std::vector<char *> argv;
    for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    std::string exe = platform::executable_path();
    if (!exe.empty()) execv(exe.c_str(), argv.data());
    else execvp(argv[0], argv.data());
    std::fprintf(stderr, "Error: cannot execute %s to enter virtualenv %s: %s\n", !exe.empty() ? exe.c_str() : argv[0],
                 cfg.virtualenv.c_str(), std::strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    // `cunicorn ctl ...`: the control socket's client, no server, no Python.
    if (argc > 1 && std::strcmp(argv[1], "ctl") == 0)
        return control::run_client(std::vector<std::string>(argv + 2, argv + argc));
    platform::remember_executable(argc > 0 ? argv[0] : nullptr);
    platform::proctitle_init(argc, argv);
    std::string startup_cwd;
    if (char *cwd = getcwd(nullptr, 0)) {
        startup_cwd = cwd;
        std::free(cwd);
    }
    // The virtualenv must be known before the interpreter starts, which
    // is before the config file can be read: the command line,
    // GUNICORN_CMD_ARGS and $VIRTUAL_ENV are looked at now; a file that
    // names another one makes cunicorn start again (below). A directory
    // that is not a usable virtualenv is left for load_config to report.
    std::vector<std::string> args(argv, argv + argc);
    std::string venv = early_virtualenv(args);
    py::Virtualenv checked;
    if (!venv.empty() && !py::inspect_virtualenv(venv, checked).empty()) venv.clear();
    try {
        py::init(argv[0], venv);
        pylog::install();  // gunicorn.glogging for a logger_class in the config file
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
    if (cfg.virtualenv_restart) return reexec_in_virtualenv(cfg, startup_cwd);
    // As gunicorn loads its worker class: a class whose module is missing
    // stops the server before anything starts.
    if (const char *why = worker::class_missing(cfg)) {
        std::fprintf(stderr, "Error: %s\n", why);
        return 1;
    }
    // Not inherited by the app, nor by a USR2 re-exec, which may
    // rightly restart once more if the file changed meanwhile.
    unsetenv(REEXEC_MARK);

    // --check-config and --print-config write nothing but stderr: gunicorn
    // creates its logger in the arbiter, which they never reach, and an rc
    // script checking a config must see the reason, not find a log file
    // created (the missing directories were checked by load_config).
    bool check_only = cfg.check_config || cfg.print_config;
    try {
        if (check_only) log::check(cfg);  // the syslog settings, opening nothing
        else log::configure(cfg);
    } catch (const std::exception &e) {
        // log.cpp words it as gunicorn's glogging does, "Error: " included.
        const char *what = e.what();
        std::fprintf(stderr, "%s%s\n", std::strncmp(what, "Error: ", 7) == 0 ? "" : "Error: ", what);
        return 1;
    }
    if (!check_only && cfg.capture_output && cfg.errorlog != "-" && !log::fds().empty()) {
        // print() output of the app goes to the error log file.
        dup2(log::fds()[0], 1);
        dup2(log::fds()[0], 2);
    }

    // As arbiter.py setup(): the app sees the server it runs under.
    py::set_environ("SERVER_SOFTWARE", "cunicorn/" CUNICORN_VERSION);
    py::apply_raw_env(cfg.raw_env);
    // Each entry goes to the front in turn, as gunicorn inserts them.
    for (const std::string &dir : cfg.pythonpath) py::prepend_sys_path(dir);

    if (cfg.print_config) std::fputs(format_config(cfg).c_str(), stdout);
    // Before any worker exists, and for --check-config too: a certificate
    // that does not load is a configuration error.
    try {
        tls::load_context(cfg);
    } catch (const ConfigError &e) {
        std::fprintf(stderr, "Error: %s\n", e.what());
        return 1;
    }
    if (check_only) {
        // Load the app here, as gunicorn's --check-config does; no socket
        // is bound and no worker forked.
        int rc = wsgi::load_app(cfg);
        if (rc != 0) {
            std::fprintf(stderr, "Error while loading the application\n");
            return 1;
        }
        return 0;
    }

    // Application.run: spew, then daemonize.
    if (cfg.spew) wsgi::spew();
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
