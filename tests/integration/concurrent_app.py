"""The application the worker-class tests (test_gthread, test_gevent) serve:
requests that wait together, hold until released, get stuck, stream a
flood, or report what the worker class gave them. The tests copy it into
their server's directory (as app.py); it is not a test module itself."""

import os
import socket
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# What the application saw when it was imported: under gevent, patched
# modules already.
SOCKET_AT_IMPORT = socket.socket.__module__
SLEEP_AT_IMPORT = time.sleep.__module__
cond = threading.Condition()
inside = 0
high = 0
produced = 0


def touch(name):
    open(os.path.join(HERE, name), 'w').close()


def gather(want):
    """Waits (bounded) until `want` requests are in the application at
    once; returns the high-water mark."""
    global inside, high
    with cond:
        inside += 1
        high = max(high, inside)
        cond.notify_all()
        cond.wait_for(lambda: inside >= want, timeout=60)
    time.sleep(0.1)
    with cond:
        inside -= 1
    return high


def hold_counted(want):
    """Holds the request until the test creates the file "release"; the
    file "all-inside" says when `want` requests are held."""
    global inside
    with cond:
        inside += 1
        if inside == want:
            touch('all-inside')
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(HERE, 'release')) and time.monotonic() < deadline:
        time.sleep(0.05)
    with cond:
        inside -= 1


def hold_named(name):
    """Holds the request until the test creates the file release-NAME
    (bounded)."""
    release = os.path.join(HERE, 'release-' + name)
    for _ in range(600):
        if os.path.exists(release):
            break
        time.sleep(0.05)


def flood(start_response):
    """64 MiB in 1 MiB blocks, counting what the server took."""
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])

    def blocks():
        global produced
        for _ in range(64):
            produced += 1
            yield b'x' * (1 << 20)
    return blocks()


def read_with_timeout(environ):
    """A gevent.Timeout of the application's, thrown while wsgi.input waits
    for the client, reaches the application."""
    import gevent
    try:
        with gevent.Timeout(1):
            environ['wsgi.input'].read()
        return b'read all'
    except gevent.Timeout:
        return b'timed out'


def app(environ, start_response):
    path = environ['PATH_INFO']
    if path.startswith('/gather/'):
        body = str(gather(int(path.rsplit('/', 1)[1]))).encode()
    elif path == '/hold':
        hold_counted(int(environ['QUERY_STRING']))
        body = b'released'
    elif path.startswith('/hold/'):
        hold_named(path.rsplit('/', 1)[1])
        body = b'held'
    elif path == '/stuck':
        touch('stuck')
        touch('stuck-%d' % threading.get_ident())
        time.sleep(30)
        body = b'late'
    elif path == '/flood':
        return flood(start_response)
    elif path == '/multithread':
        body = repr((environ['wsgi.multithread'], environ['wsgi.multiprocess'])).encode()
    elif path == '/thread':
        body = repr(threading.current_thread() is threading.main_thread()).encode()
    elif path == '/backend':
        import gevent
        body = gevent.get_hub().loop.backend.encode()
    elif path == '/patched':
        body = ('%s %s' % (SOCKET_AT_IMPORT, SLEEP_AT_IMPORT)).encode()
    elif path == '/fetch':
        # Waits on a (patched) socket: the backend answers only once every
        # request of the round is waiting on it.
        with urllib.request.urlopen('http://127.0.0.1:%s/' % environ['QUERY_STRING'], timeout=60) as r:
            body = r.read()
    elif path == '/echo':
        body = environ['wsgi.input'].read()
    elif path == '/read-timeout':
        body = read_with_timeout(environ)
    elif path == '/slow':
        time.sleep(1)
        body = b'slow'
    elif path == '/pid':
        body = str(os.getpid()).encode()
    elif path == '/produced':
        body = str(produced).encode()
    elif path == '/big':
        # One list body larger than a socket buffer takes at once.
        body = bytes(range(256)) * (16 * 1024)
    else:
        body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
