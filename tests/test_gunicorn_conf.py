"""gunicorn.conf.py's changes to how gunicorn writes answers, on gunicorn's own objects."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


@pytest.fixture(scope="module", autouse=True)
def conf():
    """gunicorn.conf.py loaded as gunicorn's master loads it (it patches gunicorn's Response once)."""
    spec = importlib.util.spec_from_file_location("podrelay_gunicorn_conf", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Socket:
    """What gunicorn sends, one entry per `sendall`."""

    def __init__(self):
        self.sends: list[bytes] = []

    def sendall(self, data) -> None:
        self.sends.append(bytes(data))


def respond(method: str = "GET", version: str = "1.1") -> tuple[wsgi.Response, Socket]:
    cfg = Config()
    request = f"{method} /v1/jobs HTTP/{version}\r\nHost: x\r\n\r\n".encode()
    req = next(iter(RequestParser(cfg, iter([request]), ("127.0.0.1", 5000))))
    sock = Socket()
    resp, _environ = wsgi.create(req, sock, ("127.0.0.1", 5000), ("127.0.0.1", 8000), cfg)
    return resp, sock


def test_a_json_answer_goes_out_in_one_send_head_first():
    resp, sock = respond()
    resp.start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "11")])
    resp.write(b'{"id":"j1"}')
    resp.close()
    assert len(sock.sends) == 1
    head, _, body = sock.sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202 Accepted\r\n") and b"Content-Length: 11" in head
    assert body == b'{"id":"j1"}'


def test_later_pieces_of_a_body_and_chunked_answers_are_sent_as_gunicorn_sends_them():
    resp, sock = respond()
    resp.start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    resp.write(b"abc")
    resp.write(b"def")
    resp.close()
    assert len(sock.sends) == 2 and sock.sends[0].endswith(b"\r\n\r\nabc") and sock.sends[1] == b"def"

    resp, sock = respond()
    resp.start_response("200 OK", [("Content-Type", "text/event-stream")])  # no length: chunked
    resp.write(b"data: 1\n\n")
    resp.close()
    assert resp.chunked and len(sock.sends) >= 3  # the head, the chunk, the last chunk: as before
    assert sock.sends[0].endswith(b"\r\n\r\n") and b"".join(sock.sends).endswith(b"0\r\n\r\n")


def test_a_head_answer_and_a_failed_write_still_send_the_head():
    resp, sock = respond("HEAD")
    resp.start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    resp.write(b"{}")  # dropped: a HEAD answer has no body
    resp.close()
    assert len(sock.sends) == 1 and sock.sends[0].endswith(b"\r\n\r\n")

    resp, sock = respond()
    resp.start_response("200 OK", [("Content-Length", "2")])
    with pytest.raises(TypeError):
        resp.write("{}")  # not bytes: gunicorn refuses it once the head is out
    assert len(sock.sends) == 1 and sock.sends[0].endswith(b"\r\n\r\n") and resp.headers_sent


def _date_within_one_second():
    """`util.http_date()` and the second it was asked in (asked again if a second's edge fell between)."""
    import time

    from gunicorn import util

    while True:
        before = time.time()
        date = util.http_date()
        if int(time.time()) == int(before):
            return date, before


def test_the_date_header_is_the_date_gunicorn_would_format_for_the_second():
    import email.utils
    import time

    from gunicorn import util

    date, at = _date_within_one_second()
    assert date == email.utils.formatdate(at, usegmt=True)
    assert util.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"  # a given time: formatted as asked
    time.sleep(1.1)
    later, at_later = _date_within_one_second()
    assert later == email.utils.formatdate(at_later, usegmt=True) != date  # the next second's


def test_a_workers_settings_kept_on_its_config_read_as_gunicorn_reads_them(conf):
    cfg = Config()
    cfg.set("keepalive", 7)
    plain = [name for name in cfg.settings if not hasattr(Config, name)]  # the rest `Config` reads through properties
    expected = {name: cfg.settings[name].get() for name in plain}
    properties = (cfg.is_ssl, cfg.worker_class, cfg.worker_class_str, cfg.address, cfg.uid, cfg.proc_name, cfg.sendfile)
    conf._settings_read_once(cfg)
    assert {name: getattr(cfg, name) for name in plain} == expected and len(plain) > 100
    assert "keepalive" in vars(cfg) and cfg.keepalive == 7
    assert (cfg.is_ssl, cfg.worker_class, cfg.worker_class_str, cfg.address, cfg.uid, cfg.proc_name, cfg.sendfile) == properties
    with pytest.raises(AttributeError):
        cfg.no_such_setting  # noqa: B018
