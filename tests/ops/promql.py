"""The metric names a PromQL expression reads, for the dashboard and alert-rule tests.

A small tokenizer, not a parser: strings, numbers, Grafana variables and
identifiers. An identifier is a metric unless it is a function or aggregation
(followed by ``(``), a keyword, or a label name inside ``{...}``, ``[...]`` or a
``by (...)``-style list. An unknown function raises, so a typo in a query is
caught rather than read as a metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["metric_names", "selectors"]

# Prometheus' functions (3.x, a superset of 2.x; start/end as in `@ start()`) and
# aggregation operators: an identifier followed by "(" is one of these, never a metric.
_FUNCTION_NAMES = """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
    days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg
    histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
    histogram_sum holt_winters hour idelta increase info irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin
    sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time stdvar_over_time
    sum_over_time tan tanh time timestamp vector year start end
"""
_AGGREGATION_NAMES = """
    sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
"""
_FUNCTIONS = frozenset(_FUNCTION_NAMES.split())
_AGGREGATIONS = frozenset(_AGGREGATION_NAMES.split())
# Keywords whose parenthesised list holds label names, not metrics.
_GROUPING = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
_KEYWORDS = _GROUPING | frozenset(["and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"])

_TOKEN = re.compile(
    r"""
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<number>0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)
    | (?P<variable>\$\{[^}]*\}|\$\w+)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE,
)


def _tokens(expr: str) -> Iterator[re.Match[str]]:
    for match in _TOKEN.finditer(expr):
        if match.lastgroup != "space":
            yield match


def selectors(expr: str) -> list[tuple[str, str]]:
    """Each metric in ``expr`` with the text of its ``{...}`` matchers ("" when it has none)."""
    tokens = list(_tokens(expr))
    found: list[tuple[str, str]] = []
    depth = {"{": 0, "[": 0}
    closing = {"}": "{", "]": "["}
    skip_group = False  # inside by (...), on (...) and the like: label names
    for i, token in enumerate(tokens):
        kind, text = token.lastgroup, token.group()
        following = tokens[i + 1].group() if i + 1 < len(tokens) else ""
        if text in depth:
            depth[text] += 1
        elif text in closing:
            depth[closing[text]] -= 1
        elif text == ")" and skip_group:
            skip_group = False
        if kind != "ident" or depth["{"] or depth["["] or skip_group:
            continue
        if text in _GROUPING and following == "(":
            skip_group = True
        elif following == "(":
            if text not in _FUNCTIONS and text not in _AGGREGATIONS:
                raise ValueError(f"unknown PromQL function {text}() in {expr!r}")
        elif text.lower() not in _KEYWORDS and text not in _AGGREGATIONS:
            found.append((text, _matchers(expr, tokens, i + 1) if following == "{" else ""))
    return found


def _matchers(expr: str, tokens: list[re.Match[str]], start: int) -> str:
    """The text between the ``{`` token at ``start`` and the ``}`` closing it."""
    end = next((t for t in tokens[start:] if t.group() == "}"), None)
    if end is None:
        raise ValueError(f"unclosed '{{' in {expr!r}")
    return expr[tokens[start].end() : end.start()].strip()


def metric_names(expr: str) -> set[str]:
    """Metric names ``expr`` reads, as written (``x_bucket`` stays ``x_bucket``).

    >>> sorted(metric_names('sum by (le) (rate(a_bucket{job="x"}[5m])) / b'))
    ['a_bucket', 'b']
    """
    return {name for name, _ in selectors(expr)}
