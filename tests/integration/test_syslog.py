"""Syslog (--log-syslog, --log-syslog-to, --log-syslog-prefix,
--log-syslog-facility, --disable-redirect-access-to-syslog): the bytes
glogging.py's SysLogHandler sends, received on sockets this test binds
(unix datagram and stream, UDP, TCP; reference g.4)."""

import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import server
from server import Server
from test_statsd import Datagrams

APP = r'''
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
'''

# Without a date, so that the expected bytes are exact.
ACCESS_FORMAT = '%(r)s %(s)s %(b)s'


class Stream:
    """A listening stream socket (TCP on 127.0.0.1 or a unix path); a
    thread accepts connections and keeps all bytes received."""

    def __init__(self, family=socket.AF_INET, path=None):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(path or ('127.0.0.1', 0))
        self.sock.listen(8)
        self.address = path or '127.0.0.1:%d' % self.sock.getsockname()[1]
        self.data = b''
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conns = []
        self.sock.settimeout(0.1)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                c.settimeout(0.05)
                conns.append(c)
            except socket.timeout:
                pass
            for c in conns:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    chunk = b''
                with self.lock:
                    self.data += chunk
        for c in conns:
            c.close()

    def messages(self):
        with self.lock:
            return self.data.split(b'\0')[:-1]

    def close(self):
        self.stopping = True
        self.thread.join(10)
        self.sock.close()


def wait_messages(receiver, until, timeout=30):
    """Messages from a Datagrams or a Stream receiver once until(messages)."""
    if isinstance(receiver, Datagrams):
        got = receiver.collect(lambda got: until([m.rstrip(b'\0') for m in got]), timeout, quiet=0.3)
        for m in got:
            assert m.endswith(b'\0'), 'a syslog datagram ends with NUL: %r' % m
        return [m[:-1] for m in got]
    deadline = time.monotonic() + timeout * server.SLOW
    while time.monotonic() < deadline and not until(receiver.messages()):
        time.sleep(0.05)
    time.sleep(0.3)
    return receiver.messages()


class Syslog(unittest.TestCase):
    def tmpdir(self):
        d = tempfile.mkdtemp(prefix='cunicorn-syslog-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def receiver(self, kind):
        if kind == 'udp':
            r = Datagrams()
            to = 'udp://' + r.address
        elif kind == 'tcp':
            r = Stream()
            to = 'tcp://' + r.address
        elif kind.startswith('unix-dgram'):
            r = Datagrams(socket.AF_UNIX, os.path.join(self.tmpdir(), 'log'))
            to = 'unix://' + r.address + ('#dgram' if kind == 'unix-dgram#dgram' else '')
        else:
            r = Stream(socket.AF_UNIX, os.path.join(self.tmpdir(), 'log'))
            to = 'unix://' + r.address + ('#stream' if kind == 'unix-stream#stream' else '')
        self.addCleanup(r.close)
        return r, to

    def serve(self, *args, **kw):
        srv = Server(APP, ['--access-logformat', ACCESS_FORMAT] + list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def check_transport(self, kind):
        r, to = self.receiver(kind)
        srv = self.serve('--log-syslog', '--log-syslog-to', to)
        worker = srv.worker_pid()
        self.assertEqual(srv.get('/x?y=1').status, 200)
        # Default prefix: proc_name (the app URI) with ':' turned to '.';
        # facility user (1): INFO is <14>.
        boot = b'<14>gunicorn.app.app.error: [%d] Booting worker with pid: %d' % (worker, worker)
        access = b'<14>gunicorn.app.app.access: [%d] GET /x?y=1 HTTP/1.1 200 2' % worker
        got = wait_messages(r, lambda got: access in got)
        self.assertIn(boot, got)
        self.assertIn(access, got)
        master = b'[%d] ' % srv.pid
        self.assertTrue(any(m.startswith(b'<14>gunicorn.app.app.error: ' + master + b'Listening at: ')
                            for m in got), got)
        for m in got:
            self.assertRegex(m, rb'^<\d+>gunicorn\.app\.app\.(error|access): \[\d+\] ')
        # No access log file was asked for: syslog gets the lines anyway.
        self.assertFalse(os.path.exists(srv.access_log_path))

    def test_udp(self):
        self.check_transport('udp')

    def test_tcp(self):
        self.check_transport('tcp')

    def test_unix_dgram(self):
        self.check_transport('unix-dgram#dgram')

    def test_unix_dgram_found_without_suffix(self):
        self.check_transport('unix-dgram')

    def test_unix_stream(self):
        # SysLogHandler tries a datagram socket first, then a stream one.
        self.check_transport('unix-stream#stream')

    def test_facility_prefix_levels_and_no_access(self):
        r, to = self.receiver('udp')
        srv = self.serve('--log-syslog', '--log-syslog-to', to, '--log-syslog-prefix', 'shop',
                         '--log-syslog-facility', 'LOCAL3', '--disable-redirect-access-to-syslog',
                         '--log-level', 'debug', '--access-logfile', '-')
        worker, master = srv.worker_pid(), srv.pid
        self.assertEqual(srv.get('/').status, 200)
        stdout = srv.path('stdout.txt')
        self.assertTrue(server.wait_for(lambda: 'GET / HTTP/1.1 200 2' in server.read_text(stdout), 10))
        srv.stop()
        # local3 = 19: DEBUG <159>, INFO <158>.
        got = wait_messages(r, lambda got: any(b'Shutting down' in m for m in got))
        self.assertIn(b'<158>gunicorn.shop.error: [%d] Booting worker with pid: %d' % (worker, worker), got)
        self.assertIn(b'<158>gunicorn.shop.error: [%d] Shutting down: Master' % master, got)
        self.assertTrue(any(m.startswith(b'<159>gunicorn.shop.error: ') for m in got), got)
        # The access log itself (stdout here) still has its line.
        self.assertFalse([m for m in got if b'.access: ' in m or b'GET / HTTP/1.1' in m])

    def test_log_level_filters_syslog_too(self):
        r, to = self.receiver('udp')
        srv = self.serve('--log-syslog', '--log-syslog-to', to, '--log-level', 'warning')
        self.assertEqual(srv.get('/').status, 200)
        got = wait_messages(r, lambda got: any(b'.access: ' in m for m in got))
        self.assertFalse([m for m in got if b'.error: ' in m and b'Booting worker' in m], got)
        self.assertTrue([m for m in got if m.startswith(b'<14>gunicorn.app.app.access: ')], got)

    def test_bad_settings_stop_the_start(self):
        for args, message in ((['--log-syslog-facility', 'nowhere'], 'unknown facility name'),
                              (['--log-syslog-to', 'localhost:514'], 'invalid syslog address'),
                              (['--log-syslog-to', 'udp://localhost:abc'], "'abc' is not a valid port number.")):
            with self.subTest(args=args):
                srv = Server(APP, ['--log-syslog'] + args)
                srv.spawn()
                self.addCleanup(srv.stop)
                self.assertIsNotNone(srv.wait_exit(30), 'the server started')
                self.assertNotEqual(srv.returncode, 0)
                self.assertIn(message, srv.log_text())
                if server.is_gunicorn():
                    continue  # gunicorn's --check-config never builds its logger
                d = self.tmpdir()
                server.write_file(os.path.join(d, 'app.py'), APP)
                status, out, err = server.run_binary(['--check-config', '--log-syslog'] + args + ['app:app'],
                                                     timeout=30, cwd=d)
                self.assertEqual(status, 1, out + err)
                self.assertIn(message, err)

    def test_without_log_syslog_the_address_is_not_checked(self):
        srv = self.serve('--log-syslog-facility', 'nowhere', '--log-syslog-to', 'nonsense')
        self.assertEqual(srv.get('/').status, 200)

    def test_receiver_restart_is_followed(self):
        # A unix datagram receiver that goes away and comes back (a syslog
        # daemon restart): lines are lost meanwhile, never the requests,
        # and they flow again afterwards.
        d = self.tmpdir()
        path = os.path.join(d, 'log')
        r = Datagrams(socket.AF_UNIX, path)
        srv = self.serve('--log-syslog', '--log-syslog-to', 'unix://' + path)
        self.assertEqual(srv.get('/first').status, 200)
        self.assertTrue(wait_messages(r, lambda got: any(b'/first' in m for m in got)))
        r.close()
        os.unlink(path)
        self.assertEqual(srv.get('/gone').status, 200)
        r = Datagrams(socket.AF_UNIX, path)
        self.addCleanup(r.close)
        deadline = time.monotonic() + 30 * server.SLOW
        seen = False
        while not seen and time.monotonic() < deadline:
            self.assertEqual(srv.get('/again').status, 200)
            seen = any(b'/again' in m for m in r.collect(lambda got: True, timeout=1, quiet=0.2))
        self.assertTrue(seen, r.got)


if __name__ == '__main__':
    unittest.main()
