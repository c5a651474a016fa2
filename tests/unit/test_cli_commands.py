"""The client commands' connection options: where the API key comes from, and that
``--help`` steers it away from the command line (issue 18, finding 10)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import client.http
from client.cli import build_parser
from client.commands import run

CONNECTED_COMMANDS = [
    ["import"], ["export"], ["snapshot", "create"], ["snapshot", "list"],
    ["snapshot", "download"], ["snapshot", "restore"], ["collections"],
]  # fmt: skip


@pytest.fixture
def sent_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """Every client built by a command talks to a fake server that records the
    ``api-key`` header of each request."""
    keys: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("api-key"))
        return httpx.Response(200, json={"result": {"collections": []}, "status": "ok"})

    real = client.http.QuiverClient

    class RecordingClient(real):  # type: ignore[misc, valid-type]
        def __init__(self, url: str, api_key: str | None = None, *args: Any) -> None:
            super().__init__(url, api_key, *args, transport=httpx.MockTransport(answer))

    monkeypatch.setattr(client.http, "QuiverClient", RecordingClient)
    monkeypatch.delenv("QUIVER_API_KEY", raising=False)
    yield keys


def run_command(*argv: str) -> int:
    return run(build_parser().parse_args(list(argv)))


def test_the_api_key_comes_from_the_environment(
    sent_keys: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIVER_API_KEY", "from-env")
    assert run_command("collections", "--json") == 0
    assert sent_keys == ["from-env"]


def test_the_flag_still_works_and_wins_over_the_environment(
    sent_keys: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIVER_API_KEY", "from-env")
    assert run_command("collections", "--json", "--api-key", "from-flag") == 0
    assert sent_keys == ["from-flag"]


def test_without_a_key_no_header_is_sent(sent_keys: list[str | None]) -> None:
    assert run_command("collections", "--json") == 0
    assert sent_keys == [None]


@pytest.mark.parametrize("command", CONNECTED_COMMANDS, ids=" ".join)
def test_help_prefers_the_environment_variable_and_says_why(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "Prefer the environment variable" in text
    assert "$QUIVER_API_KEY" in text and "`ps`" in text and "shell history" in text
