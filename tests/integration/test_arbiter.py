"""The master's signal set under load and under faults (reference sections
b.3-b.7 and c): HUP and USR2 without a failed request, worker faults and
timeouts, TTIN/TTOU, USR1 log rotation, QUIT/INT during a graceful stop,
--max-requests, HUP with a changed or broken config file, the pidfile guard,
WINCH, worker_tmp_dir, systemd socket activation and sd_notify.

Only the processes a test started are signalled: the master it spawned (and
that master's process group, which a USR2 child and a daemon's workers share
or lead), never anything found by name.  Deadlines are generous and outcomes,
not speed, are asserted.
"""

import collections
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import server
from server import Server, ProtocolError, build_request

APP = r'''
import os, time

HERE = os.path.dirname(os.path.abspath(__file__))


def touch(name):
    open(os.path.join(HERE, name), 'w').close()


def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/exit':
        os._exit(1)
    elif path == '/segv':
        import ctypes
        ctypes.string_at(0)
    elif path == '/hang':
        touch('hanging')
        while True:
            pass
    elif path == '/sleep':
        touch('started')
        time.sleep(float(environ['QUERY_STRING'] or '30'))
    # Who answered: the worker's pid and its master's.
    body = ('%d %d' % (os.getpid(), os.getppid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


# --------------------------------------------------------------------------
# helpers

def stays(predicate, seconds, interval=0.1):
    """True if predicate() holds during the whole period (checked every interval)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())


def read_pid(path):
    """The pid in a pidfile, or None if it is missing, empty or partial."""
    text = server.read_text(path).strip()
    return int(text) if text.isdigit() else None


def ppid_of(pid):
    st = server._proc_stat(pid)
    return st[1] if st else None


def pgid_of(pid):
    st = server._proc_stat(pid)
    return st[2] if st else None


def start_time(pid):
    """Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat)."""
    with open('/proc/%d/stat' % pid, 'rb') as f:
        data = f.read().decode('latin-1')
    return int(data[data.rfind(')') + 2:].split()[19])


def who(resp):
    """(worker pid, master pid) from the app's body."""
    pid, ppid = resp.body.split()
    return int(pid), int(ppid)


def fire(srv, path, timeout=10):
    """Send one request and return the Response, or None if the connection
    ended without one (the worker died): fault requests are expected to fail."""
    try:
        conn = srv.connect(timeout)
    except OSError:
        return None
    try:
        conn.send(build_request('GET', path, close=True))
        return conn.read_response()
    except (OSError, ProtocolError):
        return None
    finally:
        conn.close()


class LoadClients:
    """Client threads sending requests in a loop, each a mix of keep-alive
    series and Connection: close requests, counting every outcome.

    A failure is any request that does not end in a complete 200 response:
    refused or reset connections, empty replies, truncated responses,
    timeouts.  The one exception mirrors what browsers do: when a request
    sent on a *reused* keep-alive connection gets no byte back (the send
    fails, or EOF/reset before the status line), the server may have closed
    that connection while it was idle; the client reconnects and resends
    once, counted as an idle-close retry, not a failure.  The retry itself
    must succeed.  With idle_close_retry=False (a client that never
    retries, as wrk) that is a failure too.
    """

    def __init__(self, address, threads=8, requests_per_thread=None, seconds=120,
                 close_ratio=0.3, path='/', idle_close_retry=True, pause=0.004):
        self.address = address
        self.idle_close_retry = idle_close_retry
        self.pause = pause
        self.nthreads = threads
        self.per_thread = requests_per_thread
        self.seconds = seconds
        self.close_ratio = close_ratio
        self.path = path
        self.lock = threading.Lock()
        self.ok = 0
        self.nfailed = 0
        self.failures = []                  # first few, described
        self.idle_retries = 0
        self.by_pid = collections.Counter()     # worker pid -> responses
        self.by_master = collections.Counter()  # master pid -> responses
        self.halt = threading.Event()
        self.threads = []

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        """Stop the clients now; True if every thread finished."""
        self.halt.set()
        return self.wait()

    def wait(self):
        """Wait for the threads to end on their own bounds."""
        for t in self.threads:
            t.join(60 * server.SLOW)
        return not any(t.is_alive() for t in self.threads)

    # -- results
    def served_by(self, pids):
        with self.lock:
            return any(self.by_pid[p] for p in pids)

    def total(self):
        with self.lock:
            return self.ok + self.nfailed

    def summary(self):
        with self.lock:
            return ('%d ok, %d failed, %d idle-close retries, %d worker pids, '
                    'responses per master %s; first failures:\n  %s' % (
                        self.ok, self.nfailed, self.idle_retries, len(self.by_pid),
                        dict(self.by_master), '\n  '.join(self.failures) or '(none)'))

    # -- the client
    def _fail(self, what):
        with self.lock:
            self.nfailed += 1
            if len(self.failures) < 20:
                self.failures.append('%.3f %s' % (time.monotonic(), what))

    def _run(self, i):
        rng = random.Random(1000 + i)
        conn = None                 # a connection kept alive from the last response
        deadline = time.monotonic() + self.seconds * server.SLOW
        n = 0
        try:
            while not self.halt.is_set() and time.monotonic() < deadline:
                if self.per_thread is not None and n >= self.per_thread:
                    break
                n += 1
                close = rng.random() < self.close_ratio
                conn = self._one(conn, close, '%s?t=%d&n=%d' % (self.path, i, n))
                if self.pause:
                    time.sleep(rng.uniform(0, self.pause))
        finally:
            if conn is not None:
                conn.close()

    def _one(self, conn, close, target):
        """One request; returns the connection to reuse (or None)."""
        retried = False
        while True:
            reused = conn is not None
            if not reused:
                try:
                    conn = server.connect(self.address, timeout=20)
                except OSError as e:
                    self._fail('connect: %r' % e)
                    return None
            error = None
            resp = None
            try:
                conn.send(build_request('GET', target, close=close))
                resp = conn.read_response()
            except (ConnectionResetError, BrokenPipeError) as e:
                error = e
            except socket.timeout:
                conn.close()
                self._fail('no response within 20 s (%s connection)' %
                           ('reused' if reused else 'fresh'))
                return None
            except (OSError, ProtocolError) as e:
                conn.close()
                self._fail('%r on a %s connection' % (e, 'reused' if reused else 'fresh'))
                return None
            if resp is None:
                # Not one byte of a response came back.
                conn.close()
                conn = None
                if reused and not retried and self.idle_close_retry:
                    with self.lock:
                        self.idle_retries += 1
                    retried = True
                    continue
                self._fail('%s on a %s connection%s' % (
                    'reset (%r)' % error if error else 'empty reply',
                    'reused' if reused else 'fresh', ' (idle-close retry)' if retried else ''))
                return None
            if not resp.complete or resp.status != 200:
                conn.close()
                self._fail('bad response: %r' % resp)
                return None
            try:
                pid, ppid = who(resp)
            except ValueError:
                conn.close()
                self._fail('bad body: %r' % resp)
                return None
            with self.lock:
                self.ok += 1
                self.by_pid[pid] += 1
                self.by_master[ppid] += 1
            ends = (close or resp.has_token('connection', 'close')
                    or (resp.version == 'HTTP/1.0'
                        and not resp.has_token('connection', 'keep-alive')))
            if ends:
                conn.close()
                return None
            return conn


class Base(unittest.TestCase):
    def make(self, *args, **kw):
        """A Server with its temp dir ready (for paths in args), not started."""
        srv = Server(APP, [], **kw)
        srv._prepare()
        srv.args = [a.replace('{dir}', srv.tmpdir) for a in args]
        self.addCleanup(srv.stop)
        return srv

    def serve(self, *args, **kw):
        srv = self.make(*args, **kw)
        srv.start()
        return srv

    def answer(self, srv):
        """(worker pid, master pid) of a fresh request."""
        r = srv.get('/', timeout=20)
        self.assertEqual(r.status, 200, r)
        return who(r)

    def wait_replaced(self, srv, old, timeout=30):
        """Wait for a single worker other than old; returns its pid."""
        found = []

        def replaced():
            # One look at /proc: the worker seen is the one returned.
            kids = server.children(srv.pid)
            if len(kids) == 1 and old not in kids:
                found[:] = kids
                return True
            return False
        ok = server.wait_for(replaced, timeout)
        self.assertTrue(ok, 'worker %d was not replaced by a new one: workers now %r\n%s'
                        % (old, server.children(srv.pid), server.tail(srv.log_text())))
        return found[0]

    def wait_new_generation(self, srv, old, n, timeout=30):
        """Wait until the master has n workers, none of them in old."""
        old = set(old)
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == n
                             and not old & set(server.children(srv.pid)), timeout)
        kids = server.children(srv.pid)
        self.assertTrue(ok, 'expected %d new workers (none of %r), have %r\n%s'
                        % (n, sorted(old), kids, server.tail(srv.log_text())))
        return set(kids)


# --------------------------------------------------------------------------
# 1. HUP x5 then USR2 under load

class UpgradeUnderLoad(Base):
    @server.timeout(240)
    def test_hup_and_usr2_under_load_lose_no_request(self):
        srv = self.serve('-w', '2', '-p', '{dir}/master.pid', '--graceful-timeout', '20')
        pidfile = srv.path('master.pid')
        pidfile2 = pidfile + '.2'
        gen = set(srv.wait_workers(2))
        old_master = srv.pid
        load = LoadClients(srv.address, threads=8, seconds=150)
        self.addCleanup(load.stop)
        load.start()
        self.assertTrue(server.wait_for(lambda: load.served_by(gen), 30),
                        'no load response at all: ' + load.summary())

        for i in range(5):
            srv.send_signal(signal.SIGHUP)
            gen = self.wait_new_generation(srv, gen, 2)
            self.assertTrue(server.wait_for(lambda: load.served_by(gen), 30),
                            'HUP %d: the new workers %r never answered: %s'
                            % (i + 1, sorted(gen), load.summary()))
            time.sleep(0.5)

        # USR2: a second master with the same listeners, pidfile <pidfile>.2.
        listening = server.listening_inodes(srv.port)
        srv.send_signal(signal.SIGUSR2)
        ok = server.wait_for(lambda: read_pid(pidfile2), 20)
        self.assertTrue(ok, 'no %s after USR2 (the binary upgrade did not start)\n%s'
                        % (os.path.basename(pidfile2), server.tail(srv.log_text())))
        new_master = read_pid(pidfile2)
        self.assertNotEqual(new_master, old_master)
        self.assertTrue(server.pid_alive(new_master), 'the new master %d is not running'
                        % new_master)
        self.assertEqual(ppid_of(new_master), old_master,
                         'the new master is not a child of the old one')
        # GUNICORN_PID itself cannot be read back (process titles overwrite
        # /proc/PID/environ); the ".2" pidfile is what the new master does with it.
        self.assertEqual(read_pid(pidfile), old_master,
                         'the old master must keep its pidfile until it exits')
        ok = server.wait_for(lambda: len(server.children(new_master)) == 2, 30)
        self.assertTrue(ok, 'the new master has workers %r, expected 2\n%s'
                        % (server.children(new_master), server.tail(srv.log_text())))
        self.assertEqual(server.listening_inodes(srv.port), listening,
                         'the listening socket changed: the new master must inherit it, '
                         'not bind again')
        self.assertTrue(server.socket_inodes(new_master) & listening,
                        'the new master does not hold the inherited listener')
        new_gen = set(server.children(new_master))
        self.assertTrue(server.wait_for(lambda: load.served_by(new_gen), 30),
                        "the new master's workers never answered: " + load.summary())
        time.sleep(0.5)

        # TERM the old master: the new one is promoted and renames its pidfile.
        srv.send_signal(signal.SIGTERM)
        status = srv.wait_exit(30)
        self.assertEqual(status, 0, 'old master after TERM: status %r' % status)
        self.assertTrue(server.wait_for(lambda: not any(server.pid_alive(k) for k in gen), 10),
                        "the old master's workers outlived it: %r" % sorted(gen))
        ok = server.wait_for(lambda: read_pid(pidfile) == new_master
                             and not os.path.exists(pidfile2), 20)
        self.assertTrue(ok, 'after the old master exited: %s holds %r, %s exists: %s\n%s'
                        % (os.path.basename(pidfile), server.read_text(pidfile).strip(),
                           os.path.basename(pidfile2), os.path.exists(pidfile2),
                           server.tail(srv.log_text())))
        before = load.total()
        self.assertTrue(server.wait_for(lambda: load.total() >= before + 50, 30),
                        'the load stopped after the old master exited: ' + load.summary())
        self.assertTrue(load.stop(), 'a client thread did not finish')

        self.assertEqual(load.nfailed, 0, 'requests failed: ' + load.summary())
        self.assertGreater(load.ok, 200, 'too little load to mean anything: ' + load.summary())
        self.assertIn(new_master, load.by_master, load.summary())

        # The promoted master (found through the pidfile) serves, and stops on TERM.
        master = read_pid(pidfile)
        self.assertEqual(master, new_master)
        kids = server.children(master)
        r = server.connect(srv.address, timeout=20)
        try:
            r.send(build_request('GET', '/', close=True))
            resp = r.read_response()
        finally:
            r.close()
        self.assertIsNotNone(resp, 'the promoted master does not answer')
        self.assertEqual(who(resp)[1], master)
        os.kill(master, signal.SIGTERM)
        ok = server.wait_for(lambda: not server.pid_alive(master)
                             and not any(server.pid_alive(k) for k in kids), 30)
        self.assertTrue(ok, 'the promoted master %d or its workers %r outlived TERM'
                        % (master, kids))
        self.assertFalse(os.path.exists(pidfile), 'the promoted master left its pidfile')


# --------------------------------------------------------------------------
# 2. worker faults

class Faults(Base):
    def one_worker(self, *args, **kw):
        srv = self.serve('-w', '1', *args, **kw)
        w = srv.worker_pid()
        self.assertEqual(self.answer(srv), (w, srv.pid))
        return srv, w

    def check_replaced(self, srv, old):
        new = self.wait_replaced(srv, old)
        self.assertEqual(self.answer(srv), (new, srv.pid), 'the new worker does not answer')
        self.assertIsNone(srv.proc.poll(), 'the master exited')
        return new

    def test_worker_exit_in_request_is_replaced(self):
        srv, w = self.one_worker()
        fire(srv, '/exit')
        self.check_replaced(srv, w)
        self.assertTrue(server.wait_for(
            lambda: 'Worker (pid:%d) exited with code 1' % w in srv.error_text(), 10),
            server.tail(srv.error_text()))

    def test_worker_segfault_is_replaced(self):
        env = None
        if server.SANITIZED:
            # The app crashes on purpose: under AddressSanitizer it must stay
            # a plain SIGSEGV rather than become a sanitizer report.
            env = {'ASAN_OPTIONS': os.environ.get('ASAN_OPTIONS', '') + ':handle_segv=0'}
        srv, w = self.one_worker(env=env)
        fire(srv, '/segv')
        self.check_replaced(srv, w)
        self.assertTrue(server.wait_for(
            lambda: 'Worker (pid:%d) was sent SIGSEGV!' % w in srv.error_text(), 10),
            server.tail(srv.error_text()))

    def test_sigkilled_worker_is_logged_and_replaced(self):
        srv, w = self.one_worker()
        os.kill(w, signal.SIGKILL)
        self.check_replaced(srv, w)
        self.assertTrue(server.wait_for(
            lambda: 'Worker (pid:%d) was sent SIGKILL! Perhaps out of memory?' % w
            in srv.error_text(), 10), server.tail(srv.error_text()))

    def hang(self, srv):
        """Start a request that spins forever; returns when the app is in it."""
        conn = srv.connect(60)
        self.addCleanup(conn.close)
        conn.send(build_request('GET', '/hang', close=True))
        ok = server.wait_for(lambda: os.path.exists(srv.path('hanging')), 30)
        self.assertTrue(ok, 'the /hang request did not reach the app')
        return time.monotonic()

    def test_hung_worker_is_killed_after_timeout(self):
        srv, w = self.one_worker('-t', '2')
        t0 = self.hang(srv)
        self.check_replaced(srv, w)
        elapsed = time.monotonic() - t0
        # About 2x the 2 s timeout in practice; the bound only catches "never".
        self.assertLess(elapsed, 30 * server.SLOW)
        self.assertIn('WORKER TIMEOUT (pid:%d) serving GET /hang from 127.0.0.1 for ' % w, srv.error_text())

    def test_hung_gevent_worker_timeout_names_the_stuck_request(self):
        # A greenlet that never yields stops the whole worker: the master's
        # kill names the oldest request in flight and how many share its fate.
        if server.gevent_runs():
            self.skipTest(server.gevent_runs())
        srv, w = self.one_worker('-t', '2', '-k', 'gevent')
        sleepers = []
        for _ in range(2):
            c = srv.connect(60)
            self.addCleanup(c.close)
            c.send(build_request('GET', '/sleep?60', close=True))
            sleepers.append(c)
        self.assertTrue(server.wait_for(lambda: os.path.exists(srv.path('started')), 30))
        time.sleep(0.2)  # both sleepers are in the app before the spinner
        self.hang(srv)
        self.check_replaced(srv, w)
        line = [l for l in srv.error_text().splitlines() if 'WORKER TIMEOUT (pid:%d)' % w in l]
        self.assertEqual(len(line), 1, server.tail(srv.error_text()))
        self.assertIn('serving GET /sleep?60 from 127.0.0.1 for ', line[0])
        self.assertIn('(3 requests in flight)', line[0])

    def test_worker_abort_hook_runs_on_timeout(self):
        srv = self.make('-w', '1', '-t', '2', '-c', '{dir}/conf.py')
        marker = srv.path('abort-marker')
        server.write_file(srv.path('conf.py'), '''
            def worker_abort(worker):
                open(%r, 'a').write('abort\\n')
            ''' % marker)
        srv.start()
        w = srv.worker_pid()
        self.hang(srv)
        self.check_replaced(srv, w)
        ok = server.wait_for(lambda: 'abort' in server.read_text(marker), 10)
        self.assertTrue(ok, 'worker_abort(worker) from -c was not called when the hung '
                        'worker got SIGABRT\n%s' % server.tail(srv.log_text()))


# --------------------------------------------------------------------------
# 3. TTIN / TTOU

class Scaling(Base):
    def test_ttin_then_ttou_retires_the_oldest(self):
        srv = self.serve('-w', '2')
        first = set(srv.wait_workers(2))
        # Start times tick every 10 ms: both may count as the oldest.
        started = {pid: start_time(pid) for pid in first}
        oldest = {pid for pid in first if started[pid] == min(started.values())}
        srv.send_signal(signal.SIGTTIN)
        three = set(srv.wait_workers(3))
        (added,) = three - first
        srv.send_signal(signal.SIGTTOU)
        two = set(srv.wait_workers(2))
        self.assertIn(added, two, 'TTOU must retire the oldest worker, not the newest')
        retired = first - two
        self.assertEqual(len(retired), 1, 'workers %r after TTOU (before %r)' % (two, three))
        self.assertLessEqual(retired, oldest, 'TTOU retired %r, not the oldest %r'
                             % (retired, oldest))
        self.assertEqual(self.answer(srv)[1], srv.pid)

    def test_ttou_never_below_one_worker(self):
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        for _ in range(4):
            srv.send_signal(signal.SIGTTOU)
            time.sleep(0.3)
        srv.wait_workers(1)
        self.assertTrue(stays(lambda: len(server.children(srv.pid)) == 1, 2.5),
                        'workers after repeated TTOU: %r' % server.children(srv.pid))
        self.assertEqual(self.answer(srv)[1], srv.pid)


# --------------------------------------------------------------------------
# 4. USR1 reopens the logs

class Usr1(Base):
    def test_usr1_reopens_renamed_access_log(self):
        srv = self.serve('-w', '1', access_log=True)
        log, rotated = srv.access_log_path, srv.access_log_path + '.1'
        self.assertEqual(srv.get('/before-rotate').status, 200)
        self.assertTrue(server.wait_for(
            lambda: '/before-rotate' in server.read_text(log), 10), 'no access log line')
        os.rename(log, rotated)
        srv.send_signal(signal.SIGUSR1)
        ok = server.wait_for(lambda: os.path.exists(log), 10)
        self.assertTrue(ok, 'USR1 did not create a new access log\n%s'
                        % server.tail(srv.log_text()))
        # The worker reopens its file after the master did: probe until a
        # line lands in the new file (those before may go to the old one).
        probes = []

        def probe():
            probes.append('/probe-%d' % len(probes))
            self.assertEqual(srv.get(probes[-1]).status, 200)
            return server.wait_for(lambda: probes[-1] in server.read_text(log)
                                   or probes[-1] in server.read_text(rotated), 10) \
                and probes[-1] in server.read_text(log)
        ok = server.wait_for(probe, 10, interval=0.2)
        self.assertTrue(ok, 'requests after USR1 are not logged in the new access log: %r '
                        '(old: %r)' % (server.read_text(log), server.read_text(rotated)))
        self.assertEqual(srv.get('/after-rotate').status, 200)
        ok = server.wait_for(lambda: '/after-rotate' in server.read_text(log), 10)
        self.assertTrue(ok, 'the request after USR1 is not in the new access log: %r (old: %r)'
                        % (server.read_text(log), server.read_text(rotated)))
        old = server.read_text(rotated)
        self.assertIn('/before-rotate', old, 'the renamed log lost its lines')
        self.assertNotIn('/after-rotate', old)
        self.assertNotIn('/before-rotate', server.read_text(log))


# --------------------------------------------------------------------------
# 5. QUIT / INT while a graceful stop waits for a request
# (a plain QUIT/INT with a request in flight is test_master.Shutdown.quick)

class QuickStop(Base):
    def quick_during_graceful(self, sig):
        srv = self.serve('-w', '1', '--graceful-timeout', '60', '-t', '120',
                         '-p', '{dir}/master.pid')
        w = srv.worker_pid()
        result = {}

        def run():
            result['response'] = fire(srv, '/sleep?30', timeout=60)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.addCleanup(t.join, 60)
        self.assertTrue(server.wait_for(lambda: os.path.exists(srv.path('started')), 30),
                        'the /sleep request did not reach the app')
        srv.send_signal(signal.SIGTERM)
        self.assertIsNone(srv.wait_exit(1), 'TERM did not wait for the in-flight request')
        srv.send_signal(sig)
        status = srv.wait_exit(15)
        self.assertIsNotNone(status, 'master still running 15 s after %s (graceful stop '
                             'must turn quick)' % sig.name)
        self.assertEqual(status, 0)
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(w), 10),
                        'the worker outlived its master')
        self.assertFalse(os.path.exists(srv.path('master.pid')), 'pidfile left behind')
        t.join(30)
        r = result.get('response')
        self.assertFalse(r is not None and r.status == 200,
                         'the 30 s request was allowed to finish')

    def test_quit_during_graceful_stop_exits_quickly(self):
        self.quick_during_graceful(signal.SIGQUIT)

    def test_int_during_graceful_stop_exits_quickly(self):
        self.quick_during_graceful(signal.SIGINT)


# --------------------------------------------------------------------------
# 6. --max-requests under load

class MaxRequests(Base):
    def test_max_requests_recycles_workers_without_failures(self):
        srv = self.serve('-w', '2', '--max-requests', '50')
        srv.wait_workers(2)
        load = LoadClients(srv.address, threads=4, requests_per_thread=100, seconds=90)
        self.addCleanup(load.stop)
        load.start()
        self.assertTrue(load.wait(), 'a client thread did not finish')
        self.assertEqual(load.nfailed, 0, 'requests failed: ' + load.summary())
        self.assertEqual(load.ok, 400, load.summary())
        busiest = max(load.by_pid.values())
        self.assertLessEqual(busiest, 50, 'a worker served %d requests: %s'
                             % (busiest, dict(load.by_pid)))
        self.assertGreaterEqual(len(load.by_pid), 8, 'workers were not recycled: %s'
                                % dict(load.by_pid))
        self.assertEqual(set(load.by_master), {srv.pid})

    @server.timeout(180)
    def test_max_requests_is_a_hard_limit(self):
        # Keep-alive and one-shot clients at once: no worker answers an
        # 11th request, and no request waits for a respawn and fails.
        srv = self.serve('-w', '2', '--max-requests', '10')
        srv.wait_workers(2)
        load = LoadClients(srv.address, threads=4, requests_per_thread=60, seconds=120,
                           idle_close_retry=False)
        self.addCleanup(load.stop)
        load.start()
        self.assertTrue(load.wait(), 'a client thread did not finish')
        self.assertEqual(load.nfailed, 0, 'requests failed: ' + load.summary())
        self.assertEqual(load.ok, 240, load.summary())
        over = {pid: n for pid, n in load.by_pid.items() if n > 10}
        self.assertEqual(over, {}, 'workers served more than --max-requests 10: %s'
                         % dict(load.by_pid))
        self.assertGreaterEqual(len(load.by_pid), 24, dict(load.by_pid))

    @server.timeout(180)
    def test_max_requests_jitter_bounds_every_worker(self):
        srv = self.serve('-w', '1', '--max-requests', '4', '--max-requests-jitter', '8')
        srv.wait_workers(1)
        order = []
        for i in range(80):
            r = srv.get('/?n=%d' % i, timeout=30)
            self.assertEqual(r.status, 200, r)
            order.append(who(r)[0])
        counts = collections.Counter(order)
        # The last worker may not have reached its limit yet.
        finished = [counts[pid] for pid in dict.fromkeys(order) if pid != order[-1]]
        self.assertGreaterEqual(len(finished), 6, counts)
        for n in finished:
            self.assertTrue(4 <= n <= 12, 'a worker served %d requests, outside 4..12: %s'
                            % (n, finished))
        self.assertGreater(len(set(finished)), 1, 'the jitter had no effect: %s' % finished)


# --------------------------------------------------------------------------
# 6b. retiring workers drain their keep-alive connections

class Retirement(Base):
    @server.timeout(240)
    def test_keepalive_clients_see_no_reset_across_retirements(self):
        # Clients that never retry, each sending back-to-back requests on a
        # kept-alive connection, while workers retire every way they can:
        # HUP (a new generation), TTIN then TTOU, and max_requests.
        srv = self.serve('-w', '2', '--max-requests', '40', '--keep-alive', '5')
        srv.wait_workers(2)
        # Short pauses between requests: a connection is often idle for a
        # moment when its worker is told to stop.
        load = LoadClients(srv.address, threads=6, seconds=150, close_ratio=0.0,
                           idle_close_retry=False, pause=0.02)
        self.addCleanup(load.stop)
        load.start()
        self.assertTrue(server.wait_for(lambda: load.total() > 100, 30), load.summary())
        for step in ('HUP', 'TTIN', 'TTOU', 'HUP', 'TTIN', 'TTOU', 'HUP'):
            before = load.total()
            srv.send_signal(getattr(signal, 'SIG' + step))
            self.assertTrue(server.wait_for(lambda: load.total() > before + 150, 60),
                            'after %s: %s' % (step, load.summary()))
        self.assertTrue(load.stop(), 'a client thread did not finish')
        self.assertEqual(load.nfailed, 0, 'requests failed: ' + load.summary())
        # max_requests retired many workers along the way.
        self.assertGreater(len(load.by_pid), 15, dict(load.by_pid))
        self.assertLessEqual(max(load.by_pid.values()), 40, dict(load.by_pid))


# --------------------------------------------------------------------------
# 6c. new connections spread over every accepting worker

def sequential_masters_and_workers(srv, seconds, stop_when=None):
    """One request per connection, one at a time, at a modest rate; returns
    the (worker pid, master pid) of each response."""
    seen = []
    deadline = time.monotonic() + seconds * server.SLOW
    while time.monotonic() < deadline:
        seen.append(who(srv.get('/', timeout=20)))
        if stop_when and stop_when(seen):
            break
        time.sleep(0.02)
    return seen


class Spread(Base):
    @server.timeout(120)
    def test_sequential_client_reaches_every_worker(self):
        srv = self.serve('-w', '3')
        kids = set(srv.wait_workers(3))
        seen = sequential_masters_and_workers(srv, 20, lambda s: {p for p, _ in s} >= kids)
        self.assertEqual({p for p, _ in seen} & kids, kids,
                         'a sequential client reached only %s of %s'
                         % (collections.Counter(p for p, _ in seen), kids))

    @server.timeout(120)
    def test_both_masters_serve_after_usr2(self):
        srv = self.serve('-w', '2', '-p', '{dir}/master.pid')
        srv.wait_workers(2)
        # Warm the old generation first: its workers registered first.
        sequential_masters_and_workers(srv, 1)
        srv.send_signal(signal.SIGUSR2)
        pidfile2 = srv.path('master.pid.2')
        self.assertTrue(server.wait_for(lambda: read_pid(pidfile2), 20), server.tail(srv.log_text()))
        new_master = read_pid(pidfile2)
        self.addCleanup(lambda: server.pid_alive(new_master) and os.kill(new_master, signal.SIGTERM))
        ok = server.wait_for(lambda: len(server.children(new_master)) == 2, 30)
        self.assertTrue(ok, server.tail(srv.log_text()))
        time.sleep(1)  # both new workers in their loops
        seen = sequential_masters_and_workers(
            srv, 15, lambda s: {m for _, m in s[-40:]} >= {srv.pid, new_master})
        masters = collections.Counter(m for _, m in seen[-40:])
        self.assertEqual(set(masters), {srv.pid, new_master},
                         'after USR2, a sequential client was served by %s' % dict(masters))
        os.kill(new_master, signal.SIGTERM)
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(new_master), 30))


# --------------------------------------------------------------------------
# 7. HUP re-reads the config file

class HupConfig(Base):
    def configured(self, text):
        srv = self.make('-c', '{dir}/conf.py')
        server.write_file(srv.path('conf.py'), text)
        srv.start()
        return srv

    def test_hup_applies_changed_config_file(self):
        srv = self.configured('workers = 2\n')
        old = srv.wait_workers(2)
        # A different size too, so that no cached bytecode can stand in for it.
        server.write_file(srv.path('conf.py'), 'workers = 3  # changed by the test\n')
        srv.send_signal(signal.SIGHUP)
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == 3
                             and not set(old) & set(server.children(srv.pid)), 15)
        self.assertTrue(ok, 'after HUP with workers = 3 in the config file: workers %r '
                        '(before: %r)\n%s' % (server.children(srv.pid), old,
                                              server.tail(srv.log_text())))
        self.assertEqual(self.answer(srv)[1], srv.pid)

    def test_hup_with_broken_config_keeps_old_workers(self):
        srv = self.configured('workers = 2\n')
        old = set(srv.wait_workers(2))
        mark = srv.log_mark()
        server.write_file(srv.path('conf.py'), 'workers = (\n')
        srv.send_signal(signal.SIGHUP)
        why = re.compile(r'(?i)syntax|never closed')

        def error_logged():
            text = server.read_text(srv.error_log)[mark[0]:]
            return 'conf.py' in text and why.search(text)
        ok = server.wait_for(error_logged, 10)
        self.assertTrue(ok, 'the error log does not say the config file is broken:\n%s'
                        % server.tail(srv.log_since(mark)))
        self.assertTrue(stays(lambda: set(server.children(srv.pid)) == old, 2),
                        'workers changed after a failed reload: %r (before %r)\n%s'
                        % (server.children(srv.pid), sorted(old),
                           server.tail(srv.log_since(mark))))
        self.assertIsNone(srv.proc.poll(), 'the master exited on a broken config file')
        pid, master = self.answer(srv)
        self.assertIn(pid, old)
        self.assertEqual(master, srv.pid)


# --------------------------------------------------------------------------
# 7b. HUP when the application can no longer be loaded

GOOD_FACTORY_APP = APP + r'''

def create_app():
    return app
'''

BROKEN_APPS = {
    # name: (module source, app URI, what the error log must show)
    'import_error': ('import no_such_module_anywhere\n' + APP, 'app:app',
                     r'ModuleNotFoundError: No module named .no_such_module_anywhere.'),
    'syntax_error': (APP + '\ndef broken(:\n', 'app:app', r'SyntaxError'),
    'missing_attribute': (APP.replace('def app(', 'def renamed_app('), 'app:app',
                          r"Failed to find attribute 'app' in 'app'"),
    'factory_raises': (GOOD_FACTORY_APP.replace('    return app',
                                                "    raise RuntimeError('factory broke')"),
                       'app:create_app()', r'RuntimeError: factory broke'),
}


class HupBrokenApp(Base):
    """HUP after the app module broke: the new generation is abandoned with
    the reason (and traceback) in the error log, the old one keeps serving
    every request, and a HUP after the module is fixed reloads."""

    def check(self, name):
        source, uri, reason = BROKEN_APPS[name]
        good = GOOD_FACTORY_APP
        srv = self.make('-w', '2', appname=uri, env={'PYTHONDONTWRITEBYTECODE': '1'})
        server.write_file(srv.path('app.py'), good)
        srv.start()
        old = set(srv.wait_workers(2))
        load = LoadClients(srv.address, threads=2, seconds=120)
        self.addCleanup(load.stop)
        load.start()
        self.assertTrue(server.wait_for(lambda: load.total() > 20, 30), load.summary())

        mark = srv.log_mark()
        server.write_file(srv.path('app.py'), source)
        srv.send_signal(signal.SIGHUP)
        ok = server.wait_for(lambda: 'Reload failed' in srv.log_since(mark), 30)
        self.assertTrue(ok, 'no "Reload failed" after HUP with a broken app\n%s'
                        % server.tail(srv.log_since(mark)))
        logged = srv.log_since(mark)
        self.assertRegex(logged, reason)
        if name != 'missing_attribute':
            self.assertIn('Traceback (most recent call last)', logged)
        # The abandoned workers are gone, the old ones serve on.
        self.assertTrue(server.wait_for(lambda: set(server.children(srv.pid)) == old, 30),
                        '%r != %r\n%s' % (server.children(srv.pid), old, server.tail(srv.log_since(mark))))
        self.assertTrue(stays(lambda: srv.proc.poll() is None and set(server.children(srv.pid)) == old, 2),
                        server.tail(srv.log_since(mark)))
        served = load.total()
        self.assertTrue(server.wait_for(lambda: load.total() > served + 20, 30), load.summary())

        # Fixed: the next HUP reloads.
        server.write_file(srv.path('app.py'), good + '\n# fixed\n')
        srv.send_signal(signal.SIGHUP)
        new = self.wait_new_generation(srv, old, 2)
        self.assertTrue(server.wait_for(lambda: load.served_by(new), 30), load.summary())
        self.assertTrue(load.stop(), 'a client thread did not finish')
        self.assertEqual(load.nfailed, 0, 'requests failed across the HUPs: ' + load.summary())
        self.assertEqual(srv.stop(), 0)

    @server.timeout(180)
    def test_import_error(self):
        self.check('import_error')

    @server.timeout(180)
    def test_syntax_error(self):
        self.check('syntax_error')

    @server.timeout(180)
    def test_missing_app_attribute(self):
        self.check('missing_attribute')

    @server.timeout(180)
    def test_app_factory_raises(self):
        self.check('factory_raises')

    @server.timeout(180)
    def test_respawn_after_a_failed_reload_does_not_stop_the_master(self):
        # The module on disk is broken, and an old worker dies: its
        # replacement cannot load the app either. The master keeps the
        # other worker serving and retries, instead of exiting.
        srv = self.make('-w', '2', env={'PYTHONDONTWRITEBYTECODE': '1'})
        srv.start()
        old = srv.wait_workers(2)
        mark = srv.log_mark()
        server.write_file(srv.path('app.py'), BROKEN_APPS['import_error'][0])
        os.kill(old[0], signal.SIGKILL)
        ok = server.wait_for(lambda: 'ModuleNotFoundError' in srv.log_since(mark), 30)
        self.assertTrue(ok, server.tail(srv.log_since(mark)))
        self.assertTrue(stays(lambda: srv.proc.poll() is None, 3), server.tail(srv.log_since(mark)))
        self.assertEqual(self.answer(srv)[0], old[1])
        server.write_file(srv.path('app.py'), APP + '\n# fixed\n')
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == 2, 60)
        self.assertTrue(ok, server.tail(srv.log_since(mark)))
        self.assertEqual(srv.stop(), 0)


# --------------------------------------------------------------------------
# 8. the pidfile guards against a second master

class Pidfile(Base):
    def test_second_master_with_same_pidfile_exits(self):
        first = self.serve('-w', '1', '-p', '{dir}/master.pid')
        pidfile = first.path('master.pid')
        first.wait_workers(1)
        second = Server(APP, ['-w', '1', '-p', pidfile])
        self.addCleanup(second.stop)
        second.spawn()
        self.assertEqual(second.wait_exit(30), 1, 'second master: status %r\n%s'
                         % (second.proc.returncode, server.tail(second.log_text())))
        self.assertIn('Already running on PID %d' % first.pid, second.log_text())
        self.assertEqual(read_pid(pidfile), first.pid, 'the pidfile was changed')
        self.assertEqual(self.answer(first)[1], first.pid)


# --------------------------------------------------------------------------
# 9. WINCH

class Winch(Base):
    def test_winch_ignored_without_daemon(self):
        srv = self.serve('-w', '2')
        kids = set(srv.wait_workers(2))
        srv.send_signal(signal.SIGWINCH)
        self.assertTrue(stays(lambda: set(server.children(srv.pid)) == kids, 2.5),
                        'workers changed after WINCH without -D: %r (before %r)'
                        % (server.children(srv.pid), sorted(kids)))
        self.assertIn(self.answer(srv)[0], kids)

    def test_winch_stops_workers_of_daemon(self):
        tmp = tempfile.mkdtemp(prefix='cunicorn-test-')
        self.addCleanup(shutil.rmtree, tmp, True)
        server.write_file(os.path.join(tmp, 'app.py'), APP)
        pidfile = os.path.join(tmp, 'd.pid')
        errlog = os.path.join(tmp, 'error.log')
        port = server.free_port()
        argv = ([server.binary(), '-D', '-w', '2', '-p', pidfile,
                 '-b', '127.0.0.1:%d' % port, '--error-logfile', errlog, '--chdir', tmp]
                + server.extra_args() + ['app:app'])
        rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=Server().environment(),
                             timeout=60)
        self.assertEqual(rc, 0, 'the -D launcher failed')
        self.assertTrue(server.wait_for(lambda: read_pid(pidfile), 30), 'no pidfile')
        pid = read_pid(pidfile)
        pgid = pgid_of(pid)
        self.assertIsNotNone(pgid)
        # The daemon's group is ours: noted for the runner, killed at the end.
        server._note_registry('start %d %s' % (pgid, server.binary()))
        self.addCleanup(server._note_registry, 'stop %d' % pgid)
        self.addCleanup(server.kill_group, pgid)
        ok = server.wait_for(lambda: len(server.children(pid)) == 2, 30)
        self.assertTrue(ok, 'daemon workers: %r\n%s' % (server.children(pid),
                                                        server.tail(server.read_text(errlog))))
        kids = server.children(pid)
        os.kill(pid, signal.SIGWINCH)
        ok = server.wait_for(lambda: not server.children(pid), 15)
        self.assertTrue(ok, 'WINCH did not stop the daemon\'s workers: %r\n%s'
                        % (server.children(pid), server.tail(server.read_text(errlog))))
        self.assertFalse(any(server.pid_alive(k) for k in kids))
        self.assertTrue(stays(lambda: server.pid_alive(pid) and not server.children(pid), 2),
                        'after WINCH the master must stay, without workers: alive %s, '
                        'workers %r' % (server.pid_alive(pid), server.children(pid)))
        self.assertIn('graceful stop of workers', server.read_text(errlog))
        self.assertIn(pid, server.group_members(pgid))
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(pid), 30),
                        'the daemon did not exit on TERM')
        self.assertFalse(os.path.exists(pidfile))


# --------------------------------------------------------------------------
# 10. heartbeat directory

class Heartbeat(Base):
    def test_worker_tmp_dir_existing(self):
        d = tempfile.mkdtemp(prefix='cunicorn-hb-')
        self.addCleanup(shutil.rmtree, d, True)
        srv = self.serve('-w', '1', '-t', '3', '--worker-tmp-dir', d)
        w = srv.worker_pid()
        # An idle worker keeps beating: still the same one well past the timeout.
        time.sleep(4.5)
        self.assertEqual(self.answer(srv), (w, srv.pid))
        self.assertEqual(server.children(srv.pid), [w])
        self.assertNotIn('WORKER TIMEOUT', srv.error_text())

    def test_worker_tmp_dir_missing(self):
        missing = '/nonexistent-cunicorn-dir/hb'
        srv = self.make('-w', '1', '--worker-tmp-dir', missing)
        srv.spawn()
        status = srv.wait_exit(30)
        self.assertIsNotNone(status, 'the server started with a missing worker_tmp_dir')
        self.assertNotEqual(status, 0)
        self.assertIn('worker_tmp_dir', srv.log_text())

    @server.timeout(120)
    def test_master_survives_a_worker_slot_it_cannot_create(self):
        # The heartbeat directory vanishes under a running master: a new
        # worker cannot get its slot. The master says so, keeps serving with
        # the workers it has, retries, and recovers when the directory is back.
        d = tempfile.mkdtemp(prefix='cunicorn-hb-')
        self.addCleanup(shutil.rmtree, d, True)
        srv = self.serve('-w', '2', '--worker-tmp-dir', d, '-p', '{dir}/master.pid')
        kids = srv.wait_workers(2)
        mark = srv.log_mark()
        os.rmdir(d)
        os.kill(kids[0], signal.SIGKILL)
        ok = server.wait_for(lambda: 'cannot create a heartbeat file' in srv.log_since(mark), 30)
        self.assertTrue(ok, server.tail(srv.log_since(mark)))
        self.assertTrue(stays(lambda: srv.proc.poll() is None, 2), server.tail(srv.log_since(mark)))
        self.assertEqual(self.answer(srv), (kids[1], srv.pid))
        os.mkdir(d)
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == 2, 60)
        self.assertTrue(ok, server.tail(srv.log_since(mark)))
        self.assertEqual(srv.stop(), 0)
        self.assertFalse(os.path.exists(srv.path('master.pid')))

# --------------------------------------------------------------------------
# 11. systemd: socket activation and sd_notify

# Hands the socket (argv[1]) to the binary as fd 3 with LISTEN_FDS=1 and
# LISTEN_PID set to its own pid, which exec keeps: what systemd does.
ACTIVATE = r'''
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
'''


class ActivatedServer(Server):
    """Started with a listening socket the test made, passed as fd 3, no -b."""

    def __init__(self, app, args=(), **kw):
        super().__init__(app, args, bind=None, **kw)

    def spawn(self):
        if self.tmpdir is None:
            self._prepare()
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind(('127.0.0.1', 0))
            lsock.listen(128)
            self.port = lsock.getsockname()[1]
            self.argv = [sys.executable, '-c', ACTIVATE, str(lsock.fileno())] + self.command()
            self._stdout = open(self.path('stdout.txt'), 'wb')
            self._stderr = open(self.path('stderr.txt'), 'wb')
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd or self.tmpdir, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
                start_new_session=True, pass_fds=(lsock.fileno(),))
        finally:
            lsock.close()               # only the server holds it now
        self.returncode = None
        server._live_servers.append(self)
        server._note_registry('start %d %s' % (self.proc.pid, server.binary()))
        return self


class Systemd(Base):
    def test_socket_activation(self):
        srv = ActivatedServer(APP, ['-w', '1'], ready_timeout=15)
        self.addCleanup(srv.stop)
        srv.start()
        ok = server.wait_for(lambda: 'Listening at:' in srv.error_text(), 15)
        self.assertTrue(ok, server.tail(srv.log_text()))
        line = [l for l in srv.error_text().splitlines() if 'Listening at:' in l][0]
        self.assertIn('http://127.0.0.1:%d' % srv.port, line,
                      'the server did not use the LISTEN_FDS socket')
        try:
            r = srv.get('/', timeout=10)
        except OSError as e:
            self.fail('no answer on the socket passed as fd 3 (%r)\n%s'
                      % (e, server.tail(srv.log_text())))
        self.assertEqual(r.status, 200)
        self.assertEqual(who(r)[1], srv.pid)

    def notify_socket(self):
        d = tempfile.mkdtemp(prefix='cunicorn-notify-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'notify.sock')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        self.addCleanup(s.close)
        return s, path

    def receive(self, s, wanted, timeout):
        """Datagrams until one has the line wanted; returns all seen."""
        seen = []
        deadline = time.monotonic() + timeout * server.SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return seen
            s.settimeout(left)
            try:
                msg = s.recv(4096).decode('utf-8', 'replace')
            except socket.timeout:
                return seen
            seen.append(msg)
            if wanted in msg.split('\n'):
                return seen

    def test_sd_notify_ready(self):
        s, path = self.notify_socket()
        srv = Server(APP, ['-w', '1'], env={'NOTIFY_SOCKET': path})
        self.addCleanup(srv.stop)
        srv.start()
        self.assertEqual(self.answer(srv)[1], srv.pid)
        seen = self.receive(s, 'READY=1', 5)
        self.assertTrue(seen and 'READY=1' in seen[-1].split('\n'),
                        'no READY=1 on NOTIFY_SOCKET; got %r' % seen)

    def test_sd_notify_stopping(self):
        s, path = self.notify_socket()
        srv = Server(APP, ['-w', '1'], env={'NOTIFY_SOCKET': path})
        self.addCleanup(srv.stop)
        srv.start()
        self.assertEqual(self.answer(srv)[1], srv.pid)
        self.receive(s, 'READY=1', 5)
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(30), 0)
        # Sent before the master exited, so it is already queued.
        seen = self.receive(s, 'STOPPING=1', 1)
        self.assertTrue(seen and 'STOPPING=1' in seen[-1].split('\n'),
                        'no STOPPING=1 on NOTIFY_SOCKET after TERM; got %r' % seen)


if __name__ == '__main__':
    unittest.main()
