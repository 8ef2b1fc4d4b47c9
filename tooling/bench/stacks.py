"""Collapsed stacks (py-spy's ``--format raw``) summed into each frame's share of the samples.

Each line is one distinct stack, outermost frame first, and how many samples
caught it: ``<module> (app.py:10);handle (app.py:4) 22``. A frame's
*inclusive* count is the samples whose stack holds it anywhere (once per
stack, so a recursive function is not counted twice); its *self* count, the
samples in which it was the innermost frame. Frames are told apart by
function and file, not line, so a function's lines add up. py-spy writes a
sample of a thread with no Python frame as a line with no stack (" 50"):
those count under ``NO_FRAME``, as they take their width in the flame graph.

py-spy marks no frame as idle: without ``--idle`` (the bench never passes
it) it records only threads that were running, so every share here is a
share of busy time. Pure, unit-tested on made-up stacks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

# "function (file:line)", or "function (file)" with py-spy's --nolineno.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True, order=True)
class Frame:
    function: str
    file: str  # as py-spy prints it (relative to site-packages); "" when it gave none


NO_FRAME = Frame("(no Python frame)", "")


@dataclass(frozen=True)
class FrameShare:
    frame: Frame
    inclusive: int  # samples with the frame anywhere in the stack
    own: int  # samples with the frame innermost


@dataclass(frozen=True)
class StackSummary:
    samples: int
    frames: list[FrameShare]  # by inclusive samples, most first
    # By self samples, most first: where the time is spent. The top by
    # inclusive samples are mostly the wrappers every request runs through
    # (event loop, ASGI middleware), which hide the work below them.
    hottest: list[FrameShare]

    def share(self, count: int) -> float:
        """``count`` as a percentage of every sample."""
        return 100.0 * count / self.samples if self.samples else 0.0


def parse_frame(text: str) -> Frame:
    found = _FRAME.match(text)
    if found is None:
        return Frame(text, "")
    return Frame(found["function"], found["file"])


def parse_collapsed(text: str) -> list[tuple[tuple[Frame, ...], int]]:
    """Each line's frames (outermost first; none for an empty stack) and sample count.

    Raises ValueError on a line that does not end with a count.
    """
    stacks = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stack, space, count = line.rstrip().rpartition(" ")
        if not space or not count.isdigit():
            raise ValueError(f"line {number} is not 'frame;frame;... count': {line[:80]!r}")
        frames = tuple(parse_frame(frame) for frame in stack.split(";")) if stack else ()
        stacks.append((frames, int(count)))
    return stacks


def summarize(text: str, *, top: int = 30, hottest: int = 20) -> StackSummary:
    """The total samples, the ``top`` frames by inclusive samples and the ``hottest`` by self."""
    inclusive: Counter[Frame] = Counter()
    own: Counter[Frame] = Counter()
    samples = 0
    for frames, count in parse_collapsed(text):
        samples += count
        frames = frames or (NO_FRAME,)
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count

    def ranked(counts: Counter[Frame], n: int) -> list[FrameShare]:
        # Most samples first; ties by name, so the order never depends on the input's.
        best = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
        return [FrameShare(frame, inclusive[frame], own[frame]) for frame, _ in best]

    return StackSummary(samples, ranked(inclusive, top), ranked(own, hottest))


def render_summary(summaries: Mapping[str, StackSummary], *, heading: str) -> str:
    """The text of ``summary.txt``: per process, its samples and its top frames."""
    out = [
        heading,
        "incl = samples with the frame anywhere on the stack (what it and its callees took);",
        "self = samples with the frame innermost. Shares are of the process's busy samples.",
    ]
    for name, summary in summaries.items():
        out += ["", f"{name}: {summary.samples} samples", "", "by incl:"]
        out += _share_lines(summary, summary.frames)
        out += ["", "by self:"]
        out += _share_lines(summary, summary.hottest)
    return "\n".join(out) + "\n"


def _share_lines(summary: StackSummary, shares: list[FrameShare]) -> list[str]:
    lines = ["  incl %  self %  function (file)"]
    for share in shares:
        where = f" ({share.frame.file})" if share.frame.file else ""
        lines.append(
            f"  {summary.share(share.inclusive):6.1f}  {summary.share(share.own):6.1f}  "
            f"{share.frame.function}{where}"
        )
    return lines
