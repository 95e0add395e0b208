"""The farm's change feed: who is told of each change (the WebSocket), once it is committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brender.server.store import Store

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
Event = tuple[str, dict[str, Any]]


@dataclass(eq=False)
class Events:
    store: Store
    listeners: list[Listener] = field(default_factory=list)
    _pending: list[Event] = field(default_factory=list)
    _batch: int = -1

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Tell every listener once the change is committed, so a page that reads on the
        event reads the change."""
        if not self.listeners:
            return
        if self._batch != self.store.batch_no or not self._pending:
            events: list[Event] = []
            self._pending, self._batch = events, self.store.batch_no
            self.store.after_commit(lambda: self.tell(events))
        self._pending.append((kind, data))

    def tell(self, events: list[Event]) -> None:
        """Tell every listener now; one that fails does not stop the rest."""
        for kind, data in events:
            for listener in list(self.listeners):
                try:
                    listener(kind, data)
                except Exception:
                    log.exception("a %s event listener failed", kind)
