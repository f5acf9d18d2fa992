"""Wakes the open call-in displays of an office (service.web.office.display)
when someone there is called or checks in, in this web process; and ends
every display stream when the server stops."""

from __future__ import annotations

import asyncio

from aiohttp import web


class CallBoard:
    def __init__(self) -> None:
        self._changed: dict[str, asyncio.Event] = {}
        self.closing = asyncio.Event()

    def changed(self, office_id: str) -> None:
        event = self._changed.pop(office_id, None)
        if event is not None:
            event.set()

    async def wait(self, office_id: str) -> None:
        """Until the office's board changes or the server stops; callers bound
        the wait (asyncio.timeout) to look again now and then."""
        event = self._changed.setdefault(office_id, asyncio.Event())
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.closing.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def close(self, app: web.Application) -> None:
        self.closing.set()


CALL_BOARD_KEY = web.AppKey("call_board", CallBoard)


def setup(app: web.Application) -> None:
    board = CallBoard()
    app[CALL_BOARD_KEY] = board
    app.on_shutdown.append(board.close)
