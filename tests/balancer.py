"""A load balancer on loopback for tests of several workers: each request goes to the next
backend in turn; one that cannot be reached (its worker was killed) is skipped for the
next, as nginx's ``proxy_next_upstream error`` does. Only loopback backends."""

from __future__ import annotations

import itertools
from collections import Counter
from types import TracebackType

import aiohttp
from aiohttp import web

from tests.fakes.loopback import is_loopback

FORWARDED = ("Content-Type", "X-Telegram-Bot-Api-Secret-Token")


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        for host, _ in backends:
            if not is_loopback(host):
                raise ValueError(f"refusing a non-loopback backend {host!r}")
        self.backends = backends
        self.answered: Counter[int] = Counter()  # requests each backend answered, by index
        self.unreachable = 0  # tries that found a backend down
        self._next = itertools.cycle(range(len(backends)))
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.port = 0

    async def __aenter__(self) -> Balancer:
        server = web.Application()
        server.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        for _ in range(len(self.backends)):
            index = next(self._next)
            host, port = self.backends[index]
            try:
                async with self._client.request(
                        request.method, f"http://{host}:{port}{request.rel_url}", data=body,
                        headers=headers) as answer:
                    payload = await answer.read()
                    self.answered[index] += 1
                    return web.Response(status=answer.status, body=payload)
            except aiohttp.ClientConnectionError:
                self.unreachable += 1
        return web.Response(status=502)
