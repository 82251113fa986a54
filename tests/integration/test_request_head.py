"""The request head stays whole while the application reads a large body.

The worker reads a body larger than its input buffer from the socket while
the application runs, which refills the buffer the head was parsed from;
what the server reads of the request afterwards (HEAD, for the response's
framing; method and target, for the error log) must still be the request's.
The body arrives after a pause, so that it cannot come with the head.
"""

import socket
import time
import unittest

import server

BODY = b'Z' * 300000

APP = r'''
def app(environ, start_response):
    environ['wsgi.input'].read()
    if environ['PATH_INFO'] == '/raise':
        raise RuntimeError('raised after reading the body')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
    return [b'hello']
'''


def exchange(srv, method, path):
    """Sends a request with BODY in two steps; returns every byte until close."""
    with socket.create_connection(srv.address, timeout=server.IO_TIMEOUT) as s:
        s.sendall(b'%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n'
                  % (method, path, len(BODY)))
        time.sleep(0.2)
        s.sendall(BODY)
        return server.read_until_closed(s)


class HeadAfterBody(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = server.Server(app=APP).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_head_response_has_no_body_after_a_large_request_body(self):
        data = exchange(self.srv, b'HEAD', b'/head')
        head, sep, rest = data.partition(b'\r\n\r\n')
        self.assertTrue(head.startswith(b'HTTP/1.1 200'), data[:200])
        self.assertEqual(sep, b'\r\n\r\n')
        self.assertEqual(rest, b'')  # RFC 9110 9.3.2

    def test_error_log_names_the_request_after_a_large_body(self):
        mark = self.srv.log_mark()
        data = exchange(self.srv, b'POST', b'/raise')
        self.assertTrue(data.startswith(b'HTTP/1.1 500'), data[:200])
        self.assertTrue(server.wait_for(lambda: 'raised after reading' in self.srv.log_since(mark),
                                        timeout=10 * server.SLOW))
        self.assertIn('Error handling request POST /raise', self.srv.log_since(mark))


if __name__ == '__main__':
    unittest.main()
