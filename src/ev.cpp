// Backend-independent half of the event loop.
#include "cunicorn/ev.h"

#include <cerrno>

namespace cunicorn::ev {

Loop::Loop(int max_fds, bool one_shot)
    : slots_(static_cast<size_t>(max_fds)), one_shot_(one_shot), backend_(backend_create()) {
    fired_.reserve(256);
}

Loop::~Loop() { backend_free(backend_); }

int Loop::add(int fd, int mask, Callback cb, void *data) {
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) * 2 + 1);
    Slot &s = slots_[static_cast<size_t>(fd)];
    int new_mask = s.mask | mask;
    if (new_mask != s.mask && backend_add(backend_, fd, s.mask, new_mask, disarms(new_mask)) < 0) return -1;
    if (new_mask != s.mask) s.disarmed = false;
    s.mask = new_mask;
    s.cb = cb;
    s.data = data;
    return 0;
}

void Loop::remove(int fd, int mask) {
    if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
    Slot &s = slots_[static_cast<size_t>(fd)];
    if ((s.mask & mask) == NONE) return;
    backend_del(backend_, fd, s.mask, s.mask & mask, disarms(s.mask));
    s.mask &= ~mask;
    s.disarmed = false;
    if (s.mask == NONE) {
        s.cb = nullptr;
        s.data = nullptr;
    }
}

void Loop::forget_closing(int fd) {
    if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
    Slot &s = slots_[static_cast<size_t>(fd)];
    if (s.mask != NONE) backend_forget_closing(backend_, fd, s.mask);
    s = Slot();  // also the stale-event guard for events already fired
}

void Loop::requeue(int fd) {
#ifdef CUNICORN_EV_EPOLL
    if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
    int m = slots_[static_cast<size_t>(fd)].mask;
    if (!(m & EXCLUSIVE)) return;
    backend_del(backend_, fd, m, m, false);
    backend_add(backend_, fd, NONE, m, false);  // EPOLL_CTL_ADD queues at the tail
#else
    (void)fd;
#endif
}

int Loop::mask(int fd) const {
    if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return NONE;
    return slots_[static_cast<size_t>(fd)].mask;
}

int Loop::poll_fd() const { return backend_fd(backend_); }

int Loop::poll(int timeout_ms) {
    fired_.clear();
    int n;
    if (waiter_) {
        n = backend_wait(backend_, 0, fired_);
        if (n == 0 && timeout_ms != 0) {
            waiter_(waiter_arg_, timeout_ms);
            n = backend_wait(backend_, 0, fired_);
        }
    } else {
        if (before_sleep_) before_sleep_(sleep_arg_);
        n = backend_wait(backend_, timeout_ms, fired_);
        int saved = errno;
        if (after_sleep_) after_sleep_(sleep_arg_);
        errno = saved;
    }
    if (n < 0) return errno == EINTR ? 0 : -1;
    return run(fired_);
}

int Loop::wait(int timeout_ms, std::vector<Fired> &fired) {
    fired.clear();
    int n = backend_wait(backend_, timeout_ms, fired);
    if (n < 0) return errno == EINTR ? 0 : -1;
    return n;
}

int Loop::run(const std::vector<Fired> &fired) {
    if (one_shot_) {
        // Reported, so disarmed: a change a callback makes arms it again.
        for (const Fired &f : fired)
            if (static_cast<size_t>(f.fd) < slots_.size()) slots_[static_cast<size_t>(f.fd)].disarmed = true;
    }
    int processed = 0;
    for (const Fired &f : fired) {
        // An earlier callback in this round (or, taking turns, another
        // thread's) may have closed (and even reused) this descriptor:
        // only deliver what is still wanted.
        auto at = static_cast<size_t>(f.fd);
        if (at >= slots_.size()) continue;
        const Slot &s = slots_[at];
        int m = f.mask & s.mask;
        if (m != NONE && s.cb) {
            s.cb(*this, f.fd, m, s.data);
            ++processed;
        }
        Slot &after = slots_[at];  // a callback may have grown slots_
        if (after.disarmed && after.mask != NONE && disarms(after.mask))
            backend_rearm(backend_, f.fd, after.mask);
        after.disarmed = false;
    }
    return processed;
}

const char *Loop::backend_name() const { return ev::backend_name(); }

}  // namespace cunicorn::ev
