"""Bufferevent pairs: two bufferevents joined back to back (libevent's ``bufferevent_pair.c``).

Facts and theory of operation
-----------------------------
* What one end writes, the other end reads: the writer's output chunks move into
  the reader's input (:meth:`Buffer.add_buffer` / :meth:`Buffer.remove_buffer`),
  nothing is copied, no fd and no system call is involved.
* A transfer happens when the writer's output holds data, the writer may write
  (enabled, not suspended) and the reader may read (enabled, not suspended).  It is
  attempted whenever one of these becomes true: data added to the output (a
  callback on the output buffer), ``enable()`` of either side, and the reader's
  reading coming back from a suspension (its input drained below the read high
  watermark, a rate-limit bucket refilled).  The move stops at the reader's read
  high watermark, so a reader that does not read holds at most that much input;
  the rest waits in the writer's output.  This is libevent's ``be_pair_transfer``.
* Transfers are synchronous (data written to a pair whose other end is reading is
  in that end's input when ``write()`` returns), but *callbacks never run inside
  the call that moved the data*: as in libevent, the ends of a pair always run
  their callbacks deferred (``BEV_OPT.DEFER_CALLBACKS`` is forced), from the loop,
  coalesced per pass.  The buffers' own callbacks stay immediate unless the user
  asked for ``DEFER_CALLBACKS``; then the output callback is deferred too, and
  data moves from the loop, once per batch of writes.
* After a move the reader's read callback runs when its input holds at least its
  read low watermark, the writer's write callback when its output holds at most its
  write low watermark.
* Freeing an end (this goes beyond libevent 2.0, which just unlinks the two): what
  its output still held is handed to the survivor, which keeps reading it under
  its own watermarks; once that is consumed, the survivor's event callback gets
  ``READING|EOF`` and its reading is disabled, as a socket's at end of file.
  Enabling reading again reports EOF again.  Writes to the survivor are kept in its
  output (``write()`` never refuses) but go nowhere; :meth:`flush` returns -1.
* ``flush(EV_WRITE, FINISHED)`` moves all of this end's output to the partner,
  ignoring its watermark, and reports ``READING|EOF`` to the partner;
  ``flush(EV_READ, FINISHED)`` pulls the partner's output and reports
  ``WRITING|EOF`` to it (libevent 2.1's bits).  ``FLUSH`` moves without the EOF,
  ``NORMAL`` does nothing.  Data a flush moved while the reader was not
  reading is reported by its read callback when it enables reading.
* Timeouts (libevent's "generic" timeouts, implemented with one timer per
  direction, made only when a timeout is set): the read timeout fires when no data
  arrived for that long while reading is enabled and not suspended; the write
  timeout when data waited in the output for that long without any of it moving.
  Either disables its direction and reports ``READING|TIMEOUT`` /
  ``WRITING|TIMEOUT``.
* Rate limits: the reader's read budget and the writer's write budget cut each
  move, and both are charged for what moved.
* ``THREADSAFE``: the two ends share one lock, so a transfer holds the only lock it
  needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evcore import EV_READ, EV_WRITE, Event

from .buffer import Buffer
from .bufferevent import BEV_EVENT, BEV_OPT, Bufferevent, FlushMode

if TYPE_CHECKING:  # pragma: no cover
    from evcore import EventBase

__all__ = ["PairBufferevent", "new_pair"]

_READ = int(EV_READ)
_WRITE = int(EV_WRITE)
_B_READING = int(BEV_EVENT.READING)
_B_WRITING = int(BEV_EVENT.WRITING)
_B_EOF = int(BEV_EVENT.EOF)
_B_TIMEOUT = int(BEV_EVENT.TIMEOUT)


class _GenericTimeouts:
    """Read and write timers for bufferevents without an fd (libevent's generic timeouts).

    The owner decides when a timer runs (:meth:`reset_read`, :meth:`del_read`, ...);
    a timer that fires disables its direction and reports ``READING|TIMEOUT`` or
    ``WRITING|TIMEOUT`` through the owner's event callback.  Timer events are made
    on first use, so bufferevents without timeouts cost nothing.

    >>> import evcore
    >>> base = evcore.EventBase()
    >>> a, b = new_pair(base)
    >>> a.set_timeouts(read=5.0); a.enable(evcore.EV_READ)
    >>> a._timeouts.read_pending()
    True
    >>> a.free(); b.free(); base.free()
    """

    __slots__ = ("_bev", "_rev", "_wev")

    def __init__(self, bev: Bufferevent) -> None:
        self._bev = bev
        self._rev: Event | None = None
        self._wev: Event | None = None

    def adjust(self) -> None:
        """Run each timer while its direction can make progress, else stop it (new timeouts set)."""
        bev = self._bev
        if bev._reading():
            self.reset_read()
        else:
            self.del_read()
        if bev.output and bev._writing():
            self.reset_write()
        else:
            self.del_write()

    def reset_read(self) -> None:
        """(Re)start the read timer from now, or stop it when no read timeout is set."""
        t = self._bev.timeout_read
        ev = self._rev
        if t is None:
            if ev is not None:
                ev.del_noblock()
            return
        if ev is None:
            ev = self._rev = Event.timer(self._bev.base, self._fired, _READ)
        ev.add(t)

    def reset_write(self) -> None:
        """(Re)start the write timer from now, or stop it when no write timeout is set."""
        t = self._bev.timeout_write
        ev = self._wev
        if t is None:
            if ev is not None:
                ev.del_noblock()
            return
        if ev is None:
            ev = self._wev = Event.timer(self._bev.base, self._fired, _WRITE)
        ev.add(t)

    def start_write(self) -> None:
        """Start the write timer unless it runs already (progress restarts it, waiting does not)."""
        if self._bev.timeout_write is not None and not self.write_pending():
            self.reset_write()

    def del_read(self) -> None:
        """Stop the read timer."""
        if self._rev is not None:
            self._rev.del_noblock()

    def del_write(self) -> None:
        """Stop the write timer."""
        if self._wev is not None:
            self._wev.del_noblock()

    def read_pending(self) -> bool:
        """Whether the read timer runs."""
        return self._rev is not None and bool(self._rev.pending())

    def write_pending(self) -> bool:
        """Whether the write timer runs."""
        return self._wev is not None and bool(self._wev.pending())

    def free(self) -> None:
        """Release both timers."""
        for ev in (self._rev, self._wev):
            if ev is not None:
                ev.free(block=False)
        self._rev = self._wev = None

    def _fired(self, fd: int, what: int, direction: int) -> None:
        bev = self._bev
        bev.lock()
        try:
            if bev._freed:  # pragma: no cover - freed by another thread while we waited for the lock
                return
            bev._enabled &= ~direction
            bev._disable_io(direction)
            bev._run_eventcb((_B_READING if direction == _READ else _B_WRITING) | _B_TIMEOUT)
        finally:
            bev.unlock()


def new_pair(base: EventBase, options: int = 0) -> tuple[PairBufferevent, PairBufferevent]:
    """Make two bufferevents joined back to back (libevent's ``bufferevent_pair_new``).

    ``BEV_OPT.DEFER_CALLBACKS`` is always added (callbacks run from the loop); with
    ``THREADSAFE`` both ends share one lock.

    >>> import evcore
    >>> base = evcore.EventBase()
    >>> a, b = new_pair(base)
    >>> b.enable(evcore.EV_READ); a.write(b"hello"); b.read()
    b'hello'
    >>> a.get_partner() is b and b.get_partner() is a
    True
    >>> a.free(); b.free(); base.free()
    """
    a = PairBufferevent(base, options)
    b = PairBufferevent(base, options)
    if a._lock is not None:
        b._lock = a._lock
    a._partner = b
    b._partner = a
    return a, b


class PairBufferevent(Bufferevent):
    """One end of a bufferevent pair; made by :func:`new_pair` / :meth:`Bufferevent.pair`.

    >>> import evcore
    >>> base = evcore.EventBase()
    >>> a, b = new_pair(base)
    >>> got = []
    >>> b.setcb(lambda bev, arg: got.append(bev.read()), None, None)
    >>> b.enable(evcore.EV_READ)
    >>> a.write(b"ping"); got            # the read callback runs from the loop
    []
    >>> base.loop(); got
    1
    [b'ping']
    >>> a.free(); b.free(); base.free()
    """

    kind = "pair"

    def __init__(self, base: EventBase, options: int = 0) -> None:
        super().__init__(base, options)
        # libevent forces deferred callbacks on pairs: nothing user-written runs inside write()
        self.options |= BEV_OPT.DEFER_CALLBACKS
        self._defer = True
        self._partner: PairBufferevent | None = None
        self._orphan: Buffer | None = None  # what a freed partner left unread
        self._timeouts = _GenericTimeouts(self)
        self._out_handle = self.output.add_cb(self._output_cb)

    # ------------------------------------------------------------------ partner
    def get_partner(self) -> PairBufferevent | None:
        """The other end, or ``None`` once it was freed (libevent's ``bufferevent_pair_get_partner``).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = new_pair(base)
        >>> b.free(); a.get_partner() is None
        True
        >>> a.free(); base.free()
        """
        return self._partner

    def enable(self, events: int) -> None:
        """Start reading and/or writing; input already waiting (moved by a flush) is reported from the loop.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = new_pair(base)
        >>> a.write(b"early"); a.flush(evcore.EV_WRITE, FlushMode.FLUSH)
        1
        >>> b.setcb(lambda bev, arg: print(bev.read()), None, None)
        >>> b.enable(evcore.EV_READ); base.loop()
        b'early'
        1
        >>> a.free(); b.free(); base.free()
        """
        self.lock()
        try:
            super().enable(events)
            if int(events) & _READ and self.input and len(self.input) >= self._wm_read[0] and self._reading():
                self._run_readcb()
        finally:
            self.unlock()

    # ------------------------------------------------------------------ moving data
    def _move(self, src: Buffer, writer: PairBufferevent | None, ignore_wm: bool) -> int:
        """Move from ``src`` (``writer``'s output, or an orphan) into this end's input.

        Watermarks and rate limits cut the move unless ``ignore_wm``; callbacks are
        only scheduled (they are always deferred on pairs).  Returns the bytes moved.
        """
        inp = self.input
        total = 0
        while src:
            n = len(src)
            if not ignore_wm:
                high = self._wm_read[1]
                if high:
                    room = high - len(inp)
                    if room <= 0:
                        break
                    if room < n:
                        n = room
                rate = self._rate
                if rate is not None:
                    budget = self._read_budget()
                    if budget <= 0:
                        rate.block_read()
                        break
                    if budget < n:
                        n = budget
                if writer is not None and writer._rate is not None:
                    budget = writer._write_budget()
                    if budget <= 0:
                        writer._rate.block_write()
                        break
                    if budget < n:
                        n = budget
            if n == len(src):
                inp.add_buffer(src)
            else:
                src.remove_buffer(inp, n)
            total += n
            if ignore_wm:
                break
            if self._rate is not None:
                self._rate.consumed_read(n)
            if writer is not None and writer._rate is not None:
                writer._rate.consumed_write(n)
            if self._read_suspended or (writer is not None and writer._write_suspended):
                break
        if total:
            if self._reading():
                self._timeouts.reset_read()
            if len(inp) >= self._wm_read[0]:
                self._run_readcb()
            if writer is not None:
                if src:
                    if writer._writing():
                        writer._timeouts.reset_write()
                else:
                    writer._timeouts.del_write()
                if len(src) <= writer._wm_write[0]:
                    writer._run_writecb()
        return total

    def _push(self) -> None:
        """Move our output to the partner if both sides are willing (libevent's wants_to_talk)."""
        p = self._partner
        if p is not None and self.output and self._writing() and p._reading():
            p._move(self.output, self, False)

    def _pull_orphan(self) -> None:
        """Read what a freed partner left; report EOF once it is all in."""
        src = self._orphan
        if src is not None:
            self._move(src, None, False)
            if src:
                return
            self._orphan = None
        if self._reading():
            self._enabled &= ~_READ
            self._disable_io(_READ)
            self._run_eventcb(_B_READING | _B_EOF)

    def _output_cb(self, buf: Buffer, info: Any, arg: Any) -> None:
        if not info.n_added or self._freed:
            return
        lock = self._lock
        if lock is not None:
            lock.acquire()
        try:
            self._push()
            if self.output and self._writing():
                self._timeouts.start_write()
        finally:
            if lock is not None:
                lock.release()

    # ------------------------------------------------------------------ the kind's operations
    def _enable_io(self, events: int) -> None:
        if events & _READ:
            self._timeouts.reset_read()
            p = self._partner
            if p is not None:
                p._push()
            else:  # only after the partner was freed
                self._pull_orphan()
        if events & _WRITE:
            if self.output:
                self._timeouts.reset_write()
            self._push()

    def _disable_io(self, events: int) -> None:
        if events & _READ:
            self._timeouts.del_read()
        if events & _WRITE:
            self._timeouts.del_write()

    def _adj_timeouts(self) -> None:
        self._timeouts.adjust()

    def _flush_io(self, events: int, mode: FlushMode) -> int:
        p = self._partner
        if p is None:
            return -1
        if mode == FlushMode.NORMAL:
            return 0
        moved = 0
        if events & _READ:
            moved += self._move(p.output, p, True)
        if events & _WRITE:
            moved += p._move(self.output, self, True)
        if mode == FlushMode.FINISHED:
            what = _B_EOF
            if events & _READ:
                what |= _B_WRITING
            if events & _WRITE:
                what |= _B_READING
            p._run_eventcb(what)
        return 1 if moved else 0

    def _destruct(self) -> None:
        self._timeouts.free()
        try:
            self.output.remove_cb(self._out_handle)
        except ValueError:  # pragma: no cover - the user freed the buffer itself
            pass
        self._orphan = None
        p = self._partner
        if p is None:
            return
        self._partner = None
        p._partner = None
        if self.output:
            p._orphan = self.output
        if p._reading():
            p._pull_orphan()
