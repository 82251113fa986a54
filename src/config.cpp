// Settings (gunicorn/config.py) and their sources (gunicorn/app/base.py
// Application.load_config, app/wsgiapp.py): defaults < config file <
// GUNICORN_CMD_ARGS < command line. Values are kept the way gunicorn keeps
// them (its validators' results) until the end, then resolved into the
// typed Config the rest of the server reads.
#include "cunicorn/config.h"

#include "cunicorn/config_impl.h"
#include "cunicorn/pyembed.h"
#include "cunicorn/pyref.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef CUNICORN_VERSION
#define CUNICORN_VERSION "0.0.0"
#endif

namespace cunicorn {

using namespace conf;

namespace {

class Gil {
public:
    Gil() : held_(py::initialized()) {
        if (held_) state_ = PyGILState_Ensure();
    }
    ~Gil() {
        if (held_) PyGILState_Release(state_);
    }
    Gil(const Gil &) = delete;
    Gil &operator=(const Gil &) = delete;

private:
    bool held_;
    PyGILState_STATE state_{};
};

}  // namespace

// gunicorn's config-loading helpers (validators, file loading), in Python.
static const py::Source HELPERS_PY = {"src/py/config.py",
#include "py/config.inc"
};

// ---------------------------------------------------------------------------
// Loading.

static std::vector<std::string> g_argv;

// The Python objects of each successful load still in use, by load number
// (Config::python_load): the running configuration's and, during a HUP
// reload, the new one's, until keep_python_settings() drops the other.
// Never destroyed: a static destructor would run after Py_Finalize.
struct PythonObjects {
    std::map<std::string, py::Ref> set;  // Python-valued settings the file set
    py::Ref values;                      // every setting: name -> value (a dict)
};
static std::map<int, PythonObjects> &python_objects() {
    static auto *loads = new std::map<int, PythonObjects>();
    return *loads;
}

static PyObject *find_python_object(const PythonObjects &objects, const std::string &name) {
    auto it = objects.set.find(name);
    return it == objects.set.end() ? nullptr : it->second.get();
}

const std::vector<std::string> &original_argv() { return g_argv; }

std::string early_virtualenv(const std::vector<std::string> &argv) {
    size_t idx = index_of("virtualenv");
    auto given = [idx](const std::vector<std::string> &args, std::string &out) {
        Parsed p = parse_args(args, true);
        auto it = p.values.find(idx);
        if (it == p.values.end()) return false;
        out = it->second.s;
        return true;
    };
    std::string dir;
    std::vector<std::string> args(argv.size() > 1 ? argv.begin() + 1 : argv.end(), argv.end());
    bool found = given(args, dir);
    if (!found) {
        if (const char *e = std::getenv("GUNICORN_CMD_ARGS")) {
            try {
                found = given(shlex_split(e), dir);
            } catch (const ConfigError &) {
                // Unbalanced quotes: load_config says so.
            }
        }
    }
    if (!found) {
        const char *e = std::getenv("VIRTUAL_ENV");
        dir = e ? e : "";
    }
    dir = strip(dir);
    return dir.empty() ? dir : abspath(dir);
}

// Two virtualenv values name the same directory ("" = none).
static bool same_virtualenv(const std::string &a, const std::string &b) {
    if (a.empty() || b.empty()) return a == b;
    char ra[PATH_MAX], rb[PATH_MAX];
    if (::realpath(a.c_str(), ra) && ::realpath(b.c_str(), rb)) return std::strcmp(ra, rb) == 0;
    return a == b;
}

// How many load_config calls this process made: the first one is main's
// start-up, later ones are HUP reloads.
static int g_loads = 0;

PyObject *python_setting(const std::string &name) {
    const auto &loads = python_objects();
    return loads.empty() ? nullptr : find_python_object(loads.rbegin()->second, name);
}

PyObject *python_setting(const Config &cfg, const std::string &name) {
    auto it = python_objects().find(cfg.python_load);
    return it == python_objects().end() ? nullptr : find_python_object(it->second, name);
}

PyObject *setting_values(const Config &cfg) {
    auto it = python_objects().find(cfg.python_load);
    return it == python_objects().end() ? nullptr : it->second.values.get();
}

void keep_python_settings(const Config &cfg) {
    auto &loads = python_objects();
    for (auto it = loads.begin(); it != loads.end();) it = it->first == cfg.python_load ? std::next(it) : loads.erase(it);
}

namespace {

struct Loader {
    const std::vector<Setting> &table = settings_table();
    std::vector<V> cur;
    std::vector<std::string> default_shown;

    // Config.set: the validator's result replaces the value.
    void set(size_t idx, const V &v) {
        const Setting &s = table[idx];
        try {
            cur[idx] = s.validate(v);
        } catch (const Invalid &e) {
            throw ConfigError(invalid_value(s, v, e));
        }
    }

    void apply_parsed(const Parsed &p) {
        for (const auto &kv : p.values) set(kv.first, kv.second);
    }

    // Application.chdir: os.chdir, and the directory first on sys.path.
    void enter_chdir() {
        const std::string &dir = cur[index_of("chdir")].s;
        if (::chdir(dir.c_str()) != 0)
            throw ConfigError("[Errno " + std::to_string(errno) + "] " + std::strerror(errno) + ": " + repr_str(dir));
        if (!g_helpers) return;
        py::Ref args = py::Ref::steal(Py_BuildValue("(s)", dir.c_str()));
        py::Ref r = call_helper("add_path", args.get());
        if (!r) throw ConfigError("cannot add " + dir + " to sys.path: " + take_exception());
    }

    // WSGIApplication.init: --paste FILE[#name] made absolute (from the
    // start-up directory, as every load starts there); the file must exist.
    static std::string paste_app_uri(const std::string &given) {
        std::string uri = normpath(!given.empty() && given[0] == '/' ? given : startup_dir() + "/" + given);
        std::string ini = uri.substr(0, uri.find('#'));
        if (!path_exists(ini)) throw ConfigError(repr_str(ini) + " not found (--paste " + given + ")");
        return uri;
    }

    // pasterapp.has_logging_config: the ini file has a [loggers] section.
    static bool has_logging_config(const std::string &ini) {
        if (!g_helpers) return false;
        py::Ref args = py::Ref::steal(Py_BuildValue("(s)", ini.c_str()));
        py::Ref r = call_helper("has_logging_config", args.get());
        if (!r) throw ConfigError("cannot read the PasteDeploy file " + ini + ": " + take_exception());
        return PyObject_IsTrue(r.get()) == 1;
    }

    // Application.load_config_from_module_name_or_filename.
    void read_config(const std::string &location, Config &cfg) {
        if (!g_helpers)
            throw ConfigError("cannot read the config file " + location + ": the Python interpreter is not running");
        py::Ref vars;
        if (starts_with(location, "python:")) {
            std::string module = location.substr(7);
            py::Ref args = py::Ref::steal(Py_BuildValue("(s)", module.c_str()));
            vars = call_helper("load_module", args.get());
            if (!vars) throw ConfigError(take_exception());
            cfg.config_file = location;
        } else {
            std::string filename = starts_with(location, "file:") ? location.substr(5) : location;
            if (!path_exists(filename)) throw ConfigError(repr_str(filename) + " doesn't exist");
            py::Ref args = py::Ref::steal(Py_BuildValue("(s)", filename.c_str()));
            vars = call_helper("load_file", args.get());
            if (!vars) throw ConfigFileError(filename, py::fetch_traceback());
            cfg.config_file = filename;
        }
        if (!PyDict_Check(vars.get())) throw ConfigError("config module namespace is not a dict");
        // Names exactly equal to a setting, in the file's order.
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        std::vector<std::pair<size_t, py::Ref>> found;
        while (PyDict_Next(vars.get(), &pos, &key, &value)) {
            if (!PyUnicode_Check(key)) continue;
            size_t idx = index_of(utf8(key).c_str());
            if (idx < table.size()) found.emplace_back(idx, py::Ref::borrow(value));
        }
        for (auto &f : found) set(f.first, from_py(f.second.get()));
    }

    // Every setting's value as gunicorn's Config holds it, as Python
    // objects: what the hooks' cfg object shows.
    py::Ref value_dict() const {
        py::Ref d = py::Ref::steal(PyDict_New());
        if (!d) throw ConfigError("cannot keep the settings' values: " + take_exception());
        for (size_t k = 0; k < table.size(); ++k) {
            py::Ref v = to_py(cur[k]);
            if (!v || PyDict_SetItemString(d.get(), table[k].name, v.get()) < 0)
                throw ConfigError(std::string("cannot keep the value of ") + table[k].name + ": " + take_exception());
        }
        return d;
    }

    Config load(const std::vector<std::string> &argv);
};

Config Loader::load(const std::vector<std::string> &argv) {
    Config cfg;
    cur.resize(table.size());
    default_shown.resize(table.size());

    // Defaults, through their validators as Setting.__init__ does (a bad
    // $WEB_CONCURRENCY fails here). The Python-valued ones are texts.
    for (size_t k = 0; k < table.size(); ++k) {
        const Setting &s = table[k];
        V d;
        try {
            d = s.default_value();
        } catch (const Invalid &e) {
            throw ConfigError("Invalid value for " + std::string(s.name) + " (" + e.reason + ")");
        }
        if (s.type == SettingType::PYTHON || d.kind == V::NONE) cur[k] = d;
        else set(k, d);
        default_shown[k] = shown(cur[k]);
    }

    // The command line first: argparse errors come before anything else.
    std::vector<std::string> args(argv.size() > 1 ? argv.begin() + 1 : argv.end(), argv.end());
    Parsed cli = parse_args(args);
    auto act = [](int action) {
        if (action == OPT_HELP) {
            std::fputs(format_help().c_str(), stdout);
            std::fflush(stdout);
            std::exit(0);
        }
        if (action == OPT_VERSION) {
            std::printf("%s (version %s)\n", PROG, CUNICORN_VERSION);
            std::fflush(stdout);
            std::exit(0);
        }
    };
    act(cli.action);

    // WSGIApplication.init: --paste on the command line (only there) names
    // the app and the processes, and any positional app is ignored; else
    // the positional app does.
    std::string app_uri;
    auto paste = cli.values.find(index_of("paste"));
    if (paste != cli.values.end() && !paste->second.s.empty()) {
        app_uri = paste_app_uri(paste->second.s);
        std::string ini = app_uri.substr(0, app_uri.find('#'));
        set(index_of("default_proc_name"), V::str(ini));
        if (has_logging_config(ini)) set(index_of("logconfig"), V::str(ini));
    } else if (!cli.positionals.empty()) {
        app_uri = cli.positionals[0];
        set(index_of("default_proc_name"), V::str(app_uri));
        if (cli.positionals.size() > 1) {
            std::vector<std::string> rest(cli.positionals.begin() + 1, cli.positionals.end());
            warn(cfg, "ignoring extra positional arguments: " + join(rest, " "));
        }
    }

    enter_chdir();

    Parsed env;
    if (const char *e = std::getenv("GUNICORN_CMD_ARGS")) {
        env = parse_args(shlex_split(e));
        act(env.action);
    }

    size_t config_idx = index_of("config");
    auto given_config = [&](const Parsed &p) -> const V * {
        auto it = p.values.find(config_idx);
        return it == p.values.end() ? nullptr : &it->second;
    };
    if (const V *c = given_config(cli)) {
        cfg.config = c->s;
        read_config(c->s, cfg);
    } else if (const V *ce = given_config(env)) {
        cfg.config = ce->s;
        read_config(ce->s, cfg);
    } else {
        std::string path = os_getcwd() + "/gunicorn.conf.py";
        if (path_exists(path)) read_config(path, cfg);
    }

    apply_parsed(env);
    apply_parsed(cli);

    enter_chdir();

    // WSGIApplication.load_config.
    V &wsgi_app = cur[index_of("wsgi_app")];
    if (app_uri.empty() && wsgi_app.kind == V::STR) app_uri = wsgi_app.s;
    if (app_uri.empty()) throw ConfigError("No application module specified.");

    // Resolve into Config; refuse what cannot work, warn about what is
    // ignored.
    PythonObjects objects;
    for (size_t k = 0; k < table.size(); ++k) {
        const Setting &s = table[k];
        const V &v = cur[k];
        if (s.type == SettingType::PYTHON) {
            cfg.python_values[s.name] = v.obj != nullptr;
            if (v.obj) objects.set[s.name] = py::Ref::borrow(v.obj->get());
        }
        resolve(cfg, s, v, default_shown[k]);
    }
    if (g_helpers) objects.values = value_dict();
    cfg.wsgi_app = app_uri;
    if (!given_config(cli) && !given_config(env)) cfg.config.clear();

    // The interpreter cannot move to another virtualenv: at start-up main
    // re-executes cunicorn in the new one, which then says everything
    // this process would have; a HUP reload keeps the running one.
    bool quiet = false;
    if (py::initialized() && !same_virtualenv(cfg.virtualenv, py::virtualenv())) {
        cfg.virtualenv_restart = true;
        if (g_loads == 1) quiet = true;
        else
            warn(cfg, "virtualenv = " + (cfg.virtualenv.empty() ? std::string("None") : cfg.virtualenv) +
                          " needs a restart (USR2 upgrade, or stop and start): the interpreter was started " +
                          (py::virtualenv().empty() ? std::string("outside any virtualenv") : "in " + py::virtualenv()));
    }

    if (!quiet)
        for (const auto &w : cfg.warnings) std::fprintf(stderr, "Warning: %s\n", w.c_str());
    std::fflush(stderr);
    cfg.python_load = g_loads;
    python_objects()[g_loads] = std::move(objects);
    return cfg;
}

}  // namespace

Config load_config(const std::vector<std::string> &argv) {
    g_argv = argv;
    ++g_loads;
    (void)startup_dir();  // captured before anything changes directory
    Gil gil;
    py::Ref helpers;
    if (py::initialized()) {
        // The helpers live in a module of their own, made anew for each load.
        helpers = py::Ref::steal(PyModule_New("_cunicorn_config"));
        if (!helpers || !py::exec_source(HELPERS_PY, PyModule_GetDict(helpers.get())))
            throw ConfigError("cannot set up the config loader: " + py::fetch_traceback());
    }
    struct Scope {
        explicit Scope(PyObject *h) { g_helpers = h; }
        ~Scope() { g_helpers = nullptr; }
    } scope(helpers.get());
    try {
        Loader loader;
        return loader.load(argv);
    } catch (const ConfigError &) {
        throw;
    } catch (const Invalid &e) {
        throw ConfigError(e.reason);
    } catch (const std::exception &e) {
        throw ConfigError(std::string("internal error while loading the configuration: ") + e.what());
    }
}

Config load_config(int argc, char **argv) {
    std::vector<std::string> args;
    for (int k = 0; k < argc; ++k) args.emplace_back(argv[k] ? argv[k] : "");
    return load_config(args);
}

std::string format_config(const Config &cfg) {
    const auto &table = settings_table();
    size_t kmax = 0;
    for (const auto &s : table) kmax = std::max(kmax, std::strlen(s.name));
    std::map<std::string, std::string> values = cfg.rendered;
    if (values.empty()) {
        // Not from load_config: the defaults.
        for (const auto &s : table) {
            try {
                V d = s.default_value();
                values[s.name] = shown(s.type == SettingType::PYTHON || d.kind == V::NONE ? d : s.validate(d));
            } catch (const Invalid &) {
                values[s.name] = "?";
            }
        }
    }
    std::string out;
    for (const auto &kv : values) {
        std::string name = kv.first;
        name.resize(std::max(kmax, name.size()), ' ');
        out += name + " = " + kv.second + "\n";
    }
    return out;
}

int report_config_error(const ConfigError &e) {
    if (dynamic_cast<const UsageError *>(&e)) {
        std::fprintf(stderr, "%s%s: error: %s\n", usage_line().c_str(), PROG, e.what());
        std::fflush(stderr);
        return 2;
    }
    if (const auto *f = dynamic_cast<const ConfigFileError *>(&e)) {
        std::fprintf(stderr, "%s\n%s", f->what(), f->traceback.c_str());
        std::fflush(stderr);
        return 1;
    }
    // BaseApplication.do_load_config: a blank line, then the error.
    std::fprintf(stderr, "\nError: %s\n", e.what());
    std::fflush(stderr);
    return 1;
}

}  // namespace cunicorn
