"""The objects gunicorn hands to server hooks (reference section h).

Run once per process by src/hooks.cpp, which fills their attributes from
the arbiter's and the worker's state; _cunicorn_hooks is the C++ side.
Attribute names are gunicorn's; the classes keep only what config files
use in practice.
"""
import os as _os, sys as _sys, traceback as _traceback

from _cunicorn_hooks import _heartbeat, _num_workers_changed, _reopen, _write, _wsgi

_LEVEL_NAMES = {"debug": 0, "info": 1, "warning": 2, "warn": 2, "error": 3,
                "exception": 3, "critical": 4, "fatal": 4}


def _render(msg, args):
    text = str(msg)
    if args:
        # logging.LogRecord: one mapping argument formats by name.
        if len(args) == 1 and isinstance(args[0], dict) and args[0]:
            args = args[0]
        try:
            text = text % args
        except Exception:
            text = "%s %r" % (text, args)
    return text


def _exc_text(exc_info):
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = _sys.exc_info()
    return "".join(_traceback.format_exception(*exc_info)).rstrip("\n")


class Logger:
    """The error log with gunicorn's glogging.Logger methods."""

    def _emit(self, level, msg, args, kwargs):
        text = _render(msg, args)
        exc_info = kwargs.get("exc_info")
        if exc_info:
            text += "\n" + _exc_text(exc_info)
        _write(level, text)

    def debug(self, msg, *args, **kwargs):
        self._emit(0, msg, args, kwargs)

    def info(self, msg, *args, **kwargs):
        self._emit(1, msg, args, kwargs)

    def warning(self, msg, *args, **kwargs):
        self._emit(2, msg, args, kwargs)

    warn = warning

    def error(self, msg, *args, **kwargs):
        self._emit(3, msg, args, kwargs)

    def critical(self, msg, *args, **kwargs):
        self._emit(4, msg, args, kwargs)

    fatal = critical

    def exception(self, msg, *args, **kwargs):
        kwargs.setdefault("exc_info", True)
        self._emit(3, msg, args, kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            level = _LEVEL_NAMES.get(lvl.lower(), 1)
        else:
            level = max(0, min(4, int(lvl) // 10 - 1))
        self._emit(level, msg, args, kwargs)

    def access(self, resp, req, environ, request_time):
        pass

    def reopen_files(self):
        _reopen()

    def close_on_exec(self):
        pass


class Setting:
    def __init__(self, name, section, value):
        self.name = name
        self.section = section
        self.value = value

    def get(self):
        return self.value

    def __repr__(self):
        return "<Setting %s=%r>" % (self.name, self.value)


class Config:
    """gunicorn's Config, read-only: cfg.<setting>, cfg.settings[name].value."""

    def __init__(self, rows, derived):
        # rows: (name, section, value), the values the loader holds.
        settings = {}
        for name, section, value in rows:
            settings[name] = Setting(name, section, value)
        object.__setattr__(self, "settings", settings)
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        settings = self.__dict__.get("settings")
        if settings is None or name not in settings:
            raise AttributeError("No configuration setting for: %s" % name)
        return settings[name].get()

    def __setattr__(self, name, value):
        if name != "settings" and name in self.settings:
            raise AttributeError("Invalid access!")
        object.__setattr__(self, name, value)

    def __str__(self):
        width = max([len(k) for k in self.settings] or [0])
        lines = []
        for k in sorted(self.settings):
            v = self.settings[k].value
            if callable(v):
                v = "<{}()>".format(getattr(v, "__qualname__", repr(v)))
            lines.append("{k:{w}} = {v}".format(k=k, w=width, v=v))
        return "\n".join(lines)


class Listener:
    """A listening socket (gunicorn's sock.TCPSocket, UnixSocket)."""

    def __init__(self, fd, family, url, address):
        self.fd = fd
        self.family = family
        self.url = url
        self.address = address

    def fileno(self):
        return self.fd

    def getsockname(self):
        return self.address

    def __str__(self):
        return self.url

    def __repr__(self):
        return "<Listener %s>" % self.url


class App:
    """gunicorn's WSGIApplication: app.cfg and app.wsgi()."""

    def __init__(self, cfg):
        self.cfg = cfg

    def wsgi(self):
        return _wsgi()


class Pidfile:
    def __init__(self, fname):
        self.fname = fname


class Arbiter:
    """gunicorn's Arbiter as hooks see it."""

    def __init__(self):
        self._num_workers = None
        self.WORKERS = {}
        self.LISTENERS = []
        self.pid = None
        self.master_pid = 0
        self.reexec_pid = 0
        self.master_name = "Master"
        self.systemd = False
        self.pidfile = None
        self.worker_age = 0

    def _get_num_workers(self):
        return self._num_workers

    def _set_num_workers(self, value):
        old_value = self._num_workers
        self._num_workers = value
        _num_workers_changed(self, value, old_value)

    num_workers = property(_get_num_workers, _set_num_workers)

    def kill_worker(self, pid, sig):
        try:
            _os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def kill_workers(self, sig):
        for pid in list(self.WORKERS):
            self.kill_worker(pid, sig)


class WorkerTmp:
    """The heartbeat file (gunicorn's workertmp.WorkerTmp)."""

    def __init__(self, fd):
        self._fd = fd

    def notify(self):
        _heartbeat(self._fd)

    def last_update(self):
        st = _os.fstat(self._fd)
        return max(st.st_mtime, st.st_ctime)

    def fileno(self):
        return self._fd

    def close(self):
        pass  # the server owns the descriptor


class Worker:
    """gunicorn's workers.base.Worker as hooks see it."""

    def __init__(self, age, ppid, sockets, app, timeout, cfg, log, tmp_fd, max_requests):
        self.age = age
        self.pid = "[booting]"
        self.ppid = ppid
        self.sockets = sockets
        self.app = app
        self.timeout = timeout
        self.cfg = cfg
        self.booted = False
        self.aborted = False
        self.reloader = None
        self.nr = 0
        self.max_requests = max_requests
        self.alive = True
        self.log = log
        self.tmp = WorkerTmp(tmp_fd)
        self.wsgi = None

    def __str__(self):
        return "<Worker %s>" % self.pid


class Request:
    """gunicorn's http.message.Request after parsing."""

    def __init__(self, method, uri, path, query, fragment, version, headers,
                 scheme, peer_addr, req_number, must_close, proxy_protocol_info,
                 keep_alive):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version
        self.headers = headers
        self.trailers = []
        self.body = None
        self.scheme = scheme
        self.peer_addr = peer_addr
        self.remote_addr = peer_addr
        self.req_number = req_number
        self.must_close = must_close
        self.proxy_protocol_info = proxy_protocol_info
        self._keep_alive = keep_alive

    def should_close(self):
        # The parser's decision (Message.should_close, with RFC 9112's
        # "close" anywhere in Connection), made once in C++.
        return not self._keep_alive

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.uri)


class Response:
    """gunicorn's http.wsgi.Response once the body went out."""

    def __init__(self, status, status_code, headers, sent, response_length,
                 chunked, headers_sent, must_close, upgrade, version):
        self.status = status
        self.status_code = status_code
        self.headers = headers
        self.sent = sent
        self.response_length = response_length
        self.chunked = chunked
        self.headers_sent = headers_sent
        self.must_close = must_close
        self.upgrade = upgrade
        self.version = version

    def should_close(self):
        return self.must_close or self.upgrade

    def __repr__(self):
        return "<Response %s>" % self.status
