#
# This file is part of gunicorn released under the MIT license.
# See the NOTICE for more information.
#
# Only the function gunicorn/ctl/cli.py imports from gunicorn/config.py.

import os


def _get_default_control_socket():
    """Get default control socket path based on available directories.

    Prefers XDG_RUNTIME_DIR if available (standard on Linux, sometimes BSD),
    falls back to $HOME/.gunicorn/ directory.
    """
    # Prefer XDG_RUNTIME_DIR if available
    xdg_runtime = os.environ.get('XDG_RUNTIME_DIR')
    if xdg_runtime and os.path.isdir(xdg_runtime):
        return os.path.join(xdg_runtime, 'gunicorn.ctl')

    # Fall back to $HOME/.gunicorn/
    home = os.path.expanduser('~')
    gunicorn_dir = os.path.join(home, '.gunicorn')
    return os.path.join(gunicorn_dir, 'gunicorn.ctl')
