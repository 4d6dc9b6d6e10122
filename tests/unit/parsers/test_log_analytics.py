"""Entra ID and Azure Activity rows as exported from Log Analytics / Microsoft Sentinel.

tests/data/log_analytics holds published records (tests/data/samples) reshaped into the
documented table columns (see its README). Each row must become the same event as the
record it was made from, whichever way its dynamic columns arrive (JSON text or objects),
and so must raise the same rule verdicts.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from detector.config import PipelineConfig
from detector.events.model import Event, Outcome
from detector.events.parsers.azure_activity import AzureActivityParser
from detector.events.parsers.azure_entra_id import EntraIdParser
from detector.normalizing import build_normalizer
from detector.pipeline import Pipeline
from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import Rule
from tests.normalizing import normalize_one
from tests.samples import load_samples
from tests.unit.test_rule_pack import fires, single_event_form

FIXTURES = Path(__file__).parents[2] / "data" / "log_analytics"
FILES = ("entra_id", "azure_activity")
SOURCES = ("azure_entra_id", "azure_activity")
CONTENT_HASH = re.compile("[0-9a-f]{32}")


@cache
def rows(name: str) -> tuple[dict[str, Any], ...]:
    with (FIXTURES / f"{name}.jsonl").open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle)


def all_rows() -> list[dict[str, Any]]:
    return [row for name in FILES for row in rows(name)]


def row_id(item: dict[str, Any]) -> str:
    return f"{item['table']}:{item['sample']}:{item['line']}"


def published_event(item: dict[str, Any]) -> Event:
    return _event(load_samples(item["sample"])[item["line"] - 1].event)


def comparable(event: Event) -> dict[str, Any]:
    # The id of an event without a vendor id hashes the document, which differs by design.
    out = event.to_dict()
    out.pop("id")
    out.pop("position")
    return out


def test_fixtures_cover_every_table() -> None:
    tables = {item["table"] for item in all_rows()}
    assert {
        "SigninLogs",
        "AADNonInteractiveUserSignInLogs",
        "AADServicePrincipalSignInLogs",
        "AuditLogs",
        "AzureActivity",
    } <= tables
    assert all(item["case"].startswith("reshaped from ") for item in all_rows())


def test_fixtures_carry_dynamic_columns_both_ways() -> None:
    kinds = {
        type(value).__name__
        for item in rows("azure_activity")
        for column, value in item["row"].items()
        if column.startswith(("Properties", "Claims", "Authorization"))
    }
    assert kinds == {"str", "dict"}
    entra = [item["row"].get("LocationDetails") for item in rows("entra_id")]
    assert {type(v).__name__ for v in entra if v is not None} == {"str", "dict"}


@pytest.mark.parametrize("item", all_rows(), ids=row_id)
def test_row_normalizes_like_its_published_record(item: dict[str, Any]) -> None:
    row_event = _event(item["row"])
    source = published_event(item)
    assert row_event.source == source.source
    assert comparable(row_event) == comparable(source)
    if not CONTENT_HASH.fullmatch(source.id.split(":", 1)[1]):
        assert row_event.id == source.id  # a vendor id survives the reshaping


def unmistakable(table: str, row: dict[str, Any]) -> bool:
    """Whether a row without ``Type`` still names its table by its columns."""
    if table == "AuditLogs":
        return {"ActivityDisplayName", "InitiatedBy"} <= row.keys()
    if table == "AzureActivity":
        return "OperationNameValue" in row and bool({"ActivityStatusValue", "Caller"} & row.keys())
    return {"UserPrincipalName", "ResultType", "TimeGenerated"} <= row.keys()


def test_rows_are_recognised_without_type_when_columns_are_unmistakable() -> None:
    checked = 0
    for item in all_rows():
        untyped = {k: v for k, v in item["row"].items() if k != "Type"}
        if unmistakable(item["table"], untyped):
            assert comparable(_event(untyped)) == comparable(published_event(item)), row_id(item)
            checked += 1
    assert checked > 100


def test_other_tables_are_not_taken() -> None:
    row = {"Type": "SecurityEvent", "TimeGenerated": "2026-01-05T10:00:00Z", "Account": "x"}
    assert not EntraIdParser().matches(row)
    assert not AzureActivityParser().matches(row)


def test_json_text_in_a_dynamic_column_is_decoded_and_plain_text_kept() -> None:
    item = next(i for i in rows("entra_id") if isinstance(i["row"].get("LocationDetails"), str))
    event = _event(item["row"])
    assert event.country == published_event(item).country is not None
    broken = {**item["row"], "DeviceDetail": "{not json", "UserAgent": "{not json either"}
    assert _event(broken).user_agent == "{not json either"


# --- the rules read rows as they read the published records -------------------------------


@pytest.fixture(scope="module")
def azure_rules() -> list[tuple[Rule, Rule]]:
    pack = load_rules([bundled_rules_dir()])
    judged = [(rule, form) for rule in pack if (form := single_event_form(rule)) is not None]
    return [(rule, form) for rule, form in judged if any(s in str(rule.where) for s in SOURCES)]


# Rules with conditions on raw.* read the vendor document as it arrived: a row's columns
# (raw.TargetResources, possibly JSON text) are not the export's raw.properties.targetResources.
# Known gap, reported: mfa-requirement-disabled's conditional-access branch misses AuditLogs rows.
RAW_READERS = {"mfa-requirement-disabled": {"AuditLogs:azure_entra_id:26"}}


def test_rows_get_the_same_rule_verdicts(azure_rules: list[tuple[Rule, Rule]]) -> None:
    assert len(azure_rules) >= 6
    differ = {
        (rule.id, row_id(item))
        for item in all_rows()
        for rule, form in azure_rules
        if fires(form, [_event(item["row"])]) != fires(form, [published_event(item)])
    }
    assert differ == {(rule, row) for rule, found in RAW_READERS.items() for row in found}


def test_failed_sign_in_rows_feed_entra_brute_force() -> None:
    rule = next(r for r in load_rules([bundled_rules_dir()]) if r.id == "entra-brute-force")
    item = next(i for i in rows("entra_id") if "Account Lockout Error 50053" in i["case"])
    start = datetime.fromisoformat("2026-01-05T10:00:00+00:00")
    burst = [_shifted(item["row"], start + timedelta(seconds=20 * n)) for n in range(12)]
    assert all(e.outcome is Outcome.FAILURE for e in burst)
    assert _alerts(rule, burst) == 1
    assert _alerts(rule, burst[:5]) == 0


def _shifted(row: dict[str, Any], moment: datetime) -> Event:
    stamp = moment.isoformat().replace("+00:00", "Z")
    times = {k: stamp for k in ("TimeGenerated", "CreatedDateTime") if k in row}
    return _event({**row, **times, "CorrelationId": stamp})


def _alerts(rule: Rule, events: list[Event]) -> int:
    config = PipelineConfig()
    config = config.model_copy(
        update={"models": config.models.model_copy(update={"enabled": False})}
    )
    pipeline = Pipeline.from_config(config, rules=[rule], normalizer=build_normalizer(config))
    alerts = pipeline.process_events(events) + pipeline.finish()
    return sum(1 for a in alerts if a.revision == 0 and a.detection.name == rule.id)


def _event(doc: Any) -> Event:
    result = normalize_one(doc)
    assert isinstance(result, Event), result
    return result
