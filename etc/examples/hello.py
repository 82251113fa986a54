"""The smallest WSGI application: cunicorn --chdir etc/examples hello:app

Also works under Gunicorn (gunicorn --chdir etc/examples hello:app).
"""


def app(environ, start_response):
    """Answer every request with a greeting and the path asked for."""
    body = ('Hello from %s\npath: %s\n' % (
        environ.get('SERVER_SOFTWARE', 'a WSGI server'),
        environ.get('PATH_INFO', '/'))).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]


# "hello" alone (without ":app") looks for the name "application".
application = app
