"""``normalizer.formats``: a topic or file declares its log type and skips auto-detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.config import load_config
from detector.errors import ConfigError
from detector.events.model import DeadLetter, DeadLetterReason, Event
from detector.normalizing import build_normalizer
from detector.sources.files import FileSource
from detector.sources.record import Position, RawRecord
from tests.samples import sample

# GitLab's REST API example of an archived project. Without ``author_id`` (an export that
# keeps the author only in ``details``) no parser recognises the shape; gitlab_audit still
# parses it (the actor from ``details.author_email``).
GITLAB_ARCHIVED = "Retrieve all instance audit events | Example response item 1"


def gitlab_without_author_id() -> dict[str, Any]:
    event = dict(sample("gitlab_audit", GITLAB_ARCHIVED))
    del event["author_id"]
    return event


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def record(doc: Any, stream: str) -> RawRecord:
    return RawRecord(orjson.dumps(doc), Position(stream, 1, 0))


def test_a_declared_topic_is_parsed_by_its_parser_without_detection(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "normalizer:\n  formats: {gitlab-audit: gitlab_audit}\n"))
    normalizer = build_normalizer(config)
    doc = gitlab_without_author_id()

    [declared] = normalizer.normalize(record(doc, "gitlab-audit"))
    [detected] = normalizer.normalize(record(doc, "other-topic"))

    assert isinstance(declared, Event)
    assert declared.source == "gitlab_audit"
    assert declared.actor == "admin@example.com"
    assert isinstance(detected, DeadLetter)
    assert detected.reason is DeadLetterReason.UNKNOWN_FORMAT


def test_other_streams_still_auto_detect(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "normalizer:\n  formats: {gitlab-audit: gitlab_audit}\n"))
    normalizer = build_normalizer(config)
    okta_login = sample("okta_system_log", "Login Event")
    [event] = normalizer.normalize(record(okta_login, "okta-topic"))
    assert isinstance(event, Event)
    assert event.source == "okta_system_log"


def test_a_file_is_keyed_by_its_path_as_given(tmp_path: Path) -> None:
    export = tmp_path / "gitlab-export.jsonl"
    export.write_bytes(orjson.dumps(gitlab_without_author_id()) + b"\n")
    text = f"normalizer:\n  formats:\n    {export}: gitlab_audit\n"
    normalizer = build_normalizer(load_config(write(tmp_path, text)))
    with FileSource([str(export)]) as source:
        records = [r for batch in source.batches() for r in batch]
    assert [r.position.stream for r in records] == [str(export)]
    [event] = normalizer.normalize_batch(records).events
    assert event.source == "gitlab_audit"


def test_auto_for_one_stream_detects_despite_a_default_format(tmp_path: Path) -> None:
    text = "normalizer:\n  default_format: github_audit\n  formats: {okta: auto}\n"
    normalizer = build_normalizer(load_config(write(tmp_path, text)))
    [event] = normalizer.normalize(record(sample("okta_system_log", "Login Event"), "okta"))
    assert isinstance(event, Event)
    assert event.source == "okta_system_log"


def test_an_unknown_log_type_is_one_line_naming_the_key(tmp_path: Path) -> None:
    text = "normalizer:\n  formats:\n    prod.okta: okta_system_log\n    aws-trail: cloudtrial\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    line = str(error.value)
    assert "\n" not in line
    assert line.startswith(f"{path}:4: normalizer.formats.aws-trail: unknown log type 'cloudtrial'")
    assert "cloudtrail" in line  # the known names are listed
