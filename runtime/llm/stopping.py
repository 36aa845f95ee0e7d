"""Stop strings over a stream of text deltas."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed text deltas; get back the text safe to emit and whether a stop string appeared.

    Text that could be the start of a stop string is withheld until it is decided; on a match the
    text is cut right before the stop string. With no stop strings, text passes straight through.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return delta
        text = self._held + delta
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = 0  # longest suffix of text that is a proper prefix of some stop string
        for s in self._stops:
            for n in range(min(len(s) - 1, len(text)), keep, -1):
                if text.endswith(s[:n]):
                    keep = n
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """Release withheld text at the end of generation (no stop string followed)."""
        out, self._held = ("" if self.stopped else self._held), ""
        return out
