"""The development reloader (--reload, --reload-engine, --reload-extra-file;
reference a.2 and i.6): a worker whose imported module or extra file
changes logs "Worker reloading: FILE modified", calls worker_int and
exits 0; the master starts a fresh one that imports the new code. Clients
requesting all along see no failure."""

import os
import threading
import time
import unittest

import server
from server import Server

APP = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = 'version one'
try:
    with open(os.path.join(HERE, 'conf', 'sub', 'extra.txt')) as f:
        EXTRA = f.read().strip()
except OSError:
    EXTRA = '-'


def app(environ, start_response):
    body = ('%s|%s|%d' % (VERSION, EXTRA, os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''

CONFIG = r'''
import os

def worker_int(worker):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'marks'), 'a') as f:
        f.write('worker_int %d\n' % worker.pid)
'''

DEADLINE = 20


class Client(threading.Thread):
    """Requests / in a loop on fresh connections, counting failures."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.last = b''
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            try:
                resp = self.srv.get('/', timeout=15)
                if resp.status != 200:
                    self.failures.append('status %r' % resp.status)
                else:
                    with self.lock:
                        self.ok += 1
                        self.last = resp.body
            except Exception as e:  # noqa: BLE001 - any failure counts
                self.failures.append(repr(e))
            time.sleep(0.01)

    def body(self):
        with self.lock:
            return self.last


@unittest.skipIf(server.is_gunicorn(), 'cunicorn-specific reloader checks (gunicorn exits at once)')
class Reload(unittest.TestCase):
    def serve(self, *args, **kw):
        srv = Server(APP, list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def client(self, srv):
        c = Client(srv)
        c.start()

        def finish():
            c.stop.set()
            c.join(30)
        self.addCleanup(finish)
        self.assertTrue(server.wait_for(lambda: c.ok > 0, 20), c.failures)
        return c

    def edit_and_wait(self, srv, c, path, old, new, want):
        text = server.read_text(path)
        self.assertIn(old, text)
        time.sleep(0.05)
        t0 = time.monotonic()
        server.write_file(path, text.replace(old, new))
        ok = server.wait_for(lambda: want in c.body(), DEADLINE, 0.01)
        elapsed = time.monotonic() - t0
        self.assertTrue(ok, 'no new response after %ss: %r\n%s' % (DEADLINE, c.body(), srv.describe()))
        # Keep requesting a little after the switch, then count.
        time.sleep(0.5)
        c.stop.set()
        c.join(30)
        self.assertEqual(c.failures, [], srv.describe())
        print('\n[reload] %s: %.3f s, %d requests ok, 0 failed'
              % (self.id().rsplit('.', 1)[-1], elapsed, c.ok), flush=True)
        return elapsed

    def check_module_edit(self, *args):
        srv = self.serve('--reload', '-c', 'reload.conf.py', *args, files={'reload.conf.py': CONFIG})
        srv.wait_workers(1)
        c = self.client(srv)
        self.assertIn(b'version one|-|', c.body())
        old_pid = int(c.body().rsplit(b'|', 1)[1])
        self.edit_and_wait(srv, c, srv.path('app.py'), "'version one'", "'the second version'",
                           b'the second version')
        self.assertNotEqual(int(c.body().rsplit(b'|', 1)[1]), old_pid)
        log = srv.error_text() if hasattr(srv, 'error_text') else server.read_text(srv.error_log)
        self.assertIn('Worker reloading: %s modified' % srv.path('app.py'), log)
        marks = server.read_text(srv.path('marks'))
        self.assertIn('worker_int %d' % old_pid, marks)
        self.assertTrue(srv.proc.poll() is None, 'the master must keep running')

    def test_module_edit_inotify(self):
        self.check_module_edit()

    def test_module_edit_poll(self):
        self.check_module_edit('--reload-engine', 'poll')

    def test_extra_file_glob(self):
        srv = self.serve('--reload', '--reload-extra-file', 'conf/**/*.txt',
                         '--reload-extra-file', 'nothing/*.none',
                         files={'conf/sub/extra.txt': 'first\n'})
        srv.wait_workers(1)
        c = self.client(srv)
        self.assertIn(b'|first|', c.body())
        self.edit_and_wait(srv, c, srv.path('conf', 'sub', 'extra.txt'), 'first', 'second one',
                           b'|second one|')
        log = server.read_text(srv.error_log)
        self.assertIn('Worker reloading: %s modified' % srv.path('conf', 'sub', 'extra.txt'), log)
        self.assertIn('nothing/*.none', log)

    def test_extra_file_glob_poll(self):
        srv = self.serve('--reload', '--reload-engine', 'poll', '--reload-extra-file', 'conf/*/*.txt',
                         files={'conf/sub/extra.txt': 'first\n'})
        srv.wait_workers(1)
        c = self.client(srv)
        self.edit_and_wait(srv, c, srv.path('conf', 'sub', 'extra.txt'), 'first', 'second one',
                           b'|second one|')

    def test_syntax_error_serves_traceback_until_fixed(self):
        broken = APP.replace("VERSION = 'version one'", "VERSION = 'broken' +")
        srv = Server(broken, ['--reload'])
        srv.start()
        self.addCleanup(srv.stop)
        resp = srv.get('/')
        self.assertEqual(resp.status, 500, srv.describe())
        self.assertEqual(resp.header('Content-Type'), 'text/plain')
        self.assertIn(b'SyntaxError', resp.body)
        self.assertIn(b'app.py', resp.body)
        self.assertIn('SyntaxError', server.read_text(srv.error_log))
        # The broken file is watched though no module was imported from it.
        old = srv.worker_pid()
        server.write_file(srv.path('app.py'), APP)
        ok = server.wait_for(lambda: srv.get('/').status == 200, DEADLINE, 0.05)
        self.assertTrue(ok, srv.describe())
        # The old worker goes once its replacement has booted.
        ok = server.wait_for(lambda: old not in server.children(srv.pid), DEADLINE)
        self.assertTrue(ok, server.tail(srv.log_text()))
        self.assertIn(b'version one', srv.get('/').body)

    def test_import_error_keeps_the_old_workers_until_fixed(self):
        # A replacement is started first; one that cannot import the app is
        # abandoned and the old workers serve on, without a failed request.
        srv = self.serve('--reload', '-w', '2', env={'PYTHONDONTWRITEBYTECODE': '1'})
        old = set(srv.wait_workers(2))
        c = self.client(srv)
        mark = srv.log_mark()
        server.write_file(srv.path('app.py'), 'import no_such_module_anywhere\n' + APP)
        ok = server.wait_for(lambda: 'no_such_module_anywhere' in srv.log_since(mark), DEADLINE)
        self.assertTrue(ok, server.tail(srv.log_since(mark)))
        time.sleep(1)
        self.assertEqual(set(server.children(srv.pid)) & old, old, server.tail(srv.log_since(mark)))
        self.assertIn(b'version one', c.body())
        self.assertIsNone(srv.proc.poll(), 'the master must keep running')
        self.edit_and_wait(srv, c, srv.path('app.py'),
                           "import no_such_module_anywhere\n", "# fixed\n", b'version one')
        server.write_file(srv.path('app.py'), APP.replace("'version one'", "'the fixed version'"))
        ok = server.wait_for(lambda: b'the fixed version' in srv.get('/').body, DEADLINE)
        self.assertTrue(ok, server.tail(srv.log_since(mark)))
        self.assertTrue(server.wait_for(lambda: not old & set(server.children(srv.pid)), DEADLINE))

    def test_with_preload_restarts_the_worker_but_serves_the_preloaded_code(self):
        # As gunicorn, which says so only in its documentation ("The
        # reloader is incompatible with application preloading"): the
        # worker still restarts on a change, but it is forked from the
        # master, which imported the app once, before the change.
        srv = self.serve('--reload', '--preload')
        old = srv.worker_pid()
        self.assertTrue(srv.get('/').body.startswith(b'version one|-|'))
        server.write_file(srv.path('app.py'), APP.replace("'version one'", "'version two'"))
        ok = server.wait_for(lambda: server.children(srv.pid) and old not in server.children(srv.pid), DEADLINE)
        self.assertTrue(ok, server.tail(srv.log_text()))
        new = srv.worker_pid()
        self.assertIn('Worker reloading: %s modified' % srv.path('app.py'), server.read_text(srv.error_log))
        body = srv.get('/').body
        self.assertTrue(body.startswith(b'version one|-|'), body)
        self.assertEqual(int(body.rsplit(b'|', 1)[1]), new)
        # The new worker takes the file as it is now: no restart loop.
        time.sleep(2 * server.SLOW)
        self.assertEqual(server.children(srv.pid), [new])


if __name__ == '__main__':
    unittest.main()
