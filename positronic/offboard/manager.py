"""One model in memory at a time, shared by the live sessions that asked for it.

A session that asks for the loaded model joins it. A session that asks for another one waits (told
``waiting`` every ``status_interval_s``) until the live sessions have ended, then the old model is unloaded
and the new one loaded and warmed up in a worker thread (told ``loading``). While such a switch has waited less
than ``switch_grace_s``, new sessions on the loaded model still join it, so one request for another model does not
stop a fleet working; after that they queue behind the switch (waiting sessions are served in arrival order), so
a stream of new sessions on one model cannot starve a session waiting for another. The server closes sessions
that stay idle, so a forgotten session cannot hold a switch forever.

All methods run on the server's event loop; the manager holds no locks because its state only changes
between awaits. Loading, warm-up and unloading run in worker threads so the loop keeps serving.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from positronic.offboard import protocol
from positronic.offboard.models import LoadedModel, ModelSource, check_model_id

logger = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], Awaitable[None]]
"""``await on_status(status, message)`` sends one ``loading``/``waiting`` handshake message."""


@dataclass(eq=False)
class Lease:
    """A session's hold on the loaded model; hand it back once with ``ModelManager.release``."""

    model_id: str
    model: LoadedModel
    released: bool = False


class ModelLoadError(RuntimeError):
    """Loading or warming up a model failed; the sessions that waited for it are refused."""


@dataclass(eq=False)
class _Ticket:
    model_id: str
    since: float
    """``time.monotonic()`` when the session started waiting."""


class ModelManager:
    """Grants sessions leases on models from ``source``, keeping at most one model loaded."""

    def __init__(self, source: ModelSource, status_interval_s: float = 5.0, switch_grace_s: float = 30.0):
        self._source = source
        self._status_interval_s = status_interval_s
        self._switch_grace_s = switch_grace_s
        self._model: LoadedModel | None = None
        self._model_id: str | None = None
        self._loading_id: str | None = None
        self._active = 0
        self._queue: list[_Ticket] = []
        self._changed = asyncio.Event()
        self.sessions_started = 0
        """How many leases were granted since start (for logs and tests)."""

    @property
    def active_sessions(self) -> int:
        """Sessions holding a lease on the loaded model now."""
        return self._active

    @property
    def loaded_model_id(self) -> str | None:
        """The id of the model in memory (None while none is, or while one is being swapped)."""
        return self._model_id

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _blocked_by_queue(self, model_id: str, ticket: _Ticket | None) -> bool:
        """Whether a session that arrived earlier waits for a different model, and takes precedence: always, unless
        ``model_id`` is the loaded model and that session has waited less than ``switch_grace_s``."""
        joins_loaded = model_id == self._model_id and self._model is not None
        now = time.monotonic()
        for queued in self._queue:
            if queued is ticket:
                return False
            if queued.model_id != model_id and not (joins_loaded and now - queued.since < self._switch_grace_s):
                return True
        return False

    async def acquire(self, requested_id: str | None, on_status: StatusCallback) -> Lease:
        """A lease on the model ``requested_id`` (None: the source's default), loading it when needed.

        Raises ModelNotFoundError for unknown or unsafe ids, ModelLoadError when loading fails, and
        whatever ``on_status`` raises (e.g. the client went away), after which no lease is held.
        """
        if requested_id is not None:
            check_model_id(requested_id)
        model_id = await asyncio.to_thread(self._source.resolve, requested_id)
        ticket: _Ticket | None = None
        last_status: tuple[str, float] | None = None
        try:
            while True:
                if self._loading_id is None and not self._blocked_by_queue(model_id, ticket):
                    if self._model_id == model_id and self._model is not None:
                        self._active += 1
                        self.sessions_started += 1
                        return Lease(model_id, self._model)
                    if self._active == 0:
                        self._loading_id = model_id
                        break
                if ticket is None:
                    ticket = _Ticket(model_id, time.monotonic())
                    self._queue.append(ticket)
                if self._loading_id == model_id:
                    status, text = protocol.STATUS_LOADING, f'Loading model {model_id}...'
                else:
                    status, text = protocol.STATUS_WAITING, protocol.waiting_text(self._active)
                now = time.monotonic()
                if last_status is None or last_status[0] != status or now - last_status[1] >= self._status_interval_s:
                    changed = self._changed
                    await on_status(status, text)
                    last_status = (status, now)
                    if changed is not self._changed:
                        continue
                wait_s = max(0.0, last_status[1] + self._status_interval_s - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait_s)
        finally:
            if ticket is not None and ticket in self._queue:
                self._queue.remove(ticket)
                self._notify()
        return await self._load_for_session(model_id, on_status)

    async def _load_for_session(self, model_id: str, on_status: StatusCallback) -> Lease:
        """Load ``model_id`` (this session has claimed the loader role) while telling the client."""
        started = time.monotonic()
        task = asyncio.ensure_future(self._swap_to(model_id))
        try:
            await on_status(protocol.STATUS_LOADING, f'Loading model {model_id}...')
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._status_interval_s)
                if done:
                    return Lease(model_id, task.result())
                elapsed_s = time.monotonic() - started
                await on_status(protocol.STATUS_LOADING, f'Loading model {model_id}... ({elapsed_s:.0f}s elapsed)')
        except BaseException:
            # The client left (or the load failed): give back the lease the load reserved for this session.
            if task.done():
                self._release_reserved(task)
            else:
                task.add_done_callback(self._release_reserved)
            raise

    def _release_reserved(self, task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is None:
            self._release()

    async def _swap_to(self, model_id: str) -> LoadedModel:
        """Unload the current model, load and warm up ``model_id``; on success, reserve one lease for the loader."""
        old, self._model, self._model_id = self._model, None, None
        try:
            if old is not None:
                logger.info('unloading model to switch to %s', model_id)
                try:
                    await asyncio.to_thread(old.unload)
                except Exception:
                    logger.exception('unloading the previous model failed; dropping it')
            started = time.monotonic()
            try:
                model = await asyncio.to_thread(self._source.load, model_id)
            except Exception as e:
                raise ModelLoadError(f'failed to load model {model_id}: {e}') from e
            try:
                await asyncio.to_thread(model.warm_up)
            except Exception as e:
                await asyncio.to_thread(model.unload)
                raise ModelLoadError(f'failed to warm up model {model_id}: {e}') from e
            logger.info('model %s loaded and warmed up in %.1f s', model_id, time.monotonic() - started)
        finally:
            self._loading_id = None
            self._notify()
        self._model, self._model_id = model, model_id
        self._active += 1
        self.sessions_started += 1
        return model

    def release(self, lease: Lease) -> None:
        """End a session's hold on its model (the model stays loaded for the next session)."""
        if lease.released:
            raise RuntimeError(f'lease on model {lease.model_id} was already released')
        lease.released = True
        self._release()

    def _release(self) -> None:
        self._active -= 1
        self._notify()
