"""The platform layer seen from outside (include/cunicorn/platform.h):
sendfile with an offset into a socket that fills up, over TCP and a unix
socket, and USR2 re-executing the binary after an upgrade replaced the
file the master runs from."""

import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

import server
from server import Server

FILE_SIZE = 3 * 1024 * 1024 + 17
OFFSET = 1000

APP = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def app(environ, start_response):
    f = open(os.path.join(HERE, 'data.bin'), 'rb')
    f.seek(%d)
    size = os.fstat(f.fileno()).st_size - f.tell()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(size))])
    return environ['wsgi.file_wrapper'](f)
''' % OFFSET


def file_data():
    # Every 4-byte word differs, so a repeated or skipped stretch shows.
    return b''.join(i.to_bytes(4, 'big') for i in range(FILE_SIZE // 4 + 1))[:FILE_SIZE]


def fetch_slowly(family, address):
    """GET / and read nothing for a while, so the server's socket fills up
    and sendfile must stop and resume; returns (head, body)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(60 * server.SLOW)
    try:
        s.connect(address)
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        time.sleep(1)
        data = server.read_until_closed(s)
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return head, body


class SendFile(unittest.TestCase):
    def serve(self, bind):
        srv = Server(APP, bind=bind)
        srv._prepare()
        with open(srv.path('data.bin'), 'wb') as f:
            f.write(file_data())
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def check(self, head, body):
        self.assertTrue(head.startswith(b'HTTP/1.0 200') or head.startswith(b'HTTP/1.1 200'), head)
        expected = file_data()[OFFSET:]
        self.assertEqual(len(body), len(expected))
        self.assertTrue(body == expected, 'the body differs from the file from offset %d' % OFFSET)

    def test_file_wrapper_from_offset_over_tcp_to_a_slow_reader(self):
        srv = self.serve(True)
        self.check(*fetch_slowly(socket.AF_INET, srv.address))
        self.assertNotIn('Traceback', srv.log_text())

    def test_file_wrapper_from_offset_over_unix_socket_to_a_slow_reader(self):
        sockdir = tempfile.mkdtemp(prefix='cunicorn-sock-')
        self.addCleanup(shutil.rmtree, sockdir, True)
        srv = self.serve('unix:' + os.path.join(sockdir, 's'))
        self.check(*fetch_slowly(socket.AF_UNIX, srv.address))
        self.assertNotIn('Traceback', srv.log_text())


HELLO = r'''
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '5')])
    return [b'hello']
'''


class CopiedBinary(Server):
    """A server started from its own copy of the binary under test."""

    def __init__(self, exe, **kw):
        super().__init__(**kw)
        self.exe = exe

    def command(self):
        argv = super().command()
        argv[0] = self.exe
        return argv


def read_pid(path):
    text = server.read_text(path).strip()
    return int(text) if text.isdigit() else None


class Upgrade(unittest.TestCase):
    @server.timeout(120)
    def test_usr2_runs_the_binary_installed_over_the_running_one(self):
        if server.is_gunicorn():
            self.skipTest('gunicorn re-executes its Python interpreter, not a binary')
        bindir = tempfile.mkdtemp(prefix='cunicorn-bin-')
        self.addCleanup(shutil.rmtree, bindir, True)
        exe = os.path.join(bindir, 'cunicorn')
        shutil.copy(server.binary(), exe)
        srv = CopiedBinary(exe, app=HELLO)
        srv._prepare()
        srv.args = ['-p', srv.path('master.pid')]
        srv.start()
        self.addCleanup(srv.stop)
        old_master = srv.pid
        srv.worker_pid()

        # What an upgrade does: a new file at the same path, the old one
        # unlinked while the master still runs it.
        os.unlink(exe)
        shutil.copy(server.binary(), exe)
        self.assertTrue(os.readlink('/proc/%d/exe' % old_master).endswith(' (deleted)'),
                        'the running binary should show as replaced')

        # The new master must run the new file: executing /proc/self/exe,
        # which the kernel resolves to the unlinked inode, would not.
        pidfile2 = srv.path('master.pid.2')
        srv.send_signal(signal.SIGUSR2)
        ok = server.wait_for(lambda: read_pid(pidfile2), 30)
        self.assertTrue(ok, 'no new master after USR2 over a replaced binary\n%s'
                        % server.tail(srv.log_text()))
        new_master = read_pid(pidfile2)
        self.addCleanup(lambda: server.pid_alive(new_master) and os.kill(new_master, signal.SIGKILL))
        self.assertNotEqual(new_master, old_master)
        self.assertEqual(os.readlink('/proc/%d/exe' % new_master), os.path.realpath(exe))
        self.assertTrue(server.wait_for(lambda: len(server.children(new_master)) == 1, 30),
                        'the new master has no worker\n%s' % server.tail(srv.log_text()))

        os.kill(new_master, signal.SIGTERM)
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(new_master), 20),
                        'the new master did not stop on TERM')
        self.assertEqual(srv.stop(), 0)


if __name__ == '__main__':
    unittest.main()
