"""Application loading as gunicorn's util.import_app and
pasterapp.get_wsgi_app do: "module", "module:name", "module:factory(literal
args)", a PasteDeploy ini file, and the stand-in app of a --reload worker
whose code has a syntax error.

Run once per process by src/pyembed.cpp; its AppImportError is what the
worker turns into exit code 4 (an unusable app), any other exception while
importing into exit code 3.
"""
import ast
import importlib
import inspect
import os
import re

class AppImportError(Exception):
    pass

def _parse(obj):
    try:
        expr = ast.parse(obj.strip(), mode="eval").body
    except SyntaxError:
        raise AppImportError("Failed to parse %r as an attribute name or function call." % obj)
    if isinstance(expr, ast.Name):
        return expr.id, None, None
    if isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name):
            raise AppImportError("Function reference must be a simple name: %r" % obj)
        try:
            args = [ast.literal_eval(a) for a in expr.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}
        except ValueError:
            raise AppImportError("Failed to parse arguments as literal values: %r" % obj)
        return expr.func.id, args, kwargs
    raise AppImportError("Failed to parse %r as an attribute name or function call." % obj)

def import_app(uri):
    module, _, obj = uri.partition(":")
    if not obj:
        obj = "application"
    name, args, kwargs = _parse(obj)
    try:
        mod = importlib.import_module(module)
    except ImportError:
        if module.endswith(".py") and os.path.exists(module):
            msg = "Failed to find application, did you mean '%s:%s'?"
            raise ImportError(msg % (module.rsplit(".", 1)[0], obj))
        raise
    try:
        app = getattr(mod, name)
    except AttributeError:
        raise AppImportError("Failed to find attribute %r in %r." % (name, module))
    if args is not None:
        try:
            app = app(*args, **kwargs)
        except TypeError as e:
            if e.__traceback__.tb_next is None:
                raise AppImportError("The function %r in %r cannot be called with these arguments: %s" % (name, module, e))
            raise
    if app is None:
        raise AppImportError("Failed to find application object: %r" % obj)
    return _check_app(app, uri)

def _check_app(app, uri):
    if not callable(app):
        raise AppImportError("Application object must be callable.")
    # An ASGI application called as WSGI returns a coroutine that nothing
    # awaits: refused here, as an app that cannot be served. A class is
    # left alone (calling it makes an instance); inspect sees through
    # functools.partial and bound methods.
    if inspect.iscoroutinefunction(app):
        how = "an async def callable"
    elif not inspect.isclass(app) and inspect.iscoroutinefunction(getattr(type(app), "__call__", None)):
        how = "its __call__ is async def"
    else:
        return app
    raise AppImportError("Application object %r is an ASGI application (%s); cunicorn serves WSGI "
                         "applications only (Gunicorn's -k asgi worker is not implemented)" % (uri, how))

def paste_global_conf(raw_global_conf):
    # gunicorn's Config.paste_global_conf: KEY=VALUE, "\=" escapes "=".
    global_conf = {}
    for e in raw_global_conf:
        try:
            k, v = re.split(r'(?<!\\)=', e, maxsplit=1)
        except ValueError:
            raise RuntimeError("raw_paste_global_conf: %r is not KEY=VALUE (--paste-global)" % e)
        global_conf[k.replace('\\=', '=')] = v.replace('\\=', '=')
    return global_conf

def load_paste_app(uri, raw_global_conf):
    # pasterapp.get_wsgi_app, the ini file path naming a "config:" URI.
    global_conf = paste_global_conf(raw_global_conf)
    from paste.deploy import loadapp
    if ':' not in uri:
        uri = "config:%s" % uri
    app = loadapp(uri, name=None, relative_to=os.getcwd(), global_conf=global_conf)
    if app is None:
        raise AppImportError("Failed to find application object in %r" % uri)
    return _check_app(app, uri)

def make_fail_app(msg):
    msg = msg.encode("utf-8", "replace")
    def app(environ, start_response):
        start_response("500 Internal Server Error", [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(msg)))])
        return [msg]
    return app
