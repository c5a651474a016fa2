"""``api/hand_off.py``: blocking calls run on its threads, results and errors come back."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.api.hand_off import HandOff


def test_calls_run_on_its_threads_and_answer_in_order() -> None:
    hand_off = HandOff(2, name="test-hand-off")

    async def main() -> list[tuple[int, str]]:
        def work(n: int) -> tuple[int, str]:
            return n * n, threading.current_thread().name

        return await asyncio.gather(*(hand_off.run(work, n) for n in range(6)))

    try:
        answers = asyncio.run(main())
    finally:
        hand_off.close()
    assert [value for value, _ in answers] == [0, 1, 4, 9, 16, 25]
    assert all(name.startswith("test-hand-off-") for _, name in answers)


def test_an_exception_reaches_the_awaiting_caller() -> None:
    hand_off = HandOff(1)

    def fail() -> None:
        raise ValueError("bad vector")

    try:
        with pytest.raises(ValueError, match="bad vector"):
            asyncio.run(hand_off.run(fail))
    finally:
        hand_off.close()


def test_close_ends_the_threads() -> None:
    hand_off = HandOff(2, name="test-hand-off-close")
    hand_off.close()
    for thread in hand_off._threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in hand_off._threads)
