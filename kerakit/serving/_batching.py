"""Micro-batching: concurrent `:predict` requests joined into one model call on the model thread.

Concurrent `:predict` requests wait in a queue and run as one model call on a
worker thread, so the event loop keeps reading requests while the model
works; each request gets its own rows back.
"""

import asyncio
import collections
import logging

import numpy as np

from kerakit.errors import RequestError
from kerakit.serving.protocol import fail

_log = logging.getLogger("kerakit.serving")


class BatchRequest:
    """One waiting `:predict`: its feeds, rows, the future it awaits, and its batch key."""

    __slots__ = ("feeds", "rows", "future", "key")

    def __init__(self, feeds, rows, future):
        self.feeds = feeds
        self.rows = rows
        self.future = future
        # Only requests with the same per-row shapes and dtypes can be concatenated
        # (a variable-length input gives different shapes).
        self.key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(feeds.items()))


class Batcher:
    """Queues requests for one servable and runs them together on the model thread.

    With batching on, the first waiting request opens a batch; requests that
    arrive within `wait` seconds (or are already queued) and have the same
    per-row shapes and dtypes join it, up to `max_rows` rows; the batch runs
    as one model call and each request gets its slice back. With batching
    off, each request is its own model call. Whatever goes wrong with a batch
    is answered to that batch's requests; the batcher itself keeps running.
    """

    def __init__(self, servable, executor, batching, max_rows, wait, observe=None):
        self.servable = servable
        self.observe = observe  # called with (version, rows) for each model call
        self.batching = batching
        self.max_rows = max_rows
        self.wait = wait
        self.calls = 0  # model calls made: a test can see that requests were batched
        self._executor = executor
        self._pending = collections.deque()
        self._ready = None
        self._task = None

    @property
    def alive(self):
        return self._task is not None and not self._task.done()

    def start(self):
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._stopped)

    def _stopped(self, task):
        if not task.cancelled() and task.exception() is not None:
            _log.error("kerakit serve: the batcher of model version %s stopped: %r",
                       self.servable.version, task.exception())
        self._fail_pending(RequestError("The model's batching task has stopped; this model version "
                                        "cannot answer. Restart the server.", 503))

    def _fail_pending(self, error):
        while self._pending:
            future = self._pending.popleft().future
            if not future.done():
                future.set_exception(error)

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for item in self._pending:
            if not item.future.done():
                item.future.cancel()

    async def predict(self, feeds, rows):
        if not self.alive:
            fail("This model version's batching task has stopped; it cannot answer. Restart the "
                 "server.", 503)
        item = BatchRequest(feeds, rows, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        self._ready.set()
        return await item.future

    def _take(self):
        """The next batch: the oldest request and those after it it can be concatenated with."""
        first = self._pending.popleft()
        batch, rows, rest = [first], first.rows, collections.deque()
        while self.batching and self._pending:
            item = self._pending.popleft()
            if item.key == first.key and rows + item.rows <= self.max_rows:
                batch.append(item)
                rows += item.rows
            else:
                rest.append(item)
        rest.extend(self._pending)  # with batching off, nothing above was looked at
        self._pending = rest
        return [item for item in batch if not item.future.cancelled()]

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                if self.batching and self.wait > 0 and sum(i.rows for i in self._pending) < self.max_rows:
                    await asyncio.sleep(self.wait)
                batch = self._take()
                if batch:
                    await self._execute(loop, batch)

    async def _execute(self, loop, batch):
        try:
            if len(batch) == 1:
                feeds = batch[0].feeds
            else:
                feeds = {k: np.concatenate([item.feeds[k] for item in batch]) for k in batch[0].feeds}
            self.calls += 1
            if self.observe is not None:
                self.observe(self.servable.version, sum(item.rows for item in batch))
            outputs = await loop.run_in_executor(self._executor, self.servable.predict, feeds)
            start = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result({k: v[start:start + item.rows] for k, v in outputs.items()})
                start += item.rows
        except asyncio.CancelledError:
            raise
        except Exception as error:  # every request in the batch learns why; the batcher lives on
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)

