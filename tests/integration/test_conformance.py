"""The request-parsing corpus (tests/data/conformance) over real sockets.

One server per distinct sample "config" (started on first use), running an
app that reads wsgi.input fully and answers with its environ as JSON.

valid/NAME          the wire in one write; every request's environ matches
valid/NAME_segmented  the same wire in random-size pieces with short pauses
invalid/NAME        error status line, Connection: close, text/html, right
                    Content-Length, then the connection closes (status null:
                    a 400 like that, or nothing at all -- never the app's 200)
invalid/NAME_exact  the error reply is byte-for-byte gunicorn's ("response")

Against gunicorn's sync worker only the first request of a pipelined wire
is answered (it closes every connection); cunicorn must answer each request
until one that asks to close.
"""

import glob
import json
import os
import random
import re
import unittest
import urllib.parse

import server
from server import CONFORMANCE_DIR, Server


# Every sample is a small request: a server silent this long is not answering.
IO_TIMEOUT = 10


def _flag(name):
    return lambda v: [name] if v else []


# gunicorn setting name -> command-line options
CONFIG_FLAGS = {
    'limit_request_line': lambda v: ['--limit-request-line', str(v)],
    'limit_request_fields': lambda v: ['--limit-request-fields', str(v)],
    'limit_request_field_size': lambda v: ['--limit-request-field_size', str(v)],
    'permit_obsolete_folding': _flag('--permit-obsolete-folding'),
    'strip_header_spaces': _flag('--strip-header-spaces'),
    'permit_unconventional_http_method': _flag('--permit-unconventional-http-method'),
    'permit_unconventional_http_version': _flag('--permit-unconventional-http-version'),
    'casefold_http_method': _flag('--casefold-http-method'),
    'permit_missing_host': _flag('--permit-missing-host'),
    'header_map': lambda v: ['--header-map', v],
    # A bare --proxy-protocol means "auto" (and is gunicorn 20's boolean flag).
    'proxy_protocol': lambda v: (['--proxy-protocol'] if v in (True, 'auto')
                                 else ['--proxy-protocol', str(v)]),
    'proxy_allow_ips': lambda v: ['--proxy-allow-from',
                                  v if isinstance(v, str) else ','.join(v)],
    'forwarded_allow_ips': lambda v: ['--forwarded-allow-ips',
                                      v if isinstance(v, str) else ','.join(v)],
}


def config_args(config):
    args = []
    for key in sorted(config):
        if key not in CONFIG_FLAGS:
            raise KeyError('no command-line translation for config %r' % key)
        args += CONFIG_FLAGS[key](config[key])
    # Keep an option after flags with an optional value (--proxy-protocol),
    # so that the app URI is never taken as that value.
    return args + ['--workers', '1']


def load_stricter():
    """stricter.json: samples whose Gunicorn behaviour RFC 9112 forbids."""
    with open(os.path.join(os.path.dirname(CONFORMANCE_DIR), 'stricter.json')) as f:
        return json.load(f)


def apply_stricter(sample, stricter):
    """Runs a listed sample with permit_missing_host, or replaces its
    recorded expectation with cunicorn's; against Gunicorn, as recorded."""
    if server.is_gunicorn():
        return sample
    key = '%s/%s' % (sample['kind'], sample['name'])
    if key in stricter['permit_missing_host']['samples']:
        sample['config'] = dict(sample['config'], permit_missing_host=True)
    override = stricter['expect'].get(key, {})
    sample.update({k: v for k, v in override.items() if k not in ('rfc', 'why')})
    return sample


def load_samples():
    samples = []
    stricter = load_stricter()
    for kind in ('valid', 'invalid'):
        for path in sorted(glob.glob(os.path.join(CONFORMANCE_DIR, kind, '*.json'))):
            with open(path) as f:
                samples.append(apply_stricter(json.load(f), stricter))
    return samples


_shared = server.SharedServers()
tearDownModule = _shared.stop


def get_server(config):
    return _shared.get(json.dumps(config, sort_keys=True), lambda: Server(server.ECHO_APP, config_args(config)))


# ---------------------------------------------------------------------------
# expectations

def expected_environ_headers(headers):
    """Mirror gunicorn's wsgi.create(): HTTP_* keys, '-' -> '_', duplicates
    joined with ',', CONTENT-TYPE/CONTENT-LENGTH without the HTTP_ prefix."""
    env = {}
    for name, value in headers:
        if name == 'CONTENT-TYPE':
            env['CONTENT_TYPE'] = value
            continue
        if name == 'CONTENT-LENGTH':
            env['CONTENT_LENGTH'] = value
            continue
        key = 'HTTP_' + name.replace('-', '_')
        if key in env:
            value = '%s,%s' % (env[key], value)
        env[key] = value
    return env


def received_headers(env):
    return {k: v for k, v in env.items()
            if k.startswith('HTTP_') or k in ('CONTENT_TYPE', 'CONTENT_LENGTH')}


def wants_close(req):
    """gunicorn Message.should_close() for a request of the corpus."""
    for name, value in req['headers']:
        if name == 'TRANSFER-ENCODING':
            codings = [c.strip().lower() for c in value.split(',')]
            if any(c in ('gzip', 'deflate', 'compress', 'x-gzip') for c in codings):
                return True
    for name, value in req['headers']:
        if name == 'CONNECTION':
            v = value.strip().lower()
            if v == 'close':
                return True
            if v == 'keep-alive':
                return False
            break
    return tuple(req['version']) < (1, 1)


def body_cut_short(req):
    for name, value in req['headers']:
        if name == 'CONTENT-LENGTH':
            return int(value) > len(req['body'].encode('latin-1'))
    return False


def expected_responses(reqs):
    """How many responses a keep-alive server sends for this wire."""
    for i, req in enumerate(reqs):
        if wants_close(req):
            return i + 1
    return len(reqs)


def parse_reply(data):
    """(status line, headers dict lower-cased, body) of an error reply."""
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        raise AssertionError('no complete response head in %r' % data[:500])
    lines = head.split(b'\r\n')
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b':')
        headers.setdefault(name.strip().lower().decode('latin-1'), []).append(
            value.strip().decode('latin-1'))
    return lines[0].decode('latin-1'), headers, body


# ---------------------------------------------------------------------------
# checks

class ConformanceCase(unittest.TestCase):
    maxDiff = 4000
    config = {}

    def roundtrip_invalid(self, sample):
        srv = get_server(self.config)
        conn = srv.connect(timeout=IO_TIMEOUT)
        try:
            try:
                conn.send(sample['wire'].encode('latin-1'))
            except OSError:
                pass        # the server may answer and close before the end
            conn.shutdown_write()
            try:
                data = conn.read_until_close()
            except OSError as e:
                self.fail('connection not closed by the server (%s); got %r'
                          % (e, conn.buf[:500]))
            return data
        finally:
            conn.close()

    def check_invalid(self, sample):
        data = self.roundtrip_invalid(sample)
        status = sample['status']
        if status is None:
            if not data:
                return
            # A 400 for a framing error found before the response started.
            line, headers, body = parse_reply(data)
            self.assertTrue(line.startswith('HTTP/1.1 400 '),
                            'expected nothing or a 400, got %r' % data[:500])
        else:
            line, headers, body = parse_reply(data)
            self.assertEqual(line, 'HTTP/1.1 %d %s' % (status, sample['reason']),
                             'reply: %r' % data[:500])
        self.assertEqual(headers.get('connection'), ['close'], 'reply: %r' % data[:500])
        self.assertEqual(headers.get('content-type'), ['text/html'], 'reply: %r' % data[:500])
        self.assertEqual(headers.get('content-length'), [str(len(body))],
                         'reply: %r' % data[:500])
        # Content-Length covers every byte up to the close: nothing (such as
        # the app's 200) follows the error page.

    def check_invalid_exact(self, sample):
        data = self.roundtrip_invalid(sample)
        self.assertEqual(data.decode('latin-1'), sample['response'])

    def check_valid(self, sample, segmented):
        srv = get_server(self.config)
        reqs = sample['requests']
        wire = sample['wire'].encode('latin-1')
        conn = srv.connect(timeout=IO_TIMEOUT)
        try:
            try:
                if segmented:
                    conn.send_segmented(wire, random.Random(sample['name']))
                else:
                    conn.send(wire)
            except OSError:
                if not server.is_gunicorn():
                    raise           # gunicorn sync closes after the first answer
            if body_cut_short(reqs[-1]):
                # valid/099: the body ends with the connection, before its
                # Content-Length; the app gets what arrived.
                conn.shutdown_write()
            count = expected_responses(reqs)
            got = []
            for req in reqs[:count]:
                resp = conn.read_response(req['method'])
                if resp is None:
                    break
                got.append(resp)
            need = 1 if server.is_gunicorn() else count
            self.assertGreaterEqual(len(got), need, 'responses for %d requests: %r'
                                    % (len(reqs), got))
            for i, resp in enumerate(got):
                self.compare(resp, reqs[i], i)
            if len(got) == count and wants_close(reqs[count - 1]):
                self.assertTrue(conn.wait_closed(10), 'connection left open after '
                                'a request that asked to close')
        finally:
            conn.close()

    def compare(self, resp, req, i):
        where = 'request %d' % i
        self.assertEqual(resp.status, 200, '%s: %r' % (where, resp))
        env = resp.json()
        self.assertEqual(env['REQUEST_METHOD'], req['method'], where)
        self.assertEqual(env['RAW_URI'], req['uri']['raw'], where)
        self.assertEqual(env['QUERY_STRING'], req['uri']['query'], where)
        # The path is latin-1 text standing for bytes (PEP 3333). Gunicorn
        # itself unquotes the latin-1 *string* (unquote_to_bytes encodes it as
        # UTF-8 first), so raw non-ASCII bytes reach its apps twice encoded:
        # valid/027 fails against gunicorn on purpose.
        self.assertEqual(env['PATH_INFO'], urllib.parse.unquote_to_bytes(
            req['uri']['path'].encode('latin-1')).decode('latin-1'), where)
        self.assertEqual(env['SERVER_PROTOCOL'], 'HTTP/%d.%d' % tuple(req['version']), where)
        self.assertEqual(received_headers(env), expected_environ_headers(req['headers']), where)
        self.assertEqual(env['body'], req['body'], where)
        pp = req.get('proxy_protocol_info')
        if pp:
            self.assertEqual(env.get('PROXY_PROTOCOL'), pp['proxy_protocol'], where)
            self.assertEqual(env.get('REMOTE_ADDR'), pp['client_addr'], where)
            self.assertEqual(env.get('REMOTE_PORT'), str(pp['client_port']), where)
            self.assertEqual(env.get('PROXY_ADDR'), pp['proxy_addr'], where)
            self.assertEqual(env.get('PROXY_PORT'), str(pp['proxy_port']), where)


def _ident(text):
    return re.sub(r'[^0-9A-Za-z]+', '_', text).strip('_')


def _class_name(config):
    if not config:
        return 'Conformance_defaults'
    parts = []
    for k in sorted(config):
        v = config[k]
        parts.append(k if v is True else '%s_%s' % (k, v if not isinstance(v, list)
                                                     else '_'.join(map(str, v))))
    return 'Conformance_' + _ident('__'.join(parts)).replace('__', '_')


def _build():
    groups = {}
    for sample in load_samples():
        key = json.dumps(sample['config'], sort_keys=True)
        groups.setdefault(key, (sample['config'], []))[1].append(sample)
    classes = {}
    for key, (config, samples) in sorted(groups.items()):
        attrs = {'config': config}
        for s in samples:
            base = 'test_%s_%s' % (s['kind'], _ident(s['name']))
            if s['kind'] == 'valid':
                attrs[base] = lambda self, s=s: self.check_valid(s, False)
                attrs[base + '_segmented'] = lambda self, s=s: self.check_valid(s, True)
            else:
                attrs[base] = lambda self, s=s: self.check_invalid(s)
                if s['status'] is not None:
                    attrs[base + '_exact'] = lambda self, s=s: self.check_invalid_exact(s)
        name = _class_name(config)
        classes[name] = type(name, (ConformanceCase,), attrs)
    return classes


globals().update(_build())

if __name__ == '__main__':
    unittest.main()
