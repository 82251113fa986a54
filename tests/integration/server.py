"""Shared helpers for the integration tests.

The tests drive a server binary with Gunicorn's command line: ./cunicorn, or
Debian's /usr/bin/gunicorn to check the tests themselves.  The environment
tells which (tests/run.py sets it):

  CUNICORN_TEST_BINARY      path of the server binary (default: ./cunicorn)
  CUNICORN_TEST_EXTRA_ARGS  options put before every test's own options,
                            e.g. "-k gthread --threads 4" for gunicorn
  CUNICORN_TEST_SANITIZED   "1" for an ASan/UBSan build: deadlines x3,
                            memory checks skipped, sanitizer reports fail
  CUNICORN_TEST_FLAVOR      "cunicorn" or "gunicorn" (found with -v if unset)
  CUNICORN_TEST_REGISTRY    file where started process groups are noted, so
                            the runner can clean up after a crashed test

Only the processes a test started are ever signalled: the master's PID (and
its process group, which the master leads because it starts a new session).
Nothing is killed by name.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFORMANCE_DIR = os.path.join(ROOT, 'tests', 'data', 'conformance', 'requests')

SANITIZED = os.environ.get('CUNICORN_TEST_SANITIZED') == '1'
# Deadlines are multiplied by this: sanitizer builds are several times slower.
SLOW = 3 if SANITIZED else 1
READY_TIMEOUT = 30
STOP_TIMEOUT = 10
IO_TIMEOUT = 30
LOG_TAIL_LINES = 40


def binary():
    path = os.environ.get('CUNICORN_TEST_BINARY') or os.path.join(ROOT, 'cunicorn')
    return os.path.abspath(path)


def extra_args():
    return shlex.split(os.environ.get('CUNICORN_TEST_EXTRA_ARGS', ''))


_flavor = None


def flavor():
    """'cunicorn' or 'gunicorn': which server the tests are running against."""
    global _flavor
    if _flavor is None:
        _flavor = os.environ.get('CUNICORN_TEST_FLAVOR') or ''
        if not _flavor:
            out = ''
            try:
                out = subprocess.run([binary(), '-v'], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, timeout=30 * SLOW,
                                     stdin=subprocess.DEVNULL).stdout.decode('latin-1')
            except (OSError, subprocess.TimeoutExpired):
                pass
            name = os.path.basename(binary()).lower()
            if 'cunicorn' in out.lower() or 'cunicorn' in name:
                _flavor = 'cunicorn'
            elif 'gunicorn' in out.lower() or 'gunicorn' in name:
                _flavor = 'gunicorn'
            else:
                _flavor = 'cunicorn'
    return _flavor


def is_gunicorn():
    return flavor() == 'gunicorn'


def http10_response_version():
    """The status line's version in answers to HTTP/1.0 requests: the
    server's own (RFC 9110 2.5), where Gunicorn echoes the request's."""
    return 'HTTP/1.0' if is_gunicorn() else 'HTTP/1.1'


def http10_ok():
    return http10_response_version().encode() + b' 200 OK'


def worker_class():
    """The worker class the extra args select ('sync' when none)."""
    args = extra_args()
    for i, a in enumerate(args):
        if a in ('-k', '--worker-class'):
            return args[i + 1] if i + 1 < len(args) else 'sync'
        if a.startswith('--worker-class='):
            return a.split('=', 1)[1]
        if a.startswith('-k'):
            return a[2:]
    return 'sync'


def gevent_runs():
    """Why the gevent worker class cannot be tested here, or ''."""
    if not module_available('gevent'):
        return 'gevent is not installed for /usr/bin/python3 (Debian python3-gevent; make deps)'
    if SANITIZED:
        # tests/run.py, NOT_SANITIZED_PASSES.
        return ('greenlet copies C stacks between greenlets unannounced to AddressSanitizer, '
                'whose reports would be false: the gevent class is tested in the normal build')
    return ''


def is_threaded():
    """True when the extra args select gthread (keep-alive capable gunicorn)."""
    return worker_class() == 'gthread'


def is_concurrent():
    """True when a worker runs several requests at once (gthread, gevent):
    wsgi.multithread is True and the loop keeps beating while the
    application is stuck."""
    return worker_class() in ('gthread', 'gevent', 'gevent_wsgi', 'gevent_pywsgi')


def check_request_timeout(test, srv, conn):
    """Sends GET /stuck (which sleeps 30 s) on conn to a one-worker server
    started with --request-timeout 1: the log names the request and shows
    its Python stack, and a new worker takes over."""
    first = srv.worker_pid()
    conn.send(build_request('GET', '/stuck', close=True))
    test.assertTrue(wait_for(lambda: 'Request timeout' in srv.log_text(), 60))
    log = srv.log_text()
    test.assertIn('Request timeout (1 s): GET /stuck from 127.0.0.1', log)
    test.assertIn('time.sleep(30)', log)     # the stuck thread's or greenlet's stack
    test.assertTrue(wait_for(lambda: set(children(srv.pid)) - {first}, 60))
    test.assertEqual(srv.get('/').body, b'hello')


def timeout(seconds):
    """Decorator: the per-test deadline tests/run.py enforces (default 120 s)."""
    def deco(fn):
        fn.test_timeout = seconds
        return fn
    return deco


# --------------------------------------------------------------------------
# small utilities

def wait_for(predicate, timeout=10, interval=0.05):
    """Poll predicate() until it returns a true value or timeout*SLOW passes.

    Returns the last value of predicate() (true on success, false on timeout).
    """
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _proc_stat(pid):
    """(state, ppid, pgrp) of a process from /proc/PID/stat, or None."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read().decode('latin-1')
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    rest = data[data.rfind(')') + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def pid_alive(pid):
    st = _proc_stat(pid)
    return st is not None and st[0] not in ('Z', 'X')


def children(pid):
    """Live (non-zombie) child pids of pid, sorted."""
    kids = set()
    task_dir = '/proc/%d/task' % pid
    try:
        tasks = os.listdir(task_dir)
    except OSError:
        return []
    have_children_file = False
    for tid in tasks:
        try:
            with open('%s/%s/children' % (task_dir, tid)) as f:
                kids.update(int(x) for x in f.read().split())
            have_children_file = True
        except OSError:
            pass
    if not have_children_file:
        for name in os.listdir('/proc'):
            if name.isdigit():
                st = _proc_stat(int(name))
                if st is not None and st[1] == pid:
                    kids.add(int(name))
    return sorted(k for k in kids if pid_alive(k))


def group_members(pgid):
    """Live pids whose process group is pgid."""
    out = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st is not None and st[2] == pgid and st[0] not in ('Z', 'X'):
                out.append(int(name))
    return out


def socket_inodes(pid):
    """Inodes of the sockets process pid has open."""
    out = set()
    try:
        fds = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:['):
            out.add(int(link[8:-1]))
    return out


def listening_inodes(port):
    """Inodes of the TCP sockets listening on port (any address)."""
    out = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == '0A' and int(local.rsplit(':', 1)[1], 16) == port:
                        out.add(int(inode))
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return out


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def rss_kib(pid):
    """Resident set size of pid in KiB (VmRSS), or None if it is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _kill_quietly(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def kill_group(pgid, sig=signal.SIGKILL):
    """Signal every live member of process group pgid (the group a test started)."""
    members = group_members(pgid)
    if members:
        try:
            os.killpg(pgid, sig)
        except OSError:
            for pid in members:
                _kill_quietly(pid, sig)
    return members


def module_available(name):
    """True if Debian's python3, which the test apps run under, imports name."""
    try:
        return subprocess.run(['/usr/bin/python3', '-c', 'import ' + name], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def read_until_closed(sock):
    """Everything sock receives until the peer closes."""
    data = bytearray()
    while True:
        piece = sock.recv(65536)
        if not piece:
            return bytes(data)
        data += piece


def write_file(path, text, mode=None):
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text))
    if mode is not None:
        os.chmod(path, mode)
    return path


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def tail(text, n=LOG_TAIL_LINES):
    lines = text.splitlines()
    return '\n'.join(lines[-n:])


# --------------------------------------------------------------------------
# bookkeeping shared with tests/run.py

_registry_lock = threading.Lock()
_live_servers = []          # servers running now
_stopped_this_test = []     # (description, log text) of servers stopped during the test
_sanitizer_reports = []     # sanitizer findings not yet reported

SANITIZER_RE = re.compile(r'(ERROR: (Address|Leak|Thread|Memory)Sanitizer|'
                          r'runtime error: |SUMMARY: UndefinedBehaviorSanitizer)')


def _note_registry(line):
    path = os.environ.get('CUNICORN_TEST_REGISTRY')
    if not path:
        return
    with _registry_lock:
        with open(path, 'a') as f:
            f.write(line + '\n')


def reset_test_tracking():
    del _stopped_this_test[:]


def debug_report():
    """Log tails of the servers involved in the current test (for failures)."""
    parts = []
    for srv in list(_live_servers):
        parts.append('--- server (running) %s\n%s' % (srv.describe(), tail(srv.log_text())))
    for desc, text in _stopped_this_test:
        parts.append('--- server (stopped) %s\n%s' % (desc, tail(text)))
    return '\n'.join(parts)


def take_sanitizer_reports():
    out = list(_sanitizer_reports)
    del _sanitizer_reports[:]
    return out


def stop_all_servers():
    for srv in list(_live_servers):
        srv.stop()


class SharedServers:
    """Servers a test module starts once and reuses across its tests, by
    key; one that died is started anew. Call stop() from tearDownModule."""

    def __init__(self):
        self._servers = {}

    def get(self, key, make):
        """The running server for key, or make()'s, started now."""
        srv = self._servers.get(key)
        if srv is not None and srv.proc is not None and srv.proc.poll() is None:
            return srv
        if srv is not None:
            srv.stop()
        srv = make()
        self._servers[key] = srv
        srv.start()
        return srv

    def stop(self):
        for srv in self._servers.values():
            srv.stop()
        self._servers.clear()


# --------------------------------------------------------------------------
# the server under test

def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), from /proc."""
    with open('/proc/%d/stat' % pid, 'rb') as f:
        rest = f.read().decode('latin-1').rsplit(')', 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf('SC_CLK_TCK')


def serve_beside_slow_clients(srv, n, seconds):
    """Opens n connections that each send one header byte every 2 s, and
    for `seconds` keeps requesting GET / on fresh connections beside them;
    every such request must be answered 'hello'. Returns how many were."""
    slow = []
    try:
        for _ in range(n):
            s = socket.create_connection(srv.address)
            s.setblocking(False)
            slow.append(s)
        head = b'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: '
        ok = 0
        t_end = time.monotonic() + seconds
        next_byte = 0
        step = 0
        while time.monotonic() < t_end:
            if time.monotonic() >= next_byte:
                for s in slow:
                    try:
                        s.send(head[step:step + 1] if step < len(head) else b'a')
                    except OSError:
                        pass
                step += 1
                next_byte = time.monotonic() + 2
            resp = srv.get('/', timeout=30)
            if resp.body != b'hello':
                raise AssertionError('GET / beside slow clients: %r' % (resp.body,))
            ok += 1
        return ok
    finally:
        for s in slow:
            s.close()


class ServerError(Exception):
    pass


class Server:
    """One run of the binary under test.

    app: Python source of the app module (written as <module>.py into a temp
    dir that is passed with --chdir); appname: the URI given on the command
    line (default "<module>:app"); args: extra command-line options;
    bind: True (a free 127.0.0.1 port), a string such as "unix:/path", or
    None (no -b at all, e.g. when a config file or GUNICORN_CMD_ARGS binds);
    port: with bind=None, the port to probe for readiness.
    """

    def __init__(self, app=None, args=(), appname=None, module='app', bind=True,
                 port=None, env=None, cwd=None, access_log=False, files=None,
                 chdir=True, extra=True, ready_timeout=READY_TIMEOUT):
        self.app_source = app
        self.args = list(args)
        self.module = module
        self.appname = appname
        self.bind = bind
        self.port = port
        self.env = dict(env or {})
        self.cwd = cwd
        self.access_log = access_log
        self.files = dict(files or {})
        self.use_chdir = chdir
        self.use_extra = extra
        self.ready_timeout = ready_timeout
        self.proc = None
        self.tmpdir = None
        self.returncode = None
        self.argv = None
        self._final_log = None

    # -- paths
    @property
    def appdir(self):
        return self.tmpdir

    def path(self, *names):
        return os.path.join(self.tmpdir, *names)

    @property
    def error_log(self):
        return self.path('error.log')

    @property
    def access_log_path(self):
        return self.path('access.log')

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def address(self):
        if isinstance(self.bind, str) and self.bind.startswith('unix:'):
            return self.bind[5:]
        return ('127.0.0.1', self.port)

    def describe(self):
        return ' '.join(shlex.quote(a) for a in (self.argv or []))

    # -- lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _prepare(self):
        self.tmpdir = tempfile.mkdtemp(prefix='cunicorn-test-')
        if self.app_source is not None:
            write_file(self.path(self.module + '.py'), self.app_source)
        for name, text in self.files.items():
            full = self.path(name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            write_file(full, text)

    def command(self):
        argv = [binary()]
        if self.bind is True:
            argv += ['-b', '127.0.0.1:%d' % self.port]
        elif isinstance(self.bind, str):
            argv += ['-b', self.bind]
        argv += ['--error-logfile', self.error_log]
        if self.access_log:
            argv += ['--access-logfile', self.access_log_path]
        if self.app_source is not None and self.use_chdir:
            argv += ['--chdir', self.tmpdir]
        if self.use_extra:
            argv += extra_args()
        argv += self.args
        if self.app_source is not None or self.appname:
            argv.append(self.appname or (self.module + ':app'))
        return argv

    def environment(self):
        env = dict(os.environ)
        for k in ('GUNICORN_CMD_ARGS', 'WEB_CONCURRENCY', 'PORT', 'SCRIPT_NAME', 'VIRTUAL_ENV',
                  'FORWARDED_ALLOW_IPS', 'GUNICORN_FD', 'GUNICORN_PID',
                  'LISTEN_FDS', 'LISTEN_PID', 'NOTIFY_SOCKET'):
            env.pop(k, None)
        for k in [k for k in env if k.startswith('CUNICORN_TEST_')]:
            env.pop(k)
        env.update(self.env)
        return env

    def spawn(self):
        """Start the process without waiting for readiness."""
        if self.tmpdir is None:
            self._prepare()
        if self.bind is True and self.port is None:
            self.port = free_port()
        self.argv = self.command()
        self._stdout = open(self.path('stdout.txt'), 'wb')
        self._stderr = open(self.path('stderr.txt'), 'wb')
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd or self.tmpdir, env=self.environment(),
            stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
            start_new_session=True)
        self.returncode = None
        _live_servers.append(self)
        _note_registry('start %d %s' % (self.proc.pid, binary()))
        return self

    def start(self):
        """Start and wait until the listening socket accepts a connection."""
        for attempt in range(3):
            self.spawn()
            if self.wait_ready(self.ready_timeout):
                return self
            exited = self.proc.poll() is not None
            text = self.log_text()
            self.stop()
            in_use = 'in use' in text or 'EADDRINUSE' in text
            if exited and in_use and self.bind is True and attempt < 2:
                # Someone took the free port between probe and bind: retry.
                self.port = None
                self.tmpdir = None
                continue
            raise ServerError('server did not become ready (%s)\n%s\n%s' % (
                'exited with %s' % self.returncode if exited else 'timeout',
                self.describe(), tail(text)))
        return self

    def owns_listener(self):
        """True if our process group listens on self.port (not a stranger
        that grabbed the port between free_port() and our bind)."""
        listening = listening_inodes(self.port)
        if not listening:
            return False
        for pid in group_members(self.proc.pid) or [self.proc.pid]:
            if socket_inodes(pid) & listening:
                return True
        return False

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                s = self._raw_connect(1.0)
                s.close()
                if isinstance(self.address, str) or self.owns_listener():
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def wait_workers(self, n, timeout=30):
        """Wait until the master has exactly n live children; returns them,
        as they were when there were n (a second look could find a worker
        that has exited since, or its replacement not forked yet)."""
        kids = []

        def exactly_n():
            kids[:] = children(self.pid)
            return len(kids) == n
        ok = wait_for(exactly_n, timeout)
        if not ok:
            raise AssertionError('expected %d workers, have %r\n%s' % (
                n, kids, tail(self.log_text())))
        return kids

    def worker_pid(self, timeout=30):
        return self.wait_workers(1, timeout)[0]

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the master to exit on its own; returns its status or None."""
        try:
            self.returncode = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def send_signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop the server: sig to the master, SIGKILL to its group after timeout.

        Returns the master's exit status (negative for a signal).
        """
        if self.proc is None:
            return self.returncode
        pgid = self.proc.pid
        if self.proc.poll() is None:
            _kill_quietly(self.proc.pid, sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                _kill_quietly(self.proc.pid, signal.SIGKILL)
                kill_group(pgid)
                self.proc.wait()
        self.returncode = self.proc.returncode
        # Workers must not outlive their master; make sure none are left.
        if group_members(pgid):
            wait_for(lambda: not group_members(pgid), 2)
            kill_group(pgid)
        for f in (self._stdout, self._stderr):
            f.close()
        text = self.log_text()
        self._final_log = text
        _note_registry('stop %d' % pgid)
        if self in _live_servers:
            _live_servers.remove(self)
        _stopped_this_test.append((self.describe(), text))
        if SANITIZED and SANITIZER_RE.search(text):
            _sanitizer_reports.append('%s\n%s' % (self.describe(), text[-8000:]))
        self.proc = None
        if os.environ.get('CUNICORN_TEST_KEEP_TMP') != '1':
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return self.returncode

    # -- logs
    def error_text(self):
        """The --error-logfile contents (read it before stop())."""
        return read_text(self.error_log)

    def log_text(self):
        """Error log + stderr + stdout of the server (everything it printed)."""
        if self.proc is None and self._final_log is not None:
            return self._final_log
        return '\n'.join(t for t in (read_text(self.error_log),
                                     read_text(self.path('stderr.txt')),
                                     read_text(self.path('stdout.txt'))) if t)

    def _log_files(self):
        return [self.error_log, self.path('stderr.txt'), self.path('stdout.txt')]

    def log_mark(self):
        """Current sizes of the log files, for log_since()."""
        marks = []
        for p in self._log_files():
            try:
                marks.append(os.path.getsize(p))
            except OSError:
                marks.append(0)
        return marks

    def log_since(self, mark):
        """What the server wrote to its logs after log_mark() returned mark."""
        out = []
        for p, offset in zip(self._log_files(), mark):
            try:
                with open(p, 'rb') as f:
                    f.seek(offset)
                    out.append(f.read().decode('utf-8', 'replace'))
            except OSError:
                pass
        return '\n'.join(t for t in out if t)

    def access_text(self):
        return read_text(self.access_log_path)

    # -- clients
    def _raw_connect(self, timeout):
        if isinstance(self.address, str):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.address)
        except OSError:
            s.close()
            raise
        return s

    def connect(self, timeout=IO_TIMEOUT):
        return Conn(self._raw_connect(timeout * SLOW))

    def request(self, method='GET', path='/', headers=None, body=b'',
                version='HTTP/1.1', close=True, timeout=IO_TIMEOUT):
        """One request on a fresh connection; returns the Response."""
        conn = self.connect(timeout)
        try:
            conn.send(build_request(method, path, headers, body, version, close=close))
            resp = conn.read_response(method)
            if resp is None:
                raise ProtocolError('connection closed without a response')
            return resp
        finally:
            conn.close()

    def get(self, path='/', **kw):
        return self.request('GET', path, **kw)


# --------------------------------------------------------------------------
# raw HTTP client

class ProtocolError(Exception):
    pass


def build_request(method='GET', path='/', headers=None, body=b'',
                  version='HTTP/1.1', close=False, host=True):
    """Bytes of one request. headers: list of (name, value) or dict.

    Adds Host (unless given or host=False), Content-Length when a body is
    given without Transfer-Encoding, and Connection: close when close=True.
    """
    if isinstance(body, str):
        body = body.encode('latin-1')
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {n.lower() for n, _ in hdrs}
    if host and 'host' not in names:
        hdrs.insert(0, ('Host', '127.0.0.1'))
    if body and 'content-length' not in names and 'transfer-encoding' not in names:
        hdrs.append(('Content-Length', str(len(body))))
    if close and 'connection' not in names:
        hdrs.append(('Connection', 'close'))
    head = '%s %s %s\r\n' % (method, path, version)
    head += ''.join('%s: %s\r\n' % (n, v) for n, v in hdrs)
    return head.encode('latin-1') + b'\r\n' + body


def chunked(pieces, trailers=None):
    """Encode pieces (bytes) with chunked transfer-coding."""
    out = []
    for p in pieces:
        if p:
            out.append(b'%x\r\n%s\r\n' % (len(p), p))
    out.append(b'0\r\n')
    for n, v in (trailers or []):
        out.append(('%s: %s\r\n' % (n, v)).encode('latin-1'))
    out.append(b'\r\n')
    return b''.join(out)


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []       # [(name, value)] as received
        self.body = b''
        self.raw = b''          # status line + headers + body bytes as received
        self.chunked = False
        self.framing = None     # 'length', 'chunked', 'close' or 'none'
        self.complete = True    # False when the connection ended early
        self.interim = []       # 1xx responses seen before this one

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_token(self, name, token):
        """True if a comma-separated header contains token (case-insensitive)."""
        for v in self.header_all(name):
            if token.lower() in [t.strip().lower() for t in v.split(',')]:
                return True
        return False

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')

    def __repr__(self):
        return '<Response %s %s %r>' % (self.status, self.reason, self.raw[:300])


class Conn:
    """A client connection with a read buffer (handles pipelined responses)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''
        self.eof = False
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def settimeout(self, t):
        self.sock.settimeout(t * SLOW if t is not None else None)

    def send(self, data):
        self.sock.sendall(data)

    def send_segmented(self, data, rng, max_segment=16, delay=0.01, max_segments=40):
        """Send data in random-size pieces with short pauses between them."""
        seg = max(max_segment, -(-len(data) // max_segments))
        pos = 0
        while pos < len(data):
            n = rng.randint(1, seg)
            self.sock.sendall(data[pos:pos + n])
            pos += n
            if pos < len(data):
                time.sleep(rng.uniform(0, delay))

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        """Read more bytes into the buffer; returns False at EOF."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b''
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_until(self, marker, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ProtocolError('no %r within %d bytes' % (marker, limit))
            if not self._fill():
                return None
        i = self.buf.index(marker) + len(marker)
        return self._take(i)

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        return self._take(n)

    def read_until_close(self):
        """Everything until the peer closes (a reset counts as a close)."""
        while self._fill():
            pass
        return self._take(len(self.buf))

    def wait_closed(self, timeout=10):
        """True if the server closes the connection within timeout seconds.

        Bytes that arrive meanwhile are kept in the buffer.
        """
        old = self.sock.gettimeout()
        deadline = time.monotonic() + timeout * SLOW
        try:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    self._fill()
                except socket.timeout:
                    return False
            return True
        finally:
            self.sock.settimeout(old)

    def read_head(self):
        """(raw head bytes, version, status, reason, headers) or None at EOF."""
        # Skip nothing: the first byte must start a status line.
        head = self.read_until(b'\r\n\r\n')
        if head is None:
            if self.buf:
                raise ProtocolError('connection closed inside a response head: %r'
                                    % self.buf[:300])
            return None
        lines = head[:-4].split(b'\r\n')
        m = re.match(rb'(HTTP/\d\.\d) (\d{3})(?: (.*))?$', lines[0])
        if not m:
            raise ProtocolError('bad status line %r' % lines[0])
        headers = []
        for line in lines[1:]:
            if b':' not in line:
                raise ProtocolError('bad header line %r' % line)
            n, v = line.split(b':', 1)
            headers.append((n.decode('latin-1'), v.strip(b' \t').decode('latin-1')))
        return (head, m.group(1).decode(), int(m.group(2)),
                (m.group(3) or b'').decode('latin-1'), headers)

    def read_response(self, method='GET', interim=False):
        """Read one response; None if the connection closed before any byte.

        1xx responses are collected in resp.interim unless interim=True, in
        which case the first one is returned by itself.
        """
        seen = []
        while True:
            h = self.read_head()
            if h is None:
                if seen:
                    raise ProtocolError('closed after an interim response')
                return None
            resp = Response()
            raw_head, resp.version, resp.status, resp.reason, resp.headers = h
            resp.raw = raw_head
            if 100 <= resp.status < 200 and resp.status != 101:
                resp.framing = 'none'
                if interim:
                    return resp
                seen.append(resp)
                continue
            resp.interim = seen
            break
        self._read_body(resp, method)
        return resp

    def _read_body(self, resp, method):
        te = resp.header_all('transfer-encoding')
        cl = resp.header_all('content-length')
        if method == 'HEAD' or resp.status in (204, 304) or 100 <= resp.status < 200:
            resp.framing = 'none'
            return
        if te and te[-1].split(',')[-1].strip().lower() == 'chunked':
            resp.framing = 'chunked'
            resp.chunked = True
            body = []
            while True:
                line = self.read_until(b'\r\n')
                if line is None:
                    resp.complete = False
                    break
                resp.raw += line
                size = line[:-2].split(b';')[0].strip()
                try:
                    n = int(size, 16)
                except ValueError:
                    raise ProtocolError('bad chunk size line %r' % line)
                if n == 0:
                    # trailers until an empty line
                    while True:
                        t = self.read_until(b'\r\n')
                        if t is None:
                            resp.complete = False
                            break
                        resp.raw += t
                        if t == b'\r\n':
                            break
                    break
                data = self.read_exact(n + 2)
                if data is None:
                    resp.complete = False
                    body.append(self._take(len(self.buf)))
                    break
                resp.raw += data
                if data[-2:] != b'\r\n':
                    raise ProtocolError('chunk not followed by CRLF')
                body.append(data[:-2])
            resp.body = b''.join(body)
            return
        if cl:
            resp.framing = 'length'
            n = int(cl[-1])
            data = self.read_exact(n)
            if data is None:
                resp.complete = False
                data = self._take(len(self.buf))
            resp.body = data
            resp.raw += data
            return
        resp.framing = 'close'
        resp.body = self.read_until_close()
        resp.raw += resp.body


def connect(address, timeout=IO_TIMEOUT):
    if isinstance(address, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    s.connect(address)
    return Conn(s)


def run_binary(args, timeout=60, env=None, cwd=None, extra=False):
    """Run the binary to completion (CLI tests): (status, stdout, stderr).

    The process gets its own process group; on timeout the group is killed
    and status is None.
    """
    argv = [binary()] + (extra_args() if extra else []) + list(args)
    e = Server().environment()
    e.update(env or {})
    p = subprocess.Popen(argv, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    _note_registry('start %d %s' % (p.pid, binary()))
    try:
        out, err = p.communicate(timeout=timeout * SLOW)
        status = p.returncode
    except subprocess.TimeoutExpired:
        _kill_quietly(p.pid, signal.SIGKILL)
        kill_group(p.pid)
        out, err = p.communicate()
        status = None
    if group_members(p.pid):
        kill_group(p.pid)
    _note_registry('stop %d' % p.pid)
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    if SANITIZED and SANITIZER_RE.search(err):
        _sanitizer_reports.append('%s\n%s' % (' '.join(argv), err[-8000:]))
    return status, out, err


# --------------------------------------------------------------------------
# apps shared by several modules

ECHO_APP = r'''
import json

def app(environ, start_response):
    body = environ['wsgi.input'].read()
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, bool, int)) or v is None:
            out[k] = v
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = repr(type(v))
    out['body'] = body.decode('latin-1')
    data = json.dumps(out).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(data)))])
    return [data]
'''

HELLO_APP = r'''
def app(environ, start_response):
    body = b'hello ' + environ['PATH_INFO'].encode('latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''
