"""Listening sockets: several -b at once, IPv6, fd://N, --reuse-port and
the unix socket mode from --umask (reference b.2 step 6)."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import unittest

import server
from server import Server, build_request

APP = r'''
import os

def app(environ, start_response):
    body = ('%d %s' % (os.getpid(), environ['SERVER_PORT'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


def ask(family, address):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(address)
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        data = server.read_until_closed(s)
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return head.split(b'\r\n')[0], body


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(('::1', 0))
        s.close()
        return True
    except OSError:
        return False


class Sockets(unittest.TestCase):
    def serve(self, *args, **kw):
        srv = Server(APP, list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def test_several_binds_tcp_and_unix(self):
        d = tempfile.mkdtemp(prefix='cunicorn-sock-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'app.sock')
        srv = self.serve('-b', 'unix:' + path)
        status, body = ask(socket.AF_INET, ('127.0.0.1', srv.port))
        self.assertEqual(status, server.http10_ok())
        self.assertTrue(body.endswith(b' %d' % srv.port), body)
        status, _ = ask(socket.AF_UNIX, path)
        self.assertEqual(status, server.http10_ok())

    @unittest.skipUnless(ipv6_available(), 'no IPv6 loopback here')
    def test_ipv6_bind(self):
        port = server.free_port()
        # The harness probes 127.0.0.1; this server listens on ::1 only.
        srv = Server(APP, ['-b', '[::1]:%d' % port], bind=None, port=port)
        srv.spawn()
        self.addCleanup(srv.stop)

        def answers():
            try:
                return ask(socket.AF_INET6, ('::1', port))[0] == server.http10_ok()
            except OSError:
                return False
        self.assertTrue(server.wait_for(answers, 30 * server.SLOW), srv.log_text())
        self.assertIn('http://[::1]:%d' % port, srv.log_text())

    def test_fd_bind(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        self.addCleanup(listener.close)
        tmp = tempfile.mkdtemp(prefix='cunicorn-test-')
        self.addCleanup(shutil.rmtree, tmp, True)
        server.write_file(os.path.join(tmp, 'app.py'), APP)
        fd = listener.fileno()
        proc = subprocess.Popen(
            [server.binary(), '-b', 'fd://%d' % fd, '--chdir', tmp,
             '--error-logfile', os.path.join(tmp, 'error.log'), 'app:app'],
            pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(server.kill_group, proc.pid)
        listener.close()  # the server holds its own copy now
        ok = server.wait_for(lambda: self._answers(port), 30 * server.SLOW)
        self.assertTrue(ok, server.read_text(os.path.join(tmp, 'error.log')))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30 * server.SLOW), 0)

    def _answers(self, port):
        try:
            return ask(socket.AF_INET, ('127.0.0.1', port))[0] == server.http10_ok()
        except OSError:
            return False

    @unittest.skipIf(server.is_gunicorn(), 'per-worker listeners are checked through cunicorn')
    def test_reuse_port_gives_each_worker_its_listener(self):
        srv = self.serve('-w', '2', '--reuse-port')
        kids = srv.wait_workers(2)
        listening = server.listening_inodes(srv.port)
        # Two sockets listen on the port, one in each worker, none in the master.
        self.assertEqual(len(listening), 2, listening)
        for k in kids:
            self.assertEqual(len(server.socket_inodes(k) & listening), 1)
        self.assertFalse(server.socket_inodes(srv.pid) & listening)
        pids = set()
        for _ in range(40):
            status, body = ask(socket.AF_INET, ('127.0.0.1', srv.port))
            self.assertEqual(status, server.http10_ok())
            pids.add(int(body.split()[0]))
        self.assertTrue(pids <= set(kids), (pids, kids))

    def test_unix_socket_mode_follows_umask(self):
        d = tempfile.mkdtemp(prefix='cunicorn-sock-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'app.sock')
        self.serve('-m', '007', bind='unix:' + path)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        self.assertEqual(mode & 0o007, 0, oct(mode))
        self.assertEqual(mode & 0o770, 0o770, oct(mode))


if __name__ == '__main__':
    unittest.main()
