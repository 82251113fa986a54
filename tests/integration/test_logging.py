"""Python logging (reference g.5): the gunicorn.error and gunicorn.access
loggers, --log-config (fileConfig), logconfig_dict, --log-config-json,
--logger-class, the Logger object hooks see, HUP and USR1 with them; and
cunicorn's JSON access log (--access-log-json)."""

import json
import os
import re
import shutil
import signal
import tempfile
import threading
import unittest

import server
from server import Server, run_binary, wait_for

APP = r'''
import logging
import os

def app(environ, start_response):
    if environ['PATH_INFO'] == '/log':
        logging.getLogger('gunicorn.error').warning('app line %s', os.getpid())
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Q', 'a"b')])
    return [b'hello']
'''

# gunicorn's error-log line: "[%Y-%m-%d %H:%M:%S %z] [pid] [LEVEL] message".
PREFIX = r'\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[(\d+)\] \[%s\] '


def lines_of(path):
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


class Base(unittest.TestCase):
    def serve(self, app=APP, args=(), **kw):
        srv = Server(app, list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def wait_lines(self, path, n, timeout=30):
        wait_for(lambda: len(lines_of(path)) >= n, timeout)
        return lines_of(path)


class DefaultLoggers(Base):
    """No logging setting: the loggers exist with Gunicorn's format and
    write where the server's own lines go."""

    FLASK_APP = r'''
import logging
import flask

app = flask.Flask(__name__)
app.logger.handlers = logging.getLogger('gunicorn.error').handlers
app.logger.setLevel(logging.getLogger('gunicorn.error').level)

@app.route('/hello/<name>')
def hello(name):
    app.logger.info('hello %s from flask', name)
    app.logger.debug('not shown at info')
    try:
        1 / 0
    except ZeroDivisionError:
        app.logger.exception('caught')
    return 'hi ' + name
'''

    @unittest.skipUnless(server.module_available('flask'), 'python3-flask is not installed')
    def test_flask_idiom_puts_app_lines_in_the_error_log(self):
        srv = self.serve(self.FLASK_APP)
        pid = srv.worker_pid()
        r = srv.get('/hello/ann')
        self.assertEqual((r.status, r.body), (200, b'hi ann'))
        self.assertTrue(wait_for(lambda: 'caught' in srv.error_text()))
        text = srv.error_text()
        m = re.search('^' + PREFIX % 'INFO' + 'hello ann from flask$', text, re.M)
        self.assertTrue(m, text)
        self.assertEqual(int(m.group(1)), pid)
        self.assertNotIn('not shown at info', text)
        m = re.search('^' + PREFIX % 'ERROR' + r'caught\nTraceback \(most recent call last\):\n', text, re.M)
        self.assertTrue(m, text)
        self.assertIn('ZeroDivisionError: division by zero', text)

    def test_loggers_in_master_and_worker(self):
        conf = r'''
import logging

def when_ready(server):
    log = logging.getLogger('gunicorn.error')
    acc = logging.getLogger('gunicorn.access')
    log.info('master sees %d handler(s), access propagate=%s', len(log.handlers), acc.propagate)
    server.log.warning('server.log from when_ready')

def post_fork(server, worker):
    worker.log.info('worker.log from post_fork %s', worker.pid)
'''
        srv = self.serve(args=['-c', 'conf.py'], files={'conf.py': conf}, access_log=True)
        pid = srv.worker_pid()
        self.assertEqual(srv.get('/log').status, 200)
        self.assertTrue(wait_for(lambda: 'app line' in srv.error_text()))
        text = srv.error_text()
        self.assertRegex(text, '(?m)^' + (PREFIX % 'INFO') + r'master sees 1 handler\(s\), access propagate=False$')
        m = re.search('(?m)^' + (PREFIX % 'WARNING') + 'server.log from when_ready$', text)
        self.assertTrue(m, text)
        self.assertEqual(int(m.group(1)), srv.pid)
        m = re.search('(?m)^' + (PREFIX % 'INFO') + r'worker.log from post_fork (\d+)$', text)
        self.assertTrue(m, text)
        self.assertEqual(int(m.group(1)), pid)
        self.assertEqual(int(m.group(2)), pid)
        m = re.search('(?m)^' + (PREFIX % 'WARNING') + r'app line (\d+)$', text)
        self.assertEqual(int(m.group(2)), pid)
        access = self.wait_lines(srv.access_log_path, 1)
        self.assertRegex(access[0], r'^127\.0\.0\.1 - - \[.*\] "GET /log HTTP/1\.1" 200 5 "-" "-"$')


class LogConfigFiles(Base):
    INI = r'''
[loggers]
keys = root, error, access

[handlers]
keys = err, acc

[formatters]
keys = plain

[logger_root]
level = INFO
handlers =

[logger_error]
level = INFO
handlers = err
propagate = 0
qualname = gunicorn.error

[logger_access]
level = INFO
handlers = acc
propagate = 0
qualname = gunicorn.access

[handler_err]
class = FileHandler
formatter = plain
args = ('%(here)s/ini-error.log',)

[handler_acc]
class = FileHandler
formatter = plain
args = ('%(here)s/ini-access.log',)

[formatter_plain]
format = %(levelname)s|%(name)s|%(message)s
'''

    def test_ini_file_with_file_config_defaults(self):
        srv = Server(APP, files={'logging.ini': self.INI})
        srv._prepare()
        # %(here)s is the directory of the path as given (gunicorn's defaults).
        srv.args += ['--log-config', srv.path('logging.ini')]
        srv.start()
        self.addCleanup(srv.stop)
        pid = srv.worker_pid()
        for path in ('/a', '/log', '/b?x=1'):
            self.assertEqual(srv.get(path).status, 200)
        access = self.wait_lines(srv.path('ini-access.log'), 3)
        self.assertEqual(len(access), 3, access)
        for line, path in zip(access, ('/a', '/log', '/b?x=1')):
            self.assertRegex(line, r'^INFO\|gunicorn\.access\|127\.0\.0\.1 - - \[.*\] "GET %s HTTP/1\.1" 200 5 "-" "-"$'
                             % re.escape(path))
        errors = self.wait_lines(srv.path('ini-error.log'), 1)
        self.assertIn('INFO|gunicorn.error|Booting worker with pid: %d' % pid, errors)
        self.assertIn('WARNING|gunicorn.error|app line %d' % pid, errors)
        self.assertIn('INFO|gunicorn.error|Listening at: http://127.0.0.1:%d (%d)' % (srv.port, srv.pid), errors)

    def test_missing_log_config_is_a_start_up_error(self):
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(), '--log-config',
                                       '/nonexistent/logging.ini', 'app:app'], timeout=30)
        self.assertEqual(status, 1, err)
        self.assertIn("Error: log config '/nonexistent/logging.ini' not found", err)
        # --check-config says so too, and logconfig_dict makes the file unread.
        status, out, err = run_binary(['--check-config', '--log-config', '/nonexistent/logging.ini', 'app:app'],
                                      timeout=30)
        self.assertEqual(status, 1, err)
        self.assertIn("Error: log config '/nonexistent/logging.ini' not found", err)
        d = tempfile.mkdtemp(prefix='cunicorn-logconfig-')
        self.addCleanup(shutil.rmtree, d, True)
        server.write_file(os.path.join(d, 'app.py'), APP)
        server.write_file(os.path.join(d, 'conf.py'), "logconfig_dict = {'root': {'level': 'INFO'}}\n")
        status, out, err = run_binary(['--check-config', '-c', 'conf.py', '--log-config', '/nonexistent/logging.ini',
                                       'app:app'], timeout=30, cwd=d)
        self.assertEqual(status, 0, err)

    def test_logconfig_json_file(self):
        config = {
            'version': 1,
            'formatters': {'tagged': {'format': 'JSONCFG %(levelname)s %(message)s'}},
            'handlers': {
                'console': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout'},
                'acc': {'class': 'logging.FileHandler', 'formatter': 'tagged', 'filename': 'json-access.log'},
            },
            'loggers': {'gunicorn.access': {'level': 'INFO', 'handlers': ['acc'], 'propagate': False}},
        }
        srv = self.serve(args=['--log-config-json', 'logging.json'],
                         files={'logging.json': json.dumps(config)}, access_log=True)
        self.assertEqual(srv.get('/j').status, 200)
        access = self.wait_lines(srv.path('json-access.log'), 1)
        self.assertRegex(access[0], r'^JSONCFG INFO 127\.0\.0\.1 - - \[.*\] "GET /j HTTP/1\.1" 200 5 "-" "-"$')
        # gunicorn.error kept its handler on the error log.
        self.assertIn('Booting worker with pid', srv.error_text())


JSON_FORMATTER = r'''
import json
import logging

class JsonFormatter(logging.Formatter):
    """Reads the access atoms from record.args, as formatters written
    for gunicorn do."""

    def format(self, record):
        if isinstance(record.args, dict):
            a = record.args
            return json.dumps({'remote': a['h'], 'request': a['r'], 'status': a['s'], 'bytes': a['B'],
                               'agent': a['{user-agent}i'], 'xq': a['{x-q}o'], 'micros': a['D'],
                               'message': record.getMessage()})
        return json.dumps({'level': record.levelname, 'message': record.getMessage()})
'''

DICT_CONF = r'''
logconfig_dict = {
    'version': 1,
    'formatters': {'json': {'()': 'jsonfmt.JsonFormatter'}},
    'handlers': {
        'console': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout'},
        'acc': {'class': 'logging.FileHandler', 'formatter': 'json', 'filename': %(path)r},
        'err': {'class': 'logging.FileHandler', 'formatter': 'json', 'filename': 'dict-error.log'},
    },
    'loggers': {
        'gunicorn.access': {'level': 'INFO', 'handlers': ['acc'], 'propagate': False},
        'gunicorn.error': {'level': 'INFO', 'handlers': ['err'], 'propagate': False},
    },
}
'''


class LogConfigDict(Base):
    def test_json_formatter_reads_the_atoms(self):
        srv = self.serve(args=['-c', 'conf.py'], files={
            'conf.py': DICT_CONF % {'path': 'dict-access.log'}, 'jsonfmt.py': JSON_FORMATTER})
        pid = srv.worker_pid()
        r = srv.get('/q?x=1', headers=[('User-Agent', 'agent "007"')])
        self.assertEqual(r.status, 200)
        self.assertEqual(srv.get('/log').status, 200)
        access = [json.loads(line) for line in self.wait_lines(srv.path('dict-access.log'), 2)]
        self.assertEqual(len(access), 2)
        first = access[0]
        self.assertEqual((first['remote'], first['request'], first['status'], first['bytes']),
                         ('127.0.0.1', 'GET /q?x=1 HTTP/1.1', '200', 5))
        self.assertEqual(first['agent'], 'agent \\"007\\"')  # SafeAtoms escapes quotes
        self.assertEqual(first['xq'], 'a\\"b')
        self.assertIsInstance(first['micros'], int)
        self.assertIn('"GET /q?x=1 HTTP/1.1" 200 5 "-" "agent \\"007\\""', first['message'])
        errors = [json.loads(line) for line in self.wait_lines(srv.path('dict-error.log'), 1)]
        self.assertIn({'level': 'INFO', 'message': 'Booting worker with pid: %d' % pid}, errors)
        self.assertTrue(wait_for(lambda: any(e['message'] == 'app line %d' % pid
                                             for e in map(json.loads, lines_of(srv.path('dict-error.log'))))))
        # The error log file is no longer gunicorn.error's: nothing after start-up.
        self.assertNotIn('Booting worker', srv.error_text())

    @server.timeout(120)
    def test_hup_reapplies_a_changed_dict(self):
        srv = self.serve(args=['-c', 'conf.py'], files={
            'conf.py': DICT_CONF % {'path': 'first.log'}, 'jsonfmt.py': JSON_FORMATTER})
        old = srv.worker_pid()
        self.assertEqual(srv.get('/one').status, 200)
        self.wait_lines(srv.path('first.log'), 1)
        server.write_file(srv.path('conf.py'), DICT_CONF % {'path': 'second.log'})
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: any('Reloaded' in e['message']
                                             for e in map(json.loads, lines_of(srv.path('dict-error.log')))), 60))
        self.assertTrue(wait_for(lambda: not server.pid_alive(old), 60))
        self.assertEqual(srv.get('/two').status, 200)
        second = [json.loads(line) for line in self.wait_lines(srv.path('second.log'), 1)]
        self.assertEqual([a['request'] for a in second], ['GET /two HTTP/1.1'])
        first = [json.loads(line)['request'] for line in lines_of(srv.path('first.log'))]
        self.assertEqual(first, ['GET /one HTTP/1.1'])

    @server.timeout(120)
    def test_hup_with_a_broken_dict_keeps_the_running_one(self):
        srv = self.serve(args=['-c', 'conf.py'], files={
            'conf.py': DICT_CONF % {'path': 'kept.log'}, 'jsonfmt.py': JSON_FORMATTER})
        pid = srv.worker_pid()
        self.assertEqual(srv.get('/before').status, 200)
        self.wait_lines(srv.path('kept.log'), 1)
        # Fails in its last logger, once gunicorn.access has the new handler.
        broken = DICT_CONF.replace("'handlers': ['err']", "'handlers': ['nosuch']")
        self.assertNotEqual(broken, DICT_CONF)
        server.write_file(srv.path('conf.py'), broken % {'path': 'new.log'})
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: any('Reload failed' in e['message']
                                             for e in map(json.loads, lines_of(srv.path('dict-error.log')))), 60))
        self.assertEqual(srv.worker_pid(), pid)
        self.assertEqual(srv.get('/after').status, 200)
        # A worker forked now gets the master's logging: the running one.
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: srv.worker_pid() != pid, 60))
        self.assertEqual(srv.get('/respawned').status, 200)
        lines = self.wait_lines(srv.path('kept.log'), 3)
        self.assertEqual([json.loads(line)['request'] for line in lines],
                         ['GET /before HTTP/1.1', 'GET /after HTTP/1.1', 'GET /respawned HTTP/1.1'])
        self.assertEqual(lines_of(srv.path('new.log')), [])

    @server.timeout(120)
    def test_usr1_reopens_with_no_line_lost(self):
        srv = self.serve(args=['-c', 'conf.py', '-w', '2'], files={
            'conf.py': DICT_CONF % {'path': 'rot.log'}, 'jsonfmt.py': JSON_FORMATTER})
        srv.wait_workers(2)
        log, rotated = srv.path('rot.log'), srv.path('rot.log.1')
        sent = []
        stop = threading.Event()

        def client():
            n = 0
            while not stop.is_set() and n < 2000:
                path = '/r%d' % n
                if srv.get(path).status == 200:
                    sent.append(path)
                n += 1
        t = threading.Thread(target=client)
        t.start()
        try:
            self.assertTrue(wait_for(lambda: len(sent) >= 20, 60))
            os.rename(log, rotated)
            srv.send_signal(signal.SIGUSR1)
            self.assertTrue(wait_for(lambda: os.path.exists(log), 60))
            count = len(sent)
            self.assertTrue(wait_for(lambda: len(sent) >= count + 20, 60))
        finally:
            stop.set()
            t.join(120)
        self.assertFalse(t.is_alive())
        n = len(sent)
        wait_for(lambda: len(lines_of(rotated)) + len(lines_of(log)) >= n, 30)
        logged = [json.loads(line)['request'].split()[1] for line in lines_of(rotated) + lines_of(log)]
        self.assertEqual(sorted(logged), sorted(sent))
        self.assertGreater(len(lines_of(log)), 0)
        self.assertGreater(len(lines_of(rotated)), 0)


LOGGER_CLASS_CONF = r'''
from %(base)s import Logger

class MyLogger(Logger):
    def access(self, resp, req, environ, request_time):
        with open('custom-access.log', 'a') as f:
            f.write('%%s %%s %%s %%s %%s\n' %% (req.method, environ['PATH_INFO'], resp.status,
                                        resp.sent, request_time.total_seconds() >= 0))

    def info(self, msg, *args, **kwargs):
        Logger.info(self, 'MY ' + msg, *args, **kwargs)

logger_class = MyLogger

def post_fork(server, worker):
    worker.log.info('post_fork says %%s', type(worker.log).__name__)
'''


class LoggerClass(Base):
    def check_custom_class(self, base, env=None):
        srv = self.serve(args=['-c', 'conf.py'], files={'conf.py': LOGGER_CLASS_CONF % {'base': base}},
                         env=env)
        pid = srv.worker_pid()
        self.assertEqual(srv.get('/x').status, 200)
        self.assertEqual(srv.get('/y').status, 200)
        lines = self.wait_lines(srv.path('custom-access.log'), 2)
        self.assertEqual(lines, ['GET /x 200 OK 5 True', 'GET /y 200 OK 5 True'])
        self.assertTrue(wait_for(lambda: 'MY post_fork says MyLogger' in srv.error_text()))
        text = srv.error_text()
        self.assertRegex(text, '(?m)^' + (PREFIX % 'INFO') + 'MY Booting worker with pid: %d$' % pid)
        self.assertRegex(text, '(?m)^' + (PREFIX % 'INFO') + 'MY post_fork says MyLogger$')
        return srv

    def test_subclass_of_gunicorn_glogging_logger(self):
        self.check_custom_class('gunicorn.glogging')

    def test_subclass_of_the_built_in_logger(self):
        self.check_custom_class('cunicorn.glogging')

    def test_gunicorn_glogging_without_gunicorn_installed(self):
        # A package named gunicorn that fails to import stands for none.
        root = tempfile.mkdtemp(prefix='cunicorn-nogunicorn-')
        self.addCleanup(shutil.rmtree, root, True)
        os.makedirs(os.path.join(root, 'gunicorn'))
        server.write_file(os.path.join(root, 'gunicorn', '__init__.py'), 'raise ImportError("hidden")\n')
        self.check_custom_class('gunicorn.glogging', env={'PYTHONPATH': root})

    def test_a_failing_access_is_logged_and_the_request_served(self):
        conf = r'''
from cunicorn.glogging import Logger

class Broken(Logger):
    def access(self, resp, req, environ, request_time):
        raise ValueError('access broke on ' + environ['PATH_INFO'])

logger_class = Broken
'''
        srv = self.serve(args=['-c', 'conf.py'], files={'conf.py': conf})
        for _ in range(3):
            r = srv.get('/b')
            self.assertEqual((r.status, r.body), (200, b'hello'))
        self.assertTrue(wait_for(lambda: srv.error_text().count('ValueError: access broke on /b') == 3))
        self.assertRegex(srv.error_text(), '(?m)^' + (PREFIX % 'ERROR') +
                         r"Error in the logger class's access\(\)\nTraceback \(most recent call last\):")

    def test_unknown_class_is_a_start_up_error(self):
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(), '--logger-class',
                                       'nosuchmodule.Logger', 'app:app'], timeout=30)
        self.assertEqual(status, 1, err)
        self.assertIn("class uri 'nosuchmodule.Logger' invalid or not found", err)


class HookMetrics(Base):
    def test_log_extra_metric_reaches_statsd(self):
        from test_statsd import Datagrams, lines
        r = Datagrams()
        self.addCleanup(r.close)
        conf = r'''
def post_fork(server, worker):
    worker.log.info('', extra={'metric': 'app.booted', 'value': 1, 'mtype': 'counter'})
    worker.log.info('gauge set', extra={'metric': 'app.level', 'value': 2.5, 'mtype': 'gauge'})
    worker.log.debug('', extra={'metric': 'app.size', 'value': 7, 'mtype': 'histogram'})
    worker.log.log(20, '', extra={'metric': 'app.took', 'value': 12.5, 'mtype': 'timer'})
'''
        srv = self.serve(args=['-c', 'conf.py', '--statsd-host', r.address], files={'conf.py': conf})
        srv.worker_pid()
        want = ['app.booted:1|c|@1.0', 'app.level:2.5|g', 'app.size:7|h', 'app.took:12.5|ms']
        got = lines(r.collect(lambda got: all(w in lines(got) for w in want)))
        for w in want:
            self.assertIn(w, got)
        self.assertTrue(wait_for(lambda: 'gauge set' in srv.error_text()))
        # An empty message with a metric is not logged (statsd.py log()).
        self.assertNotRegex(srv.error_text(), r'(?m)\[INFO\] $')


JSON_APP = r'''
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Out', 'o"\\ut'),
                              ('X-Dup', 'one'), ('x-dup', 'two')])
    return [b'hello']
'''


class PathInfoAtom(Base):
    def test_u_is_path_info_decoded_without_script_name(self):
        # Gunicorn's atoms(): 'U' is environ['PATH_INFO'].
        srv = self.serve(JSON_APP, args=['--access-logformat', '%(U)s|%(r)s'], access_log=True,
                         env={'SCRIPT_NAME': '/app'})
        self.assertEqual(srv.get('/app/a%20b/%C3%A9').status, 200)
        lines = self.wait_lines(srv.access_log_path, 1)
        self.assertEqual(lines, ['/a b/\xc3\xa9|GET /app/a%20b/%C3%A9 HTTP/1.1'])


class JsonAccessLog(Base):
    def test_every_atom_and_hostile_values(self):
        srv = self.serve(JSON_APP, args=['--access-log-json', '--access-logformat', '%(h)s %({wsgi.url_scheme}e)s'],
                         access_log=True)
        pid = srv.worker_pid()
        conn = srv.connect()
        try:
            conn.send(b'GET /p%00a%22%5C%E2%82%AC/x?q=%22 HTTP/1.1\r\nHost: h\r\n'
                      b'User-Agent: evil "agent" \\ \t tab\r\n'
                      b'X-Bytes: caf\xc3\xa9 \xff\xfe end\r\n'
                      b'Referer: http://r/\x80\r\n'
                      b'Authorization: Basic dXNlcjpwdw==\r\n'
                      b'X-Dup: 1\r\nX-Dup: 2\r\n'
                      b'Connection: close\r\n\r\n')
            resp = conn.read_response('GET')
        finally:
            conn.close()
        self.assertEqual(resp.status, 200)
        lines = self.wait_lines(srv.access_log_path, 1)
        self.assertEqual(len(lines), 1)
        rec = json.loads(lines[0])
        self.assertEqual(rec['h'], '127.0.0.1')
        self.assertEqual(rec['l'], '-')
        self.assertEqual(rec['u'], 'user')
        self.assertRegex(rec['t'], r'^\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]$')
        self.assertEqual(rec['r'], 'GET /p%00a%22%5C%E2%82%AC/x?q=%22 HTTP/1.1')
        self.assertEqual(rec['s'], '200')
        self.assertEqual(rec['m'], 'GET')
        # PATH_INFO, as Gunicorn's atoms() gives it: decoded as latin-1.
        self.assertEqual(rec['U'], '/p\x00a"\\\xe2\x82\xac/x')
        self.assertEqual(rec['q'], 'q=%22')
        self.assertEqual(rec['H'], 'HTTP/1.1')
        self.assertEqual((rec['b'], rec['B']), ('5', 5))
        self.assertEqual(rec['f'], 'http://r/\x80')
        self.assertIn('http://r/\\u0080', lines[0])
        self.assertEqual(rec['a'], 'evil "agent" \\ \t tab')
        for k in ('T', 'D', 'M'):
            self.assertIsInstance(rec[k], int)
        self.assertRegex(rec['L'], r'^\d+\.\d{6}$')
        self.assertEqual(rec['p'], '<%d>' % pid)
        self.assertEqual(rec['i']['user-agent'], 'evil "agent" \\ \t tab')
        self.assertEqual(rec['i']['x-bytes'], 'caf\u00e9 \u00ff\u00fe end')
        self.assertIn('\\u00ff\\u00fe', lines[0])
        self.assertEqual(rec['i']['x-dup'], '2')
        self.assertEqual(rec['o']['x-out'], 'o"\\ut')
        self.assertEqual(rec['o']['x-dup'], 'two')
        self.assertEqual(rec['e'], {'wsgi.url_scheme': 'http'})
        self.assertNotIn('\t', lines[0])
