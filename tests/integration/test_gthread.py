"""The gthread worker class (-k gthread --threads N): the event loop keeps
every socket and hands complete requests to N application threads.

The tests assert outcomes (how many requests were in the application at
once, bytes, order, what the log says), never elapsed time: the machine
may be loaded. The other suites run under gthread too (tests/run.py's
class passes).
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import server
from server import Server, build_request

# The application both worker-class modules serve.
APP = server.read_text(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'concurrent_app.py'))


def gthread_args(threads=4):
    return ['-k', 'gthread', '--threads', str(threads)]


def gather(srv, clients, want):
    """`clients` concurrent requests that each wait (bounded) for `want` to
    be in the application; returns the high-water mark they saw."""
    results = []

    def one():
        results.append(srv.get('/gather/%d' % want, timeout=60))
    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert [r.status for r in results] == [200] * clients, [r.status for r in results]
    return max(int(r.body) for r in results)


def show_workers(sock):
    """`cunicorn ctl show workers --json`: the workers' entries."""
    out = subprocess.run([server.binary(), 'ctl', '-s', sock, '--json', 'show', 'workers'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=60 * server.SLOW).stdout
    data = json.loads(out)
    return data['workers'] if isinstance(data, dict) else data


def in_flight(sock):
    workers = show_workers(sock)
    return workers[0]['requests_in_flight'] if workers else []


class GthreadTest(unittest.TestCase):
    def test_requests_run_concurrently(self):
        # 8 requests that each wait for all 8 to be inside the app: with 8
        # threads, all are in the application at the same time.
        with Server(APP, args=['-w', '1'] + gthread_args(8)) as srv:
            self.assertEqual(gather(srv, 8, 8), 8)

    def test_threads_bound_concurrency(self):
        # 6 requests, 2 threads: never more than 2 in the application.
        with Server(APP, args=['-w', '1'] + gthread_args(2)) as srv:
            self.assertEqual(gather(srv, 6, 2), 2)

    def test_sync_with_threads_is_gthread(self):
        with Server(APP, args=['-w', '1', '--threads', '3']) as srv:
            self.assertEqual(srv.get('/multithread').body, b'(True, False)')
            self.assertIn('Using worker: gthread', srv.log_text())
            self.assertNotIn('has no effect', srv.log_text())

    def test_sync_is_not_multithread(self):
        with Server(APP, args=['-w', '1', '-k', 'sync'], extra=False) as srv:
            self.assertEqual(srv.get('/multithread').body, b'(False, False)')
            self.assertIn('Using worker: sync', srv.log_text())

    def test_requests_run_on_application_threads(self):
        # Never on the loop's (main) thread, which sync uses.
        with Server(APP, args=['-w', '1'] + gthread_args(2)) as srv:
            self.assertEqual({srv.get('/thread').body for _ in range(6)}, {b'False'})
        with Server(APP, args=['-w', '1', '-k', 'sync'], extra=False) as srv:
            self.assertEqual(srv.get('/thread').body, b'True')

    def test_pipelined_requests_answered_in_order(self):
        with Server(APP, args=['-w', '1'] + gthread_args(4)) as srv:
            conn = srv.connect()
            try:
                reqs = b''.join(build_request('POST', '/echo', body=b'body-%d' % i) for i in range(5))
                reqs += build_request('GET', '/', close=True)
                conn.send(reqs)
                bodies = [conn.read_response().body for _ in range(6)]
            finally:
                conn.close()
            self.assertEqual(bodies, [b'body-%d' % i for i in range(5)] + [b'hello'])

    def test_responses_sent_from_the_application_thread(self):
        # A plain connection's response in hand goes out from the thread
        # that made it, and its completion waits for the loop's next look
        # instead of waking it: the next request on the connection, a
        # client that closes, and a response the socket takes only in part
        # (the loop sends the rest, then the next response) all work.
        big = bytes(range(256)) * (16 * 1024)
        with Server(APP, args=['-w', '1', '--keep-alive', '30'] + gthread_args(4)) as srv:
            conn = srv.connect()
            try:
                for i in range(50):
                    conn.send(build_request('GET', '/n/%d' % i))
                    r = conn.read_response()
                    self.assertEqual((r.status, r.body), (200, b'hello'), i)
            finally:
                conn.close()
            worker = srv.worker_pid()
            baseline = server.fd_count(worker)
            for _ in range(20):
                s = socket.create_connection(srv.address, timeout=60)
                s.sendall(build_request('GET', '/'))
                self.assertTrue(s.recv(4096).startswith(b'HTTP/1.1 200'))
                s.close()
            # Each connection is freed once its client is gone.
            self.assertTrue(server.wait_for(lambda: server.fd_count(worker) <= baseline, timeout=30),
                            'worker holds %d descriptors, %d before' % (server.fd_count(worker), baseline))
            s = socket.create_connection(srv.address, timeout=60)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.sendall(build_request('GET', '/big'))
                time.sleep(0.5)  # the thread finds the socket full
                s.sendall(build_request('GET', '/', close=True))
                data = server.read_until_closed(s)
            finally:
                s.close()
            head, _, rest = data.partition(b'\r\n\r\n')
            self.assertIn(b'Content-Length: %d' % len(big), head)
            self.assertEqual(rest[:len(big)], big)
            self.assertTrue(rest[len(big):].startswith(b'HTTP/1.1 200'), rest[len(big):len(big) + 64])
            self.assertTrue(rest.endswith(b'hello'), rest[-64:])

    def test_large_bodies_through_the_loop(self):
        payload = os.urandom(3 * 1024 * 1024 + 7)
        with Server(APP, args=['-w', '1'] + gthread_args(2)) as srv:
            self.assertEqual(srv.request('POST', '/echo', body=payload).body, payload)
            chunks = [payload[i:i + 100000] for i in range(0, len(payload), 100000)]
            resp = srv.request('POST', '/echo', headers=[('Transfer-Encoding', 'chunked')],
                               body=server.chunked(chunks))
            self.assertEqual(resp.body, payload)

    def test_body_reaches_a_lone_busy_thread(self):
        # The only thread runs the request (handed over at once, for its
        # Expect: 100-continue) and waits for its body: the main thread
        # serves the loop meanwhile and brings the slices, and a second
        # client's request is answered once the thread is free.
        payload = os.urandom(3 * 1024 * 1024 + 7)
        with Server(APP, args=['-w', '1'] + gthread_args(1)) as srv:
            conn = srv.connect()
            try:
                conn.send(build_request('POST', '/echo', headers=[('Content-Length', str(len(payload))),
                                                                  ('Expect', '100-continue')]))
                self.assertEqual(conn.read_response('POST', interim=True).status, 100)
                answered = []
                other = threading.Thread(target=lambda: answered.append(srv.get('/').body))
                other.start()
                conn.send(payload)
                self.assertEqual(conn.read_response('POST').body, payload)
                other.join(30 * server.SLOW)
                self.assertEqual(answered, [b'hello'])
            finally:
                conn.close()

    def test_slow_reader_suspends_its_thread_not_the_loop(self):
        # A client that reads nothing of a 64 MiB response: the writing
        # thread is held back (back-pressure), while the loop and the other
        # thread keep serving.
        with Server(APP, args=['-w', '1'] + gthread_args(2)) as srv:
            s = socket.create_connection(srv.address)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.sendall(build_request('GET', '/flood'))
                for _ in range(5):
                    self.assertEqual(srv.get('/').body, b'hello')
                    time.sleep(0.2)
                produced = int(srv.get('/produced').body)
                self.assertLess(produced, 32)   # of 64 blocks: the app waits
                # Waiting costs no CPU: the thread and the loop sleep.
                worker = srv.worker_pid()
                before = server.cpu_seconds(worker)
                time.sleep(2)
                self.assertLess(server.cpu_seconds(worker) - before, 0.5)
                # Reading it all lets the writer finish.
                got = 0
                s.settimeout(30 * server.SLOW)
                while True:
                    data = s.recv(1 << 20)
                    if not data:
                        break
                    got += len(data)
                    if got >= 64 << 20:
                        break
                self.assertGreaterEqual(got, 64 << 20)
            finally:
                s.close()

    def test_worker_connections_bound(self):
        # At the bound with every connection mid-request, the worker accepts
        # nothing more; once one is idle, the oldest idle one makes room.
        args = ['-w', '1', '--worker-connections', '2', '--keep-alive', '30'] + gthread_args(2)
        with Server(APP, args=args) as srv:
            held = [srv.connect(), srv.connect()]
            third = None
            try:
                held[0].send(build_request('GET', '/hold/a'))
                held[1].send(build_request('GET', '/hold/b'))
                third = srv.connect()
                third.send(build_request('GET', '/', close=True))
                r, _, _ = select.select([third.sock], [], [], 1.0)
                self.assertEqual(r, [])          # not accepted while both are busy
                server.write_file(srv.path('release-a'), '')
                self.assertEqual(held[0].read_response().body, b'held')
                # held[0] is idle now: it is closed to make room for the third.
                self.assertEqual(third.read_response().body, b'hello')
                self.assertTrue(held[0].wait_closed(10))
                # The busy one was left alone.
                server.write_file(srv.path('release-b'), '')
                self.assertEqual(held[1].read_response().body, b'held')
                held[1].send(build_request('GET', '/'))
                self.assertEqual(held[1].read_response().body, b'hello')
            finally:
                for c in held + [third]:
                    if c:
                        c.close()

    def test_show_workers_lists_every_request_in_flight(self):
        # 4 requests held in the application of one worker: the control
        # socket shows 4 in flight, with their paths, oldest first.
        sock = os.path.join(tempfile.mkdtemp(prefix='cunicorn-ctl-'), 'ctl.sock')
        args = ['-w', '1', '--control-socket', sock] + gthread_args(4)
        with Server(APP, args=args) as srv:
            conns = [srv.connect() for _ in range(4)]
            try:
                for i, c in enumerate(conns):
                    c.send(build_request('GET', '/hold/x?n=%d' % i, close=True))
                    self.assertTrue(server.wait_for(lambda: len(in_flight(sock)) == i + 1, 30))
                running = in_flight(sock)
                self.assertEqual([r['path'] for r in running], ['/hold/x?n=%d' % i for i in range(4)])
                self.assertEqual({(r['method'], r['peer']) for r in running}, {('GET', '127.0.0.1')})
                worker = show_workers(sock)[0]
                self.assertEqual(worker['in_flight'], 4)
                self.assertEqual(worker['current_request']['path'], '/hold/x?n=0')
                text = subprocess.run([server.binary(), 'ctl', '-s', sock, 'show', 'workers'],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      timeout=60 * server.SLOW).stdout.decode()
                self.assertIn('GET /hold/x?n=0', text)
                self.assertIn('+3 more', text)
                server.write_file(srv.path('release-x'), '')
                self.assertEqual([c.read_response().body for c in conns], [b'held'] * 4)
                self.assertTrue(server.wait_for(lambda: not in_flight(sock), 30))
            finally:
                for c in conns:
                    c.close()
                shutil.rmtree(os.path.dirname(sock), True)

    def test_request_timeout_reports_the_stack_and_restarts(self):
        args = ['-w', '1', '--request-timeout', '1', '--graceful-timeout', '1'] + gthread_args(2)
        with Server(APP, args=args) as srv:
            conn = srv.connect()
            try:
                server.check_request_timeout(self, srv, conn)
            finally:
                conn.close()

    def test_request_timeout_off_by_default(self):
        with Server(APP, args=['-w', '1', '--graceful-timeout', '1'] + gthread_args(2)) as srv:
            first = srv.worker_pid()
            conn = srv.connect()
            try:
                conn.send(build_request('GET', '/stuck', close=True))
                self.assertTrue(server.wait_for(lambda: os.path.exists(srv.path('stuck')), 30))
                time.sleep(2)
                self.assertEqual(srv.get('/').body, b'hello')
                self.assertEqual(server.children(srv.pid), [first])
                self.assertNotIn('Request timeout', srv.log_text())
            finally:
                conn.close()

    def test_term_finishes_requests_in_flight(self):
        srv = Server(APP, args=['-w', '1', '--graceful-timeout', '30'] + gthread_args(4))
        srv.start()
        try:
            conns = [srv.connect() for _ in range(3)]
            for c in conns:
                c.send(build_request('GET', '/slow', close=True))
            time.sleep(0.3)
            srv.send_signal(signal.SIGTERM)
            self.assertEqual([c.read_response().body for c in conns], [b'slow'] * 3)
            for c in conns:
                c.close()
            self.assertEqual(srv.wait_exit(30), 0)
        finally:
            srv.stop()

    @server.timeout(150)
    def test_worker_int_and_abort_see_the_stuck_threads(self):
        # worker_int (INT, QUIT) and worker_abort (ABRT) run with requests
        # stuck in application threads: the hook's sys._current_frames()
        # shows where (the app's sleep), and the worker exits at once
        # instead of waiting for them.
        conf = r'''
import os, sys, threading, traceback

def dump(worker, name):
    frames = sys._current_frames()
    text = ''.join('thread %s\n%s' % (ident, ''.join(traceback.format_stack(f))) for ident, f in frames.items())
    with open(os.path.join(os.getcwd(), '%s-%d' % (name, worker.pid)), 'w') as out:
        out.write('%s %d\n' % (threading.current_thread() is threading.main_thread(), len(frames)) + text)

def worker_int(worker):
    dump(worker, 'int')

def worker_abort(worker):
    dump(worker, 'abort')
'''
        for sig, name in ((signal.SIGINT, 'int'), (signal.SIGQUIT, 'int'), (signal.SIGABRT, 'abort')):
            with self.subTest(signal=sig.name):
                srv = Server(APP)
                srv._prepare()
                server.write_file(srv.path('conf.py'), conf)
                srv.args = ['-w', '1', '-c', srv.path('conf.py'), '--graceful-timeout', '60'] + gthread_args(2)
                conns = []
                try:
                    srv.start()
                    worker = srv.worker_pid()
                    conns = [srv.connect() for _ in range(2)]
                    for c in conns:
                        c.send(build_request('GET', '/stuck', close=True))
                    self.assertTrue(server.wait_for(
                        lambda: len([n for n in os.listdir(srv.tmpdir) if n.startswith('stuck-')]) == 2, 30))
                    time.sleep(0.3)  # into the sleep (checked loosely below: the thread may lag)
                    os.kill(worker, sig)
                    # Promptly: the stuck requests would sleep 30 s.
                    self.assertTrue(server.wait_for(lambda: not server.pid_alive(worker), 15),
                                    server.tail(srv.log_text()))
                    dump = server.read_text(srv.path('%s-%d' % (name, worker)))
                    first, _, stacks = dump.partition('\n')
                    self.assertEqual(first.split()[0], 'True')   # on the loop (main) thread
                    self.assertGreaterEqual(int(first.split()[1]), 3)
                    # Both application threads, inside the application.
                    self.assertEqual(stacks.count(', in app\n'), 2, dump)
                    self.assertIn('time.sleep(30)', stacks, dump)
                    # The master replaces it.
                    self.assertEqual(srv.get('/').body, b'hello')
                finally:
                    for c in conns:
                        c.close()
                    srv.stop()

    def test_max_requests_is_a_hard_limit(self):
        with Server(APP, args=['-w', '1', '--max-requests', '5'] + gthread_args(4)) as srv:
            counts = {}
            for _ in range(16):
                pid = srv.get('/pid').body
                counts[pid] = counts.get(pid, 0) + 1
            self.assertGreaterEqual(len(counts), 2)
            self.assertLessEqual(max(counts.values()), 5, counts)
