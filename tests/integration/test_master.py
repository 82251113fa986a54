"""The master process: workers, signals, shutdown, unix sockets
(reference section b). Only the master this test started and its children
are signalled."""

import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
import unittest

import server
from server import Server, build_request

APP = r'''
import os, time

HERE = os.path.dirname(os.path.abspath(__file__))


def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/sleep':
        seconds = float(environ['QUERY_STRING'] or '2')
        open(os.path.join(HERE, 'started'), 'w').close()
        time.sleep(seconds)
        body = b'slept'
    elif path == '/pid':
        body = str(os.getpid()).encode()
    else:
        body = b'ok'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


class Base(unittest.TestCase):
    def serve(self, *args, **kw):
        srv = Server(APP, list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def background_request(self, srv, path, result):
        def run():
            try:
                conn = srv.connect(timeout=120)
                try:
                    conn.send(build_request('GET', path, close=True))
                    result['response'] = conn.read_response()
                finally:
                    conn.close()
            except Exception as e:
                result['error'] = e
        t = threading.Thread(target=run)
        t.start()
        self.addCleanup(t.join, 130)
        return t

    def wait_started(self, srv):
        ok = server.wait_for(lambda: os.path.exists(srv.path('started')), 30)
        self.assertTrue(ok, 'the request did not reach the app')


class Workers(Base):
    def test_three_workers(self):
        srv = self.serve('-w', '3')
        kids = srv.wait_workers(3)
        self.assertEqual(len(set(kids)), 3)
        self.assertEqual(srv.get('/').body, b'ok')

    def test_killed_worker_is_replaced(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        os.kill(kids[0], signal.SIGKILL)
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == 2
                             and kids[0] not in server.children(srv.pid), 30)
        self.assertTrue(ok, 'worker not replaced: %r' % server.children(srv.pid))
        self.assertEqual(srv.get('/').body, b'ok')
        self.assertIsNone(srv.proc.poll(), 'the master exited')

    def test_ttin_ttou(self):
        srv = self.serve('-w', '1')
        srv.wait_workers(1)
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(2)
        srv.send_signal(signal.SIGTTOU)
        srv.wait_workers(1)
        self.assertEqual(srv.get('/').body, b'ok')

    def test_hup_replaces_workers(self):
        srv = self.serve('-w', '2')
        old = set(srv.wait_workers(2))
        srv.send_signal(signal.SIGHUP)
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == 2
                             and not old & set(server.children(srv.pid)), 60)
        self.assertTrue(ok, 'workers after HUP: %r (old %r)' % (server.children(srv.pid), old))
        self.assertEqual(srv.get('/').body, b'ok')

    def test_workers_exit_when_master_is_killed(self):
        # -t 10: Gunicorn's sync worker looks for a new parent every timeout/2.
        srv = self.serve('-w', '2', '-t', '10')
        kids = srv.wait_workers(2)
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait()
        ok = server.wait_for(lambda: not any(server.pid_alive(k) for k in kids), 60)
        self.assertTrue(ok, 'workers outlived their master')


class Shutdown(Base):
    @server.timeout(180)
    def test_term_lets_request_finish(self):
        srv = self.serve('-w', '1', '--graceful-timeout', '60', '-t', '120')
        result = {}
        t = self.background_request(srv, '/sleep?2', result)
        self.wait_started(srv)
        srv.send_signal(signal.SIGTERM)
        t.join(60)
        self.assertNotIn('error', result)
        r = result.get('response')
        self.assertIsNotNone(r, 'the in-flight request got no response')
        self.assertEqual((r.status, r.body), (200, b'slept'))
        self.assertEqual(srv.wait_exit(60), 0)

    def test_term_exit_status_0(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(30), 0)
        self.assertTrue(server.wait_for(lambda: not any(server.pid_alive(k) for k in kids), 10))

    def quick(self, sig):
        srv = self.serve('-w', '1', '--graceful-timeout', '60', '-t', '120')
        result = {}
        t = self.background_request(srv, '/sleep?60', result)
        self.wait_started(srv)
        srv.send_signal(sig)
        # Far less than the 60 s the request (and the graceful timeout) would take.
        status = srv.wait_exit(20)
        self.assertIsNotNone(status, 'master still running 20 s after %s' % sig.name)
        self.assertEqual(status, 0)
        t.join(30)
        r = result.get('response')
        self.assertFalse(r is not None and r.status == 200,
                         'the in-flight request was allowed to finish')

    def test_int_exits_quickly(self):
        self.quick(signal.SIGINT)

    def test_quit_exits_quickly(self):
        self.quick(signal.SIGQUIT)


class UnixSocket(Base):
    def test_unix_bind(self):
        d = tempfile.mkdtemp(prefix='cunicorn-unix-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'app.sock')
        srv = self.serve('-w', '1', bind='unix:' + path)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        conn = server.connect(path)
        try:
            conn.send(build_request('GET', '/', close=True))
            r = conn.read_response()
        finally:
            conn.close()
        self.assertEqual((r.status, r.body), (200, b'ok'))
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(30), 0)
        self.assertFalse(os.path.exists(path), 'socket file left behind')

    def test_unix_bind_replaces_stale_socket(self):
        d = tempfile.mkdtemp(prefix='cunicorn-unix-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'stale.sock')
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()                      # leaves the file, nobody listening
        self.serve('-w', '1', bind='unix:' + path)
        conn = server.connect(path)
        try:
            conn.send(build_request('GET', '/', close=True))
            self.assertEqual(conn.read_response().status, 200)
        finally:
            conn.close()


if __name__ == '__main__':
    unittest.main()
