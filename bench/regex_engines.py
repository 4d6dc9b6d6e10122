"""Rule regexes: backtracking engines against RE2 on pathological pattern/value pairs.

    python bench/regex_engines.py [--repeat 3]

For each pair, prints the wall time (best of ``--repeat``) of a search with
Python's ``re`` and with the ``regex`` module (the backtracking engines, on a
value short enough to finish in seconds), then of a rule condition as ciwatch
compiles it (RE2, linear time) on that value and on a 100 KB one; and the
answer of the old matcher (the ``regex`` module bounded to 50 ms) on the
100 KB value: a timeout there was a silent "no match". Nothing here asserts
timings.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

import regex

from detector.rules.regexes import RegexGuard, compile_regex, linear_time

LONG = 100_000
CASES = [
    # (pattern, value that finishes in seconds on a backtracking engine, 100 KB value)
    ("^(a+)+$", "a" * 24 + "!", "a" * LONG + "!"),
    ("(a|aa)+b", "a" * 30, "a" * LONG),
    (".*x.*y.*z", "xy" * 300, "xy" * (LONG // 2)),
    ("(a|aa)+$", "a" * 30 + "!a", "a" * LONG + "!a"),
]


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def old_answer(pattern: str, value: str) -> str:
    try:
        found = regex.compile(pattern).search(value, timeout=0.05)
    except TimeoutError:
        return "timeout (no match)"
    return "match" if found else "no match"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'pattern':<12} {'chars':>6} {'re s':>8} {'regex s':>8} {'RE2 s':>9}"
        f" {'RE2 100KB s':>12}  {'old 100KB':<20} {'RE2 100KB':<9}"
    )
    for pattern, short, long in CASES:
        assert linear_time(pattern)
        linear = compile_regex(pattern, RegexGuard(max_length=LONG + 10), "bench")
        stdlib = re.compile(pattern)
        backtracking = regex.compile(pattern)
        re_s = best(lambda: stdlib.search(short), args.repeat)  # noqa: B023
        regex_s = best(lambda: backtracking.search(short), args.repeat)  # noqa: B023
        re2_s = best(lambda: linear(short), args.repeat)  # noqa: B023
        re2_long_s = best(lambda: linear(long), args.repeat)  # noqa: B023
        answer = "match" if linear(long) else "no match"
        print(
            f"{pattern:<12} {len(short):>6} {re_s:>8.3f} {regex_s:>8.3f} {re2_s:>9.6f}"
            f" {re2_long_s:>12.6f}  {old_answer(pattern, long):<20} {answer:<9}"
        )


if __name__ == "__main__":
    main()
