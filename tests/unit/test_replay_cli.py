"""``ciwatch replay``, ``test-rules`` and ``validate`` in process, on small inputs."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from detector.cli import main

T0_MS = 1_767_607_200_000  # 2026-01-05T10:00:00Z


def github(action: str, actor: str, minute: int, doc_id: str, **extra: object) -> bytes:
    event = {
        "@timestamp": T0_MS + minute * 60_000,
        "action": action,
        "actor": actor,
        "_document_id": doc_id,
        "org": "acme",
        **extra,
    }
    return json.dumps(event).encode()


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    lines = [
        github("repo.create", "alice", 0, "d0", repo="acme/app"),
        github("protected_branch.destroy", "alice", 1, "d1", repo="acme/app", name="main"),
        github("protected_branch.destroy", "alice", 2, "d2", repo="acme/lib", name="main"),
        b"{not json",
    ]
    path = tmp_path / "github.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def replay(events_file: Path, out: Path, *extra: str) -> list[dict[str, object]]:
    assert main(["replay", str(events_file), "--alerts-out", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_replay_writes_alerts_with_evidence_and_a_summary(
    events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alerts = replay(events_file, tmp_path / "alerts.jsonl")
    opened = [a for a in alerts if a["revision"] == 0]
    assert [a["rule"] for a in opened] == ["branch-protection-removed"]
    assert opened[0]["actor"] == "alice"
    assert opened[0]["evidence"] == ["github_audit:d1"]
    final = alerts[-1]
    assert (final["id"], final["count"]) == (opened[0]["id"], 2)
    err = capsys.readouterr().err
    assert "events       3" in err
    assert "dead letters 1 (invalid_json: 1)" in err
    assert "branch-protection-removed" in err


def test_replay_is_deterministic(events_file: Path, tmp_path: Path) -> None:
    first = (tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    replay(events_file, first[0])
    replay(events_file, first[1])
    assert first[0].read_bytes() == first[1].read_bytes()


def test_replay_writes_dead_letters_when_asked(events_file: Path, tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    replay(events_file, tmp_path / "alerts.jsonl", "--dead-letters", str(dead))
    [row] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert (row["reason"], row["position"]) == ("invalid_json", f"{events_file}:4")


def test_disabled_rules_do_not_fire(events_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("rules: {disabled: [branch-protection-removed]}\n")
    assert replay(events_file, tmp_path / "alerts.jsonl", "--config", str(config)) == []


def test_replay_with_a_bad_config_is_one_line(
    events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("rules: {disabled: [no-such-rule]}\n")
    code = main(
        ["replay", str(events_file), "--alerts-out", str(tmp_path / "a"), "--config", str(config)]
    )
    assert code == 2
    assert (
        capsys.readouterr().err
        == "ciwatch: error: rules.disabled: unknown rule id 'no-such-rule'\n"
    )


def test_the_bundled_rule_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-rules"]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    passed, _, total = summary.split()[:3]
    assert passed == total and "rule tests passed" in summary


def test_a_failing_rule_test_exits_1_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "mine.yaml"
    pack.write_text(
        """
rules:
  - id: any-repo-create
    title: Repository created
    kind: match
    severity: low
    description: Any repository creation.
    where: {source: github_audit, action: repo.create}
    tests:
      - name: expects two but one fires
        alerts: 2
        events:
          - {source: github_audit, action: repo.create, actor: bob}
"""
    )
    assert main(["test-rules", str(pack)]) == 1
    out, err = capsys.readouterr()
    assert "0 of 1 rule tests passed (1 rules)" in out
    assert "rule any-repo-create, test 'expects two but one fires': expected 2 alerts, got 1" in err


def test_validate_reports_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_validate_lists_every_service_problem_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ciwatch.yaml"
    config.write_text(
        "service:\n  webhook:\n    url: https://siem.example/hook\n    format: splunk_hec\n"
        f"    signing_key_files: ['{tmp_path / 'missing-key'}']\n"
        f"    ca_file: '{tmp_path / 'missing-ca.pem'}'\n"
    )
    assert main(["validate", "--config", str(config)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    assert all(line.startswith("ciwatch: error: ") for line in lines)
    text = "\n".join(lines)
    assert "service.state_dir" in text and "missing-key" in text
    assert "service.webhook.ca_file: cannot load the CA file" in text
    assert "needs token_file or token_env" in text


# Replay orders its input by event time: the same records in any file order or
# split give byte-identical alerts (issue: "A CloudTrail export directory in any
# file order gives identical alerts").

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def published_cloudtrail() -> list[bytes]:
    """The published CloudTrail records (AWS docs, Panther scenarios), one JSON line each."""
    lines = (SAMPLES / "cloudtrail.jsonl").read_bytes().splitlines()
    return [json.dumps(json.loads(line)["event"]).encode() for line in lines]


def write_split(records: list[bytes], directory: Path, parts: int, seed: int) -> list[Path]:
    """``records`` shuffled and written as ``parts`` files; the files in shuffled order."""
    rng = random.Random(seed)
    shuffled = records[:]
    rng.shuffle(shuffled)
    directory.mkdir()
    cuts = sorted(rng.sample(range(1, len(shuffled)), parts - 1))
    paths = []
    for number, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(shuffled)], strict=True)):
        path = directory / f"123456789012_CloudTrail_region{number}_{seed}.json"
        path.write_bytes(b"\n".join(shuffled[start:end]) + b"\n")
        paths.append(path)
    rng.shuffle(paths)
    return paths


def replay_paths(paths: list[Path], out: Path, *extra: str) -> bytes:
    assert main(["replay", *map(str, paths), "--alerts-out", str(out), "--no-models", *extra]) == 0
    return out.read_bytes()


def test_cloudtrail_records_in_any_file_order_or_split_give_identical_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = published_cloudtrail()
    single = tmp_path / "one.jsonl"
    single.write_bytes(b"\n".join(records) + b"\n")
    expected = replay_paths([single], tmp_path / "expected.jsonl")
    assert expected.count(b'"revision":0') >= 5
    summary = capsys.readouterr().err
    assert "duplicates" in summary  # the samples repeat ids: which copy counts is fixed too
    for seed, parts in [(1, 2), (2, 5), (3, 12), (4, 40)]:
        paths = write_split(records, tmp_path / f"split{seed}", parts, seed)
        assert replay_paths(paths, tmp_path / f"alerts{seed}.jsonl") == expected
        assert replay_paths(paths[::-1], tmp_path / f"reversed{seed}.jsonl") == expected
        # The counts are those of the single file, whatever the split.
        assert capsys.readouterr().err.count(summary.split("throughput")[0]) == 2


def write_s3_export(records: list[bytes], root: Path, seed: int) -> None:
    """``records`` as an S3 CloudTrail export: gzip ``{"Records": [...]}`` files under
    ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/``, shuffled across regions and
    days, with a digest file beside them as CloudTrail writes one every hour."""
    rng = random.Random(seed)
    shuffled = [json.loads(record) for record in records]
    rng.shuffle(shuffled)
    for number in range(0, len(shuffled), 25):
        region = rng.choice(["us-east-1", "eu-west-1", "ap-south-1"])
        day = f"2024/0{rng.randint(1, 9)}/1{rng.randint(0, 9)}"
        folder = root / "AWSLogs" / "123456789012" / "CloudTrail" / region / day
        folder.mkdir(parents=True, exist_ok=True)
        name = f"123456789012_CloudTrail_{region}_{seed}{number:04d}Z_{rng.random():.6f}.json.gz"
        batch = {"Records": shuffled[number : number + 25]}
        (folder / name).write_bytes(gzip.compress(json.dumps(batch).encode()))
    digest = root / "AWSLogs" / "123456789012" / "CloudTrail-Digest" / "us-east-1" / "2024"
    digest.mkdir(parents=True)
    summary = {"awsAccountId": "123456789012", "digestStartTime": "2024-01-01T00:00:00Z",
               "digestEndTime": "2024-01-01T01:00:00Z", "logFiles": []}  # fmt: skip
    (digest / f"123456789012_CloudTrail-Digest_us-east-1_{seed}.json.gz").write_bytes(
        gzip.compress(json.dumps(summary).encode())
    )


def test_a_cloudtrail_export_directory_in_any_file_order_gives_identical_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = published_cloudtrail()
    single = tmp_path / "one.jsonl"
    single.write_bytes(b"\n".join(records) + b"\n")
    expected = replay_paths([single], tmp_path / "expected.jsonl")
    capsys.readouterr()
    for seed in (5, 6, 7):
        root = tmp_path / f"export{seed}"
        write_s3_export(records, root, seed)
        assert replay_paths([root], tmp_path / f"alerts{seed}.jsonl") == expected
        summary = capsys.readouterr().err
        assert "skipped      1 (cloudtrail_digest: 1)" in summary


def test_a_tiny_sort_memory_spills_runs_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_split(published_cloudtrail(), tmp_path / "export", 6, seed=9)
    expected = replay_paths(paths, tmp_path / "memory.jsonl")
    capsys.readouterr()
    assert replay_paths(paths, tmp_path / "spilled.jsonl", "--sort-memory", "16KiB") == expected
    assert "runs on disk" in capsys.readouterr().err


def test_a_generated_world_gives_the_same_alerts_merged_or_per_source_in_any_order(
    tmp_path: Path,
) -> None:
    from detector.generator import MERGED, SOURCES, generate, write

    paths = write(generate(seed=7, days=3), tmp_path / "world")
    merged = replay_paths([paths[MERGED]], tmp_path / "merged.jsonl")
    per_source = [paths[f"{source}.jsonl"] for source in SOURCES]
    assert replay_paths(per_source[::-1], tmp_path / "per_source.jsonl") == merged
    records = paths[MERGED].read_bytes().splitlines()
    resplit = write_split(records, tmp_path / "resplit", 7, seed=3)
    assert replay_paths(resplit, tmp_path / "resplit.jsonl", "--sort-memory", "1MiB") == merged


def test_records_a_few_minutes_out_of_order_are_not_late(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Five sign-in failures, written newest first as a region's file might hold them.
    lines = [
        json.dumps(
            {
                "eventVersion": "1.08",
                "eventTime": f"2026-01-05T10:{12 - 3 * n:02d}:00Z",
                "eventSource": "signin.amazonaws.com",
                "eventName": "ConsoleLogin",
                "eventID": f"e{n}",
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.9",
                "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "1"},
                "responseElements": {"ConsoleLogin": "Failure"},
                "errorMessage": "Failed authentication",
            }
        ).encode()
        for n in range(5)
    ]
    path = tmp_path / "out_of_order.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replay_paths([path], tmp_path / "alerts.jsonl")
    err = capsys.readouterr().err
    assert "events       5\n" in err  # no "(n late)"


def test_a_bad_sort_memory_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "x.jsonl", "--alerts-out", "a.jsonl", "--sort-memory", "lots"])
    assert "expected a size like 64MiB" in capsys.readouterr().err
