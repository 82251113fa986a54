"""The control socket (--control-socket, --control-socket-mode,
--no-control-socket; reference i.5): Gunicorn 26.1's wire format and
commands, its own client gunicornc (tests/data/gunicornc, copied from
Gunicorn's gunicorn/ctl/) and `cunicorn ctl` against the master."""

import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import server
from server import Server

APP = r'''
import threading, time
gate = threading.Event()
def app(environ, start_response):
    if environ['PATH_INFO'] == '/slow':
        time.sleep(float(environ.get('QUERY_STRING') or 3))
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
'''

GUNICORNC = os.path.join(server.ROOT, 'tests', 'data', 'gunicornc')


def frame(payload):
    return struct.pack('>I', len(payload)) + payload


def read_exact(sock, n):
    data = b''
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError('closed after %d of %d bytes' % (len(data), n))
        data += chunk
    return data


def read_reply(sock):
    """The raw payload of one reply."""
    (n,) = struct.unpack('>I', read_exact(sock, 4))
    return read_exact(sock, n)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: waits while the listen queue is full
    s.settimeout(server.IO_TIMEOUT * server.SLOW)
    return s


def request(path, command, args=None, req_id=1):
    """One request as gunicorn's client sends it; returns the decoded reply
    and checks it is byte for byte what json.dumps makes of it."""
    with connect(path) as s:
        s.sendall(frame(json.dumps({'id': req_id, 'command': command, 'args': args or []}).encode()))
        raw = read_reply(s)
    reply = json.loads(raw)
    assert raw == json.dumps(reply).encode(), raw
    return reply


def data(path, command, args=None):
    reply = request(path, command, args)
    assert reply['status'] == 'ok', reply
    return reply['data']


class Control(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='cunicorn-ctl-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sock = os.path.join(self.dir, 'ctl.sock')

    def serve(self, *args, env=None, sock=True):
        extra = ['--control-socket', self.sock] if sock else []
        srv = Server(APP, extra + list(args), env=env)
        srv.start()
        self.addCleanup(srv.stop)
        # The master opens the socket once it has forked its workers: a
        # test that only waits for them could connect first. (Not an
        # assertion: some tests expect no socket.)
        if sock:
            server.wait_for(lambda: os.path.exists(self.sock), 10)
        return srv

    def ctl(self, *words, check=True):
        """`cunicorn ctl -s SOCK WORDS...`: (exit status, stdout, stderr)."""
        p = subprocess.run([server.binary(), 'ctl', '-s', self.sock] + list(words), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * server.SLOW)
        out, err = p.stdout.decode(), p.stderr.decode()
        if check:
            self.assertEqual(p.returncode, 0, err)
        return p.returncode, out, err

    def gunicornc(self, command, json_output=False):
        argv = [sys.executable, '-m', 'gunicorn.ctl.cli', '-s', self.sock, '-c', command]
        if json_output:
            argv.append('-j')
        env = dict(os.environ, PYTHONPATH=GUNICORNC)
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60 * server.SLOW, cwd=self.dir)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def wait_target(self, n):
        ok = server.wait_for(lambda: data(self.sock, 'show stats')['workers_current'] == n, 30)
        self.assertTrue(ok, data(self.sock, 'show stats'))

    # -- every command and its JSON

    def test_show_commands_and_their_json(self):
        srv = self.serve('-w', '2')
        kids = sorted(srv.wait_workers(2))
        self.assertEqual(oct(os.stat(self.sock).st_mode & 0o777), '0o600')
        workers = data(self.sock, 'show workers')
        self.assertEqual(workers['count'], 2)
        self.assertEqual(sorted(w['pid'] for w in workers['workers']), kids)
        self.assertEqual([w['age'] for w in workers['workers']], sorted(w['age'] for w in workers['workers']))
        for w in workers['workers']:
            self.assertLessEqual({'pid', 'age', 'booted', 'aborted', 'last_heartbeat'}, set(w))
            self.assertIs(w['aborted'], False)
            self.assertIsInstance(w['last_heartbeat'], float)
        everything = data(self.sock, 'show all')
        self.assertEqual(everything['arbiter'], {'pid': srv.pid, 'type': 'arbiter', 'role': 'master'})
        self.assertEqual(list(everything), ['arbiter', 'web_workers', 'web_worker_count', 'dirty_arbiter',
                                            'dirty_workers', 'dirty_worker_count'])
        self.assertEqual(everything['web_worker_count'], 2)
        self.assertEqual(sorted(w['pid'] for w in everything['web_workers']), kids)
        self.assertEqual({w['type'] for w in everything['web_workers']}, {'web'})
        self.assertEqual((everything['dirty_arbiter'], everything['dirty_workers']), (None, []))
        stats = data(self.sock, 'show stats')
        self.assertEqual(list(stats), ['uptime', 'pid', 'workers_current', 'workers_target', 'workers_spawned',
                                       'workers_killed', 'reloads', 'dirty_arbiter_pid'])
        self.assertEqual((stats['pid'], stats['workers_current'], stats['workers_target'],
                          stats['workers_spawned'], stats['reloads']), (srv.pid, 2, 2, 2, 0))
        config = data(self.sock, 'show config')
        self.assertEqual(config['bind'], ['127.0.0.1:%d' % srv.port])
        self.assertEqual((config['workers'], config['timeout'], config['pidfile'], config['dirty_apps']),
                         (2, 30, None, []))
        self.assertEqual(config['control_socket'], self.sock)
        self.assertIs(config['control_socket_disable'], False)
        listeners = data(self.sock, 'show listeners')
        self.assertEqual(listeners['count'], 1)
        self.assertEqual(listeners['listeners'][0]['address'], 'http://127.0.0.1:%d' % srv.port)
        self.assertEqual(listeners['listeners'][0]['type'], 'tcp')
        self.assertEqual(data(self.sock, 'show dirty'), {'enabled': False, 'pid': None, 'workers': [], 'apps': []})
        for cmd in ('dirty add', 'dirty remove 2'):
            reply = data(self.sock, cmd)
            self.assertIs(reply['success'], False)
            self.assertIn('Dirty arbiter not running', reply['error'])
        self.assertIn('worker add [N]', data(self.sock, 'help')['commands'])
        # The id comes back as given; args are appended to the command.
        reply = request(self.sock, 'show', ['stats'], req_id=77)
        self.assertEqual((reply['id'], reply['status']), (77, 'ok'))
        # Errors, with gunicorn's texts.
        for cmd, error in [('bogus', 'Invalid argument: Unknown command: bogus'),
                           ('show nothing', 'Invalid argument: Unknown show target: nothing'),
                           ('show', 'Invalid argument: Missing show target '
                                    '(all|workers|dirty|config|stats|listeners)'),
                           ('worker add two', "Invalid argument: invalid literal for int() with base 10: 'two'"),
                           ('worker kill', 'Invalid argument: Missing PID for worker kill'),
                           ('show "workers', 'Invalid argument: No closing quotation'),
                           ('   ', 'Empty command')]:
            self.assertEqual(request(self.sock, cmd), {'id': 1, 'status': 'error', 'error': error})

    def test_several_requests_on_one_connection(self):
        self.serve()
        with connect(self.sock) as s:
            # Sent together: each answered, in order.
            s.sendall(b''.join(frame(json.dumps({'id': i, 'command': c, 'args': []}).encode())
                               for i, c in [(1, 'show stats'), (2, 'help'), (3, 'show workers')]))
            replies = [json.loads(read_reply(s)) for _ in range(3)]
        self.assertEqual([r['id'] for r in replies], [1, 2, 3])
        self.assertEqual({r['status'] for r in replies}, {'ok'})

    # -- changes

    def test_worker_add_and_remove_change_the_worker_count(self):
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        self.assertEqual(data(self.sock, 'worker add 2'), {'added': 2, 'previous': 2, 'total': 4})
        srv.wait_workers(4)
        self.assertEqual(data(self.sock, 'worker remove'), {'removed': 1, 'previous': 4, 'total': 3})
        srv.wait_workers(3)
        # Never below one worker.
        self.assertEqual(data(self.sock, 'worker remove 10'), {'removed': 2, 'previous': 3, 'total': 1})
        srv.wait_workers(1)
        self.assertEqual(data(self.sock, 'show stats')['workers_target'], 1)
        self.assertEqual(srv.get('/').status, 200)

    def test_worker_kill_replaces_that_worker(self):
        srv = self.serve('-w', '2')
        kids = srv.wait_workers(2)
        victim = kids[0]
        self.assertEqual(data(self.sock, 'worker kill %d' % victim), {'success': True, 'killed': victim})
        ok = server.wait_for(lambda: victim not in server.children(srv.pid)
                             and len(server.children(srv.pid)) == 2, 30)
        self.assertTrue(ok, server.children(srv.pid))
        self.assertIn('Worker exiting (pid: %d)' % victim, srv.log_text())
        self.assertEqual(data(self.sock, 'worker kill 1'), {'success': False, 'error': 'Worker 1 not found'})
        self.assertGreaterEqual(data(self.sock, 'show stats')['workers_killed'], 1)

    def test_reload_is_a_hup(self):
        srv = self.serve('-w', '2')
        old = set(srv.wait_workers(2))
        self.assertEqual(data(self.sock, 'reload'), {'status': 'reloading'})
        ok = server.wait_for(lambda: len(server.children(srv.pid)) == 2
                             and not old & set(server.children(srv.pid)), 60)
        self.assertTrue(ok, server.tail(srv.log_text()))
        log = srv.log_text()
        self.assertIn('Handling signal: hup', log)
        self.assertIn('Hang up: Master', log)
        self.assertEqual(data(self.sock, 'show stats')['reloads'], 1)
        self.assertEqual(srv.get('/').status, 200)

    def test_reopen_is_a_usr1(self):
        srv = self.serve()
        srv.wait_workers(1)
        moved = srv.error_log + '.old'
        os.rename(srv.error_log, moved)
        self.assertEqual(data(self.sock, 'reopen'), {'status': 'reopening'})
        self.assertTrue(server.wait_for(lambda: os.path.exists(srv.error_log), 30))
        self.assertIn('Handling signal: usr1', server.read_text(moved) + server.read_text(srv.error_log))

    def test_shutdown_graceful_and_quick(self):
        for mode, sig in (('graceful', 'term'), ('quick', 'int')):
            srv = self.serve()
            srv.wait_workers(1)
            words = ['shutdown'] + ([mode] if mode == 'quick' else [])
            self.assertEqual(data(self.sock, ' '.join(words)), {'status': 'shutting_down', 'mode': mode})
            self.assertEqual(srv.wait_exit(30), 0)
            self.assertIn('Handling signal: %s' % sig, srv.log_text())
            self.assertFalse(os.path.exists(self.sock))  # removed on exit
            srv.stop()

    # -- bad input

    def test_malformed_and_oversized_messages_get_an_error(self):
        srv = self.serve()
        srv.wait_workers(1)
        cases = [(frame(b'{not json'), 'Invalid JSON'),
                 (frame(b'\xff\xfe'), 'Invalid JSON'),
                 (frame(b'[1, 2]'), 'Invalid request'),
                 (frame(b'{"id": 5, "command": 7}'), 'Invalid request'),
                 (frame(b'{"id": 5, "command": "show", "args": "x"}'), 'Invalid request'),
                 (struct.pack('>I', 64 << 20), 'Message too large: 67108864'),
                 (struct.pack('>I', 0xFFFFFFFF) + b'x' * 100, 'Message too large: 4294967295')]
        for sent, error in cases:
            with connect(self.sock) as s:
                s.sendall(sent)
                reply = json.loads(read_reply(s))
                self.assertEqual(reply['status'], 'error', sent)
                self.assertIn(error, reply['error'])
        # Cut short: the master answers what it can and closes.
        for sent, error in [(b'\x00\x00', 'Incomplete length prefix'), (frame(b'{"id": 1}')[:-3], 'Incomplete payload')]:
            with connect(self.sock) as s:
                s.sendall(sent)
                s.shutdown(socket.SHUT_WR)
                self.assertIn(error, json.loads(read_reply(s))['error'])
        # A client that connects and says nothing does not hold the master up.
        idle = connect(self.sock)
        self.addCleanup(idle.close)
        half = connect(self.sock)
        self.addCleanup(half.close)
        half.sendall(struct.pack('>I', 100) + b'{"id"')
        self.assertEqual(data(self.sock, 'show stats')['workers_current'], 1)
        self.assertEqual(srv.get('/').status, 200)
        self.assertTrue(server.pid_alive(srv.pid))

    def test_many_clients_at_once(self):
        srv = self.serve()
        srv.wait_workers(1)
        held = [connect(self.sock) for _ in range(40)]  # more than the master answers at once
        self.addCleanup(lambda: [s.close() for s in held])
        for s in held[:32]:
            s.sendall(frame(b'{"id": 1, "command": "show stats"}'))
            self.assertEqual(json.loads(read_reply(s))['status'], 'ok')
        for s in held[:32]:
            s.close()
        # The rest were queued, and are answered once others left.
        for s in held[32:]:
            s.sendall(frame(b'{"id": 2, "command": "help"}'))
            self.assertEqual(json.loads(read_reply(s))['id'], 2)
        self.assertEqual(srv.get('/').status, 200)

    # -- the socket file

    def test_permissions_keep_other_users_out(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to connect as a second, unprivileged user')
        try:
            nobody = pwd.getpwnam('nobody').pw_uid
        except KeyError:
            self.skipTest('no unprivileged user "nobody" on this system')
        os.chmod(self.dir, 0o755)  # the directory is not what keeps them out

        def connect_as_nobody():
            code = ('import socket, sys\n'
                    's = socket.socket(socket.AF_UNIX)\n'
                    'try:\n'
                    '    s.connect(sys.argv[1])\n'
                    'except OSError as e:\n'
                    '    print(e.errno); sys.exit(0)\n'
                    'print("connected")\n')
            p = subprocess.run([sys.executable, '-c', code, self.sock], preexec_fn=lambda: os.setuid(nobody),
                               stdout=subprocess.PIPE, timeout=60, stdin=subprocess.DEVNULL)
            return p.stdout.decode().strip()

        import errno
        srv = self.serve('--control-socket-mode', '0600')
        srv.wait_workers(1)
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)
        self.assertEqual(connect_as_nobody(), str(errno.EACCES))
        srv.stop()
        srv = self.serve('--control-socket-mode', '0666')
        srv.wait_workers(1)
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o666)
        self.assertEqual(connect_as_nobody(), 'connected')

    def test_default_path_rules_and_no_control_socket(self):
        runtime = os.path.join(self.dir, 'run')
        os.mkdir(runtime)
        srv = self.serve(env={'XDG_RUNTIME_DIR': runtime}, sock=False)
        srv.wait_workers(1)
        path = os.path.join(runtime, 'gunicorn.ctl')
        self.assertTrue(server.wait_for(lambda: os.path.exists(path), 10))
        self.sock = path
        self.assertEqual(data(path, 'show stats')['pid'], srv.pid)
        srv.stop()
        self.assertFalse(os.path.exists(path))
        # No XDG_RUNTIME_DIR directory: ~/.gunicorn/, made 0700.
        home = os.path.join(self.dir, 'home')
        os.mkdir(home)
        srv = self.serve(env={'XDG_RUNTIME_DIR': os.path.join(self.dir, 'missing'), 'HOME': home}, sock=False)
        srv.wait_workers(1)
        path = os.path.join(home, '.gunicorn', 'gunicorn.ctl')
        self.assertTrue(server.wait_for(lambda: os.path.exists(path), 10))
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o777, 0o700)
        self.assertEqual(data(path, 'show stats')['pid'], srv.pid)
        srv.stop()
        srv = self.serve('--no-control-socket', env={'XDG_RUNTIME_DIR': runtime}, sock=False)
        srv.wait_workers(1)
        time.sleep(0.5)
        self.assertEqual(os.listdir(runtime), [])
        self.assertNotIn('Control socket', srv.log_text())

    def test_unwritable_default_path_only_warns(self):
        home = os.path.join(self.dir, 'not-a-dir')
        with open(home, 'w') as f:
            f.write('x')
        srv = self.serve('-w', '2', env={'HOME': home, 'XDG_RUNTIME_DIR': ''}, sock=False)
        srv.wait_workers(2)
        self.assertEqual(srv.get('/').status, 200)
        srv.send_signal(signal.SIGHUP)  # a reload does not warn again
        self.assertTrue(server.wait_for(lambda: 'Reloaded' in srv.log_text(), 60))
        log = srv.log_text()
        self.assertEqual(log.count('Failed to start control socket'), 1, log)
        self.assertEqual(log.count('[WARNING] Failed to start control socket: %s/.gunicorn/gunicorn.ctl' % home), 1)
        self.assertEqual(srv.stop(), 0)

    def test_not_a_socket_is_left_alone(self):
        with open(self.sock, 'w') as f:
            f.write('keep me')
        srv = self.serve()
        srv.wait_workers(1)
        self.assertIn('exists and is not a socket', srv.log_text())
        srv.stop()
        self.assertEqual(server.read_text(self.sock), 'keep me')

    # -- per-worker figures

    @server.timeout(180)
    def test_show_workers_under_load_counts_the_requests(self):
        if server.is_gunicorn():
            self.skipTest("per-worker request counts are cunicorn's")
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        sent = 0
        lock = threading.Lock()
        errors = []

        def client(n):
            nonlocal sent
            conn = srv.connect()
            try:
                for i in range(n):
                    conn.send(server.build_request('GET', '/', close=(i == n - 1)))
                    resp = conn.read_response('GET')
                    if resp.status != 200:
                        raise AssertionError('not 200')
                    with lock:
                        sent += 1
                    # A loaded sync worker closes keep-alive connections
                    # while clients queue to connect, and says so.
                    if resp.has_token('Connection', 'close') and i < n - 1:
                        conn.close()
                        conn = srv.connect()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                conn.close()
        threads = [threading.Thread(target=client, args=(25,)) for _ in range(8)]
        for t in threads:
            t.start()
        # While the load runs the master answers, and its figures only grow.
        seen = 0
        while any(t.is_alive() for t in threads):
            total = sum(w['requests'] for w in data(self.sock, 'show workers')['workers'])
            self.assertGreaterEqual(total, seen)
            seen = total
            time.sleep(0.05)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(sent, 200)
        workers = data(self.sock, 'show workers')['workers']
        self.assertEqual(sum(w['requests'] for w in workers), 200, workers)
        self.assertTrue(server.wait_for(lambda: sum(w['connections'] for w in
                                                    data(self.sock, 'show workers')['workers']) == 0, 10))
        for w in workers:
            self.assertGreater(w['rss'], 1 << 20)
        # The last response may reach the client a moment before its worker
        # clears the request from its page.
        self.assertTrue(server.wait_for(lambda: not any(w['current_request'] for w in
                                                        data(self.sock, 'show workers')['workers']), 10))
        # A request in progress: which, and for how long.
        slow = threading.Thread(target=lambda: srv.get('/slow?3'))
        slow.start()
        self.addCleanup(slow.join)

        def busy():
            return [w for w in data(self.sock, 'show workers')['workers'] if w['current_request']]
        self.assertTrue(server.wait_for(lambda: busy() and busy()[0]['current_request']['age'] >= 0.5, 10))
        w = busy()[0]
        self.assertEqual((w['current_request']['method'], w['current_request']['path']), ('GET', '/slow?3'))
        self.assertEqual(w['current_request']['peer'].split(':')[0], '127.0.0.1')
        self.assertEqual(w['connections'], 1)
        rc, out, _ = self.ctl('show', 'workers')
        self.assertIn('GET /slow', out)
        self.assertIn('Total: 2 workers', out)

    # -- the clients

    def test_gunicornc_works_unchanged(self):
        srv = self.serve('-w', '2')
        kids = sorted(srv.wait_workers(2))
        rc, out, err = self.gunicornc('show workers', json_output=True)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(w['pid'] for w in json.loads(out)['workers']), kids)
        rc, out, err = self.gunicornc('show workers')
        self.assertEqual(rc, 0, err)
        self.assertIn('Total: 2 workers', out)
        for pid in kids:
            self.assertIn(str(pid), out)
        rc, out, err = self.gunicornc('show stats')
        self.assertIn('Workers current:  2', out)
        self.assertIn('PID:              %d' % srv.pid, out)
        for cmd, expect in [('show all', 'WEB WORKERS (2)'), ('show config', 'workers: 2'),
                            ('show listeners', 'http://127.0.0.1:%d' % srv.port),
                            ('show dirty', 'Dirty arbiter not running'), ('help', 'worker kill <PID>')]:
            rc, out, err = self.gunicornc(cmd)
            self.assertEqual(rc, 0, err)
            self.assertIn(expect, out)
        rc, out, err = self.gunicornc('worker add 1')
        self.assertEqual((rc, json.loads(out)), (0, {'added': 1, 'previous': 2, 'total': 3}))
        srv.wait_workers(3)
        rc, out, err = self.gunicornc('worker remove 2')
        self.assertEqual(json.loads(out)['total'], 1)
        srv.wait_workers(1)
        rc, out, err = self.gunicornc('nonsense')
        self.assertEqual((rc, err.strip()), (1, 'Error: Invalid argument: Unknown command: nonsense'))
        rc, out, err = self.gunicornc('shutdown')
        self.assertEqual(json.loads(out), {'status': 'shutting_down', 'mode': 'graceful'})
        self.assertEqual(srv.wait_exit(30), 0)

    def test_cunicorn_ctl_human_and_json(self):
        if server.is_gunicorn():
            self.skipTest('cunicorn ctl is the cunicorn binary')
        srv = self.serve('-w', '2')
        kids = sorted(srv.wait_workers(2))
        rc, out, err = self.ctl('--json', 'show', 'workers')
        self.assertEqual(sorted(w['pid'] for w in json.loads(out)['workers']), kids)
        self.assertEqual(out, json.dumps(json.loads(out), indent=2) + '\n')
        rc, out, err = self.ctl('show', 'stats')
        self.assertIn('Workers current:  2', out)
        rc, out, err = self.ctl('-c', 'show listeners')
        self.assertIn('http://127.0.0.1:%d' % srv.port, out)
        rc, out, err = self.ctl('-j', 'worker', 'add', '1')
        self.assertEqual(json.loads(out), {'added': 1, 'previous': 2, 'total': 3})
        srv.wait_workers(3)
        rc, out, err = self.ctl('bogus', check=False)
        self.assertEqual((rc, err), (1, 'Error: Invalid argument: Unknown command: bogus\n'))
        rc, out, err = self.ctl('--socket', os.path.join(self.dir, 'none.sock'), 'help', check=False)
        self.assertEqual(rc, 1)
        self.assertIn('Failed to connect to', err)
        # Commands from standard input, one a line.
        p = subprocess.run([server.binary(), 'ctl', '-s', self.sock], input=b'show stats\nhelp\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b'Workers target:   3', p.stdout)
        self.assertIn(b'Available commands:', p.stdout)


if __name__ == '__main__':
    unittest.main()
