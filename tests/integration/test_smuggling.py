"""Request smuggling defences over a real socket, one test per case.

Every refused request is sent in one packet with a second, well-formed
request behind it (a smuggling attempt).  Each test checks the exact status
(and Gunicorn's message where the reference gives one), that the answer
says Connection: close and the connection is closed right after it, that
exactly one response came back, and that the application never saw the
smuggled request: the app notes every request it gets in a file before it
reads the body.  A control test shows that a well-formed pipelined request
does reach that file.

The relaxation settings (permit_obsolete_folding, strip_header_spaces,
permit_unconventional_http_method/_version, casefold_http_method,
header_map) each have a test showing what they let through, and cunicorn's
own limits (limit_request_header_size, limit_request_body) theirs.

Where cunicorn follows RFC 9112 rather than Gunicorn the test says so.
Gunicorn sends nothing for a malformed chunked body (it closes); cunicorn
answers 400 first, as RFC 9112 section 6.3 prefers, so those tests are
cunicorn-only.
"""

import html
import socket
import threading
import unittest

import server
from server import Server

APP = r'''
import json, os

HERE = os.path.dirname(os.path.abspath(__file__))
SEEN = os.path.join(HERE, 'seen')


def app(environ, start_response):
    # Noted before the body is read, so that a smuggled request shows here
    # even when reading its body fails.
    with open(SEEN, 'a') as f:
        f.write('%s %s\n' % (environ['REQUEST_METHOD'], environ['RAW_URI']))
    if environ['PATH_INFO'] == '/noread':
        body = b''
    else:
        body = environ['wsgi.input'].read()
    out = json.dumps({
        'method': environ['REQUEST_METHOD'], 'path': environ['PATH_INFO'],
        'query': environ['QUERY_STRING'], 'protocol': environ['SERVER_PROTOCOL'],
        'body': body.decode('latin-1'),
        'headers': {k: v for k, v in environ.items() if k.startswith('HTTP_')},
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(out)))])
    return [out]
'''

_shared = server.SharedServers()
tearDownModule = _shared.stop


def get_server(*args, access_log=False):
    args = ('--workers', '1') + args
    return _shared.get(args, lambda: Server(APP, list(args), access_log=access_log))


def seen(srv):
    """The request lines ("METHOD RAW_URI") the app has been called with."""
    return server.read_text(srv.path('seen')).splitlines()


cunicorn_only = unittest.skipIf(server.is_gunicorn(), 'cunicorn answers where Gunicorn differs')

POST = 'POST / HTTP/1.1\r\nHost: x\r\n'
TE_CHUNKED = POST + 'Transfer-Encoding: chunked\r\n\r\n'
TE_HDR = "Invalid HTTP Header: 'TRANSFER-ENCODING'"
CL_HDR = "Invalid HTTP Header: 'CONTENT-LENGTH'"


def b(text):
    return text.encode('latin-1')


class Case(unittest.TestCase):
    """Sends a request with a smuggled one behind it; the assertions."""

    args = ()

    def srv(self):
        return get_server(*self.args)

    def smuggled_path(self):
        return '/smuggled-' + self._testMethodName

    def smuggled(self):
        return b('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % self.smuggled_path())

    def refused(self, raw, status, message=None, srv=None):
        """raw, then a smuggled request, in one packet: only raw is answered,
        with `status` (and `message` in the page), then the connection
        closes and the app never sees the smuggled request."""
        srv = srv or self.srv()
        conn = srv.connect()
        try:
            conn.send(b(raw) + self.smuggled())
            resp = conn.read_response()
            self.assertIsNotNone(resp, 'closed without an answer')
            self.assertEqual(resp.status, status, resp)
            if message is not None:
                self.assertIn(b(html.escape(message)), resp.body)
            self.assertTrue(resp.has_token('Connection', 'close'), resp)
            self.assertTrue(conn.wait_closed(10), 'connection left open after the answer')
            self.assertEqual(conn.buf, b'', 'more than one response')
        finally:
            conn.close()
        self.assertNotIn('GET ' + self.smuggled_path(), seen(srv))
        return resp

    def answered(self, raw, srv=None):
        """raw alone on a fresh connection: its 200 response as JSON."""
        srv = srv or self.srv()
        conn = srv.connect()
        try:
            conn.send(b(raw))
            resp = conn.read_response()
        finally:
            conn.close()
        self.assertIsNotNone(resp, 'closed without an answer')
        self.assertEqual(resp.status, 200, resp)
        return resp.json()


class Control(Case):
    def test_pipelined_request_reaches_the_app(self):
        # Without this, "never saw the smuggled request" could hold for a
        # broken reason: a well-formed one behind a good request is served.
        srv = self.srv()
        conn = srv.connect()
        try:
            conn.send(b(POST + 'Content-Length: 2\r\n\r\nok') + self.smuggled())
            first, second = conn.read_response(), conn.read_response()
        finally:
            conn.close()
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertEqual(second.json()['path'], self.smuggled_path())
        self.assertIn('GET ' + self.smuggled_path(), seen(srv))


class TransferEncoding(Case):
    # CVE-2024-1135: Gunicorn took the last of several Transfer-Encoding
    # values; chunked must be the final coding and appear once.
    def test_cve_2024_1135_chunked_twice_in_one_field(self):
        self.refused(POST + 'Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 400, TE_HDR)

    def test_cve_2024_1135_chunked_in_two_fields(self):
        self.refused(POST + 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
                     400, TE_HDR)

    def test_cve_2024_1135_identity_after_chunked(self):
        self.refused(POST + 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n',
                     400, TE_HDR)

    # CVE-2024-6827: an unknown coding made Gunicorn fall back to
    # Content-Length, which a front end honouring TE reads differently.
    def test_cve_2024_6827_unknown_coding_does_not_fall_back_to_length(self):
        resp = self.refused(POST + 'Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', 501,
                            "Unsupported transfer coding: 'xchunked'")
        self.assertEqual(resp.reason, 'Bad Request')  # Gunicorn's reason phrase with 501

    def test_cve_2024_6827_length_and_chunked(self):
        self.refused(POST + 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, CL_HDR)

    def test_cve_2024_6827_chunked_then_length(self):
        self.refused(POST + 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', 400, CL_HDR)

    def test_chunked_in_http10(self):
        # RFC 9112 6.1: chunked framing from an HTTP/1.0 client cannot be trusted.
        self.refused('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, TE_HDR)

    def test_chunked_not_last(self):
        self.refused(POST + 'Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400, TE_HDR)

    def test_empty_coding(self):
        self.refused(POST + 'Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n', 501,
                     "Unsupported transfer coding: 'chunked,'")

    @cunicorn_only
    def test_nbsp_after_chunked(self):
        # RFC 9112 7: a coding is a token. Gunicorn's str.strip() drops
        # U+00A0 and reads "chunked\xa0" as chunked; here it is unknown.
        self.refused(POST + 'Transfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n', 501,
                     "Unsupported transfer coding: 'chunked\\xa0'")

    @cunicorn_only
    def test_nel_before_chunked(self):
        # U+0085 likewise (RFC 9112 7, not Gunicorn).
        self.refused(POST + 'Transfer-Encoding: \x85chunked\r\n\r\n0\r\n\r\n', 501,
                     "Unsupported transfer coding: '\\x85chunked'")

    def test_vertical_tab_after_chunked(self):
        # A control character makes the field itself invalid (RFC 9110 5.5).
        self.refused(POST + 'Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n', 400, TE_HDR)

    def test_gzip_then_chunked_is_read_and_closed(self):
        # Accepted (gzip is not decoded), but the connection is not reused:
        # whatever follows the body is never read as a request.
        srv = self.srv()
        conn = srv.connect()
        try:
            conn.send(b(POST + 'Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n') + self.smuggled())
            resp = conn.read_response()
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json()['body'], 'abc')
            self.assertTrue(resp.has_token('Connection', 'close'), resp)
            self.assertTrue(conn.wait_closed(10), 'connection left open')
            self.assertEqual(conn.buf, b'')
        finally:
            conn.close()
        self.assertNotIn('GET ' + self.smuggled_path(), seen(srv))

    # RFC 9112 6.3 item 4: when chunked is not the final coding the length
    # cannot be determined: 400 and close. Gunicorn ignores identity and
    # reads Content-Length (or no body), safe only because its sync worker
    # closes every connection; kept alive, a front end honouring
    # Transfer-Encoding would take the request behind for body bytes.
    @cunicorn_only
    def test_identity_with_length(self):
        self.refused('POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nWorld',
                     400, TE_HDR)

    @cunicorn_only
    def test_length_then_identity(self):
        self.refused(POST + 'Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nWorld', 400, TE_HDR)

    @cunicorn_only
    def test_identity_alone(self):
        self.refused(POST + 'Transfer-Encoding: identity\r\n\r\n', 400, TE_HDR)

    @cunicorn_only
    def test_gzip_alone(self):
        self.refused(POST + 'Transfer-Encoding: gzip\r\n\r\n', 400, TE_HDR)

    @cunicorn_only
    def test_identity_in_http10_keep_alive(self):
        # RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
        # framing, even with Content-Length.
        self.refused('POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: identity\r\n'
                     'Content-Length: 5\r\n\r\nWorld', 400, TE_HDR)

    def test_identity_then_chunked_is_chunked(self):
        got = self.answered(POST + 'Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n'
                            'Connection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n')
        self.assertEqual(got['body'], 'ok')


class ContentLength(Case):
    def test_duplicate_same_value(self):
        # RFC 9112 6.3 allows merging identical values; Gunicorn refuses, safer.
        self.refused(POST + 'Content-Length: 2\r\nContent-Length: 2\r\n\r\nok', 400, CL_HDR)

    def test_conflicting_values(self):
        self.refused(POST + 'Content-Length: 2\r\nContent-Length: 0\r\n\r\nok', 400, CL_HDR)

    def test_plus_sign(self):
        self.refused(POST + 'Content-Length: +2\r\n\r\nok', 400, CL_HDR)

    def test_minus_sign(self):
        self.refused(POST + 'Content-Length: -2\r\n\r\nok', 400, CL_HDR)

    def test_space_inside(self):
        self.refused(POST + 'Content-Length: 1 0\r\n\r\nok', 400, CL_HDR)

    def test_comma_list(self):
        self.refused(POST + 'Content-Length: 2, 2\r\n\r\nok', 400, CL_HDR)

    def test_comma_list_without_space(self):
        self.refused(POST + 'Content-Length: 2,2\r\n\r\nok', 400, CL_HDR)

    def test_underscore(self):
        # Python's int() accepts "1_0"; RFC 9110 8.6 is 1*DIGIT.
        self.refused(POST + 'Content-Length: 1_0\r\n\r\nok', 400, CL_HDR)

    def test_wraps_around_64_bits(self):
        # 2**64 + 2 would be 2 in a 64-bit counter that overflows quietly.
        self.refused(POST + 'Content-Length: 18446744073709551618\r\n\r\nok', 400, CL_HDR)

    def test_spaces_around_value_are_fine(self):
        # OWS around a field value is not part of it (RFC 9110 5.5).
        self.assertEqual(self.answered(POST + 'Content-Length:  2 \r\nConnection: close\r\n\r\nok')['body'], 'ok')


@cunicorn_only
class ChunkedBody(Case):
    """Errors found while the app reads the body: 400 before the response
    starts (Gunicorn closes without one)."""

    def bad_body(self, body, message):
        resp = self.refused(TE_CHUNKED + body, 400, message)
        self.assertIn('POST /', seen(self.srv()))  # the app was called, then its read failed
        return resp

    def test_size_with_0x(self):
        self.bad_body('0x2\r\nok\r\n0\r\n\r\n', "Invalid chunk size: b'0x2'")

    def test_size_with_underscore(self):
        self.bad_body('1_0\r\n0123456789abcdef\r\n0\r\n\r\n', "Invalid chunk size: b'1_0'")

    def test_size_with_plus(self):
        self.bad_body('+2\r\nok\r\n0\r\n\r\n', "Invalid chunk size: b'+2'")

    def test_size_with_minus(self):
        self.bad_body('-2\r\nok\r\n0\r\n\r\n', "Invalid chunk size: b'-2'")

    def test_size_with_leading_space(self):
        self.bad_body(' 2\r\nok\r\n0\r\n\r\n', "Invalid chunk size: b' 2'")

    def test_size_with_trailing_space_and_no_extension(self):
        # BWS is only allowed before a ';' (RFC 9112 7.1.1).
        self.bad_body('2 \r\nok\r\n0\r\n\r\n', "Invalid chunk size: b'2 '")

    def test_size_overflowing_64_bits(self):
        # 17 hex digits: 2**64 + 2 would wrap to 2 in a careless decoder.
        self.bad_body('10000000000000002\r\nok\r\n0\r\n\r\n', "Invalid chunk size: b'10000000000000002'")

    def test_empty_size(self):
        self.bad_body('\r\nok\r\n0\r\n\r\n', "Invalid chunk size: b''")

    def test_bare_cr_in_extension(self):
        self.bad_body('2;a\rb\r\nok\r\n0\r\n\r\n', 'Invalid chunk extension: bare CR not allowed')

    def test_bare_lf_in_extension(self):
        # Stricter than Gunicorn, which skips it (RFC 9112 7.1.1: token or
        # quoted-string): a hop ending lines at LF would start the data at "b".
        self.bad_body('2;a\nb\r\nok\r\n0\r\n\r\n', "Invalid chunk extension: b'\\n' not allowed")

    def test_nul_in_extension(self):
        self.bad_body('2;a="\x00"\r\nok\r\n0\r\n\r\n', "Invalid chunk extension: b'\\x00' not allowed")

    def test_bare_lf_in_size(self):
        self.bad_body('2\nok\r\n0\r\n\r\n', "Invalid chunk size: b'2\\nok'")

    def test_data_longer_than_its_size(self):
        self.bad_body('2\r\nokay\r\n0\r\n\r\n', "Invalid chunk terminator is not '\\r\\n': b'ay'")

    def test_data_ended_by_lf_alone(self):
        self.bad_body('2\r\nok\n0\r\n\r\n', "Invalid chunk terminator is not '\\r\\n': b'\\n0'")

    def test_last_chunk_without_final_crlf(self):
        # The request behind it is read as the trailer section, where its
        # request line is not a field: refused, never served.
        self.bad_body('0\r\n', 'Invalid HTTP Header: ')

    def test_truncated_terminator_at_eof(self):
        srv = self.srv()
        conn = srv.connect()
        try:
            conn.send(b(TE_CHUNKED + '2\r\nok\r\n0\r\n'))
            conn.shutdown_write()
            resp = conn.read_response()
            self.assertIsNotNone(resp, 'closed without an answer')
            self.assertEqual(resp.status, 400, resp)
            self.assertIn(html.escape("Invalid chunk terminator is not '\\r\\n': b''"), resp.text)
            self.assertTrue(conn.wait_closed(10))
        finally:
            conn.close()

    def test_trailer_content_length(self):
        # RFC 9110 6.5.1: framing fields are not allowed in trailers.
        self.bad_body('2\r\nok\r\n0\r\nContent-Length: 5\r\n\r\n', "Invalid HTTP header name: 'CONTENT-LENGTH'")

    def test_trailer_transfer_encoding(self):
        self.bad_body('2\r\nok\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n',
                      "Invalid HTTP header name: 'TRANSFER-ENCODING'")

    def test_trailer_host(self):
        self.bad_body('2\r\nok\r\n0\r\nHost: y\r\n\r\n', "Invalid HTTP header name: 'HOST'")

    # RFC 9112 7.1.1, RFC 9110 5.6.4: Gunicorn skips an extension unread; a
    # hop that parses it could end it, or the line, elsewhere.
    def test_extension_name_not_a_token(self):
        self.bad_body('2;a(b)=c\r\nok\r\n0\r\n\r\n', 'Invalid chunk extension: name is not a token')

    def test_extension_quoted_string_not_closed(self):
        self.bad_body('2;a="x\r\nok\r\n0\r\n\r\n',
                      'Invalid chunk extension: quoted-string not closed before the end of the line')

    def test_extension_value_not_a_token(self):
        self.bad_body('2;a=b/c\r\nok\r\n0\r\n\r\n',
                      'Invalid chunk extension: value is not a token or quoted-string')

    def test_well_formed_body_with_extensions_and_trailer(self):
        got = self.answered(TE_CHUNKED.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n') +
                            '2;name="v;\\"x"\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n')
        self.assertEqual(got['body'], 'ok')


class HeaderFields(Case):
    def test_nul_in_value(self):
        self.refused(POST + 'X: a\x00b\r\n\r\n', 400, "Invalid HTTP Header: 'X'")

    def test_bare_cr_in_value(self):
        self.refused(POST + 'X: a\rTransfer-Encoding: chunked\r\n\r\n', 400, "Invalid HTTP Header: 'X'")

    def test_bare_lf_in_value(self):
        # RFC 9112 2.2: only CRLF ends a field line here.
        self.refused(POST + 'X: a\nTransfer-Encoding: chunked\r\n\r\n', 400, "Invalid HTTP Header: 'X'")

    def test_del_in_value(self):
        self.refused(POST + 'X: a\x7f\r\n\r\n', 400, "Invalid HTTP Header: 'X'")

    def test_duplicate_host(self):
        self.refused(POST + 'Host: y\r\n\r\n', 400, "Invalid HTTP Header: 'HOST'")

    def test_duplicate_content_type(self):
        self.refused(POST + 'Content-Type: a/b\r\nContent-Type: c/d\r\n\r\n', 400,
                     "Invalid HTTP Header: 'CONTENT-TYPE'")

    def test_obs_fold_refused(self):
        # RFC 9112 5.2: refused unless permit_obsolete_folding.
        self.refused(POST + 'Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n', 400,
                     "Obsolete line folding is unacceptable: 'TRANSFER-ENCODING'")

    def test_whitespace_before_colon(self):
        # RFC 9112 5.1: refused unless strip_header_spaces.
        self.refused(POST + 'Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400,
                     "Invalid HTTP header name: 'Transfer-Encoding '")

    def test_empty_name(self):
        self.refused(POST + ': chunked\r\n\r\n', 400, "Invalid HTTP Header: ': chunked'")

    def test_no_colon(self):
        self.refused(POST + 'Transfer-Encoding chunked\r\n\r\n', 400,
                     "Invalid HTTP Header: 'Transfer-Encoding chunked'")

    def test_invalid_token_char_in_name(self):
        self.refused(POST + 'X(Y): 1\r\n\r\n', 400, "Invalid HTTP header name: 'X(Y)'")

    def test_non_ascii_name(self):
        self.refused(POST + 'Transfer-Encod\xefng: chunked\r\n\r\n', 400,
                     "Invalid HTTP header name: 'Transfer-Encod\xefng'")

    def test_whitespace_before_first_field(self):
        # RFC 9112 2.2: a line starting with whitespace right after the
        # request line is refused (not taken as a continuation).
        self.refused('POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n0\r\n\r\n', 400,
                     "Invalid HTTP header name: ' Transfer-Encoding'")

    def test_bare_lf_does_not_end_the_head(self):
        # The head ends at the smuggled request's CRLF only, so the whole
        # text is one request line with a broken version.
        self.refused('GET / HTTP/1.1\nHost: x\n\n', 400, "Invalid HTTP Version: ")

    def test_expect_other_than_100_continue(self):
        self.refused(POST + 'Expect: 100-continue, x\r\nContent-Length: 2\r\n\r\nok', 417,
                     "Unable to comply with expectation: '100-continue, x'")

    def test_underscore_name_dropped(self):
        # header_map=drop: Transfer_Encoding cannot pose as Transfer-Encoding
        # (both become HTTP_TRANSFER_ENCODING in the environ).
        got = self.answered(POST + 'Transfer_Encoding: chunked\r\nContent-Length: 2\r\n'
                            'Connection: close\r\n\r\nok')
        self.assertEqual(got['body'], 'ok')
        self.assertNotIn('HTTP_TRANSFER_ENCODING', got['headers'])


class RequestLine(Case):
    def test_invalid_token_in_method(self):
        self.refused('GE(T / HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP method: 'GE(T'")

    def test_lowercase_method(self):
        self.refused('get / HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP method: 'get'")

    def test_two_spaces(self):
        self.refused('GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP request line: 'GET  / HTTP/1.1'")

    @cunicorn_only
    def test_bare_cr_in_target(self):
        # RFC 9112 2.2; Gunicorn accepts it and drops it from PATH_INFO.
        self.refused('GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP request line: 'GET /a\\rb HTTP/1.1'")

    @cunicorn_only
    def test_bare_lf_in_target(self):
        self.refused('GET /a\nb HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP request line: 'GET /a\\nb HTTP/1.1'")

    def test_http09_request(self):
        self.refused('GET /\r\n\r\n', 400, "Invalid HTTP request line: 'GET /'")

    def test_http2_version_in_http1_framing(self):
        self.refused('GET / HTTP/2.0\r\nHost: x\r\n\r\n', 400, 'Invalid HTTP Version: (2, 0)')

    def test_lowercase_version(self):
        self.refused('GET / http/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP Version: 'http/1.1'")

    def test_two_digit_minor_version(self):
        self.refused('GET / HTTP/1.10\r\nHost: x\r\n\r\n', 400, "Invalid HTTP Version: 'HTTP/1.10'")

    def test_http_1_2_is_served_as_http_1(self):
        # Gunicorn's rule: any 1.x is HTTP/1 (RFC 9110 2.5, a higher minor
        # version is understood as the highest one supported).
        self.assertEqual(self.answered('GET /v HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n')['path'], '/v')

    def test_authority_form_without_connect(self):
        self.refused('GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n', 400,
                     "Invalid HTTP request line: 'GET example.com:80 HTTP/1.1'")

    def test_asterisk_form_without_options(self):
        self.refused('GET * HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP request line: 'GET * HTTP/1.1'")

    def test_relative_target(self):
        self.refused('GET a/b HTTP/1.1\r\nHost: x\r\n\r\n', 400, "Invalid HTTP request line: 'GET a/b HTTP/1.1'")

    def test_asterisk_form_with_options(self):
        self.assertEqual(self.answered('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')['method'],
                         'OPTIONS')

    def test_absolute_form(self):
        got = self.answered('GET http://example.com:8080/p/a?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        self.assertEqual((got['path'], got['query']), ('/p/a', 'q=1'))

    def test_fragment_is_not_part_of_the_path(self):
        # RFC 9112 3.2 has no fragment in a request-target; as Gunicorn, it
        # is accepted and kept out of PATH_INFO and QUERY_STRING.
        got = self.answered('GET /a?b#c/../../admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        self.assertEqual((got['path'], got['query']), ('/a', 'b'))

    def closes_after(self, connection_fields):
        srv = self.srv()
        conn = srv.connect()
        try:
            conn.send(b('GET / HTTP/1.1\r\nHost: x\r\n' + connection_fields + '\r\n') + self.smuggled())
            resp = conn.read_response()
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.has_token('Connection', 'close'), resp)
            self.assertTrue(conn.wait_closed(10), 'connection left open')
            self.assertEqual(conn.buf, b'')
        finally:
            conn.close()
        self.assertNotIn('GET ' + self.smuggled_path(), seen(srv))

    def test_request_after_connection_close_is_not_served(self):
        self.closes_after('Connection: close\r\n')

    # RFC 9112 9.6: no request after one with the "close" option. Gunicorn
    # reads the first Connection field's whole value only.
    @cunicorn_only
    def test_request_after_close_in_a_list_is_not_served(self):
        self.closes_after('Connection: keep-alive, close\r\n')

    @cunicorn_only
    def test_request_after_close_in_a_later_field_is_not_served(self):
        self.closes_after('Connection: keep-alive\r\nConnection: close\r\n')


class Relaxations(Case):
    """What each compatibility setting lets through (the default refuses
    the same bytes in the tests above)."""

    def test_permit_obsolete_folding(self):
        srv = get_server('--permit-obsolete-folding')
        got = self.answered(POST + 'X-A: a\r\n b\r\n\tc\r\nConnection: close\r\n\r\n', srv)
        self.assertEqual(got['headers']['HTTP_X_A'], 'a b c')

    def test_strip_header_spaces(self):
        srv = get_server('--strip-header-spaces')
        got = self.answered(POST + 'X-A \t: v\r\nConnection: close\r\n\r\n', srv)
        self.assertEqual(got['headers']['HTTP_X_A'], 'v')

    def test_permit_unconventional_http_method(self):
        srv = get_server('--permit-unconventional-http-method')
        got = self.answered('get / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', srv)
        self.assertEqual(got['method'], 'get')

    def test_casefold_http_method(self):
        srv = get_server('--permit-unconventional-http-method', '--casefold-http-method')
        got = self.answered('get / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', srv)
        self.assertEqual(got['method'], 'GET')

    def test_permit_unconventional_http_version(self):
        srv = get_server('--permit-unconventional-http-version')
        got = self.answered('GET / HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n', srv)
        self.assertEqual(got['protocol'], 'HTTP/2.0')

    def test_header_map_dangerous(self):
        srv = get_server('--header-map', 'dangerous')
        got = self.answered(POST + 'X_A: 1\r\nConnection: close\r\n\r\n', srv)
        self.assertEqual(got['headers']['HTTP_X_A'], '1')

    def test_header_map_refuse(self):
        # The stricter choice: refused instead of dropped.
        self.refused(POST + 'Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n', 400,
                     "Invalid HTTP header name: 'TRANSFER_ENCODING'", srv=get_server('--header-map', 'refuse'))


@cunicorn_only
class HeadSizeLimit(Case):
    """--limit-request-header-size, cunicorn's own: the whole head."""

    args = ('--limit-request-header-size', '200')
    HS = "Error parsing headers: 'limit request header size'"

    def head_of(self, size):
        """A head of exactly `size` bytes, Connection: close."""
        start = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX: '
        return start + 'a' * (size - len(start) - 4) + '\r\n\r\n'

    def test_head_at_limit(self):
        self.assertEqual(len(self.head_of(200)), 200)
        self.assertEqual(self.answered(self.head_of(200))['path'], '/')

    def test_head_over_limit(self):
        resp = self.refused(self.head_of(201), 431, self.HS)
        self.assertEqual(resp.reason, 'Request Header Fields Too Large')

    def test_many_small_fields_over_limit(self):
        self.refused('GET / HTTP/1.1\r\n' + 'A: 1\r\n' * 40 + '\r\n', 431, self.HS)

    def test_head_without_end_over_limit(self):
        # Answered as soon as the limit is passed, without the final CRLF.
        srv = self.srv()
        conn = srv.connect()
        try:
            conn.send(b'GET / HTTP/1.1\r\nX: ' + b'a' * 300)
            resp = conn.read_response()
            self.assertEqual(resp.status, 431, resp)
            self.assertTrue(conn.wait_closed(10))
        finally:
            conn.close()

    def test_off_by_default(self):
        # 0: only Gunicorn's limits, which allow 100 fields of 8190 bytes.
        got = self.answered('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' + 'X-L: %s\r\n' % ('a' * 8000) * 60 + '\r\n',
                            get_server())
        self.assertEqual(got['path'], '/')


@cunicorn_only
class BodyLimit(Case):
    """--limit-request-body, cunicorn's own: 413 Content Too Large."""

    args = ('--limit-request-body', '100')

    def srv(self):
        return get_server(*self.args, access_log=True)

    def test_content_length_at_limit(self):
        got = self.answered(POST + 'Content-Length: 100\r\nConnection: close\r\n\r\n' + 'a' * 100)
        self.assertEqual(len(got['body']), 100)

    def test_content_length_over_limit_is_refused_before_the_app(self):
        mark = len(seen(self.srv()))
        resp = self.refused(POST + 'Content-Length: 101\r\n\r\n' + 'a' * 101, 413,
                            'Request body is too large (101 > 100)')
        self.assertEqual(resp.reason, 'Content Too Large')
        self.assertEqual(seen(self.srv())[mark:], [])

    def test_expect_100_continue_gets_413_without_continue(self):
        # RFC 9110 10.1.1: a final status instead of 100 Continue, and the
        # client need not send the body.
        srv = self.srv()
        conn = srv.connect()
        try:
            conn.send(b(POST + 'Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n'))
            resp = conn.read_response()
            self.assertEqual(resp.status, 413, resp)
            self.assertEqual(resp.interim, [])
            self.assertTrue(conn.wait_closed(10))
        finally:
            conn.close()

    def test_chunked_at_limit(self):
        body = ''.join('%x\r\n%s\r\n' % (25, 'b' * 25) for _ in range(4)) + '0\r\n\r\n'
        got = self.answered(TE_CHUNKED.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n') + body)
        self.assertEqual(got['body'], 'b' * 100)

    def test_chunked_over_limit_while_the_app_reads(self):
        body = ''.join('%x\r\n%s\r\n' % (25, 'b' * 25) for _ in range(5)) + '0\r\n\r\n'
        resp = self.refused(TE_CHUNKED + body, 413, 'Request body is too large (more than 100 bytes)')
        self.assertEqual(resp.reason, 'Content Too Large')
        self.assertIn('POST /', seen(self.srv()))
        srv = self.srv()
        ok = server.wait_for(lambda: '"POST / HTTP/1.1" 413 ' in srv.access_text(), 10)
        self.assertTrue(ok, srv.access_text())

    def test_chunked_over_limit_not_read_by_the_app(self):
        # The app answers without reading; the rest of the body is drained
        # only up to the limit, then the connection closes.
        srv = self.srv()
        conn = srv.connect()
        try:
            body = '96\r\n' + 'c' * 150 + '\r\n0\r\n\r\n'
            conn.send(b(TE_CHUNKED.replace('POST /', 'POST /noread') + body) + self.smuggled())
            resp = conn.read_response()
            self.assertEqual(resp.status, 200, resp)
            self.assertTrue(conn.wait_closed(10), 'connection left open')
            self.assertEqual(conn.buf, b'')
        finally:
            conn.close()
        self.assertNotIn('GET ' + self.smuggled_path(), seen(srv))

    def test_chunked_stream_past_the_prebuffer(self):
        # Past the 64 KiB the loop reads ahead, the limit still holds while
        # the app reads from the socket.
        srv = get_server('--limit-request-body', '100000')
        conn = srv.connect()
        piece = b'%x\r\n%s\r\n' % (4096, b'd' * 4096)
        data = b(TE_CHUNKED) + piece * 64 + b'0\r\n\r\n'

        def send():
            try:
                conn.send(data)
            except OSError:
                pass  # the server may stop reading once it has answered
        sender = threading.Thread(target=send)
        sender.start()
        try:
            resp = conn.read_response()
            self.assertEqual(resp.status, 413, resp)
            self.assertIn(html.escape('Request body is too large (more than 100000 bytes)'), resp.text)
            self.assertTrue(conn.wait_closed(10))
        finally:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sender.join(30)
            conn.close()

    def test_off_by_default(self):
        got = self.answered(POST + 'Content-Length: 200000\r\nConnection: close\r\n\r\n' + 'e' * 200000,
                            get_server())
        self.assertEqual(len(got['body']), 200000)


if __name__ == '__main__':
    unittest.main()
