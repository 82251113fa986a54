// The event loop: file events only, one callback per descriptor, a
// stale-event guard (Redis ae.c). Timers are kept by the owner (the worker
// gives each connection a deadline and sweeps them a few times a second,
// so it needs no heap) and enter the loop as the poll timeout.
//
// A loop several threads take turns at (one-shot, for a thread pool whose
// idle threads all wait in it) reports each event to one waiter only: a
// descriptor is disarmed when its event is reported (EPOLLONESHOT,
// EV_DISPATCH) and armed again once its callback has run. The threads
// wait without a lock (wait()) and run the callbacks one at a time
// (run(), under the owner's lock), so the callbacks still see one loop.
#ifndef CUNICORN_EV_H
#define CUNICORN_EV_H

#include <cstddef>
#include <vector>

// CUNICORN_KQUEUE_SHIM (make cunicorn-kqueue) selects kqueue on Linux too,
// against the test-only emulation in tests/kqueue-shim.
#if defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || \
    defined(__DragonFly__) || defined(__APPLE__) || defined(CUNICORN_KQUEUE_SHIM)
#define CUNICORN_EV_KQUEUE 1
#elif defined(__linux__)
#define CUNICORN_EV_EPOLL 1
#endif

namespace cunicorn::ev {

enum : int {
    NONE = 0,
    READABLE = 1,
    WRITABLE = 2,
    // For a listener shared by several processes: wake one waiter per
    // event instead of all of them (EPOLLEXCLUSIVE; kqueue has no herd).
    EXCLUSIVE = 4,
};

class Loop;
// Called with the mask of what fired. Errors and hang-ups are reported as
// READABLE|WRITABLE (whatever was registered) so the handler meets the
// error by doing I/O, as Redis ae_epoll.c does.
using Callback = void (*)(Loop &loop, int fd, int mask, void *data);

class Loop {
public:
    explicit Loop(int max_fds, bool one_shot = false);
    ~Loop();
    Loop(const Loop &) = delete;
    Loop &operator=(const Loop &) = delete;

    bool ok() const { return backend_ != nullptr; }
    // Adds `mask` to what fd is watched for; the callback and data replace
    // any previous ones. Returns -1 (errno set) on failure.
    int add(int fd, int mask, Callback cb, void *data);
    // Stops watching `mask` on fd; removing everything forgets the fd.
    void remove(int fd, int mask);
    // Forgets fd, which the caller closes next: the kernel drops a closed
    // descriptor from the set by itself (when no other descriptor shares
    // its open file), so epoll is spared a system call per connection.
    void forget_closing(int fd);
    // Moves fd's EXCLUSIVE registration behind those of the other
    // processes watching the same listener. epoll wakes the first idle
    // waiter in registration order, so without this the process that
    // registered first takes every connection at light load (and an old
    // generation starves a new one). No-op where wake-ups are not exclusive.
    void requeue(int fd);
    int mask(int fd) const;
    // Waits up to timeout_ms (-1 = forever) and runs the callbacks.
    // Returns the number of events processed, or -1 on a wait error.
    int poll(int timeout_ms);

    struct Fired {
        int fd;
        int mask;
    };
    // poll() in two halves, for threads that take turns: wait() takes the
    // events (without the sleep hooks; any thread, no lock), run() runs
    // their callbacks (one thread at a time) and arms one-shot
    // descriptors again. wait() returns the number of events or -1.
    int wait(int timeout_ms, std::vector<Fired> &fired);
    int run(const std::vector<Fired> &fired);
    const char *backend_name() const;
    // Called around the wait itself (not around the callbacks): the worker
    // lets other Python threads run while it sleeps (Redis beforesleep).
    void set_sleep_hooks(void (*before)(void *), void (*after)(void *), void *arg) {
        before_sleep_ = before;
        after_sleep_ = after;
        sleep_arg_ = arg;
    }

    // A scheduler that owns the thread (gevent's hub) sleeps instead of
    // the kernel: where poll() would wait, it calls wait(arg, timeout_ms),
    // which returns once poll_fd() is readable (the backend has events) or
    // the time is up, having run whatever else the scheduler had to run.
    using Waiter = void (*)(void *arg, int timeout_ms);
    void set_waiter(Waiter waiter, void *arg) {
        waiter_ = waiter;
        waiter_arg_ = arg;
    }
    // The backend's own descriptor (an epoll or kqueue descriptor, which
    // is readable while events are pending).
    int poll_fd() const;

    // Backend interface: the calls each platform file implements.
    struct Backend;

private:
    struct Slot {
        int mask = NONE;
        Callback cb = nullptr;
        void *data = nullptr;
        bool disarmed = false;  // one-shot: reported, not armed again yet
    };
    std::vector<Slot> slots_;
    bool one_shot_ = false;
    // Whether a registration with this mask is disarmed when reported: in
    // a one-shot loop, all but the listeners (EXCLUSIVE), which stay
    // armed so that every waiting worker may take a connection.
    bool disarms(int mask) const { return one_shot_ && !(mask & EXCLUSIVE); }
    std::vector<Fired> fired_;
    Backend *backend_ = nullptr;
    void (*before_sleep_)(void *) = nullptr;
    void (*after_sleep_)(void *) = nullptr;
    void *sleep_arg_ = nullptr;
    Waiter waiter_ = nullptr;
    void *waiter_arg_ = nullptr;
};

// Implemented once per platform (ev_epoll.cpp, ev_kqueue.cpp).
// `one_shot`: the registration is disarmed when reported; a change arms
// what is left of it again, as rearm() does.
Loop::Backend *backend_create();
void backend_free(Loop::Backend *b);
int backend_add(Loop::Backend *b, int fd, int old_mask, int new_mask, bool one_shot);
int backend_del(Loop::Backend *b, int fd, int old_mask, int removed_mask, bool one_shot);
int backend_rearm(Loop::Backend *b, int fd, int mask);
int backend_forget_closing(Loop::Backend *b, int fd, int old_mask);
int backend_wait(Loop::Backend *b, int timeout_ms, std::vector<Loop::Fired> &fired);
int backend_fd(const Loop::Backend *b);
const char *backend_name();

}  // namespace cunicorn::ev

#endif
