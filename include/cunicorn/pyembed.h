// The embedded CPython interpreter as the rest of the server sees it:
// start-up, fork helpers, shutdown. No Python types here, so the arbiter
// and main stay free of Python.h; objects live in pyref.h.
#ifndef CUNICORN_PYEMBED_H
#define CUNICORN_PYEMBED_H

#include <string>
#include <utility>
#include <vector>

namespace cunicorn::py {

// A virtual environment (python3 -m venv, virtualenv, uv): a directory
// holding pyvenv.cfg, as site.py recognises one.
struct Virtualenv {
    std::string dir;      // as given to inspect_virtualenv
    std::string python;   // its bin/python: sys.executable in it
    std::string version;  // pyvenv.cfg "version" (or "version_info")
};

// major.minor of the libpython cunicorn runs, sys.version_info[:2] as
// "3.11"; callable before init().
std::string linked_version();

// Reads DIR/pyvenv.cfg without the interpreter. Returns "" and fills venv
// when DIR is a virtualenv of this Python's major.minor, else the reason
// as a phrase ("not a virtualenv: there is no DIR/pyvenv.cfg", "made by
// Python 3.9, but cunicorn runs Python 3.11; ...").
std::string inspect_virtualenv(const std::string &dir, Virtualenv &venv);

// Starts the interpreter without Python's own signal handlers (cunicorn
// owns process signals), with sys.executable pointing at the interpreter
// cunicorn was built against, and argv[0] as sys.argv[0]. With an
// absolute virtualenv directory, the interpreter runs as that venv's
// bin/python would: sys.prefix/sys.exec_prefix are the venv, its
// site-packages (and the system's when pyvenv.cfg says
// include-system-site-packages = true) are on sys.path. Throws
// std::runtime_error if the directory is no usable virtualenv.
void init(const char *argv0, const std::string &virtualenv = {});
bool initialized();

// The virtualenv init() started the interpreter in; "" for none.
const std::string &virtualenv();

// fork() wrappers that keep the interpreter consistent and run
// os.register_at_fork hooks.
void before_fork();
void after_fork_parent();
void after_fork_child();

// Flushes sys.stdout/sys.stderr and runs atexit handlers, as a Python
// process does when it exits; call before _exit() in a worker.
void finalize();

// Prepends a directory to sys.path (chdir, pythonpath).
void prepend_sys_path(const std::string &dir);

// Sets an environment variable as os.environ[name] = value does: the
// process environment (setenv) and os.environ, which the interpreter
// copied at start and the app reads.
void set_environ(const std::string &name, const std::string &value);

// raw_env: every (KEY, VALUE) entry through set_environ.
void apply_raw_env(const std::vector<std::pair<std::string, std::string>> &raw_env);

}  // namespace cunicorn::py

#endif
