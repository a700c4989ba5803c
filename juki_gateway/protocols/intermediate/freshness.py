"""The time window of the intermediate server's links: a frame must be stamped with the time.

Every frame header carries a 14-digit UTC timestamp, covered by the frame's signature (R11).
The intermediate server refuses a frame whose timestamp is more than :data:`FRAME_TIME_WINDOW`
seconds from its own clock, either way, with :class:`FrameTimeOutsideWindow` (6612): a signed
frame recorded on a link cannot be played again later, nor one stamped ahead of time kept for
later. Pure: the clock's reading is passed in, as seconds since the epoch.
"""

from __future__ import annotations

import calendar
import time

from juki_gateway.protocols.intermediate.errors import FrameTimeOutsideWindow

#: Seconds a frame's header timestamp may be from the server's clock, either way.
FRAME_TIME_WINDOW = 300.0


def frame_time_error(
    timestamp: str, now: float, window: float = FRAME_TIME_WINDOW
) -> FrameTimeOutsideWindow | None:
    """Why a frame stamped ``timestamp`` (``YYYYMMDDhhmmss``, UTC) is refused at ``now``
    (seconds since the epoch), or None when it is at most ``window`` seconds from ``now``."""
    try:
        stamped = calendar.timegm(time.strptime(timestamp, "%Y%m%d%H%M%S"))
    except ValueError:
        return FrameTimeOutsideWindow(f"frame timestamp {timestamp!r} is not YYYYMMDDhhmmss")
    skew = stamped - now
    if abs(skew) <= window:
        return None
    side = "ahead of" if skew > 0 else "behind"
    return FrameTimeOutsideWindow(
        f"frame timestamp {timestamp} is {abs(skew):.0f} s {side} the server clock "
        f"(window ±{window:.0f} s, UTC)"
    )
