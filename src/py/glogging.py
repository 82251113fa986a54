"""gunicorn.glogging for cunicorn: the Logger class, its loggers and handlers.

Run once per server by src/pylog.cpp; importable as cunicorn.glogging,
and as gunicorn.glogging when no gunicorn package is installed, so a
logger_class can subclass gunicorn.glogging.Logger as it does under
gunicorn. The names and the setup follow gunicorn 26.1's glogging.py.

The handlers gunicorn puts on gunicorn.error and gunicorn.access (a
StreamHandler or FileHandler on errorlog and accesslog, and syslog) are
here one handler each that hands the formatted line to cunicorn's own
log writer (_cunicorn_log, src/log.cpp): the same files, opened once by
the master, reopened on USR1 without losing a line, written in one
write(2) per line, and sent to syslog when it is on.
"""
import base64
import binascii
import json
import logging
import logging.config
import os
import time
import traceback
from datetime import timedelta
from logging.config import dictConfig, fileConfig

from _cunicorn_log import _access_line, _reopen, _statsd, _statsd_on, _write

logging.Logger.manager.emittedNoHandlerWarning = 1

SYSLOG_FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0,
    "lpr": 6, "mail": 2, "news": 7, "security": 4, "syslog": 5, "user": 1,
    "uucp": 8, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

CONFIG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": True,
            "qualname": "gunicorn.error"
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": True,
            "qualname": "gunicorn.access"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout"
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr"
        },
    },
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
            "class": "logging.Formatter"
        }
    }
}

# statsd.py's names for the metric a log call may carry in `extra`.
METRIC_VAR = "metric"
VALUE_VAR = "value"
MTYPE_VAR = "mtype"
_STATSD_TYPES = {"gauge": "g", "counter": "c", "histogram": "h", "timer": "ms"}


def loggers():
    """ get list of all loggers """
    root = logging.root
    existing = list(root.manager.loggerDict.keys())
    return [logging.getLogger(name) for name in existing]


def _each_open_file_handler(fn):
    """fn(handler) for every FileHandler of every logger with its file
    open, under the handler's lock."""
    for log in loggers():
        for handler in log.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    if handler.stream:
                        fn(handler)
                finally:
                    handler.release()


class SafeAtoms(dict):

    def __init__(self, atoms):
        dict.__init__(self)
        for key, value in atoms.items():
            if isinstance(value, str):
                self[key] = value.replace('"', '\\"')
            else:
                self[key] = value

    def __getitem__(self, k):
        if k.startswith("{"):
            kl = k.lower()
            if kl in self:
                return super().__getitem__(kl)
            else:
                return "-"
        if k in self:
            return super().__getitem__(k)
        else:
            return '-'


class _Unlocked(logging.Handler):
    """A handler whose emit is one call into cunicorn's writer, which
    hands each line to the kernel in one write(2): it needs no lock.
    (A lock would also be leaked by every worker at fork, on purpose,
    by CPython's _at_fork_reinit.)"""

    def createLock(self):
        self.lock = None

    def _at_fork_reinit(self):
        pass


class ErrorLogHandler(_Unlocked):
    """gunicorn.error's handler: the error log (errorlog, syslog).

    With gunicorn's format the line prefix is cunicorn's own (the same
    "[time] [pid] [LEVEL] " gunicorn's Formatter makes) and the formatter
    gives only the message; a Logger subclass with its own error_fmt or
    datefmt gets its formatter's whole line.
    """

    def __init__(self, prefixed=True):
        _Unlocked.__init__(self)
        self.prefixed = prefixed

    def emit(self, record):
        try:
            _write(record.levelno, self.format(record), self.prefixed)
        except Exception:
            self.handleError(record)


class AccessLogHandler(_Unlocked):
    """gunicorn.access's handler: the access log (accesslog, syslog)."""

    def emit(self, record):
        try:
            _access_line(self.format(record))
        except Exception:
            self.handleError(record)


class Logger:

    LOG_LEVELS = {
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG
    }
    loglevel = logging.INFO

    error_fmt = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
    datefmt = r"[%Y-%m-%d %H:%M:%S %z]"

    access_fmt = "%(message)s"
    syslog_fmt = "[%(process)d] %(message)s"

    atoms_wrapper_class = SafeAtoms

    def __init__(self, cfg):
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.error_handlers = []
        self.access_handlers = []
        self.logfile = None
        self.cfg = cfg
        self.setup(cfg)

    def setup(self, cfg):
        self.cfg = cfg
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)

        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)

        # capture_output and syslog are the native writer's: the master
        # points stdout and stderr at the error log, and the handlers
        # below send to syslog when it is on.
        self._set_handler(self.error_log, cfg.errorlog or None,
                          logging.Formatter(self.error_fmt, self.datefmt))
        if cfg.accesslog is not None:
            self._set_handler(self.access_log, cfg.accesslog,
                              fmt=logging.Formatter(self.access_fmt))

        if cfg.logconfig_dict:
            config = CONFIG_DEFAULTS.copy()
            config.update(cfg.logconfig_dict)
            try:
                dictConfig(config)
            except (AttributeError, ImportError, ValueError, TypeError) as exc:
                raise RuntimeError(str(exc)) from exc
        elif cfg.logconfig_json:
            config = CONFIG_DEFAULTS.copy()
            if os.path.exists(cfg.logconfig_json):
                try:
                    with open(cfg.logconfig_json) as f:
                        config_json = json.load(f)
                    config.update(config_json)
                    dictConfig(config)
                except (json.JSONDecodeError, AttributeError, ImportError,
                        ValueError, TypeError) as exc:
                    raise RuntimeError(str(exc)) from exc
        elif cfg.logconfig:
            if os.path.exists(cfg.logconfig):
                defaults = CONFIG_DEFAULTS.copy()
                defaults['__file__'] = cfg.logconfig
                defaults['here'] = os.path.dirname(cfg.logconfig)
                fileConfig(cfg.logconfig, defaults=defaults,
                           disable_existing_loggers=False)
            else:
                msg = "Error: log config '%s' not found"
                raise RuntimeError(msg % cfg.logconfig)

    def _metric(self, kwargs):
        """statsd.py's log(): a metric in `extra` goes to StatsD. True
        when StatsD is on (its logger then logs only a non-empty msg)."""
        if not _statsd_on():
            return False
        try:
            extra = kwargs.get("extra", None)
            if extra is not None:
                metric = extra.get(METRIC_VAR, None)
                value = extra.get(VALUE_VAR, None)
                typ = extra.get(MTYPE_VAR, None)
                if metric and value is not None and typ in _STATSD_TYPES:
                    _statsd(str(metric), str(value), _STATSD_TYPES[typ])
        except Exception:
            self.error_log.warning("Failed to log to statsd", exc_info=True)
        return True

    def critical(self, msg, *args, **kwargs):
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if self._metric(kwargs) and not msg:
            return
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time):
        """ Gets atoms for log formatting.
        """
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        atoms = {
            'h': environ.get('REMOTE_ADDR', '-'),
            'l': '-',
            'u': self._get_user(environ) or '-',
            't': self.now(),
            'r': "%s %s %s" % (environ['REQUEST_METHOD'],
                               environ['RAW_URI'],
                               environ["SERVER_PROTOCOL"]),
            's': status,
            'm': environ.get('REQUEST_METHOD'),
            'U': environ.get('PATH_INFO'),
            'q': environ.get('QUERY_STRING'),
            'H': environ.get('SERVER_PROTOCOL'),
            'b': getattr(resp, 'sent', None) is not None and str(resp.sent) or '-',
            'B': getattr(resp, 'sent', None),
            'f': environ.get('HTTP_REFERER', '-'),
            'a': environ.get('HTTP_USER_AGENT', '-'),
            'T': request_time.seconds,
            'D': (request_time.seconds * 1000000) + request_time.microseconds,
            'M': (request_time.seconds * 1000) + int(request_time.microseconds / 1000),
            'L': "%d.%06d" % (request_time.seconds, request_time.microseconds),
            'p': "<%s>" % os.getpid()
        }

        if hasattr(req, 'headers'):
            req_headers = req.headers
        else:
            req_headers = req
        if hasattr(req_headers, "items"):
            req_headers = req_headers.items()
        atoms.update({"{%s}i" % k.lower(): v for k, v in req_headers})

        resp_headers = resp.headers
        if hasattr(resp_headers, "items"):
            resp_headers = resp_headers.items()
        atoms.update({"{%s}o" % k.lower(): v for k, v in resp_headers})

        atoms.update({"{%s}e" % k.lower(): v for k, v in environ.items()})
        return atoms

    @property
    def access_log_enabled(self):
        return bool(
            self.cfg.accesslog or self.cfg.logconfig or
            self.cfg.logconfig_dict or self.cfg.logconfig_json or
            (self.cfg.syslog and not self.cfg.disable_redirect_access_to_syslog)
        )

    def access(self, resp, req, environ, request_time):
        """ See http://httpd.apache.org/docs/2.0/logs.html#combined
        for format details
        """
        if not self.access_log_enabled:
            return
        safe_atoms = self.atoms_wrapper_class(
            self.atoms(resp, req, environ, request_time)
        )
        try:
            self.access_log.info(self.cfg.access_log_format, safe_atoms)
        except Exception:
            self.error(traceback.format_exc())

    def now(self):
        """ return date in Apache Common Log Format """
        return time.strftime('[%d/%b/%Y:%H:%M:%S %z]')

    def reopen_files(self):
        _reopen()  # errorlog, accesslog (and stdout/stderr with them)

        def reopen(handler):
            handler.close()
            handler.stream = handler._open()
        _each_open_file_handler(reopen)

    def close_on_exec(self):
        # Python opens files non-inheritable (PEP 446); cunicorn's own are
        # opened O_CLOEXEC.
        _each_open_file_handler(lambda h: os.set_inheritable(h.stream.fileno(), False))

    def _get_gunicorn_handler(self, log):
        for h in log.handlers:
            if getattr(h, "_gunicorn", False):
                return h

    def _set_handler(self, log, output, fmt, stream=None):
        h = self._get_gunicorn_handler(log)
        if h:
            log.handlers.remove(h)
        if output is not None:
            if log is self.access_log:
                h = AccessLogHandler()
            elif (fmt._fmt, fmt.datefmt) == (Logger.error_fmt, Logger.datefmt):
                h = ErrorLogHandler(True)
                fmt = logging.Formatter("%(message)s")
            else:
                h = ErrorLogHandler(False)
            h.setFormatter(fmt)
            h._gunicorn = True
            log.addHandler(h)

    def _get_user(self, environ):
        user = None
        http_auth = environ.get("HTTP_AUTHORIZATION")
        if http_auth and http_auth.lower().startswith('basic'):
            auth = http_auth.split(" ", 1)
            if len(auth) == 2:
                try:
                    auth = base64.b64decode(auth[1].strip().encode('utf-8'))
                    user = auth.split(b":", 1)[0].decode("UTF-8")
                except (TypeError, binascii.Error, UnicodeDecodeError) as exc:
                    self.debug("Couldn't get username: %s", exc)
        return user


# ---------------------------------------------------------------------
# What src/pylog.cpp calls.
# ---------------------------------------------------------------------

class Config:
    """The settings a Logger reads (cfg.<name>), as gunicorn's Config
    holds them."""

    def __init__(self, values, derived, fallback):
        self.__dict__.update(fallback)
        self.__dict__.update(values)
        self.__dict__.update(derived)
        self.settings = dict(values)


class Request:
    """What Logger.access reads of gunicorn's http.message.Request."""

    def __init__(self, method, uri, path, query, version, headers, remote_addr):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.remote_addr = remote_addr


class Response:
    """What Logger.access reads of gunicorn's http.wsgi.Response."""

    def __init__(self, status, headers, sent):
        self.status = status
        try:
            self.status_code = int(status.split(None, 1)[0])
        except (ValueError, IndexError):
            self.status_code = None
        self.headers = headers
        self.sent = sent
        self.response_length = sent


def load_class(uri):
    """gunicorn's util.load_class for a logger: a class, "simple", or a
    dotted path to one."""
    if not isinstance(uri, str):
        return uri
    if uri in ("simple", "gunicorn.glogging.Logger", "cunicorn.glogging.Logger"):
        return Logger
    components = uri.split('.')
    if len(components) < 2:
        raise RuntimeError("class uri %r invalid or not found: \n\n[%s]"
                           % (uri, "no module named in the path"))
    klass = components.pop(-1)
    import importlib
    try:
        mod = importlib.import_module('.'.join(components))
        return getattr(mod, klass)
    except Exception:
        exc = traceback.format_exc()
        raise RuntimeError("class uri %r invalid or not found: \n\n[%s]" % (uri, exc))


def access(log, environ, method, uri, path, query, version, remote,
           status, sent, micros, req_headers, resp_headers):
    """One request, handed to log.access as gunicorn's workers do."""
    if environ is None:
        environ = {"REQUEST_METHOD": method, "RAW_URI": uri, "PATH_INFO": path,
                   "QUERY_STRING": query, "SERVER_PROTOCOL": version,
                   "REMOTE_ADDR": remote}
        for k, v in req_headers:
            key = "HTTP_" + k.upper().replace("-", "_")
            environ[key] = environ[key] + "," + v if key in environ else v
    req = Request(method, uri, path, query, version,
                  [(k.upper(), v) for k, v in req_headers], remote)
    log.access(Response(status, resp_headers, sent), req, environ,
               timedelta(microseconds=micros))


_LEVELS = ("debug", "info", "warning", "error", "critical")


def error(log, level, text):
    """A line of cunicorn's own, through the Logger's method for its level."""
    getattr(log, _LEVELS[level])(text)
