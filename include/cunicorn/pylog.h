// The Python side of logging (gunicorn/glogging.py): the gunicorn.error
// and gunicorn.access loggers, the Logger instance hooks see as
// server.log and worker.log, and --log-config, --log-config-dict,
// --log-config-json and --logger-class (src/py/glogging.py).
//
// Without any of those four settings the loggers exist, in the master and
// (inherited at fork) in every worker, with handlers that write through
// log.cpp: the server's own lines and the access lines never enter
// Python. With one of them, log.cpp's lines go to the Logger instance
// (log::Route): each error line to its debug/info/warning/error/critical
// method, each request to its access().
//
// No Python.h here: log.cpp calls configure() and check().
#ifndef CUNICORN_PYLOG_H
#define CUNICORN_PYLOG_H

typedef struct _object PyObject;

namespace cunicorn {
struct Config;
}

namespace cunicorn::pylog {

// Makes the module importable as cunicorn.glogging, and as
// gunicorn.glogging when `import gunicorn` fails: before the config file
// runs, which may define a logger_class subclassing it. Needs the GIL.
void install();
// Creates the Logger (logger_class) or, when it is of the same class,
// runs its setup(cfg) again (HUP), as gunicorn does. Master only, after
// the native targets are open. Throws std::runtime_error with gunicorn's
// message ("Error: log config 'x' not found", a dictConfig error, a class
// that does not load). Does nothing without the interpreter.
void configure(const Config &cfg);
// What can be told without configuring (--check-config, and configure(cfg)
// before it opens anything): the class loads and the logconfig file
// exists. Throws as configure() does.
void check(const Config &cfg);
// The Logger instance (borrowed), or null before configure().
PyObject *logger();

}  // namespace cunicorn::pylog

#endif
