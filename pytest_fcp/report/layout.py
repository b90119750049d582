"""Where the flow SVG's labels go: text widths, and shelves that keep labels from overlapping.

A label lives on a shelf (a horizontal band: the instant labels, the fetch labels, the sleep labels, two bands
of cache days, the result lane). Events are laid out left to right; an event whose label would touch the last
label on its shelf moves right until it clears it (a day label first tries its other band), so no two labels
ever overlap, however many events or days a flow has. Widths are estimated generously from the characters
(wide enough for DejaVu Sans, the widest common sans-serif), so the estimate bounds what a browser draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BOLD", "FONT", "GAP", "Shelf", "label_css", "label_width", "place", "text_width"]

#: Font size in px of each text class of the flow (the style sheet is built from this table).
FONT: dict[str, float] = {"tl": 10, "fl": 10, "st": 10, "day": 9, "ot": 11, "ln": 10, "note": 10}
#: Text classes drawn bold.
BOLD = frozenset({"ot", "ln"})
#: Least space in px between two labels on one shelf.
GAP = 4.0
_NARROW = frozenset("iljft.,:;'!|()[] -/")
_WIDE = frozenset("mwMW@%")


def text_width(text: str, size: float, bold: bool = False) -> float:
    """A generous estimate of ``text``'s width in px at ``size`` px (sans-serif)."""
    em = 0.0
    for char in text:
        if char in _WIDE:
            em += 1.0
        elif char in _NARROW:
            em += 0.42
        elif char.isupper():
            em += 0.8
        else:
            em += 0.68
    return em * size * (1.1 if bold else 1.0)


def label_width(cls: str, text: str) -> float:
    """The estimated width of ``text`` drawn with the flow's text class ``cls``."""
    return text_width(text, FONT[cls], cls in BOLD)


def label_css() -> str:
    """The style rules giving each flow text class its size (and weight), from :data:`FONT`."""
    rules = []
    for cls, size in FONT.items():
        weight = ";font-weight:600" if cls in BOLD else ""
        rules.append(f"svg .{cls}{{font-size:{size:g}px{weight}}}")
    return "".join(rules)


@dataclass
class Shelf:
    """One band of labels placed left to right: it remembers the right edge of its last label."""

    right: float = -math.inf

    def shift(self, left: float) -> float:
        """How far right a label starting at ``left`` must move to clear this shelf's last label."""
        return max(0.0, self.right + GAP - left)

    def take(self, left: float, right: float) -> None:
        """Claim the span ``left`` .. ``right``."""
        self.right = max(self.right, right)


def place(
    x: float, wants: Sequence[tuple[Sequence[str], float, float]], shelves: dict[str, Shelf]
) -> tuple[float, list[str]]:
    """The least x' >= ``x`` at which each wanted label fits on one of its shelves, and the shelves chosen.

    ``wants`` holds, per label, the shelves it may go on (in order of preference), its left edge relative to
    the event's x, and its width; the spans are claimed.
    """
    chosen: list[str] = []
    shift = 0.0
    for options, dx, _ in wants:
        best = min(options, key=lambda name: shelves[name].shift(x + dx))
        shift = max(shift, shelves[best].shift(x + dx))
        chosen.append(best)
    x += shift
    for name, (_, dx, width) in zip(chosen, wants, strict=True):
        shelves[name].take(x + dx, x + dx + width)
    return x, chosen
