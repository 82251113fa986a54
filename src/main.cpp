// argv -> Config -> Arbiter::run(), and the exit statuses gunicorn uses.
#include "cunicorn/arbiter.h"
#include "cunicorn/config.h"
#include "cunicorn/log.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/wsgi.h"

#include <cstdio>
#include <cstdlib>
#include <exception>

#ifndef CUNICORN_VERSION
#define CUNICORN_VERSION "0.0.0"
#endif

using namespace cunicorn;

int main(int argc, char **argv) {
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
