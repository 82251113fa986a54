"""gunicorn/debug.py's Spew as debug.spew() installs it (every module, no
values): "module:lineno: source line" on stdout for each line run.

Code without __file__ (the server's own files here) prints as "[unknown]".
Unlike gunicorn's, it never raises into the traced code: a frame without
source or a stdout that fails only costs the line.
"""
import linecache


def spew(frame, event, arg):
    if event != 'line':
        return spew
    lineno = frame.f_lineno
    filename = frame.f_globals.get('__file__')
    if isinstance(filename, str):
        if filename.endswith(('.pyc', '.pyo')):
            filename = filename[:-1]
        name = frame.f_globals.get('__name__', '[unknown]')
        line = linecache.getline(filename, lineno)
    else:
        name = '[unknown]'
        line = (linecache.getline(frame.f_code.co_filename, lineno) or
                'Unknown code named [%s].  VM instruction #%d' % (frame.f_code.co_name, frame.f_lasti))
    try:
        print('%s:%s: %s' % (name, lineno, line.rstrip()))
    except (OSError, ValueError):
        pass
    return spew
