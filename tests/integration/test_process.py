"""Process-management settings: --daemon, --pid, --preload, --name
(process titles), --capture-output and --user (reference b.7-b.10)."""

import os
import pwd
import signal
import socket
import subprocess
import tempfile
import unittest

import server
from server import Server

APP = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))
# Every import of this module leaves a line: --preload must import it once.
with open(os.path.join(HERE, 'imports'), 'a') as f:
    f.write('%d\n' % os.getpid())


def app(environ, start_response):
    if environ['PATH_INFO'] == '/print':
        print('printed by the app', flush=True)
    body = ('%d %d' % (os.getpid(), os.geteuid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


def cmdline(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        return f.read().replace(b'\0', b' ').decode('latin-1').strip()


@unittest.skipIf(server.is_gunicorn(), 'cunicorn-specific process handling')
class ProcessSettings(unittest.TestCase):
    def serve(self, *args, **kw):
        srv = Server(APP, list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def test_preload_imports_once_in_master(self):
        srv = self.serve('-w', '2', '--preload')
        srv.wait_workers(2)
        self.assertEqual(srv.get('/').status, 200)
        pids = server.read_text(srv.path('imports')).split()
        self.assertEqual(pids, [str(srv.pid)])

    def test_without_preload_each_worker_imports(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        ok = server.wait_for(lambda: len(server.read_text(srv.path('imports')).split()) == 2, 30)
        self.assertTrue(ok, server.read_text(srv.path('imports')))
        self.assertEqual(sorted(server.read_text(srv.path('imports')).split()),
                         sorted(str(k) for k in kids))

    def test_process_titles(self):
        srv = self.serve('-w', '2', '-n', 'shop')
        kids = srv.wait_workers(2)
        self.assertEqual(cmdline(srv.pid), 'cunicorn: master [shop]')
        for k in kids:
            self.assertEqual(cmdline(k), 'cunicorn: worker [shop]')

    def test_default_title_is_app_uri(self):
        srv = self.serve('-w', '1')
        srv.wait_workers(1)
        self.assertEqual(cmdline(srv.pid), 'cunicorn: master [app:app]')

    def test_pidfile_written_and_removed(self):
        srv = Server(APP, ['-p', 'PIDFILE'])
        srv._prepare()
        pidfile = srv.path('master.pid')
        srv.args = ['-p', pidfile]
        srv.start()
        self.addCleanup(srv.stop)
        self.assertEqual(server.read_text(pidfile).strip(), str(srv.pid))
        srv.stop()
        self.assertFalse(os.path.exists(pidfile))

    def test_pidfile_of_live_master_refused(self):
        srv = Server(APP, [])
        srv._prepare()
        pidfile = srv.path('master.pid')
        with open(pidfile, 'w') as f:
            f.write('%d\n' % os.getpid())  # this test process is alive
        srv.args = ['-p', pidfile]
        srv.spawn()
        self.addCleanup(srv.stop)
        self.assertEqual(srv.wait_exit(30), 1)
        self.assertIn('Already running on PID %d' % os.getpid(), srv.log_text())

    def test_pidfile_in_missing_directory(self):
        srv = Server(APP, ['-p', '/nonexistent-dir/x.pid'])
        srv.spawn()
        self.addCleanup(srv.stop)
        self.assertEqual(srv.wait_exit(30), 1)
        self.assertIn("pidfile: cannot write '/nonexistent-dir/x.pid'", srv.log_text())

    def test_daemon_serves_and_cleans_up(self):
        tmp = tempfile.mkdtemp(prefix='cunicorn-test-')
        server.write_file(os.path.join(tmp, 'app.py'), APP)
        pidfile = os.path.join(tmp, 'd.pid')
        port = server.free_port()
        argv = [server.binary(), '-D', '-p', pidfile, '-b', '127.0.0.1:%d' % port,
                '--error-logfile', os.path.join(tmp, 'error.log'), '--chdir', tmp, 'app:app']
        rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, timeout=60)
        self.assertEqual(rc, 0)  # the launcher returns at once
        self.assertTrue(server.wait_for(lambda: os.path.exists(pidfile)
                                        and server.read_text(pidfile).strip(), 30))
        pid = int(server.read_text(pidfile))
        # The daemon leads its own session; its group is not its pid.
        self.addCleanup(server.kill_group, os.getpgid(pid))
        self.assertNotEqual(pid, os.getpid())
        self.assertEqual(cmdline(pid), 'cunicorn: master [app:app]')
        s = socket.create_connection(('127.0.0.1', port), timeout=30)
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        data = server.read_until_closed(s)
        s.close()
        self.assertTrue(data.startswith(server.http10_ok()), data)
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(pid), 30))
        self.assertFalse(os.path.exists(pidfile))

    def test_capture_output(self):
        srv = self.serve('--capture-output')
        self.assertEqual(srv.get('/print').status, 200)
        ok = server.wait_for(lambda: 'printed by the app' in server.read_text(srv.error_log), 30)
        self.assertTrue(ok, server.read_text(srv.error_log))

    @unittest.skipUnless(os.geteuid() == 0, 'switching users needs root')
    def test_user_and_group(self):
        nobody = pwd.getpwnam('nobody')
        srv = Server(APP, ['-u', 'nobody', '-g', str(nobody.pw_gid)])
        srv._prepare()
        # The app, and the file it writes on import, must be usable by nobody.
        os.chmod(srv.tmpdir, 0o777)
        srv.start()
        self.addCleanup(srv.stop)
        pid, euid = srv.get('/').body.split()
        self.assertEqual(int(euid), nobody.pw_uid)
        self.assertEqual(os.geteuid(), 0)
        with open('/proc/%d/status' % srv.pid) as f:
            master_uid = [l for l in f if l.startswith('Uid:')][0].split()[1]
        self.assertEqual(master_uid, '0')  # the master keeps its uid
        self.assertNotIn('workers run as root', server.read_text(srv.error_log))

    @unittest.skipUnless(os.geteuid() == 0, 'the warning is for workers running as root')
    def test_root_workers_warned_once(self):
        # Allowed (containers do it), but said once per start, not per worker.
        for args in ([], ['-u', 'root'], ['--user', '0']):
            srv = self.serve('-w', '2', *args)
            srv.wait_workers(2)
            self.assertEqual(srv.get('/').status, 200)
            text = server.read_text(srv.error_log)
            self.assertEqual(text.count('workers run as root'), 1, text)
            self.assertRegex(text, r'\[WARNING\] workers run as root .*--user')


if __name__ == '__main__':
    unittest.main()
