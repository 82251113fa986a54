// The connection engine: listeners, connections, their buffers and
// transports (plain, TLS), keep-alive, pipelining, request framing and
// response writing, driven by the event loop. It knows nothing of how the
// application is called: it hands each complete request, as a request
// object (request.h), to an executor, through the interface below.
//
// "The loop thread" below is whichever thread runs the loop's callbacks:
// the worker's main thread, or, with an executor whose threads take
// turns at the loop (Turns), the one that holds the turn. One thread at a
// time, so the engine's state needs no other lock.
#ifndef CUNICORN_CONN_H
#define CUNICORN_CONN_H

#include "cunicorn/ev.h"
#include "cunicorn/request.h"

#include <memory>
#include <string>
#include <vector>

namespace cunicorn {

namespace worker {
struct Process;
}

namespace conn {

// How the application side of a relayed request waits for the loop, and
// is woken by it: a lock over the request's shared buffers and one
// waiter. A thread pool implements it with a mutex and a condition
// variable; greenlets, whose waits switch to their hub, need no lock. The
// engine takes the lock only briefly, on the loop thread, and never waits
// on it for long.
class Gate {
public:
    virtual ~Gate() = default;
    virtual void lock() = 0;
    virtual void unlock() = 0;
    // Called locked: unlocks, waits for notify() (or a spurious wake-up),
    // locks again. False when the wait was interrupted instead (an
    // exception thrown into a greenlet, left pending for the application):
    // the caller gives up.
    virtual bool wait() = 0;
    // Called locked, on the loop thread.
    virtual void notify() = 0;
};

// The loop, for an executor whose own threads serve it between requests
// (Executor::takes_turns). An idle thread waits in the loop itself, so
// the kernel wakes the thread that will run a request directly: nothing
// hands the request from a loop thread to an application thread, and a
// keep-alive request costs one wake-up, as with the sync class. The
// worker's main thread keeps the signals and the housekeeping, and serves
// the loop only while every thread runs a request (all_busy()): a body
// read or a slow client still never waits for a thread.
class Turns {
public:
    virtual ~Turns() = default;
    // Holding nothing: waits until the loop reports events to this thread
    // (each event goes to one waiting thread).
    virtual void wait(std::vector<ev::Loop::Fired> &fired) = 0;
    // The turn: one thread at a time runs callbacks. Taken before the GIL.
    virtual void lock() = 0;
    virtual void unlock() = 0;
    // The turn and the GIL held: runs the callbacks, which may submit().
    virtual void run(const std::vector<ev::Loop::Fired> &fired) = 0;
    // Any thread: wakes one thread waiting in wait(), for queued requests.
    virtual void kick() = 0;
    // Any thread: every thread has a request; the main thread serves the
    // loop until one is back (Executor::idle_threads).
    virtual void all_busy() = 0;
};

// Runs the application for the requests the engine hands over. The
// engine calls it on the loop thread, one request per connection at a
// time (pipelined requests wait their turn, so responses go out in
// order).
//
// Two ways to run a request. Inline (make_gate() returns null): the body
// source and sink read and write the socket in place, and the executor
// runs pre_request, the application and complete() inside submit(). Relayed
// (make_gate() returns a gate): the application runs elsewhere; the body
// source and sink are bounded buffers the loop fills and drains (a body
// read waits for the loop to bring bytes from the client, a write waits
// while too much of the response is unsent, a flush until the socket has
// taken every byte), the executor runs pre_request itself, from where the
// application runs, and calls ex.complete() from any thread once the
// response is written: the engine finishes the request on the loop thread.
class Executor {
public:
    virtual ~Executor() = default;
    // A gate for one connection's relayed requests, or null to run inline.
    virtual std::unique_ptr<Gate> make_gate() { return nullptr; }
    // A relayed request has outlived request_timeout: where its
    // application is (a Python traceback), for the log. Loop thread, with
    // the GIL.
    virtual std::string where(const Exchange &) { return std::string(); }
    // The loop is made: an executor that runs the application on the loop
    // thread lets other Python threads run while the loop sleeps.
    virtual void attach(ev::Loop &loop) = 0;
    // Its threads take turns at the loop (Turns), given to it instead of
    // attach(), with the main thread's own loop (signals): submit() is
    // called by whichever thread has the turn. The main thread holds the
    // turn, and gives it up (the GIL first) while it sleeps in main_loop.
    virtual bool takes_turns() const { return false; }
    virtual void attach_turns(Turns &, ev::Loop & /*main_loop*/) {}
    // How many of its threads run no request; any thread may ask.
    virtual int idle_threads() const { return 1; }
    // The application side of relayed requests runs on the loop's own
    // thread, taking turns with the loop (greenlets): its news reaches the
    // loop without the wake-up pipe, through wake_loop(), called when the
    // first news since the loop's last look is posted.
    virtual bool on_loop_thread() const { return false; }
    virtual void wake_loop() {}
    // Runs the application for `ex`, whose body source and sink are
    // ready, and calls ex.complete() once the response is written to the
    // sink. The inline executor does all of this before returning; one
    // that runs the application elsewhere returns at once and completes
    // later, on the loop thread.
    virtual void submit(Exchange &ex) = 0;
};

// Serves the worker's listeners with `exec` until the worker should exit;
// returns its exit status.
int serve(worker::Process &p, Executor &exec);

}  // namespace conn

}  // namespace cunicorn

#endif
