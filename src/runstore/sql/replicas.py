"""Read replicas: which server serves a read, and how a storage reads its own writes.

A storage given ``read_replicas`` sends its reads -- the plans of mode ``READ`` or
``SNAPSHOT``: every ``get_*``, ``list_*`` and ``iter_*`` call, summaries, comparisons,
exports -- to a replica, its writes and ``init()`` always to the primary. Whichever
server serves a plan serves all of it, so a page and its total, or a summary's
statements, see one snapshot.

:meth:`Replicas.route` decides, as a generator of requests that each runner carries out
(:class:`Ask`: run a plan on a server; :class:`Pause`: wait), so the blocking and the
asyncio adapter decide alike -- and tests decide with scripted answers and a fake
``clock``. The call's policy (:mod:`runstore.sql.policy`) asks it, tells it of writes and
of replicas that failed, and sends a read a replica failed to the primary:

* **Lag**, measured on the replica itself: none while it has replayed all it received;
  else the time since the last transaction it replayed committed. A replica further
  behind than ``max_lag`` seconds is skipped: the primary answers, no error. What a
  replica said is trusted for a second, then asked again.
* **Read your writes**: after the storage committed a write, its next read asks the
  primary how far its log is (``pg_current_wal_lsn()``), and uses a replica only once
  the replica has replayed that far -- waiting up to ``wait`` seconds for it, else
  reading the primary.
* **Failures**: a replica that cannot be reached, or answers as no replica does (it was
  promoted), is left alone for five seconds, then tried again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import sqlalchemy as sa

from runstore.errors import StorageError
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Steps
from runstore.plans import one
from runstore.plans import operation
from runstore.plans import reading

__all__ = [
    "Ask",
    "Pause",
    "Replica",
    "Replicas",
    "Route",
    "current_position",
    "lsn",
    "reads_only",
]

RECHECK = 1.0
"""Seconds a replica's state is trusted before it is asked again."""
DOWN_FOR = 5.0
"""Seconds a replica that failed is left alone before it is tried again."""
POLL = 0.01
"""Seconds between two looks at a replica a read waits for."""

_STATE = reading(
    sa.select(
        sa.func.pg_is_in_recovery(),
        sa.cast(sa.func.pg_last_wal_receive_lsn(), sa.Text()),
        sa.cast(sa.func.pg_last_wal_replay_lsn(), sa.Text()),
        sa.extract("epoch", sa.func.now() - sa.func.pg_last_xact_replay_timestamp()),
    )
)
_POSITION = reading(sa.select(sa.cast(sa.func.pg_current_wal_lsn(), sa.Text())))


def lsn(text: str | None) -> int:
    """A log position (``16/B374D848``) as a number; 0 for none."""
    if not text:
        return 0
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@operation(Mode.READ)
def current_position() -> Steps[int]:
    """The primary's log position now: past every transaction committed before."""
    return lsn((yield from one(_POSITION))[0])


@operation(Mode.READ)
def _replica_state() -> Steps[tuple[bool, int, int, float | None]]:
    """Whether the server is a replica; its received and replayed positions; seconds
    since the last transaction it replayed committed."""
    recovering, received, replayed, since = yield from one(_STATE)
    seconds = None if since is None else float(since)
    return bool(recovering), lsn(received), lsn(replayed), seconds


@dataclass(frozen=True, slots=True)
class Ask:
    """Run ``plan`` on ``server`` (None: the primary); send back its value, or throw in
    its :class:`StorageError`."""

    server: Any
    plan: Plan[Any]


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait ``seconds``."""

    seconds: float


Route = Generator["Ask | Pause", Any, Any]
"""A decision of :meth:`Replicas.route`: it returns the server for a read, None for the
primary."""


@dataclass(slots=True, eq=False)
class Replica:
    """A replica and what it last said of itself."""

    server: Any
    """Its engine (connections in autocommit, the schema named)."""
    shown: str
    """Its URL, secrets masked."""
    down_until: float = 0.0
    checked_at: float = float("-inf")
    lag: float | None = None
    """Seconds behind, as last measured (None: not a replica, or never asked)."""
    replayed: int = 0
    """The log position it had replayed, as last measured."""


@dataclass(slots=True, eq=False)
class Replicas:
    """The read replicas of one storage, and what it wrote since it last read."""

    replicas: Sequence[Replica]
    max_lag: float
    """Seconds a replica may be behind and still serve reads."""
    wait: float
    """Seconds a read waits for a replica to replay the storage's own last write."""
    clock: Callable[[], float] = time.monotonic
    _writes: int = 0
    """Writes the storage committed, counted."""
    _placed: int = 0
    """Writes whose log position :attr:`_needed` covers, counted."""
    _needed: int = 0
    """The primary's log position that a replica must have replayed to serve a read."""
    _turn: int = field(default=0)

    def wrote(self) -> None:
        """The storage committed a write: its next read must see it."""
        self._writes += 1

    def lost(self, server: Any) -> None:
        """``server`` failed a read (unreachable, cancelled by recovery): leave it alone
        for a while."""
        for replica in self.replicas:
            if replica.server is server:
                replica.down_until = self.clock() + DOWN_FOR

    def route(self) -> Route:
        """The server that serves the next read: a replica, or None for the primary."""
        writes = self._writes
        if writes != self._placed:  # a write since: the log position now is past it
            try:
                self._needed = max(self._needed, (yield Ask(None, current_position())))
            except StorageError:
                return None  # the primary answers the read, and says why if it cannot
            self._placed = max(self._placed, writes)  # later writes: the next read asks
        count = len(self.replicas)
        start, self._turn = self._turn, (self._turn + 1) % count
        for offset in range(count):
            replica = self.replicas[(start + offset) % count]
            if (yield from self._serves(replica)):
                return replica.server
        return None

    def _serves(self, replica: Replica) -> Generator[Ask | Pause, Any, bool]:
        now = self.clock()
        if replica.down_until > now:
            return False
        deadline = now + self.wait
        while replica.checked_at + RECHECK <= self.clock() or replica.replayed < self._needed:
            try:
                state = yield Ask(replica.server, _replica_state())
            except StorageError:
                replica.down_until = self.clock() + DOWN_FOR
                return False
            self._record(replica, *state)
            if replica.lag is None:
                replica.down_until = self.clock() + DOWN_FOR  # promoted: not a replica now
                return False
            if replica.replayed >= self._needed or self.clock() >= deadline:
                break
            yield Pause(POLL)
        return (
            replica.lag is not None
            and replica.lag <= self.max_lag
            and replica.replayed >= self._needed
        )

    def _record(
        self, replica: Replica, recovering: bool, received: int, replayed: int, since: float | None
    ) -> None:
        replica.checked_at = self.clock()
        replica.replayed = replayed
        if not recovering:
            replica.lag = None
        elif replayed >= received:
            replica.lag = 0.0  # it has replayed all it received
        else:
            replica.lag = float("inf") if since is None else max(since, 0.0)


def reads_only(mode: Mode) -> bool:
    """Whether a replica may serve a plan whose first transaction is of ``mode``: it only
    reads."""
    return mode is Mode.READ or mode is Mode.SNAPSHOT
