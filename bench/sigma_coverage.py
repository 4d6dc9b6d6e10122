"""How much of a Sigma rule corpus ``ciwatch sigma convert`` converts, per log source.

    python bench/sigma_coverage.py SIGMA_DIR [--out DIR]

SIGMA_DIR is a checkout of SigmaHQ/sigma (or any folder laid out like it: ``rules/``,
``rules-threat-hunting/``...). The script converts every rule under the folders of the
log sources ciwatch reads or that SigmaHQ files beside them (cloud, identity, GitHub,
Kubernetes), writes the pack, loads it with ``ciwatch validate --rules`` (every
converted rule must load), and prints per log source: rules, converted, the share, and
the most common reasons for the rest. Nothing from the corpus is kept: the pack goes to
a temporary folder unless ``--out`` names one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from detector.cli import main as ciwatch
from detector.sigma import Conversion, convert_paths, write_pack

# Folders (relative to a rules root) holding the rules for cloud and identity log sources.
SUBTREES = (
    "cloud/aws",
    "cloud/azure",
    "cloud/gcp",
    "cloud/m365",
    "cloud/okta",
    "identity/okta",
    "identity/onelogin",
    "identity/cisco_duo",
    "application/github",
    "application/kubernetes",
)
ROOTS = ("rules", "rules-threat-hunting", "rules-emerging-threats")
TOP_REASONS = 3


def corpus_paths(sigma_dir: Path) -> list[Path]:
    """The existing SUBTREES under each rules root of ``sigma_dir``."""
    return [
        sigma_dir / root / subtree
        for root in ROOTS
        for subtree in SUBTREES
        if (sigma_dir / root / subtree).is_dir()
    ]


def coverage_table(conversion: Conversion) -> list[str]:
    """One line per log source, then the total: rules, converted, %, top reasons."""
    done: Counter[str] = Counter(item.log_source for item in conversion.converted)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for skipped in conversion.skipped:
        reasons[skipped.log_source][_short(skipped.reason)] += 1
    sources = sorted(
        set(done) | set(reasons), key=lambda s: (-(done[s] + sum(reasons[s].values())), s)
    )
    lines = [f"{'log source':<28} {'rules':>5} {'conv':>5} {'%':>6}  reasons for the rest"]
    for source in sources:
        total = done[source] + sum(reasons[source].values())
        top = "; ".join(f"{n}x {why}" for why, n in reasons[source].most_common(TOP_REASONS))
        lines.append(
            f"{source:<28} {total:>5} {done[source]:>5} {_pct(done[source], total):>6}  {top}"
        )
    converted, total = len(conversion.converted), conversion.total
    lines.append(f"{'all':<28} {total:>5} {converted:>5} {_pct(converted, total):>6}")
    read = [s for s in sources if not any(r.startswith("log source") for r in reasons[s])]
    read_total = sum(done[s] + sum(reasons[s].values()) for s in read)
    read_done = sum(done[s] for s in read)
    lines.append(
        f"{'log sources ciwatch reads':<28} {read_total:>5} {read_done:>5} "
        f"{_pct(read_done, read_total):>6}"
    )
    return lines


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def _short(reason: str) -> str:
    return reason if len(reason) <= 90 else reason[:87] + "..."


def validate(pack: Path) -> tuple[int, str]:
    """``ciwatch validate --rules PACK``: its exit status and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = ciwatch(["validate", "--rules", str(pack)])
    return status, (out.getvalue() + err.getvalue()).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("sigma_dir", type=Path, metavar="SIGMA_DIR")
    parser.add_argument("--out", type=Path, metavar="DIR", help="keep the converted pack here")
    args = parser.parse_args(argv)
    paths = corpus_paths(args.sigma_dir)
    if not paths:
        print(f"{args.sigma_dir}: no rules/cloud, rules/identity ... folders", file=sys.stderr)
        return 2
    conversion = convert_paths(paths)
    with tempfile.TemporaryDirectory() as scratch:
        pack = args.out or Path(scratch)
        pack.mkdir(parents=True, exist_ok=True)
        write_pack(conversion.converted, pack)
        status, report = validate(pack)
    print("\n".join(coverage_table(conversion)))
    print(f"ciwatch validate --rules <pack>: exit {status}: {report}")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
