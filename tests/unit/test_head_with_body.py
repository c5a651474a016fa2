"""A response head waits for its body and leaves with it in one write
(``api/http_guard.py::HeadWithBody``)."""

from __future__ import annotations

from typing import Any

from server.api.http_guard import CONTINUE, JOINED_BODY_BYTES, HeadWithBody

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def wrapped() -> tuple[HeadWithBody, Recorder]:
    transport = Recorder()
    return HeadWithBody(transport), transport  # type: ignore[arg-type]


def test_head_and_small_body_leave_in_one_write() -> None:
    wrapper, transport = wrapped()
    wrapper.write(HEAD)
    assert transport.writes == []
    wrapper.write(b"{}")
    wrapper.write(b"more")
    assert transport.writes == [HEAD + b"{}", b"more"]


def test_continue_is_not_held_and_a_large_body_follows_its_head() -> None:
    wrapper, transport = wrapped()
    body = b"x" * (JOINED_BODY_BYTES + 1)
    wrapper.write(CONTINUE)
    wrapper.write(HEAD)
    wrapper.write(body)
    assert transport.writes == [CONTINUE, HEAD, body]


def test_close_sends_a_held_head_and_other_calls_reach_the_transport() -> None:
    wrapper, transport = wrapped()
    wrapper.write(HEAD)
    closing: Any = wrapper.is_closing
    assert closing() is False
    wrapper.close()
    assert transport.writes == [HEAD]
    assert transport.closed
