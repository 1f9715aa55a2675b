"""Run a coroutine to completion from a test, whatever loop the session already runs."""

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    # Playwright's sync API keeps an event loop running in the main thread for the whole
    # session, and asyncio.run refuses to start inside it: give the coroutine a thread.
    async def wrapper() -> T:
        return await main()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, wrapper()).result()
