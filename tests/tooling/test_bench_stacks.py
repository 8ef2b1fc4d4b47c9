"""tooling/bench/stacks.py: py-spy's collapsed stacks summed into each frame's share."""

from __future__ import annotations

import pytest

from tooling.bench.stacks import (
    NO_FRAME,
    Frame,
    parse_collapsed,
    parse_frame,
    render_summary,
    summarize,
)

MAIN = Frame("<module>", "app.py")
HANDLE = Frame("handle", "app.py")
QUERY = Frame("query", "db/client.py")
WALK = Frame("walk", "tree.py")

# 100 samples: handle -> query 40, handle itself 10, walk recursing 30, an
# idle-looking thread with no Python frame 20.
STACKS = """\
<module> (app.py:10);handle (app.py:4);query (db/client.py:88) 25
<module> (app.py:10);handle (app.py:5);query (db/client.py:91) 15
<module> (app.py:10);handle (app.py:4) 10
<module> (app.py:12);walk (tree.py:3);walk (tree.py:7);walk (tree.py:7) 30
 20
"""


def test_a_frame_is_its_function_and_file_without_the_line() -> None:
    assert parse_frame("handle (app.py:4)") == HANDLE
    assert parse_frame("handle (app.py)") == HANDLE  # py-spy --nolineno
    assert parse_frame("Router.__call__ (starlette/routing.py:715)") == Frame(
        "Router.__call__", "starlette/routing.py"
    )
    assert parse_frame("<frozen runpy>") == Frame("<frozen runpy>", "")


def test_each_line_is_a_stack_outermost_first_and_its_count() -> None:
    stacks = parse_collapsed(STACKS)
    assert stacks[0] == ((MAIN, HANDLE, QUERY), 25)
    assert stacks[3] == ((MAIN, WALK, WALK, WALK), 30)
    assert stacks[4] == ((), 20)
    assert len(stacks) == 5


def test_a_line_without_a_count_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_collapsed("<module> (app.py:1);handle (app.py:4)\n")
    with pytest.raises(ValueError):
        parse_collapsed("<module> (app.py:1) many\n")


def test_inclusive_counts_a_frame_once_per_stack_and_self_its_innermost_samples() -> None:
    summary = summarize(STACKS)
    assert summary.samples == 100
    shares = {share.frame: share for share in summary.frames}
    assert (shares[MAIN].inclusive, shares[MAIN].own) == (80, 0)
    # Two lines of handle merge; its callee's samples are in its inclusive count.
    assert (shares[HANDLE].inclusive, shares[HANDLE].own) == (50, 10)
    assert (shares[QUERY].inclusive, shares[QUERY].own) == (40, 40)
    # Recursion: three walk frames per stack still count 30 samples, not 90.
    assert (shares[WALK].inclusive, shares[WALK].own) == (30, 30)
    assert (shares[NO_FRAME].inclusive, shares[NO_FRAME].own) == (20, 20)
    assert summary.share(shares[HANDLE].inclusive) == pytest.approx(50.0)


def test_frames_come_most_samples_first_and_only_the_top_ones() -> None:
    summary = summarize(STACKS, top=3, hottest=2)
    assert [share.frame for share in summary.frames] == [MAIN, HANDLE, QUERY]
    # By self: where the samples were spent, the wrappers above them not at all.
    assert [share.frame for share in summary.hottest] == [QUERY, WALK]
    assert [(s.inclusive, s.own) for s in summary.hottest] == [(40, 40), (30, 30)]
    # A tie is broken by name, whatever the input's order.
    tied = summarize("a (x.py:1) 5\nb (x.py:1) 5\n")
    assert [s.frame.function for s in tied.frames] == ["a", "b"]
    assert [s.frame.function for s in summarize("b (x.py:1) 5\na (x.py:1) 5\n").frames] == [
        "a",
        "b",
    ]


def test_no_samples_is_an_empty_summary_not_an_error() -> None:
    summary = summarize("")
    assert (summary.samples, summary.frames, summary.hottest) == (0, [], [])
    assert summary.share(0) == 0.0


def _rows(block: str) -> list[tuple[float, float, str]]:
    """A block's frame lines: incl %, self %, frame."""
    rows = [line.split(maxsplit=2) for line in block.splitlines()[2:]]
    return [(float(incl), float(own), frame) for incl, own, frame in rows]


def test_the_summary_lists_each_process_with_its_shares() -> None:
    text = render_summary({"api": summarize(STACKS), "worker": summarize("")}, heading="h")
    blocks = text.split("\n\n")
    assert blocks[1] == "api: 100 samples"
    by_incl, by_self = _rows(blocks[2]), _rows(blocks[3])
    # Every frame by incl; by self, only the four that were ever innermost.
    assert (len(by_incl), len(by_self)) == (5, 4)
    assert by_incl[0] == (80.0, 0.0, "<module> (app.py)")
    assert [r[0] for r in by_incl] == sorted((r[0] for r in by_incl), reverse=True)
    assert by_self[0] == (40.0, 40.0, "query (db/client.py)")
    assert [r[1] for r in by_self] == sorted((r[1] for r in by_self), reverse=True)
    assert blocks[4] == "worker: 0 samples"
    assert _rows(blocks[5]) == _rows(blocks[6].rstrip("\n")) == []
