#!/usr/bin/python3
"""Test runner: the unit-test binary, then the integration tests.

    tests/run.py --binary ./cunicorn --unit tests/unit/unit-tests
                 [--sanitized] [-k PATTERN]... [--jobs N] [--extra-args=ARGS]
                 [--budget SECS] [--list] [-v]

The unit binary prints TAP and a last line "unit: N passed, N failed".
Integration tests are the unittest modules tests/integration/test_*.py; each
module runs in a child process (a pool of --jobs of them, 2 by default), every
test under a deadline (SIGALRM in the child: 120 s unless the test sets
another with server.timeout(); a crashed or hung child is restarted after the
test it was in).  One line per test is printed as it ends, then the details
of every failure, and last exactly "N passed, N failed" (unit + integration).
Exit status 0 only when nothing failed.

Bounds, so that a broken server cannot stall the suite: after 3 consecutive
failures that each took 10 s or more (a server that stopped answering), the
rest of that module fails at once without running, except the first test of
each class, which probes (a pass resets the count); and when the whole run
exceeds --budget seconds (600 by default, 780 with --sanitized; 0 = none),
the tests not yet run are reported as failed.

Long tests, those that declare a deadline of 300 s or more with
server.timeout() (the 1 GiB uploads, 10,000 requests, valgrind), are a tier
of their own: they run after every other test, each bounded by its own
deadline only, outside --budget, so that a slow machine spending longer on
them cannot fail the rest of the suite, nor them, for want of time.

--binary may be any server with Gunicorn's command line: run the suite
against Debian's gunicorn with --binary /usr/bin/gunicorn (and
--extra-args="-k gthread --threads 4" for the keep-alive tests).
--sanitized (an ASan/UBSan build) multiplies deadlines by 3, skips memory
measurements, sets the sanitizers' options (LeakSanitizer on; see
sanitizer_environment) and fails any test whose server, or command-line
run, printed a sanitizer report.

Use Debian's /usr/bin/python3; the tests need only its standard library.
"""

import argparse
import faulthandler
import fnmatch
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEGRATION = os.path.join(ROOT, 'tests', 'integration')
DEFAULT_TIMEOUT = 120
LONG_TEST = 300            # a declared deadline from which a test is in the long tier
SLOW_FAILURE = 10          # seconds: a failure this slow suggests a dead server
BREAKER_COUNT = 3          # consecutive slow failures before the module gives up
# Longest modules first, so that the pool workers finish together.
# Worker-class passes: these modules run a second time with the options
# added to every server they start, their test ids suffixed with the pass
# name, so that the suites cover every class without being copied. Only
# against cunicorn and without --extra-args (which picks one class itself);
# --no-class-passes leaves them out.
PROTOCOL_SUITES = ['test_wsgi_validate', 'test_http', 'test_conformance', 'test_smuggling', 'test_tls',
                   'test_hooks', 'test_streaming', 'test_rfc9112']
# What the application sees beside the protocol: real Flask and Django
# apps, proxy headers, and the access log and StatsD figures each request
# leaves, which the gthread and gevent workers write from other threads
# and greenlets.
APPLICATION_SUITES = ['test_apps', 'test_proxies', 'test_request_head', 'test_logging', 'test_statsd']
CLASS_PASSES = [
    ('gthread', '-k gthread --threads 4', PROTOCOL_SUITES + APPLICATION_SUITES),
    ('gevent', '-k gevent', PROTOCOL_SUITES + APPLICATION_SUITES),
]
# greenlet switches between greenlets by copying their C stacks, without
# telling AddressSanitizer (__sanitizer_start_switch_fiber), whose stack
# redzones then belong to another greenlet's frames: every report would be
# false. The gevent class is tested in the normal build only.
NOT_SANITIZED_PASSES = {'gevent'}

MODULE_ORDER = ['test_load', 'test_conformance', 'test_master', 'test_apps',
                'test_http', 'test_cli', 'test_wsgi_validate']


def matches(test_id, patterns):
    if not patterns:
        return True
    for p in patterns:
        if any(c in p for c in '*?['):
            if fnmatch.fnmatchcase(test_id, p if p.startswith('*') else '*' + p + '*'):
                return True
        elif p in test_id:
            return True
    return False


# ---------------------------------------------------------------------------
# child: runs one module, reports JSON lines on the original stdout

class TestTimeout(BaseException):
    """Raised in the test by SIGALRM. BaseException so that a broad
    "except Exception" in a test cannot swallow it; unittest records it."""


def declared_timeout(test):
    """The deadline a test declares with server.timeout(), in seconds."""
    method = getattr(test, getattr(test, '_testMethodName', ''), None)
    return getattr(method, 'test_timeout', DEFAULT_TIMEOUT)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class ChildResult(unittest.TestResult):
    def __init__(self, proto, slow):
        super().__init__()
        self.proto = proto
        self.slow = slow
        self.cur = None
        self.slow_failures = 0      # consecutive
        self.last_class = None

    def emit(self, **kw):
        self.proto.write(json.dumps(kw) + '\n')
        self.proto.flush()

    def _timeout_of(self, test):
        return int(declared_timeout(test) * self.slow)

    def startTest(self, test):
        super().startTest(test)
        import server
        server.reset_test_tracking()
        t = self._timeout_of(test)
        self.cur = {'id': test.id(), 'start': time.monotonic(), 'status': 'ok',
                    'details': []}
        self.emit(event='start', id=test.id(), timeout=t)
        probe = type(test) is not self.last_class
        self.last_class = type(test)
        # Once tripped, only the first test of each class runs (it may have a
        # server of its own); the others fail at once until a test passes.
        if self.slow_failures >= BREAKER_COUNT and not probe:
            # Fail at once: the server stopped answering in earlier tests.
            msg = ('not run: %d tests in a row before this one failed after %d s or more '
                   '(the server does not answer)' % (self.slow_failures, SLOW_FAILURE))

            def skip_body():
                raise AssertionError(msg)
            test.setUp = lambda: None
            test.tearDown = lambda: None
            setattr(test, test._testMethodName, skip_body)
            return

        def on_alarm(signum, frame):
            # Leave 30 s for tearDown to stop the servers, then fire again.
            signal.alarm(int(30 * self.slow))
            raise TestTimeout('test exceeded its %d s deadline' % t)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(t)
        # Backstop when even SIGALRM cannot get through: dump and exit.
        faulthandler.dump_traceback_later(t + 90 * self.slow, exit=True)

    def _fail(self, test, err):
        if self.cur is None or self.cur['id'] != test.id():
            # Error outside a test: setUpClass, tearDownModule, ...
            self.emit(event='fixture', id=test.id() if hasattr(test, 'id') else str(test),
                      status='FAIL', details=self._exc_text(err))
            return
        self.cur['status'] = 'FAIL'
        self.cur['details'].append(self._exc_text(err))

    def _exc_text(self, err):
        text = ''.join(traceback.format_exception(*err))
        try:
            import server
            report = server.debug_report()
        except Exception:
            report = ''
        return text + ('\n' + report if report else '')

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.cur['status'] = 'FAIL'
            self.cur['details'].append('subtest %s\n%s' % (subtest.id(), self._exc_text(err)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self.cur is not None and self.cur['id'] == test.id():
            self.cur['status'] = 'skip'
            self.cur['details'].append(reason)
        else:
            self.emit(event='fixture', id=test.id(), status='skip', details=reason)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.cur['status'] = 'FAIL'
        self.cur['details'].append('unexpected success')

    def stopTest(self, test):
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        import server
        reports = server.take_sanitizer_reports()
        if reports:
            self.cur['status'] = 'FAIL'
            self.cur['details'].append('sanitizer report:\n' + '\n'.join(reports))
        secs = time.monotonic() - self.cur['start']
        if self.cur['status'] == 'FAIL' and secs >= SLOW_FAILURE * self.slow:
            self.slow_failures += 1
        elif self.cur['status'] == 'ok':
            self.slow_failures = 0
        self.emit(event='end', id=test.id(), status=self.cur['status'], secs=secs,
                  details='\n'.join(self.cur['details']))
        self.cur = None
        super().stopTest(test)


def child_main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('module')
    ap.add_argument('--after', default=None)
    ap.add_argument('--slow-failures', type=int, default=0)
    ap.add_argument('-k', action='append', default=[])
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--tier', choices=('all', 'normal', 'long'), default='all')
    a = ap.parse_args(argv)
    proto = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)                     # stray prints must not corrupt the protocol
    sys.stdout = sys.stderr
    sys.path.insert(0, INTEGRATION)
    os.chdir(ROOT)
    slow = 3 if os.environ.get('CUNICORN_TEST_SANITIZED') == '1' else 1
    result = ChildResult(proto, slow)
    result.slow_failures = a.slow_failures
    try:
        suite = unittest.TestLoader().loadTestsFromName(a.module)
    except Exception:
        result.emit(event='fixture', id=a.module, status='FAIL',
                    details=traceback.format_exc())
        return 1
    tests = [t for t in iter_tests(suite) if matches(t.id(), a.k)]
    long_ids = [t.id() for t in tests if declared_timeout(t) >= LONG_TEST]
    if a.tier != 'all':
        tests = [t for t in tests if (t.id() in long_ids) == (a.tier == 'long')]
    if a.after:
        ids = [t.id() for t in tests]
        if a.after in ids:
            tests = tests[ids.index(a.after) + 1:]
    if a.list:
        for t in tests:
            result.emit(event='list', id=t.id())
        return 0
    result.emit(event='plan', ids=[t.id() for t in tests],
                long=long_ids if a.tier == 'normal' else [])
    import server
    try:
        unittest.TestSuite(tests).run(result)
    finally:
        signal.alarm(0)
        server.stop_all_servers()
    reports = server.take_sanitizer_reports()
    if reports:
        result.emit(event='fixture', id=a.module + ' (servers stopped at module end)',
                    status='FAIL', details='sanitizer report:\n' + '\n'.join(reports))
    return 0


# ---------------------------------------------------------------------------
# parent

class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []            # (name, details)

    def record(self, status, name, secs, details=''):
        with self.lock:
            if status == 'ok':
                self.passed += 1
                tag = 'ok  '
            elif status == 'skip':
                self.skipped += 1
                tag = 'skip'
            else:
                self.failed += 1
                tag = 'FAIL'
                self.failures.append((name, details))
            line = '%s %7.2fs  %s' % (tag, secs, name)
            if status == 'skip' and details:
                line += '  (%s)' % details.strip().splitlines()[0][:100]
            print(line, flush=True)


def run_unit(path, patterns, totals, sanitized, verbose):
    if not path:
        return
    if not os.path.exists(path):
        totals.record('FAIL', 'unit: %s' % path, 0, 'unit test binary not found: %s' % path)
        return
    argv = [os.path.abspath(path)]
    if patterns:
        argv.append(patterns[0])
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=600 * (3 if sanitized else 1))
        out, status = p.stdout.decode('utf-8', 'replace'), p.returncode
    except subprocess.TimeoutExpired as e:
        out, status = (e.stdout or b'').decode('utf-8', 'replace'), None
    secs = time.monotonic() - t0
    lines = out.splitlines()
    summary = None
    for line in lines:
        if line.startswith('unit: ') and ' passed, ' in line:
            summary = line
    ok = sum(1 for l in lines if l.startswith('ok '))
    bad = sum(1 for l in lines if l.startswith('not ok '))
    if summary:
        try:
            parts = summary[len('unit: '):].split(',')
            ok = int(parts[0].split()[0])
            bad = int(parts[1].split()[0])
        except (IndexError, ValueError):
            pass
    # Failing tests with their diagnostics (the "#" lines after them).
    details = []
    current = None
    for line in lines:
        if line.startswith('not ok '):
            current = [line]
            details.append(current)
        elif line.startswith('ok ') or line.startswith('1..'):
            current = None
            if verbose:
                print('  ' + line)
        elif current is not None:
            current.append(line)
    with totals.lock:
        totals.passed += ok
        totals.failed += bad
        for d in details:
            totals.failures.append(('unit ' + d[0], '\n'.join(d)))
    clean = summary is not None and (status == 0 or bad > 0)
    print('%s %7.2fs  unit: %d passed, %d failed' % (
        'ok  ' if clean and not bad else 'FAIL', secs, ok, bad), flush=True)
    if not clean:
        # Crashed (sanitizer abort, signal) or timed out before the summary.
        totals.record('FAIL', 'unit: %s (exit status %s, no clean summary)' % (path, status),
                      secs, '\n'.join(lines[-60:]))


class Children:
    """Child runners alive now, so that a signal or the budget can end them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}                # pid -> registry path
        self.stopping = threading.Event()

    def add(self, p, reg):
        with self.lock:
            self.live[p.pid] = reg

    def remove(self, p):
        with self.lock:
            self.live.pop(p.pid, None)

    def kill_all(self):
        with self.lock:
            items = list(self.live.items())
        for pid, reg in items:
            try:
                os.killpg(pid, signal.SIGKILL)     # the child leads its own session
            except OSError:
                pass
            cleanup_registry(reg)


CHILDREN = Children()


def cleanup_registry(path):
    """Kill process groups a child started and did not stop (crash, timeout)."""
    sys.path.insert(0, INTEGRATION)
    import server
    started = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == 'start':
                    started[int(parts[1])] = True
                elif len(parts) >= 2 and parts[0] == 'stop':
                    started.pop(int(parts[1]), None)
    except (OSError, ValueError):
        return []
    killed = []
    for pgid in started:
        if server.kill_group(pgid, signal.SIGKILL):
            killed.append(pgid)
    return killed


def run_module(module, args, env, totals, deadline, tier='all', label=''):
    """Run one module's tests of a tier in child processes until all have
    reported. Returns the ids of the long tests the normal tier left out.
    `label` (a class pass) is appended to the ids the results are recorded
    under."""
    record = totals.record
    if label:
        def record(status, tid, secs, details=''):
            totals.record(status, '%s [%s]' % (tid, label), secs, details)
    after = None
    long_ids = []
    slow_failures = 0
    planned = None
    done = set()
    while True:
        if CHILDREN.stopping.is_set():
            return long_ids
        reg = tempfile.NamedTemporaryFile(prefix='cunicorn-reg-', delete=False)
        reg.close()
        errf = tempfile.TemporaryFile()
        cenv = dict(env, CUNICORN_TEST_REGISTRY=reg.name)
        argv = [sys.executable, os.path.abspath(__file__), '--child', module,
                '--slow-failures', str(slow_failures)]
        if after:
            argv += ['--after', after]
        if args.list:
            argv.append('--list')
        argv += ['--tier', tier]
        for k in args.k:
            argv += ['-k', k]
        p = subprocess.Popen(argv, cwd=ROOT, env=cenv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=errf, start_new_session=True)
        CHILDREN.add(p, reg.name)
        lines = queue.Queue()

        def reader():
            for raw in p.stdout:
                lines.put(raw)
            lines.put(None)
        threading.Thread(target=reader, daemon=True).start()
        inflight = None
        inflight_timeout = DEFAULT_TIMEOUT * (3 if args.sanitized else 1)
        last_line = time.monotonic()
        why_killed = None
        while True:
            try:
                raw = lines.get(timeout=1.0)
            except queue.Empty:
                raw = b''
            now = time.monotonic()
            if why_killed is None:
                if deadline and now > deadline:
                    why_killed = 'the suite exceeded its time budget (--budget)'
                elif CHILDREN.stopping.is_set():
                    why_killed = 'the runner was interrupted'
                elif now - last_line > inflight_timeout + 180:
                    # The child enforces each deadline itself; this is the backstop.
                    why_killed = 'hung (killed by the runner)'
                if why_killed:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
            if raw == b'':
                continue
            if raw is None:
                break
            last_line = now
            try:
                ev = json.loads(raw.decode('utf-8', 'replace'))
            except ValueError:
                continue
            if ev['event'] == 'plan':
                if planned is None:
                    planned = ev['ids']
                    long_ids = ev.get('long', [])
            elif ev['event'] == 'start':
                inflight = (ev['id'], now)
                inflight_timeout = ev.get('timeout', DEFAULT_TIMEOUT)
            elif ev['event'] == 'end':
                inflight = None
                after = ev['id']
                done.add(ev['id'])
                if ev['status'] == 'FAIL' and ev['secs'] >= SLOW_FAILURE * (
                        3 if args.sanitized else 1):
                    slow_failures += 1
                elif ev['status'] == 'ok':
                    slow_failures = 0
                record(ev['status'], ev['id'], ev['secs'], ev.get('details', ''))
            elif ev['event'] == 'fixture':
                record(ev['status'], ev['id'] + ' [fixture]', 0, ev.get('details', ''))
            elif ev['event'] == 'list':
                print(ev['id'] + (' [%s]' % label if label else ''), flush=True)
        status = p.wait()
        CHILDREN.remove(p)
        errf.seek(0)
        errtext = errf.read().decode('utf-8', 'replace')
        errf.close()
        killed = cleanup_registry(reg.name)
        os.unlink(reg.name)
        tail = '\n'.join(errtext.splitlines()[-60:])
        if inflight is not None:
            tid, t0 = inflight
            why = why_killed or 'child exited with %s' % status
            record('FAIL', tid, time.monotonic() - t0,
                          '%s during this test%s\n--- child stderr (tail)\n%s' % (
                              why, '; killed leftover server groups %s' % killed
                              if killed else '', tail))
            done.add(tid)
            after = tid
            slow_failures += 1
        if why_killed and why_killed != 'hung (killed by the runner)':
            for tid in planned or []:
                if tid not in done:
                    record('FAIL', tid, 0, 'not run: %s' % why_killed)
            return long_ids
        if inflight is not None:
            continue                    # restart after the test that broke
        if status != 0:
            record('FAIL', module + ' [child exit status %s]' % status, 0, tail)
        elif args.verbose and errtext.strip():
            print('--- %s stderr\n%s' % (module, errtext), flush=True)
        return long_ids


def sanitizer_environment(env):
    """Options for an ASan+UBSan build, ahead of those already in the
    environment (of two settings, the later wins): ASan stops at the first
    error, UBSan prints the stack, and LeakSanitizer checks every process
    as it exits; tests/sanitizer/lsan.cpp, linked into the build, makes
    that work for cunicorn's workers and holds the suppressions."""
    for name, options in (('ASAN_OPTIONS', 'detect_leaks=1:abort_on_error=1'),
                          ('UBSAN_OPTIONS', 'print_stacktrace=1')):
        env[name] = options + (':' + env[name] if env.get(name) else '')


def main():
    if sys.argv[1:2] == ['--child']:
        return child_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--binary', required=True, help='server binary (cunicorn or gunicorn)')
    ap.add_argument('--unit', help='unit test binary (TAP output)')
    ap.add_argument('--sanitized', action='store_true',
                    help='ASan/UBSan build: longer deadlines, fail on sanitizer reports')
    ap.add_argument('-k', action='append', default=[],
                    help='only tests whose id contains PATTERN (or fnmatch it)')
    ap.add_argument('--jobs', type=int, default=2, help='modules run in parallel (2)')
    ap.add_argument('--extra-args', default='',
                    help='options added to every server command line; write '
                         '--extra-args="-k gthread" (with =) when they start with -')
    ap.add_argument('--budget', type=float, default=None,
                    help='seconds for the whole run; tests not run by then fail '
                         '(600, 780 with --sanitized; 0 = none)')
    ap.add_argument('--list', action='store_true', help='list test ids and exit')
    ap.add_argument('--no-class-passes', action='store_true',
                    help='skip the worker-class passes (CLASS_PASSES)')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    if args.budget is None:
        args.budget = 780 if args.sanitized else 600

    binary = os.path.abspath(args.binary)
    env = dict(os.environ)
    env['CUNICORN_TEST_BINARY'] = binary
    env['CUNICORN_TEST_EXTRA_ARGS'] = args.extra_args
    env['CUNICORN_TEST_SANITIZED'] = '1' if args.sanitized else '0'
    if args.sanitized:
        sanitizer_environment(env)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env.pop('CUNICORN_TEST_FLAVOR', None)
    os.environ.update(env)
    sys.path.insert(0, INTEGRATION)
    import server
    env['CUNICORN_TEST_FLAVOR'] = server.flavor()

    modules = sorted(f[:-3] for f in os.listdir(INTEGRATION)
                     if f.startswith('test_') and f.endswith('.py'))
    modules.sort(key=lambda m: MODULE_ORDER.index(m) if m in MODULE_ORDER else len(MODULE_ORDER))
    totals = Totals()
    # Work items: (module, tier, pass label, environment).
    items = [(m, '', env) for m in modules]
    if not args.extra_args and not args.no_class_passes and env['CUNICORN_TEST_FLAVOR'] == 'cunicorn':
        for label, extra, names in CLASS_PASSES:
            if args.sanitized and label in NOT_SANITIZED_PASSES:
                print('# class pass %s: not under the sanitizers (see NOT_SANITIZED_PASSES)' % label)
                continue
            penv = dict(env, CUNICORN_TEST_EXTRA_ARGS=extra)
            items += [(m, label, penv) for m in modules if m in names]
    if args.list:
        for m, label, menv in items:
            run_module(m, args, menv, totals, None, label=label)
        return 0

    def on_signal(signum, frame):
        CHILDREN.stopping.set()
        CHILDREN.kill_all()
        print('\ninterrupted by signal %d' % signum, flush=True)
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t0 = time.monotonic()
    deadline = t0 + args.budget if args.budget else None
    print('# binary %s (%s)%s' % (binary, env['CUNICORN_TEST_FLAVOR'],
                                  ' extra args: ' + args.extra_args if args.extra_args else ''),
          flush=True)
    run_unit(args.unit, args.k, totals, args.sanitized, args.verbose)

    # The normal tier of every module first, under the budget; a module's
    # long tests are queued behind them when its normal tier names some.
    work = queue.Queue()
    if os.path.isfile(binary) and os.access(binary, os.X_OK):
        for m, label, menv in items:
            work.put((m, 'normal', label, menv))
    else:
        totals.record('FAIL', 'integration tests', 0,
                      'server binary not found or not executable: %s' % binary)

    state = threading.Lock()
    running = [work.qsize()]    # normal tiers not finished (each may queue a long one)
    long_secs = [0.0]

    def busy_normal():
        with state:
            return running[0] > 0

    def worker():
        while True:
            try:
                m, tier, label, menv = work.get_nowait()
            except queue.Empty:
                if not busy_normal():
                    return
                time.sleep(0.2)     # a module's normal tier may still queue its long tests
                continue
            try:
                if tier == 'normal':
                    try:
                        if run_module(m, args, menv, totals, deadline, 'normal', label):
                            work.put((m, 'long', label, menv))
                    finally:
                        with state:
                            running[0] -= 1
                else:
                    t_long = time.monotonic()
                    run_module(m, args, menv, totals, None, 'long', label)
                    with state:
                        long_secs[0] += time.monotonic() - t_long
            except Exception:
                totals.record('FAIL', m + (' [%s]' % label if label else '') + ' [runner error]', 0,
                              traceback.format_exc())
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)              # stay responsive to signals

    for name, details in totals.failures:
        print('\n' + '=' * 70)
        print('FAIL: %s' % name)
        print('-' * 70)
        print(details.rstrip())
    print()
    if totals.skipped:
        print('# %d skipped' % totals.skipped)
    print('# %.1f s%s' % (time.monotonic() - t0,
                          ' (long tests: %.1f s, outside --budget)' % long_secs[0] if long_secs[0] else ''))
    print('%d passed, %d failed' % (totals.passed, totals.failed), flush=True)
    return 0 if totals.failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
