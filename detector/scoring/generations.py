"""Model generations: trained model sets kept side by side, one of them current.

A daemon that trains on its own history swaps in new models only after
checks (:func:`check_models`), keeps the previous ones and can go back::

    <dir>/gen-000001/models/        save_models() output (nothing else: load_models reads *.json)
    <dir>/gen-000001/generation.json number, times, rows, check outcome, carried families, parent
    <dir>/gen-000001/card.md        the generation card (links the model cards in models/)
    <dir>/current                   the number of the generation in use
    <dir>/checks.jsonl              one JSON line per check, passed or not

Crash safety: a generation is written whole into ``gen-NNNNNN.tmp-<pid>``,
read back with :func:`load_models`, then renamed into place in one
``os.replace``; only then is ``current`` replaced (atomically, with
:func:`~detector.files.write_atomically`). A crash at any point leaves the
old generation current or the new one, never a half one; the temporary
directories it leaves (``*.tmp-*``) are removed when the store is next opened
for writing. Pruned generations are renamed to a temporary name before they
are deleted, for the same reason.

One writer at a time (the daemon, or ``replay --learn``): ``ciwatch models``
opens the store with ``tidy=False`` so it never removes a running trainer's
temporary directory. A rollback by the CLI while the daemon publishes: the
last ``current`` written wins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from detector.errors import ConfigError
from detector.files import fsync_directory, remove_stale_temporaries, write_atomically
from detector.scoring.envelope import ModelError, load_models, save_models
from detector.scoring.generation_card import generation_card
from detector.scoring.model_checks import CheckOutcome, FamilyCheck, check_models
from detector.scoring.training import ModelSet

__all__ = [
    "CheckOutcome",
    "FamilyCheck",
    "Generation",
    "GenerationStore",
    "check_models",
]

_logger = logging.getLogger("ciwatch.models")

MODELS = "models"
RECORD = "generation.json"
CARD = "card.md"
CURRENT = "current"
CHECKS = "checks.jsonl"
_TEMPORARY = ".tmp-"
_NAME = re.compile(r"gen-(\d{6,})")


@dataclass(frozen=True, slots=True)
class Generation:
    """One published model set: where it is, when and from what it was trained, its check.

    ``rows``: training rows per family; ``check``: :meth:`CheckOutcome.to_dict`
    of the check that let it in; ``carried``: families whose model was
    carried over from the previous generation (their new model failed).
    """

    number: int
    directory: Path
    created_at: datetime
    trained_from: datetime | None
    trained_until: datetime | None
    rows: Mapping[str, int]
    families: tuple[str, ...]
    check: Mapping[str, Any]
    carried: tuple[str, ...]
    cut: datetime | None = None
    """The event time the history was cut at for this training (the learner's schedule)."""

    @property
    def models_directory(self) -> Path:
        return self.directory / MODELS


class _Record(BaseModel):
    """``generation.json``, validated when read back."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    number: int
    created_at: datetime
    trained_from: datetime | None
    trained_until: datetime | None
    rows: dict[str, int]
    families: list[str]
    check: dict[str, Any]
    carried: list[str]
    parent: int | None = None
    cut: datetime | None = None


def _name(number: int) -> str:
    return f"gen-{number:06d}"


class GenerationStore:
    """The generations in ``directory`` (created if missing); see the module docs.

    ``keep``: how many of the newest generations pruning keeps (the current
    one is always kept too). ``tidy``: remove the leftovers of an interrupted
    publish (``*.tmp-*``); only the one writer may do that.
    """

    def __init__(self, directory: Path, *, keep: int = 5, tidy: bool = True) -> None:
        if keep < 1:
            raise ConfigError(f"must be at least 1, got {keep}", where="keep_generations")
        self.directory = directory
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True)
        if tidy:
            self._remove_leftovers()

    def publish(
        self,
        models: ModelSet,
        check: CheckOutcome,
        *,
        created_at: datetime,
        carried: Sequence[str] = (),
        cut: datetime | None = None,
    ) -> Generation:
        """Write ``models`` as the next generation and make it current; that generation.

        A model that does not survive the round trip through its files raises
        :class:`ModelError` and leaves no trace. The check is appended to
        ``checks.jsonl``; older generations beyond ``keep`` are pruned.
        """
        unknown = sorted(set(carried) - set(models.models))
        if unknown:
            raise ValueError(f"carried families {unknown} are not in the model set")
        if not len(models):
            raise ConfigError("no models to publish", where=str(self.directory))
        parent = self.current_number()
        number = self._highest_number() + 1
        generation = Generation(
            number=number,
            directory=self.directory / _name(number),
            created_at=created_at,
            **_training_span(models),
            rows={model.family: model.window.rows for model in models},
            families=tuple(model.family for model in models),
            check=check.to_dict(),
            carried=tuple(carried),
            cut=cut,
        )
        temporary = self.directory / f"{_name(number)}{_TEMPORARY}{os.getpid()}"
        try:
            _write_generation(temporary, generation, models, parent)
            temporary.replace(generation.directory)
        except BaseException:
            _remove(temporary)
            raise
        fsync_directory(self.directory)
        self._set_current(number)
        # The generation is in place and current: a failure to log or prune must not undo that.
        try:
            self._append_check(check, created_at, number)
            self.prune()
        except OSError as error:
            _logger.warning("generation %d published; housekeeping failed: %s", number, error)
        return generation

    def record_check(self, check: CheckOutcome, *, created_at: datetime) -> None:
        """Append a rejected attempt's check to ``checks.jsonl`` (no generation published)."""
        self._append_check(check, created_at, None)

    def current_number(self) -> int | None:
        """The number ``current`` names, or None if it is missing or unreadable."""
        try:
            text = (self.directory / CURRENT).read_text(encoding="ascii").strip()
            return int(text) if text.isdigit() else None
        except (OSError, UnicodeDecodeError):
            return None

    def current(self) -> Generation | None:
        """The current generation, or None (no ``current``, or it names a missing/damaged one)."""
        number = self.current_number()
        if number is None:
            return None
        try:
            return self.generation(number)
        except ModelError:
            return None

    def generation(self, number: int) -> Generation:
        """Generation ``number``; :class:`ModelError` (one line) if missing or damaged."""
        directory = self.directory / _name(number)
        path = directory / RECORD
        if not directory.is_dir():
            raise ModelError(f"no generation {number}", where=str(self.directory))
        try:
            record = _Record.model_validate(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError) as error:
            raise ModelError(f"cannot read: {error}", where=str(path)) from None
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in first["loc"])
            raise ModelError(f"invalid: {location}: {first['msg']}", where=str(path)) from None
        if record.number != number:
            raise ModelError(f"names generation {record.number}", where=str(path))
        if not (directory / MODELS).is_dir():
            raise ModelError("no models directory", where=str(directory))
        return _generation(record, directory)

    def generations(self) -> list[Generation]:
        """Every readable generation, oldest first; damaged ones are logged and left out."""
        found = []
        for number in self._numbers():
            try:
                found.append(self.generation(number))
            except ModelError as error:
                _logger.warning("skipping a damaged generation: %s", error)
        return found

    def load(self, generation: Generation) -> ModelSet:
        """The generation's models, verified (:func:`load_models`)."""
        return load_models(generation.models_directory)

    def rollback(self, to: int | None = None) -> Generation:
        """Make an older generation current; that generation.

        ``to``: the generation's number; default the newest one older than
        the current. Its models are loaded (verified) first. :class:`ConfigError`
        (one line) if there is none or ``to`` is unknown or damaged.
        """
        available = {generation.number: generation for generation in self.generations()}
        have = f"have: {', '.join(map(str, available)) or 'none'}"
        if to is None:
            current = self.current_number()
            if current is None:
                message = f"no current generation to roll back from; name one with --to N ({have})"
                raise ConfigError(message, where=str(self.directory))
            older = [number for number in available if number < current]
            if not older:
                message = f"no readable generation older than the current {current} ({have})"
                raise ConfigError(message, where=str(self.directory))
            to = max(older)
        if to not in available:
            raise ConfigError(f"no readable generation {to} ({have})", where=str(self.directory))
        target = available[to]
        self.load(target)
        self._set_current(target.number)
        return target

    def signature(self) -> tuple[int, ...]:
        """A cheap fingerprint of ``current`` (one stat): it changes whenever ``current`` is
        rewritten (each write is a new file), ``()`` when there is none.
        """
        try:
            stat = (self.directory / CURRENT).stat()
        except OSError:
            return ()
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def prune(self) -> list[int]:
        """Delete all but the newest ``keep`` generations and the current one; those deleted."""
        numbers = self._numbers()
        kept = set(numbers[-self.keep :])
        current = self.current_number()
        if current is not None:
            kept.add(current)
        deleted = [number for number in numbers if number not in kept]
        for number in deleted:
            path = self.directory / _name(number)
            # Renamed first: a crash mid-delete leaves a leftover, never half a generation.
            doomed = path.with_name(f"{path.name}{_TEMPORARY}prune-{os.getpid()}")
            path.replace(doomed)
            _remove(doomed)
        if deleted:
            fsync_directory(self.directory)
        return deleted

    def _numbers(self) -> list[int]:
        """Numbers of every generation directory, readable or not, ascending."""
        return sorted(
            int(match.group(1))
            for path in self.directory.iterdir()
            if (match := _NAME.fullmatch(path.name)) and path.is_dir()
        )

    def _highest_number(self) -> int:
        """The highest number ever seen here, so a number is never used twice."""
        return max([0, *self._numbers(), self.current_number() or 0])

    def _set_current(self, number: int) -> None:
        write_atomically(self.directory / CURRENT, f"{number}\n".encode("ascii"), mode=0o644)

    def _append_check(self, check: CheckOutcome, created_at: datetime, number: int | None) -> None:
        line = {
            "time": created_at.isoformat(),
            "generation": number,
            "summary": check.summary(),
            **check.to_dict(),
        }
        with (self.directory / CHECKS).open("ab") as file:
            file.write(orjson.dumps(line) + b"\n")

    def _remove_leftovers(self) -> None:
        for path in self.directory.glob(f"*{_TEMPORARY}*"):
            _logger.info("removing %s, left by an interrupted publish", path)
            _remove(path)
        remove_stale_temporaries(self.directory / CURRENT)


def _training_span(models: ModelSet) -> dict[str, datetime | None]:
    """``trained_from`` / ``trained_until``: the earliest and latest training event time."""
    firsts = [model.window.first for model in models if model.window.first is not None]
    lasts = [model.window.last for model in models if model.window.last is not None]
    return {
        "trained_from": min(firsts) if firsts else None,
        "trained_until": max(lasts) if lasts else None,
    }


def _write_generation(
    temporary: Path, generation: Generation, models: ModelSet, parent: int | None
) -> None:
    """Everything of a generation into ``temporary``, then read the models back."""
    _remove(temporary)
    temporary.mkdir()
    save_models(models, temporary / MODELS, generation.created_at)
    record = _record(generation, parent)
    payload = orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    write_atomically(temporary / RECORD, payload, mode=0o644)
    write_atomically(temporary / CARD, generation_card(record).encode("utf-8"), mode=0o644)
    load_models(temporary / MODELS)  # the envelopes are valid, the arrays verify


def _record(generation: Generation, parent: int | None) -> dict[str, Any]:
    """``generation.json``: every field of :class:`Generation` but its directory, ISO times."""
    return {
        "number": generation.number,
        "created_at": generation.created_at.isoformat(),
        "trained_from": _iso(generation.trained_from),
        "trained_until": _iso(generation.trained_until),
        "rows": dict(generation.rows),
        "families": list(generation.families),
        "check": dict(generation.check),
        "carried": list(generation.carried),
        "parent": parent,
        "cut": _iso(generation.cut),
    }


def _generation(record: _Record, directory: Path) -> Generation:
    return Generation(
        number=record.number,
        directory=directory,
        created_at=record.created_at,
        trained_from=record.trained_from,
        trained_until=record.trained_until,
        rows=dict(record.rows),
        families=tuple(record.families),
        check=dict(record.check),
        carried=tuple(record.carried),
        cut=record.cut,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _remove(path: Path) -> None:
    """Delete a file or directory tree if it exists (best effort: leftovers are retried)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
