// The WSGI bridge (PEP 3333): environ, wsgi.input, start_response, the
// write() callable, wsgi.file_wrapper, iteration and close(). It knows
// nothing of sockets: the executor hands it the request object
// (request.h) with its BodySource and Sink.
#ifndef CUNICORN_WSGI_H
#define CUNICORN_WSGI_H

#include "cunicorn/request.h"

#include <string>

struct _object;

namespace cunicorn {
struct Config;
}

namespace cunicorn::wsgi {

// Imports the application (cfg.wsgi_app) in this process and prepares the
// bridge. Returns 0, or the worker exit status gunicorn uses: 3 when the
// import itself failed (WORKER_BOOT_ERROR), 4 when the module loaded but
// the app object is unusable (APP_LOAD_ERROR). The reason is logged.
int load_app(const Config &cfg);
// True once load_app succeeded in this process (or in the master, with --preload).
bool app_loaded();

// gunicorn's debug.spew() (the spew setting): from now on every line of
// Python this thread runs is printed to stdout as "module:lineno: line".
// Called in the master, as gunicorn does; the workers it forks inherit
// the tracer with the thread state.
void spew();

// Let other Python threads run while the worker sleeps in its event loop.
void release_gil(void *);
void acquire_gil(void *);

// The executor's waits for a client are greenlet switches (gevent), not
// blocking calls: the bridge then keeps the GIL around them.
void set_cooperative(bool on);

// A thread the server started, to run the application: thread_attach()
// gives it a Python thread state (once) and returns it without the GIL;
// thread_enter() takes the GIL with it, thread_leave() lets it go and
// returns the state for the next thread_enter().
void *thread_attach();
void thread_enter(void *state);
void *thread_leave();
// The calling thread's Python identity (threading.get_ident()).
unsigned long thread_ident();
// The Python stack the thread `ident` is running now, formatted as a
// traceback ("Most recent call last"); call with the GIL.
std::string thread_stack(unsigned long ident);

// Loads the settings that shape every environ; call once per worker
// after the app is imported (and on reload). `app` is borrowed and kept.
// False, with the Python error set, when the objects cannot be made.
bool setup(_object *app, const Config &cfg);

// Runs one request through the app and writes the whole response (the
// sink may still hold unsent bytes on return). Never throws; Python errors
// are logged and become a 500 or a closed connection.
Outcome handle(Exchange &ctx, http::Response &resp);

// Writes the bytes of an interim "100 Continue" when the request asked.
void send_continue(Exchange &ctx);

}  // namespace cunicorn::wsgi

#endif
