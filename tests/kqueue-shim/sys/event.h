/*
 * Test-only <sys/event.h> for building cunicorn's kqueue backend
 * (src/ev_kqueue.cpp) on Linux: `make cunicorn-kqueue` puts this directory
 * first on the include path and defines CUNICORN_KQUEUE_SHIM, which makes
 * include/cunicorn/ev.h pick the kqueue backend.
 *
 * struct kevent, EV_SET and the constants have FreeBSD's layout and values
 * (FreeBSD 12 and later, sys/sys/event.h), so the backend is compiled
 * against what it meets there. kqueue() and kevent() are implemented on
 * top of epoll in kqueue_shim.cpp, for EVFILT_READ and EVFILT_WRITE only,
 * with EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE, EV_ONESHOT and
 * EV_RECEIPT; anything else fails with EINVAL. Never shipped.
 */
#ifndef CUNICORN_KQUEUE_SHIM_SYS_EVENT_H
#define CUNICORN_KQUEUE_SHIM_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#define EVFILT_READ     (-1)
#define EVFILT_WRITE    (-2)
#define EVFILT_AIO      (-3)
#define EVFILT_VNODE    (-4)
#define EVFILT_PROC     (-5)
#define EVFILT_SIGNAL   (-6)
#define EVFILT_TIMER    (-7)
#define EVFILT_PROCDESC (-8)
#define EVFILT_FS       (-9)
#define EVFILT_LIO      (-10)
#define EVFILT_USER     (-11)
#define EVFILT_SENDFILE (-12)
#define EVFILT_EMPTY    (-13)
#define EVFILT_SYSCOUNT 13

/* actions */
#define EV_ADD          0x0001  /* add event to kq (implies enable) */
#define EV_DELETE       0x0002  /* delete event from kq */
#define EV_ENABLE       0x0004  /* enable event */
#define EV_DISABLE      0x0008  /* disable event (not reported) */
#define EV_FORCEONESHOT 0x0100  /* enable _ONESHOT and force trigger */
#define EV_KEEPUDATA    0x0200  /* do not update the udata field */

/* flags */
#define EV_ONESHOT      0x0010  /* only report one occurrence */
#define EV_CLEAR        0x0020  /* clear event state after reporting */
#define EV_RECEIPT      0x0040  /* force EV_ERROR on success, data=0 */
#define EV_DISPATCH     0x0080  /* disable event after reporting */

#define EV_SYSFLAGS     0xF000  /* reserved by system */
#define EV_DROP         0x1000  /* note should be dropped */
#define EV_FLAG1        0x2000  /* filter-specific flag */
#define EV_FLAG2        0x4000  /* filter-specific flag */

/* returned values */
#define EV_EOF          0x8000  /* EOF detected */
#define EV_ERROR        0x4000  /* error, data contains errno */

struct kevent {
    uintptr_t ident;        /* identifier for this event */
    short filter;           /* filter for event */
    unsigned short flags;   /* action flags for kqueue */
    unsigned int fflags;    /* filter flag value */
    int64_t data;           /* filter data value */
    void *udata;            /* opaque user data identifier */
    uint64_t ext[4];        /* extensions */
};

/* FreeBSD's macro assigns a compound literal with designated initializers,
 * which C++17 lacks; field by field is equivalent. */
#define EV_SET(kevp_, a, b, c, d, e, f)           \
    do {                                          \
        struct kevent *ev_set_p_ = (kevp_);       \
        ev_set_p_->ident = (uintptr_t)(a);        \
        ev_set_p_->filter = (short)(b);           \
        ev_set_p_->flags = (unsigned short)(c);   \
        ev_set_p_->fflags = (unsigned int)(d);    \
        ev_set_p_->data = (int64_t)(e);           \
        ev_set_p_->udata = (f);                   \
        ev_set_p_->ext[0] = 0;                    \
        ev_set_p_->ext[1] = 0;                    \
        ev_set_p_->ext[2] = 0;                    \
        ev_set_p_->ext[3] = 0;                    \
    } while (0)

#ifdef __cplusplus
extern "C" {
#endif

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif
