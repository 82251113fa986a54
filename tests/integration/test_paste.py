"""PasteDeploy applications (--paste, --paste-global; reference a.2, a.3,
a.4): the ini file and the app factory are written by each test, and the
factory's app answers with the global_conf and local_conf it was made
with, so a test sees which section was loaded and what reached it.

As gunicorn's WSGIApplication: --paste on the command line names the app
(a positional APP_MODULE is ignored) and the processes (the ini file); a
missing ini file is a start-up error (status 1); a missing section or a
--paste-global without "=" fails in the worker, which stops the server as
an app that cannot be imported does (status 3). The paste setting given
only in a config file makes the positional app URI a PasteDeploy one.
"""

import os
import re
import shutil
import signal
import tempfile
import unittest

import server
from server import Server, run_binary, write_file

FACTORY = r'''
import json


def make_app(global_conf, **local_conf):
    def app(environ, start_response):
        body = json.dumps({'global': global_conf, 'local': local_conf}).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    return app
'''

INI = r'''
[app:main]
paste.app_factory = factory:make_app
section = main

[app:other]
paste.app_factory = factory:make_app
section = other
'''

LOGGERS = r'''
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(message)s
'''


@unittest.skipUnless(server.module_available('paste.deploy'), "Debian's python3-pastedeploy is not installed (make deps)")
class Paste(unittest.TestCase):
    def serve(self, args, appname=None, files=None):
        srv = Server(None, args, appname=appname,
                     files=dict({'factory.py': FACTORY, 'app.ini': INI}, **(files or {})))
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def made_with(self, srv):
        resp = srv.get('/')
        self.assertEqual(resp.status, 200, resp)
        return resp.json()

    def test_main_section_by_default_positional_app_ignored(self):
        # gunicorn's init() returns before looking at the positional app.
        srv = self.serve(['--paste', 'app.ini'], appname='no_such_module:app')
        made = self.made_with(srv)
        self.assertEqual(made['local'], {'section': 'main'})
        self.assertEqual(made['global']['__file__'], srv.path('app.ini'))
        self.assertEqual(made['global']['here'], srv.tmpdir)

    def test_name_after_hash_picks_the_section(self):
        srv = self.serve(['--paste', 'app.ini#other'])
        self.assertEqual(self.made_with(srv)['local'], {'section': 'other'})

    def test_paste_global_values_reach_global_conf(self):
        srv = self.serve(['--paster', 'app.ini#other',
                          '--paste-global', 'COLOR=blue', '--paste-global', 'A\\=B=x=y',
                          '--paste-global', 'EMPTY='])
        made = self.made_with(srv)
        self.assertEqual(made['local'], {'section': 'other'})
        g = made['global']
        self.assertEqual((g.get('COLOR'), g.get('A=B'), g.get('EMPTY')), ('blue', 'x=y', ''), g)

    def test_paste_in_config_file_loads_the_positional_uri(self):
        # Only --paste on the command line names the app; from a file the
        # setting makes the app URI a PasteDeploy one.
        srv = self.serve(['-c', 'conf.py'], appname='app.ini#other',
                         files={'conf.py': "paste = 'app.ini'\nraw_paste_global_conf = ['FROM=file']\n"})
        made = self.made_with(srv)
        self.assertEqual(made['local'], {'section': 'other'})
        self.assertEqual(made['global'].get('FROM'), 'file')

    def test_hup_loads_the_edited_ini_file(self):
        srv = self.serve(['--paste', 'app.ini#other'])
        old = srv.worker_pid()
        write_file(srv.path('app.ini'), INI.replace('section = other', 'section = edited'))
        srv.send_signal(signal.SIGHUP)
        ok = server.wait_for(lambda: server.children(srv.pid) and old not in server.children(srv.pid), 30)
        self.assertTrue(ok, server.tail(srv.log_text()))
        self.assertEqual(self.made_with(srv)['local'], {'section': 'edited'})

    def test_preloaded(self):
        srv = self.serve(['--paste', 'app.ini#other', '--preload', '--paste-global', 'P=1'])
        made = self.made_with(srv)
        self.assertEqual((made['local'], made['global'].get('P')), ({'section': 'other'}, '1'))


@unittest.skipUnless(server.module_available('paste.deploy'), "Debian's python3-pastedeploy is not installed (make deps)")
class PasteConfig(unittest.TestCase):
    def tmpdir(self, ini=INI):
        d = tempfile.mkdtemp(prefix='cunicorn-paste-')
        self.addCleanup(shutil.rmtree, d, True)
        write_file(os.path.join(d, 'factory.py'), FACTORY)
        write_file(os.path.join(d, 'app.ini'), ini)
        return d

    def print_config(self, d, *args):
        status, out, err = run_binary(['--print-config'] + list(args), cwd=d)
        self.assertEqual(status, 0, err)
        return dict(re.findall(r'^([a-z_0-9]+)\s*= (.*)$', out, re.M))

    def test_processes_named_after_the_ini_file(self):
        d = self.tmpdir()
        values = self.print_config(d, '--paste', 'app.ini#other', '--paste-global', 'K=V')
        self.assertEqual(values['default_proc_name'], os.path.join(d, 'app.ini'))
        self.assertEqual(values['paste'], 'app.ini#other')
        self.assertEqual(values['raw_paste_global_conf'], "['K=V']")
        self.assertEqual(values['logconfig'], 'None')

    def test_loggers_section_becomes_logconfig(self):
        d = self.tmpdir(INI + LOGGERS)
        values = self.print_config(d, '--paste', 'app.ini')
        self.assertEqual(values['logconfig'], os.path.join(d, 'app.ini'))

    def test_missing_ini_is_a_startup_error(self):
        d = self.tmpdir()
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(), '--paste', 'missing.ini#main'],
                                      cwd=d)
        self.assertEqual(status, 1, err)
        self.assertRegex(err, r"Error: '%s' not found" % re.escape(os.path.join(d, 'missing.ini')))
        self.assertNotIn('Booting worker', out + err)

    def check_boot_failure(self, args, reason_re):
        d = self.tmpdir()
        srv = Server(None, args, cwd=d)
        srv.spawn()
        self.addCleanup(srv.stop)
        status = srv.wait_exit(30)
        text = server.read_text(srv.error_log)
        self.assertEqual(status, 3, server.tail(text))
        self.assertRegex(text, reason_re)
        self.assertIn('Worker failed to boot.', text)

    def test_missing_section_stops_the_server(self):
        self.check_boot_failure(['--paste', 'app.ini#nosuch'], r"LookupError: No section 'nosuch'")

    def test_paste_global_without_equals_stops_the_server(self):
        self.check_boot_failure(['--paste', 'app.ini', '--paste-global', 'NOEQUALS'], r"'NOEQUALS'")

    def test_check_config_loads_the_paste_app(self):
        d = self.tmpdir()
        status, _, err = run_binary(['--check-config', '--paste', 'app.ini#other'], cwd=d)
        self.assertEqual(status, 0, err)
        status, _, err = run_binary(['--check-config', '--paste', 'app.ini#nosuch'], cwd=d)
        self.assertEqual(status, 1, err)
        self.assertIn("No section 'nosuch'", err)


if __name__ == '__main__':
    unittest.main()
