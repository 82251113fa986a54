# The gevent worker class's Python half (src/executor_gevent.cpp runs it
# in the worker, before the application is imported). gevent's hub owns
# the thread: the connection engine's poll descriptor is one read watcher
# in the hub, and the engine runs in the main greenlet whenever it is
# readable; each request runs in a greenlet of its own.
#
# Gunicorn's GeventWorker.init_process patches first, then reinitialises
# the hub (the master may have used gevent before the fork, with --preload).

from gevent import monkey

monkey.patch_all()

import traceback

import gevent
from gevent import getcurrent

gevent.reinit()

_hub = gevent.get_hub()
_loop = _hub.loop
_run_callback = _loop.run_callback
_hub_switch = _hub.switch
spawn = gevent.spawn_raw


def make_sleep(fd):
    """Returns sleep(timeout_ms): the main greenlet gives the hub the
    thread until fd (the engine's epoll or kqueue descriptor) is readable
    or the time is up; other greenlets run meanwhile."""
    main = getcurrent()
    io = _loop.io(fd, 1)
    timers = {}

    def sleep(timeout_ms):
        # A stopped libev timer keeps what was left of its time, and
        # start() would resume from there (nothing, once it has fired):
        # again() arms it afresh, for its full repeat interval.
        timer = timers.get(timeout_ms)
        if timer is None:
            seconds = timeout_ms / 1000.0
            timer = timers[timeout_ms] = _loop.timer(seconds, seconds)
        io.start(main.switch)
        timer.again(main.switch)
        try:
            _hub_switch()
        finally:
            io.stop()
            timer.stop()

    return sleep


class Gate:
    """A relayed request's waiter (conn::Gate): the request's greenlet
    waits in the hub until the engine notifies it. A notification only
    ever resumes the greenlet while it waits here, and at most once per
    wait, so it cannot disturb a greenlet that waits for something else
    (a database socket) by then."""

    __slots__ = ("waiting", "scheduled")

    def __init__(self):
        self.waiting = None
        self.scheduled = False

    def wait(self):
        self.waiting = getcurrent()
        try:
            _hub_switch()
        finally:
            self.waiting = None

    def notify(self):
        if self.waiting is not None and not self.scheduled:
            self.scheduled = True
            _run_callback(self._wake)

    def _wake(self):
        self.scheduled = False
        waiting = self.waiting
        if waiting is not None:
            waiting.switch()


def stack(greenlet):
    """Where a request's greenlet is, as a traceback (request_timeout)."""
    frame = getattr(greenlet, "gr_frame", None)
    if frame is None:
        return "(the greenlet is not running)\n"
    return "".join(traceback.format_stack(frame))
