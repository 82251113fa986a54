"""Server hooks from a config file (reference section h; call sites b.2-b.5,
d.1-d.2): one test per hook showing when and how often it fired, and what
the objects it received carry.  Every hook appends a marker line to
hooks.log next to the config file:

    <hook> <pid of the process it ran in> <details...>

so a test reads who called it, how often, and in which order.  Hooks that
raise are logged and never take a process down.

Only the processes a test started are signalled: its master and that
master's workers (children found through /proc).
"""

import os
import signal
import time
import unittest

import server
from server import Server, build_request

APP = r'''
import os, time

HERE = os.path.dirname(os.path.abspath(__file__))


def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/hang':
        open(os.path.join(HERE, 'hanging'), 'w').close()
        while True:
            pass
    if path == '/sleep':
        open(os.path.join(HERE, 'sleeping-%d' % os.getpid()), 'w').close()
        time.sleep(60)
    if path == '/echo':
        body = environ['wsgi.input'].read()
    elif path == '/boom':
        raise RuntimeError('app failure')
    else:
        body = ('%d' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('X-App', 'yes'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''

# Every hook, each writing one marker line.  Attributes a hook stores on the
# objects it gets show whether later hooks receive the same objects.
CONF = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))
LOG = os.path.join(HERE, 'hooks.log')


def mark(*parts):
    with open(LOG, 'a') as f:
        f.write(' '.join(str(p).replace(' ', '_') for p in parts) + '\n')


def on_starting(server):
    mark('on_starting', os.getpid(), server.pid, len(server.WORKERS),
         server.cfg.workers, server.cfg.timeout, type(server.cfg.bind).__name__)


def when_ready(server):
    mark('when_ready', os.getpid(), server.pid, len(server.LISTENERS),
         str(server.LISTENERS[0]), len(server.WORKERS), server.num_workers)


def on_reload(server):
    mark('on_reload', os.getpid(), server.pid)


def pre_fork(server, worker):
    worker.tag = 'born-in-%d' % os.getpid()
    mark('pre_fork', os.getpid(), worker.pid, worker.age, len(server.WORKERS))


def post_fork(server, worker):
    mark('post_fork', os.getpid(), worker.pid, worker.age, worker.ppid,
         getattr(worker, 'tag', None), worker.booted)


def post_worker_init(worker):
    worker.inits = getattr(worker, 'inits', 0) + 1
    mark('post_worker_init', os.getpid(), worker.pid, worker.booted,
         callable(worker.wsgi), worker.cfg.workers, worker.timeout)


def pre_request(worker, req):
    req.seen_by_pre = os.getpid()
    mark('pre_request', os.getpid(), worker.pid, req.method, req.uri, req.path,
         req.query or '-', '%d.%d' % req.version, req.req_number, worker.nr,
         worker.booted, dict(req.headers).get('X-TEST', '-'),
         os.path.exists(os.path.join(HERE, 'continue-sent')))


def post_request(worker, req, environ, resp):
    mark('post_request', os.getpid(), worker.pid, req.method, req.path,
         resp.status_code, resp.status, dict(resp.headers).get('X-App', '-'),
         resp.sent, environ.get('PATH_INFO'), worker.nr,
         getattr(req, 'seen_by_pre', None), getattr(worker, 'inits', 0))


def worker_int(worker):
    mark('worker_int', os.getpid(), worker.pid, worker.alive)


def worker_abort(worker):
    mark('worker_abort', os.getpid(), worker.pid, worker.alive)


def worker_exit(server, worker):
    mark('worker_exit', os.getpid(), worker.pid, getattr(worker, 'tag', None))


def child_exit(server, worker):
    mark('child_exit', os.getpid(), worker.pid, getattr(worker, 'tag', None),
         worker.pid in server.WORKERS)


def nworkers_changed(server, new_value, old_value):
    mark('nworkers_changed', os.getpid(), new_value, old_value)


def on_exit(server):
    mark('on_exit', os.getpid(), server.pid, len(server.WORKERS))


def pre_exec(server):
    mark('pre_exec', os.getpid(), server.pid)
'''


def parse(text):
    """Marker lines as lists of words."""
    return [line.split() for line in text.splitlines() if line.strip()]


class Base(unittest.TestCase):
    def make(self, *args, conf=CONF, **kw):
        """A Server with conf.py in its temp dir ({dir} in args), not started."""
        srv = Server(APP, [], files={'conf.py': conf}, **kw)
        srv._prepare()
        srv.args = ['-c', srv.path('conf.py')] + [a.replace('{dir}', srv.tmpdir) for a in args]
        self.addCleanup(srv.stop)
        return srv

    def serve(self, *args, **kw):
        srv = self.make(*args, **kw)
        srv.start()
        return srv

    def marks(self, srv, hook=None):
        lines = parse(server.read_text(srv.path('hooks.log')))
        return [l for l in lines if hook is None or l[0] == hook]

    def wait_marks(self, srv, hook, n, timeout=20):
        ok = server.wait_for(lambda: len(self.marks(srv, hook)) >= n, timeout)
        got = self.marks(srv, hook)
        self.assertTrue(ok, 'expected %d %s marker(s), got %r\n%s' % (
            n, hook, got, server.tail(srv.log_text())))
        return got

    def stays(self, predicate, seconds=1.0):
        deadline = time.monotonic() + seconds * server.SLOW
        while time.monotonic() < deadline:
            if not predicate():
                return False
            time.sleep(0.1)
        return bool(predicate())

    def term(self, srv):
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(30), 0, server.tail(srv.log_text()))

    def assert_logged(self, srv, name):
        self.assertRegex(srv.error_text(), r'\[ERROR\] Exception in %s hook\nTraceback \(most '
                                           r'recent call last\):\n(.*\n)*RuntimeError: %s broke'
                         % (name, name))

    def booted_worker(self, srv):
        """The single worker's pid, once its signal handlers are in place
        (post_worker_init ran): a signal sent earlier would find the defaults."""
        w = srv.worker_pid()
        ok = server.wait_for(lambda: any(int(l[1]) == w for l in self.marks(srv, 'post_worker_init')), 30)
        self.assertTrue(ok, 'worker %d never ran post_worker_init\n%s' % (w, server.tail(srv.log_text())))
        return w

    def hook_errors(self, srv):
        return [l for l in srv.error_text().splitlines() if 'Exception in' in l and 'hook' in l]


# --------------------------------------------------------------------------
# master

class MasterHooks(Base):
    def test_on_starting_once_in_master_before_workers(self):
        srv = self.serve('-w', '2', '-t', '17')
        srv.wait_workers(2)
        m = self.wait_marks(srv, 'on_starting', 1)
        self.assertEqual(len(m), 1, m)
        _, pid, server_pid, nworkers, cfg_workers, cfg_timeout, bind_type = m[0]
        self.assertEqual(int(pid), srv.pid)
        self.assertEqual(int(server_pid), srv.pid)
        self.assertEqual((nworkers, cfg_workers, cfg_timeout, bind_type), ('0', '2', '17', 'list'))
        first = [l[0] for l in self.marks(srv)]
        self.assertLess(first.index('on_starting'), first.index('pre_fork'), first)
        self.assertLess(first.index('on_starting'), first.index('post_fork'), first)

    def test_when_ready_once_after_bind_before_workers(self):
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        m = self.wait_marks(srv, 'when_ready', 1)
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'when_ready')) == 1))
        _, pid, server_pid, nlisteners, listener, nworkers, num_workers = m[0]
        self.assertEqual((int(pid), int(server_pid)), (srv.pid, srv.pid))
        self.assertEqual((nlisteners, listener, nworkers, num_workers),
                         ('1', 'http://127.0.0.1:%d' % srv.port, '0', '2'))
        order = [l[0] for l in self.marks(srv)]
        self.assertLess(order.index('on_starting'), order.index('when_ready'), order)
        self.assertLess(order.index('when_ready'), order.index('pre_fork'), order)

    def test_pre_fork_in_master_once_per_worker(self):
        srv = self.serve('-w', '3')
        srv.wait_workers(3)
        m = self.wait_marks(srv, 'pre_fork', 3)
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'pre_fork')) == 3))
        self.assertEqual([int(l[1]) for l in m], [srv.pid] * 3)
        self.assertEqual([l[2] for l in m], ['[booting]'] * 3)      # not forked yet
        self.assertEqual(sorted(int(l[3]) for l in m), [1, 2, 3])   # worker.age
        self.assertEqual([l[4] for l in m], ['0', '1', '2'])        # WORKERS so far

    def test_post_fork_in_each_worker_with_the_pre_fork_object(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        m = self.wait_marks(srv, 'post_fork', 2)
        self.assertEqual(sorted(int(l[1]) for l in m), sorted(kids))
        for l in m:
            _, pid, wpid, age, ppid, tag, booted = l
            self.assertEqual(wpid, pid, 'worker.pid is the child pid')
            self.assertEqual(int(ppid), srv.pid)
            self.assertEqual(tag, 'born-in-%d' % srv.pid,
                             'post_fork must get the object pre_fork got: %r' % l)
            self.assertEqual(booted, 'False')
        self.assertEqual(sorted(int(l[3]) for l in m), [1, 2])
        # Before the app loads; the same object goes on to worker_exit.
        self.wait_marks(srv, 'post_worker_init', 2)
        for w in kids:
            order = [l[0] for l in self.marks(srv) if int(l[1]) == w]
            self.assertLess(order.index('post_fork'), order.index('post_worker_init'), order)
        self.term(srv)
        exits = self.marks(srv, 'worker_exit')
        self.assertEqual(sorted(int(l[1]) for l in exits), sorted(kids))
        self.assertEqual([l[3] for l in exits], ['born-in-%d' % srv.pid] * 2, exits)

    def test_nworkers_changed_at_start_and_on_ttin_ttou(self):
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        self.wait_marks(srv, 'nworkers_changed', 1)
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(3)
        self.wait_marks(srv, 'nworkers_changed', 2)
        srv.send_signal(signal.SIGTTOU)
        srv.wait_workers(2)
        m = self.wait_marks(srv, 'nworkers_changed', 3)
        self.assertEqual([l[1:] for l in m], [[str(srv.pid), '2', 'None'],
                                               [str(srv.pid), '3', '2'],
                                               [str(srv.pid), '2', '3']])

    def test_child_exit_in_master_once_per_dead_worker(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        os.kill(kids[0], signal.SIGKILL)
        m = self.wait_marks(srv, 'child_exit', 1)
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'child_exit')) == 1))
        _, pid, wpid, tag, still_listed = m[0]
        self.assertEqual((int(pid), int(wpid)), (srv.pid, kids[0]))
        self.assertEqual(tag, 'born-in-%d' % srv.pid, 'child_exit must get the pre_fork object')
        self.assertEqual(still_listed, 'False', 'the worker is out of WORKERS by then')
        srv.wait_workers(2)

    def test_on_reload_once_per_hup(self):
        srv = self.serve('-w', '1')
        old = srv.wait_workers(1)
        srv.send_signal(signal.SIGHUP)
        m = self.wait_marks(srv, 'on_reload', 1)
        self.assertEqual(int(m[0][1]), srv.pid)
        ok = server.wait_for(lambda: server.children(srv.pid)
                             and not set(old) & set(server.children(srv.pid)), 30)
        self.assertTrue(ok, server.tail(srv.log_text()))
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'on_reload')) == 1))

    def test_on_exit_once_last(self):
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        self.term(srv)
        m = self.marks(srv, 'on_exit')
        self.assertEqual(len(m), 1, self.marks(srv))
        self.assertEqual((int(m[0][1]), int(m[0][2])), (srv.pid, srv.pid))
        self.assertEqual(self.marks(srv)[-1][0], 'on_exit', self.marks(srv))

    def test_pre_exec_in_the_usr2_child(self):
        srv = self.serve('-w', '1', '-p', '{dir}/master.pid')
        srv.wait_workers(1)
        srv.send_signal(signal.SIGUSR2)
        m = self.wait_marks(srv, 'pre_exec', 1)
        _, pid, server_pid = m[0]
        self.assertNotEqual(int(pid), srv.pid, 'pre_exec runs in the forked child')
        self.assertEqual(int(server_pid), srv.pid)
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'pre_exec')) == 1))
        # The new master is in our process group: stop() cleans it up.

    def test_num_workers_assignable_from_a_hook(self):
        srv = self.serve('-w', '1', conf=NUM_WORKERS_CONF)
        srv.wait_workers(3)
        m = self.wait_marks(srv, 'nworkers_changed', 2)
        self.assertEqual([l[2:] for l in m], [['1', 'None'], ['3', '1']])
        self.assertTrue(self.stays(lambda: len(server.children(srv.pid)) == 3))

    @unittest.skipIf(server.is_gunicorn(), 'gunicorn lets most hook exceptions propagate')
    def test_raising_master_hooks_are_logged_and_harmless(self):
        srv = self.serve('-w', '1', conf=RAISING_CONF)
        w = srv.worker_pid()
        self.assertTrue(server.wait_for(lambda: os.path.exists(srv.path('ready')), 10))
        self.assert_logged(srv, 'when_ready')
        os.kill(w, signal.SIGKILL)
        self.assertTrue(server.wait_for(lambda: 'Exception in child_exit hook' in srv.error_text(), 20))
        srv.wait_workers(1)
        self.assertIsNone(srv.proc.poll(), 'the master survived')
        self.assertEqual(srv.get('/').status, 200)


# --------------------------------------------------------------------------
# worker

class WorkerHooks(Base):
    def test_post_worker_init_once_per_worker_after_app_load(self):
        srv = self.serve('-w', '2', '-t', '20')
        kids = srv.wait_workers(2)
        m = self.wait_marks(srv, 'post_worker_init', 2)
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'post_worker_init')) == 2))
        self.assertEqual(sorted(int(l[1]) for l in m), sorted(kids))
        for _, pid, wpid, booted, has_wsgi, cfg_workers, timeout in m:
            self.assertEqual(wpid, pid)
            self.assertEqual(booted, 'False', 'booted becomes True after the hook')
            self.assertEqual(has_wsgi, 'True', 'the app is loaded before the hook')
            self.assertEqual(cfg_workers, '2')
            self.assertEqual(float(timeout), 10.0)

    def test_pre_and_post_request_once_per_request(self):
        srv = self.serve('-w', '1')
        wpid = srv.worker_pid()
        for i in range(3):
            r = srv.request('GET', '/x/%d?q=%d' % (i, i), headers=[('X-Test', 'v%d' % i)])
            self.assertEqual(r.status, 200)
        pre = self.wait_marks(srv, 'pre_request', 3)
        post = self.wait_marks(srv, 'post_request', 3)
        self.assertTrue(self.stays(lambda: len(self.marks(srv, 'post_request')) == 3))
        self.assertEqual(len(pre), 3)
        for i, l in enumerate(pre):
            (_, pid, worker_pid, method, uri, path, query, version, req_number,
             nr, booted, x_test, _continue) = l
            self.assertEqual((int(pid), int(worker_pid)), (wpid, wpid))
            self.assertEqual((method, uri, path, query, version),
                             ('GET', '/x/%d?q=%d' % (i, i), '/x/%d' % i, 'q=%d' % i, '1.1'))
            self.assertEqual(nr, str(i), 'worker.nr counts requests before this one')
            self.assertEqual(booted, 'True')
            self.assertEqual(x_test, 'v%d' % i, 'req.headers names are upper case')
        for i, l in enumerate(post):
            (_, pid, worker_pid, method, path, code, status, x_app, sent, path_info,
             nr, seen_by_pre, inits) = l
            self.assertEqual((int(pid), method, path, code, status, x_app),
                             (wpid, 'GET', '/x/%d' % i, '200', '200_OK', 'yes'))
            self.assertEqual(int(sent), len(str(wpid)))
            self.assertEqual(path_info, '/x/%d' % i, 'environ is the request environ')
            self.assertEqual(nr, str(i + 1))
            self.assertEqual(seen_by_pre, str(wpid), 'post_request gets the req pre_request got')
            self.assertEqual(inits, '1', 'the worker object is the post_worker_init one')
        order = [l[0] for l in self.marks(srv) if l[0] in ('pre_request', 'post_request')]
        self.assertEqual(order, ['pre_request', 'post_request'] * 3)

    def test_post_request_after_an_app_error(self):
        srv = self.serve('-w', '1')
        r = srv.get('/boom')
        self.assertEqual(r.status, 500)
        m = self.wait_marks(srv, 'post_request', 1)
        self.assertEqual((m[0][4], m[0][5]), ('/boom', '500'))
        self.assertEqual(self.hook_errors(srv), [])

    @unittest.skipIf(server.is_gunicorn() and not server.is_threaded(),
                     "gunicorn's sync worker has no keep-alive")
    def test_req_number_counts_requests_on_a_connection(self):
        srv = self.serve('-w', '1')
        conn = srv.connect()
        try:
            for i in range(3):
                conn.send(build_request('GET', '/k%d' % i))
                self.assertEqual(conn.read_response().status, 200)
        finally:
            conn.close()
        m = self.wait_marks(srv, 'pre_request', 3)
        self.assertEqual([l[8] for l in m], ['1', '2', '3'])

    def test_pre_request_before_100_continue(self):
        srv = self.serve('-w', '1')
        conn = srv.connect()
        try:
            conn.send(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
                      b'Expect: 100-continue\r\nConnection: close\r\n\r\n')
            interim = conn.read_response(interim=True)
            self.assertEqual(interim.status, 100)
            # The hook ran before the interim response went out.
            self.assertEqual(len(self.marks(srv, 'pre_request')), 1)
            server.write_file(srv.path('continue-sent'), '')
            conn.send(b'hello')
            r = conn.read_response()
            self.assertEqual((r.status, r.body), (200, b'hello'))
        finally:
            conn.close()
        m = self.wait_marks(srv, 'post_request', 1)
        self.assertEqual(len(self.marks(srv, 'pre_request')), 1)
        self.assertEqual(self.marks(srv, 'pre_request')[0][-1], 'False')
        self.assertEqual(m[0][4], '/echo')

    def test_worker_int_on_sigint_and_sigquit(self):
        srv = self.serve('-w', '1')
        for sig in (signal.SIGINT, signal.SIGQUIT):
            w = self.booted_worker(srv)
            os.kill(w, sig)
            ok = server.wait_for(lambda: any(int(l[1]) == w for l in self.marks(srv, 'worker_int')), 20)
            self.assertTrue(ok, '%s: no worker_int from %d\n%s' % (sig.name, w, server.tail(srv.log_text())))
            ok = server.wait_for(lambda: server.children(srv.pid)
                                 and w not in server.children(srv.pid), 30)
            self.assertTrue(ok, 'worker %d did not exit on %s' % (w, sig.name))
            m = [l for l in self.marks(srv, 'worker_int') if int(l[1]) == w]
            self.assertEqual(len(m), 1, m)
            self.assertEqual((m[0][2], m[0][3]), (str(w), 'False'), 'alive is False in the hook')
            order = [l[0] for l in self.marks(srv) if int(l[1]) == w]
            self.assertLess(order.index('worker_int'), order.index('worker_exit'), order)

    @server.timeout(120)
    def test_worker_int_in_a_busy_and_an_idle_worker(self):
        # The busy worker is the one whose worker_int matters (it dumps the
        # stack of whatever is stuck): it runs inside the application call,
        # and the quick stop stays quick.
        for sig in (signal.SIGINT, signal.SIGQUIT):
            srv = self.serve('-w', '2')
            kids = srv.wait_workers(2)
            ok = server.wait_for(lambda: len(self.marks(srv, 'post_worker_init')) == 2, 30)
            self.assertTrue(ok, server.tail(srv.log_text()))
            conn = srv.connect(90)
            self.addCleanup(conn.close)
            conn.send(build_request('GET', '/sleep', close=True))
            ok = server.wait_for(lambda: any(n.startswith('sleeping-') for n in os.listdir(srv.tmpdir)), 30)
            self.assertTrue(ok, server.tail(srv.log_text()))
            busy = int([n for n in os.listdir(srv.tmpdir) if n.startswith('sleeping-')][0].split('-')[1])
            self.assertIn(busy, kids)
            started = time.monotonic()
            srv.send_signal(sig)
            self.assertEqual(srv.wait_exit(30), 0, server.tail(srv.log_text()))
            took = time.monotonic() - started
            # The app would sleep 60 s: a stop that waited for it is a failure.
            self.assertLess(took, 20 * server.SLOW, '%s stop took %.1f s' % (sig.name, took))
            ints = sorted(int(l[1]) for l in self.marks(srv, 'worker_int'))
            self.assertEqual(ints, sorted(kids), '%s: worker_int ran in %r, workers %r (busy %d)\n%s'
                             % (sig.name, ints, kids, busy, server.tail(srv.log_text())))
            for l in self.marks(srv, 'worker_int'):
                self.assertEqual((l[2], l[3]), (l[1], 'False'))
            exits = sorted(int(l[1]) for l in self.marks(srv, 'worker_exit'))
            self.assertEqual(exits, sorted(kids), self.marks(srv))
            order = [l[0] for l in self.marks(srv) if int(l[1]) == busy]
            self.assertLess(order.index('worker_int'), order.index('worker_exit'), order)
            srv.stop()

    @server.timeout(120)
    @unittest.skipIf(server.is_threaded() and not server.is_gunicorn(),
                     'gthread: the loop keeps beating while a thread is stuck; request_timeout '
                     'reports it instead (test_gthread)')
    def test_worker_abort_runs_in_a_stuck_worker(self):
        srv = self.serve('-w', '1', '-t', '2')
        w = srv.worker_pid()
        conn = srv.connect(60)
        self.addCleanup(conn.close)
        conn.send(build_request('GET', '/hang', close=True))
        self.assertTrue(server.wait_for(lambda: os.path.exists(srv.path('hanging')), 30))
        m = self.wait_marks(srv, 'worker_abort', 1, timeout=40)
        self.assertEqual((int(m[0][1]), m[0][2], m[0][3]), (w, str(w), 'False'))
        ok = server.wait_for(lambda: server.children(srv.pid)
                             and w not in server.children(srv.pid), 30)
        self.assertTrue(ok, server.tail(srv.log_text()))
        self.assertEqual(len(self.marks(srv, 'worker_abort')), 1)
        exits = [l for l in self.marks(srv, 'worker_exit') if int(l[1]) == w]
        self.assertEqual(len(exits), 1, self.marks(srv))
        self.assertIn('Worker (pid:%d) exited with code 1' % w, srv.error_text())

    def test_worker_abort_on_sigabrt_between_requests(self):
        srv = self.serve('-w', '1')
        w = self.booted_worker(srv)
        os.kill(w, signal.SIGABRT)
        m = self.wait_marks(srv, 'worker_abort', 1)
        self.assertEqual(int(m[0][1]), w)
        ok = server.wait_for(lambda: server.children(srv.pid)
                             and w not in server.children(srv.pid), 30)
        self.assertTrue(ok, server.tail(srv.log_text()))
        self.assertEqual(len(self.marks(srv, 'worker_abort')), 1)

    def test_worker_exit_once_per_worker_on_shutdown(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        srv.get('/')
        self.term(srv)
        m = self.marks(srv, 'worker_exit')
        self.assertEqual(sorted(int(l[1]) for l in m), sorted(kids), self.marks(srv))
        for l in m:
            self.assertEqual(l[2], l[1], 'worker.pid is the exiting worker')

    def test_worker_exit_after_max_requests(self):
        srv = self.serve('-w', '1', '--max-requests', '2')
        w = srv.worker_pid()
        # The replacement boots a request before the limit and may take
        # the next requests: send until the first worker has had its two.
        def exited():
            return any(int(l[1]) == w for l in self.marks(srv, 'worker_exit'))
        for _ in range(20):
            srv.get('/')
            if server.wait_for(exited, 1):
                break
        ok = server.wait_for(exited, 20)
        self.assertTrue(ok, self.marks(srv))
        # The master reaps it. (How many workers remain depends on which
        # took the requests: a replacement that has served one already has
        # its own replacement booted, as max_requests is 2.)
        self.assertTrue(server.wait_for(lambda: w not in server.children(srv.pid), 30),
                        server.children(srv.pid))


# --------------------------------------------------------------------------
# the objects and the error handling

OBJECTS_CONF = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))
LOG = os.path.join(HERE, 'hooks.log')


def mark(*parts):
    with open(LOG, 'a') as f:
        f.write(' '.join(str(p).replace(' ', '_') for p in parts) + '\n')


def post_worker_init(worker):
    cfg = worker.cfg
    try:
        cfg.workers = 5
        writable = True
    except AttributeError:
        writable = False
    try:
        cfg.no_such_setting
        missing = 'no-error'
    except AttributeError:
        missing = 'AttributeError'
    mark('cfg', cfg.workers, '|'.join(cfg.bind), cfg.proc_name,
         cfg.settings['timeout'].value, cfg.keepalive, cfg.preload_app,
         cfg.accesslog, writable, missing, callable(cfg.post_request))
    worker.log.info('hook says %s and %d', 'hello', 42)
    worker.log.warning('by name: %(x)s', {'x': 'mapped'})
    worker.log.log('error', 'level given as a name')
    worker.log.debug('not shown at the default level')
    worker.log.reopen_files()
    worker.log.access(None, None, {}, 0)
    try:
        raise ValueError('logged on purpose')
    except ValueError:
        worker.log.exception('caught in hook')
    worker.tmp.notify()
    mark('worker', worker.age, worker.ppid == os.getppid(), worker.alive,
         worker.max_requests, worker.nr, worker.aborted)


def pre_request(worker, req):
    mark('req', req.method, req.version, dict(req.headers).get('X-MIXED-CASE'),
         req.scheme, type(req.peer_addr).__name__, req.peer_addr[0],
         req.remote_addr == req.peer_addr, req.trailers, req.body, req.fragment or '-',
         req.should_close())


def post_request(worker, req, environ, resp):
    mark('resp', resp.status_code, resp.headers_sent, resp.chunked,
         resp.response_length, resp.sent, environ['REQUEST_METHOD'])
    if req.path == '/last':
        worker.alive = False
'''


NUM_WORKERS_CONF = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def when_ready(server):
    server.num_workers = 3


def nworkers_changed(server, new_value, old_value):
    with open(os.path.join(HERE, 'hooks.log'), 'a') as f:
        f.write('nworkers_changed %d %s %s\n' % (os.getpid(), new_value, old_value))
'''


RAISING_CONF = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def count(name):
    with open(os.path.join(HERE, name), 'a') as f:
        f.write('x\n')


def when_ready(server):
    count('ready')
    raise RuntimeError('when_ready broke')


def post_worker_init(worker):
    raise RuntimeError('post_worker_init broke')


def pre_request(worker, req):
    count('pre')
    raise RuntimeError('pre_request broke')


def post_request(worker, req, environ, resp):
    count('post')
    raise RuntimeError('post_request broke')


def child_exit(server, worker):
    raise RuntimeError('child_exit broke')
'''


class HookObjects(Base):
    def test_cfg_log_and_worker_objects(self):
        srv = self.serve('-w', '1', '--keep-alive', '7', conf=OBJECTS_CONF)
        cfg = self.wait_marks(srv, 'cfg', 1)[0]
        self.assertEqual(cfg[1:], ['1', '127.0.0.1:%d' % srv.port, 'app:app', '30', '7', 'False', 'None',
                                   'False', 'AttributeError', 'True'])
        w = self.wait_marks(srv, 'worker', 1)[0]
        self.assertEqual(w[1:], ['1', 'True', 'True', str(2 ** 63 - 1), '0', 'False'])
        log = srv.error_text()
        self.assertRegex(log, r'\[INFO\] hook says hello and 42')
        self.assertRegex(log, r'\[WARNING\] by name: mapped')
        self.assertRegex(log, r'\[ERROR\] level given as a name')
        self.assertNotIn('not shown', log)
        self.assertRegex(log, r'\[ERROR\] caught in hook\nTraceback \(most recent call last\):\n'
                              r'(.*\n)*ValueError: logged on purpose')

    def test_req_and_resp_objects(self):
        srv = self.serve('-w', '1', conf=OBJECTS_CONF)
        r = srv.request('GET', '/a?b=c', headers=[('X-Mixed-Case', 'yes')])
        self.assertEqual(r.status, 200)
        req = self.wait_marks(srv, 'req', 1)[0]
        self.assertEqual(req[1:], ['GET', '(1,_1)', 'yes', 'http', 'tuple', '127.0.0.1',
                                   'True', '[]', 'None', '-', 'True'])
        resp = self.wait_marks(srv, 'resp', 1)[0]
        self.assertEqual(resp[1:], ['200', 'True', 'False', str(len(r.body)), str(len(r.body)), 'GET'])

    def test_req_should_close_is_the_servers_decision(self):
        # A "close" option anywhere in Connection closes the connection
        # (RFC 9112 9.6), and req.should_close() says the same; keep-alive
        # and HTTP/1.0 as gunicorn's Message.should_close().
        srv = self.serve('-w', '1', conf=OBJECTS_CONF)
        cases = [([('Connection', 'te, close')], 'HTTP/1.1', 'True'),
                 ([('Connection', 'keep-alive')], 'HTTP/1.1', 'False'),
                 ([], 'HTTP/1.1', 'False'),
                 ([], 'HTTP/1.0', 'True'),
                 ([('Connection', 'keep-alive'), ('Connection', 'close')], 'HTTP/1.1', 'True')]
        for n, (headers, version, _) in enumerate(cases, 1):
            r = srv.request('GET', '/', headers=headers, version=version, close=False)
            self.assertEqual(r.status, 200)
            self.wait_marks(srv, 'req', n)
        got = [m[-1] for m in self.marks(srv, 'req')]
        self.assertEqual(got, [want for _, _, want in cases])

    def test_worker_alive_false_from_a_hook_recycles_the_worker(self):
        srv = self.serve('-w', '1', conf=OBJECTS_CONF)
        w = srv.worker_pid()
        self.assertEqual(srv.get('/last').status, 200)
        ok = server.wait_for(lambda: server.children(srv.pid)
                             and w not in server.children(srv.pid), 30)
        self.assertTrue(ok, 'worker.alive = False did not retire the worker')
        self.assertNotIn('exited with code', srv.error_text())

    @unittest.skipIf(server.is_gunicorn(), 'gunicorn lets most hook exceptions propagate')
    def test_raising_worker_hooks_are_logged_and_harmless(self):
        srv = self.serve('-w', '1', conf=RAISING_CONF)
        w = srv.worker_pid()
        for _ in range(3):
            self.assertEqual(srv.get('/').status, 200)
        self.assertTrue(server.wait_for(
            lambda: server.read_text(srv.path('post')).count('x') == 3, 10))
        self.assertEqual(server.read_text(srv.path('pre')).count('x'), 3)
        self.assertEqual(srv.worker_pid(), w, 'the worker survived')
        for name in ('post_worker_init', 'pre_request', 'post_request'):
            self.assert_logged(srv, name)
        self.assertEqual(srv.error_text().count('Exception in pre_request hook'), 3)


# --------------------------------------------------------------------------
# hooks of a config file changed before a HUP

# Each version of the file marks which version ran the hook; BOOT is a
# statement run by post_fork (the new generation can be made to fail).
VERSIONED_CONF = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))
LOG = os.path.join(HERE, 'hooks.log')
VERSION = '%(version)s'


def mark(*parts):
    with open(LOG, 'a') as f:
        f.write(' '.join(str(p) for p in parts) + '\n')


def on_reload(server):
    mark('on_reload', VERSION)


def post_fork(server, worker):
    mark('post_fork', VERSION, os.getpid())
    %(boot)s


def child_exit(server, worker):
    mark('child_exit', VERSION, worker.pid)
'''


def versioned_conf(version, boot='pass'):
    return VERSIONED_CONF % {'version': version, 'boot': boot}


class ReloadedHooks(Base):
    """A HUP brings the new file's hooks: the new workers and the calls
    about them (on_reload, post_fork) use them; the master's other calls
    switch once the new generation has booted, or never if it fails."""

    def version_of(self, srv, hook, pid):
        """The version of the file whose `hook` ran for worker pid (waits for it)."""
        def versions():
            return [l[1] for l in self.marks(srv, hook) if int(l[2]) == pid]
        self.assertTrue(server.wait_for(versions, 20), 'no %s mark for %d: %r\n%s' % (
            hook, pid, self.marks(srv), server.tail(srv.log_text())))
        return versions()[0]

    def test_confirmed_reload_switches_every_hook(self):
        srv = self.serve('-w', '1', conf=versioned_conf('v1'))
        old = srv.worker_pid()
        server.write_file(srv.path('conf.py'), versioned_conf('v2'))
        srv.send_signal(signal.SIGHUP)
        ok = server.wait_for(lambda: server.children(srv.pid) and old not in server.children(srv.pid), 30)
        self.assertTrue(ok, server.tail(srv.log_text()))
        new = srv.worker_pid()
        self.assertEqual(self.wait_marks(srv, 'on_reload', 1)[0][1], 'v2')
        self.assertEqual(self.version_of(srv, 'post_fork', new), 'v2')
        self.assertEqual(self.version_of(srv, 'child_exit', old), 'v2', 'retired after the switch')
        os.kill(new, signal.SIGKILL)
        self.assertEqual(self.version_of(srv, 'child_exit', new), 'v2')

    @unittest.skipIf(server.is_gunicorn(), 'gunicorn has no failed reload: it tears the old generation down first')
    def test_failed_reload_keeps_the_running_hooks(self):
        srv = self.serve('-w', '1', conf=versioned_conf('v1'))
        old = srv.worker_pid()
        # The new generation dies in post_fork, before it boots.
        server.write_file(srv.path('conf.py'), versioned_conf('v2', boot='os._exit(1)'))
        srv.send_signal(signal.SIGHUP)
        ok = server.wait_for(lambda: 'Reload failed: keeping the old workers' in srv.error_text(), 60)
        self.assertTrue(ok, server.tail(srv.log_text()))
        self.assertEqual(self.wait_marks(srv, 'on_reload', 1)[0][1], 'v2', "on_reload is the new file's")
        self.assertEqual(srv.worker_pid(), old)
        os.kill(old, signal.SIGKILL)
        self.assertEqual(self.version_of(srv, 'child_exit', old), 'v1')
        respawned = srv.worker_pid()
        self.assertNotEqual(respawned, old)
        self.assertEqual(self.version_of(srv, 'post_fork', respawned), 'v1')
        self.assertEqual(srv.get('/').status, 200)


if __name__ == '__main__':
    unittest.main()
