// Backend-independent half of the event loop.
#include "cunicorn/ev.h"

#include <cerrno>

namespace cunicorn::ev {

Loop::Loop(int max_fds) : slots_(static_cast<size_t>(max_fds)), backend_(backend_create(max_fds)) {
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
    if (new_mask != s.mask && backend_add(backend_, fd, s.mask, new_mask) < 0) return -1;
    s.mask = new_mask;
    s.cb = cb;
    s.data = data;
    return 0;
}

void Loop::remove(int fd, int mask) {
    if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
    Slot &s = slots_[static_cast<size_t>(fd)];
    if ((s.mask & mask) == NONE) return;
    backend_del(backend_, fd, s.mask, s.mask & mask);
    s.mask &= ~mask;
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
    backend_del(backend_, fd, m, m);
    backend_add(backend_, fd, NONE, m);  // EPOLL_CTL_ADD queues at the tail
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
    int processed = 0;
    for (const Fired &f : fired_) {
        // An earlier callback in this round may have closed (and even
        // reused) this descriptor: only deliver what is still wanted.
        if (static_cast<size_t>(f.fd) >= slots_.size()) continue;
        const Slot &s = slots_[static_cast<size_t>(f.fd)];
        int m = f.mask & s.mask;
        if (m == NONE || !s.cb) continue;
        s.cb(*this, f.fd, m, s.data);
        ++processed;
    }
    return processed;
}

const char *Loop::backend_name() const { return ev::backend_name(); }

}  // namespace cunicorn::ev
