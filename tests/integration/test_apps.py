"""Real frameworks served by the binary with two workers: Flask and Django
(Debian's python3-flask and python3-django)."""

import hashlib
import unittest
import urllib.parse

import server
from server import Server, build_request

FLASK_APP = r'''
import hashlib
from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.route('/')
def index():
    return 'flask index'


@app.route('/json/<int:n>')
def as_json(n):
    return jsonify(n=n, square=n * n, args=request.args.to_dict())


@app.route('/form', methods=['POST'])
def form():
    return jsonify(name=request.form['name'], tags=request.form.getlist('tag'))


@app.route('/upload', methods=['POST'])
def upload():
    f = request.files['file']
    data = f.read()
    return jsonify(filename=f.filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get('note'))


@app.route('/stream')
def stream():
    def gen():
        for i in range(5):
            yield 'line %d\n' % i
    return Response(stream_with_context(gen()), mimetype='text/plain')


@app.route('/error')
def error():
    raise RuntimeError('flask-error-marker')
'''

DJANGO_APP = r'''
import hashlib, json, os, sys

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY='cunicorn-test-not-secret',
    ALLOWED_HOSTS=['*'],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        'django.middleware.common.CommonMiddleware',
        'django.middleware.csrf.CsrfViewMiddleware',
    ],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
    LOGGING_CONFIG=None,
)

import django
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def index(request):
    return HttpResponse('django index', content_type='text/plain')


def as_json(request, n):
    return JsonResponse({'n': n, 'square': n * n, 'args': request.GET.dict(),
                         'method': request.method})


@csrf_exempt
def form(request):
    if request.method != 'POST':
        return HttpResponse(status=405)
    return JsonResponse({'name': request.POST['name'], 'tags': request.POST.getlist('tag')})


@csrf_exempt
def upload(request):
    f = request.FILES['file']
    data = f.read()
    return JsonResponse({'filename': f.name, 'size': len(data),
                         'sha256': hashlib.sha256(data).hexdigest(),
                         'note': request.POST.get('note')})


def protected(request):
    return HttpResponse('should need a CSRF token')


def error(request):
    raise RuntimeError('django-error-marker')


urlpatterns = [
    path('', index),
    path('json/<int:n>', as_json),
    path('form', form),
    path('upload', upload),
    path('protected', protected),
    path('error', error),
]

application = get_wsgi_application()
'''


def multipart(fields, files, boundary='----cunicorn-boundary-7d93b1'):
    """Encode a multipart/form-data body: fields [(name, value)],
    files [(name, filename, bytes)]."""
    out = []
    for name, value in fields:
        out.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                    % (boundary, name, value)).encode())
    for name, filename, data in files:
        out.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: application/octet-stream\r\n\r\n'
                    % (boundary, name, filename)).encode() + data + b'\r\n')
    out.append(('--%s--\r\n' % boundary).encode())
    return b''.join(out), 'multipart/form-data; boundary=%s' % boundary


def upload_data(n):
    block = hashlib.sha256(b'upload').digest() * 4096          # 128 KiB
    return (block * (n // len(block) + 1))[:n]


_shared = server.SharedServers()
tearDownModule = _shared.stop


def get_server(name):
    def make():
        if name == 'flask':
            return Server(FLASK_APP, ['--workers', '2'], module='flaskapp', appname='flaskapp:app')
        return Server(DJANGO_APP, ['--workers', '2'], module='djangoapp', appname='djangoapp')
    return _shared.get(name, make)


class FrameworkTests:
    name = None

    @property
    def srv(self):
        return get_server(self.name)

    def test_index(self):
        r = self.srv.get('/')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, ('%s index' % self.name).encode())

    def test_json(self):
        r = self.srv.get('/json/12?a=b&c=%20d')
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header('Content-Type').startswith('application/json'))
        d = r.json()
        self.assertEqual((d['n'], d['square'], d['args']), (12, 144, {'a': 'b', 'c': ' d'}))

    def test_form_post(self):
        body = urllib.parse.urlencode([('name', 'J\u00fcrgen & co'), ('tag', 'a'),
                                       ('tag', 'b')]).encode()
        r = self.srv.request('POST', '/form', body=body, headers=[
            ('Content-Type', 'application/x-www-form-urlencoded')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {'name': 'J\u00fcrgen & co', 'tags': ['a', 'b']})

    def test_multipart_upload(self):
        data = upload_data(3 * 1024 * 1024 + 17)
        body, ctype = multipart([('note', 'three megabytes')], [('file', 'big.bin', data)])
        r = self.srv.request('POST', '/upload', body=body, headers=[('Content-Type', ctype)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {'filename': 'big.bin', 'size': len(data),
                                    'sha256': hashlib.sha256(data).hexdigest(),
                                    'note': 'three megabytes'})

    def test_404(self):
        r = self.srv.get('/no/such/page')
        self.assertEqual(r.status, 404)

    def test_500(self):
        r = self.srv.get('/error')
        self.assertEqual(r.status, 500)
        self.assertNotIn(b'error-marker', r.body)   # no traceback leaks to clients
        marker = '%s-error-marker' % self.name
        ok = server.wait_for(lambda: marker in self.srv.log_text(), 10)
        self.assertTrue(ok, 'the exception is not logged:\n' + self.srv.log_text()[-2000:])
        # The workers keep serving.
        self.assertEqual(self.srv.get('/').status, 200)

    def test_two_workers(self):
        self.srv.wait_workers(2)

    def test_keepalive_requests(self):
        conn = self.srv.connect()
        try:
            for i in range(3):
                conn.send(build_request('GET', '/json/%d' % i))
                r = conn.read_response()
                self.assertIsNotNone(r, 'closed after %d requests' % i)
                self.assertEqual(r.json()['n'], i)
        finally:
            conn.close()


class Flask(FrameworkTests, unittest.TestCase):
    name = 'flask'

    def test_streaming_response(self):
        r = self.srv.get('/stream')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b''.join(b'line %d\n' % i for i in range(5)))
        self.assertEqual(r.header('Transfer-Encoding'), 'chunked')

    # Django reads CONTENT_LENGTH to parse a body: chunked uploads are Flask only.
    def test_multipart_upload_chunked(self):
        data = upload_data(1024 * 1024 + 5)
        body, ctype = multipart([('note', 'chunked')], [('file', 'c.bin', data)])
        pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        r = self.srv.request('POST', '/upload', body=server.chunked(pieces), headers=[
            ('Content-Type', ctype), ('Transfer-Encoding', 'chunked')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()['sha256'], hashlib.sha256(data).hexdigest())


class Django(FrameworkTests, unittest.TestCase):
    name = 'django'

    def test_csrf_enforced_without_exemption(self):
        r = self.srv.request('POST', '/protected', body=b'a=1', headers=[
            ('Content-Type', 'application/x-www-form-urlencoded')])
        self.assertEqual(r.status, 403)

    def test_head(self):
        r = self.srv.request('HEAD', '/')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'')


if __name__ == '__main__':
    unittest.main()
