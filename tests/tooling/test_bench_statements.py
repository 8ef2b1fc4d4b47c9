"""PostgreSQL statements per request: counting by role, the arithmetic, the table and the JSON."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tooling.bench import report, results
from tooling.bench.machine import Machine
from tooling.bench.results import CLOSED, PhaseResult, build_rows
from tooling.bench.sampling import Usage
from tooling.bench.statements import (
    API_ROLE,
    DRIVER_ROLE,
    WORKER_ROLE,
    StatementCount,
    count_statements,
    is_transaction_control,
)
from tooling.bench.stats import Latency


@pytest.mark.parametrize(
    "query",
    ["BEGIN", "begin", "COMMIT", "ROLLBACK", "END", "ABORT", "START TRANSACTION", "SAVEPOINT sa_1",
     "RELEASE SAVEPOINT sa_1", "ROLLBACK TO SAVEPOINT sa_1", "COMMIT;"],
)  # fmt: skip
def test_transaction_control_is_told_by_its_first_word(query: str) -> None:
    assert is_transaction_control(query)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT $1",
        "INSERT INTO orders (id) VALUES ($1)",
        "UPDATE products SET stock = stock - $1",
        "SET LOCAL lock_timeout = $1",
        "  ",
        "",
    ],
)
def test_other_statements_are_not_transaction_control(query: str) -> None:
    assert not is_transaction_control(query)


def test_statements_are_summed_per_process_and_the_bench_s_own_left_out() -> None:
    rows = [
        (API_ROLE, "BEGIN", 10),
        (API_ROLE, "SELECT $1", 25),
        (API_ROLE, "COMMIT", 10),
        (WORKER_ROLE, "BEGIN", 40),
        (WORKER_ROLE, "UPDATE products SET stock = stock - $1", 30),
        (WORKER_ROLE, "COMMIT", 38),
        (WORKER_ROLE, "ROLLBACK", 2),
        (WORKER_ROLE, "SELECT $1", 5),  # the same text twice (another query id) adds up
        (WORKER_ROLE, "SELECT $1", 5),
        (DRIVER_ROLE, "SELECT orders.id FROM orders", 500),  # the bench waiting for sagas
        ("postgres", "SELECT pg_stat_statements_reset()", 1),
    ]
    counted = count_statements(rows)
    assert counted == {
        "api": StatementCount(statements=45, transaction_control=20),
        "worker": StatementCount(statements=120, transaction_control=80),
    }


def test_a_process_that_ran_nothing_is_counted_as_zero() -> None:
    assert count_statements([]) == {
        "api": StatementCount(0, 0),
        "worker": StatementCount(0, 0),
    }


def test_statements_per_request_divide_by_the_completed_requests() -> None:
    rate = StatementCount(statements=490, transaction_control=220).per(10)
    assert (rate.statements, rate.transaction_control) == (49.0, 22.0)
    nothing = StatementCount(statements=5, transaction_control=2).per(0)
    assert math.isnan(nothing.statements) and math.isnan(nothing.transaction_control)


def _phase(variant: str, concurrency: int, statements: dict[str, StatementCount]) -> PhaseResult:
    return PhaseResult(
        variant=variant,
        kind=CLOSED,
        concurrency=concurrency,
        requested=20,
        completed=20,
        seconds=2.0,
        throughput=10.0,
        latency=Latency.of([0.1] * 3),
        usage={name: Usage(1.0, 100.0) for name in results.PROCESSES},
        statements=statements,
    )


SAGA_AT_C = {"api": StatementCount(360, 120), "worker": StatementCount(980, 440)}


def _phases() -> list[PhaseResult]:
    return [
        _phase("saga", 4, SAGA_AT_C),
        # At concurrency 1: not what the row reports.
        _phase("saga", 1, {"api": StatementCount(1, 1), "worker": StatementCount(1, 1)}),
        _phase("empty", 4, {"api": StatementCount(60, 40), "worker": StatementCount(0, 0)}),
        _phase("empty", 1, {}),
        # Not counted (say, an older run's figures): the row has none.
        _phase("floor", 4, {}),
        _phase("floor", 1, {}),
    ]


def test_a_row_reports_the_statements_per_request_of_its_loop_at_c() -> None:
    rows = {row.variant: row for row in build_rows(_phases())}
    saga = rows["saga"].statements_per_request
    assert (saga["api"].statements, saga["api"].transaction_control) == (18.0, 6.0)
    assert (saga["worker"].statements, saga["worker"].transaction_control) == (49.0, 22.0)
    assert rows["empty"].statements_per_request["worker"].statements == 0.0
    assert rows["floor"].statements_per_request == {}


def test_the_statements_table_has_a_row_per_counted_variant() -> None:
    lines = "\n".join(report.statements_table(build_rows(_phases()))).splitlines()
    table = [line for line in lines if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    assert cells[0] == list(report.STATEMENT_HEADERS)
    by_label = {row[0]: row[1:] for row in cells[2:]}
    assert set(by_label) == {results.SAGA.label, results.EMPTY.label}
    assert by_label[results.SAGA.label] == ["18.0", "6.0", "49.0", "22.0"]
    assert by_label[results.EMPTY.label] == ["3.0", "2.0", "0.0", "0.0"]


def test_no_statements_table_when_nothing_was_counted() -> None:
    phases = [dataclasses.replace(p, statements={}) for p in _phases()]
    assert report.statements_table(build_rows(phases)) == []


def test_a_process_missing_from_a_row_shows_a_dash() -> None:
    phases = [
        _phase("saga", 4, {"api": StatementCount(40, 20)}),
        _phase("saga", 1, {}),
    ]
    row = build_rows(phases)[0]
    assert report.statement_cells(row) == [results.SAGA.label, "2.0", "1.0", "-", "-"]


def test_each_phase_s_statements_are_in_the_json_raw_and_per_request() -> None:
    machine = Machine("Test CPU", 2, 1, 4.0, "Linux", "3.11.7", "temporal 1.9.1")
    data = report.build_report({}, machine, 1.0, _phases(), []).to_json()
    saga = data["phases"][0]
    assert saga["statements"]["worker"] == {"statements": 980, "transaction_control": 440}
    assert saga["statements_per_completed"]["worker"] == {
        "statements": 49.0,
        "transaction_control": 22.0,
    }
    assert data["phases"][4]["statements"] == {}
    assert data["rows"][0]["variant"] == "saga"
    assert data["rows"][0]["statements_per_request"]["api"]["statements"] == 18.0
