"""Jenkins Audit Trail plugin (``audit-trail``), as JSON.

The plugin writes one line of **text** per audited operation; it has no JSON
record of its own. What arrives as JSON is that text in a ``message`` field:

* the plugin's **Elastic Search logger** posts ``{"message": <text>,
  "@timestamp": "2026-01-05T10:00:00+0000"}`` (``ElasticSearchAuditLogger``,
  plugin 3.x and the 4xx builds up to 436.x);
* a shipper tailing the plugin's **log file** (Filebeat, Fluent Bit) or
  receiving its **syslog** output sends the line as ``message`` with its own
  ``@timestamp``/``timestamp``/``time``. File lines start with the plugin's
  local-time stamp (``Jan 5, 2026 10:00:00,123 AM``, JVM zone unknown), which
  is dropped here: the shipper's UTC time is used instead.

The texts, from the plugin's source (``AuditTrailFilter``,
``AuditTrailRunListener``, ``ScriptUsageListener``, ``CredentialUsageListener``
and, in builds after 436.x, ``AuthenticationAuditListener``):

* requests matching the configured URI pattern: ``/job/app/configSubmit by
  alice from 203.0.113.5`` (older releases: no ``from``; anonymous is ``NA`` or
  the remote address) → action ``<class>.<verb>``: ``job.configSubmit``,
  ``build.stop``, ``credentials.createCredentials``, ``computer.toggleOffline``,
  ``view.createItem``, ``jenkins.scriptText`` (top level; ``/manage/`` dropped);
* ``Successful login for user 'alice'`` / ``Failed login attempt for user
  'alice'`` / ``Logout for user 'alice'`` → ``login`` / ``loginFailure`` /
  ``logout`` (no address is recorded for these);
* ``A groovy script was executed by user 'alice'. Origin: Script Console
  Controller.`` + the script → ``script.executed``;
* ``'app#12' (class ...WorkflowRun) used credentials 'deploy-key' (class ...).``
  → ``credentials.used``, the build as (service) actor;
* ``job/app/ #12 Started by user Alice, Parameters:[...]`` → ``build.started``;
  ``app #12 ... completed: FAILURE`` → ``build.completed``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from detector.events.fields import get, parse_time, require, str_or_none, valid_ip
from detector.events.model import ActorType, DeadLetterReason, Outcome, ParseError
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["JenkinsAuditParser"]

_TIME_FIELDS = ("@timestamp", "timestamp", "time")
# The file logger's own prefix: SimpleDateFormat "MMM d, yyyy h:mm:ss,SSS aa" + separator.
_FILE_PREFIX = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2},\d{3} [AP]M\s")
_REQUEST = re.compile(
    r"^(?P<uri>/\S*)(?: \((?P<extra>[^)]*)\))? by (?P<user>\S.*?)(?: from (?P<ip>\S+))?$"
)
_AUTH = re.compile(
    r"^(?P<kind>Successful login|Failed login attempt|Logout) for user '(?P<user>.*)'$"
)
_AUTH_ACTIONS = {
    "Successful login": ("login", Outcome.SUCCESS),
    "Failed login attempt": ("loginFailure", Outcome.FAILURE),
    "Logout": ("logout", Outcome.SUCCESS),
}
_SCRIPT = re.compile(
    r"^A groovy script was executed(?: by user '(?P<user>[^']*)')?\. Origin: (?P<origin>.+?)\.\s*$",
    re.MULTILINE,
)
_CREDENTIAL_USE = re.compile(
    r"^'(?P<user>.+?)' \((?P<user_type>[^)]*)\) used credentials '(?P<cred>[^']*)'"
)
_BUILD_STARTED = re.compile(r"^(?P<job>\S+/) #(?P<number>\d+) (?P<cause>.*)$", re.DOTALL)
_BUILD_DONE = re.compile(
    r"^(?P<job>.+?) #(?P<number>\d+) (?P<cause>.*) on (?P<node>.*) started at \S+ "
    r"completed in \d+ms completed: (?P<result>\w+)$",
    re.DOTALL,
)
_STARTED_BY_USER = re.compile(r"Started by user (?P<user>[^,]+)")
_SYSTEM_ACTOR = "SYSTEM"
_ANONYMOUS = "NA"
_RESULTS = {"SUCCESS": Outcome.SUCCESS, "FAILURE": Outcome.FAILURE}
# URL segments naming what a request acts on, in the order they decide the action's class.
_CLASSES = ("credentials", "computer", "view", "queue", "user", "pluginManager")


@register
class JenkinsAuditParser(Parser):
    name = "jenkins_audit"
    time_field = "@timestamp"
    priority = 40
    triggers = frozenset({"message"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        message = doc.get("message")
        if not isinstance(message, str) or not any(f in doc for f in _TIME_FIELDS):
            return False
        text = _FILE_PREFIX.sub("", message, count=1)
        return any(p.match(text) for p in _PATTERNS)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        time = parse_time(next((v for f in _TIME_FIELDS if (v := get(doc, f))), None))
        text = _FILE_PREFIX.sub("", require(str_or_none(get(doc, "message")), "message"), count=1)
        for pattern, reader in _READERS:
            found = pattern.match(text)
            if found is not None:
                parsed: Parsed = reader(found, time)
                return parsed
        raise ParseError(DeadLetterReason.UNKNOWN_FORMAT, "not an Audit Trail message")


def _request(found: re.Match[str], time: Any) -> Parsed:
    uri = found["uri"]
    extra = found["extra"]
    action, target = _classify(uri, extra)
    if target is None and extra is not None and extra.startswith("job/"):
        target = _job_name(extra)  # a queue item names its job: "(job/app/)"
    user = found["user"]
    anonymous = user == _ANONYMOUS or valid_ip(user) is not None
    return parsed(
        time=time,
        action=action,
        actor=user,
        outcome=Outcome.SUCCESS,
        actor_type=ActorType.UNKNOWN if anonymous else ActorType.HUMAN,
        ip=valid_ip(found["ip"]) or (valid_ip(user) if anonymous else None),
        target=target,
        attributes={"uri": uri[:500]},
    )


def _classify(uri: str, extra: str | None) -> tuple[str, str | None]:
    """``/job/a/job/b/12/stop`` → (``build.stop``, ``a/b#12``): class, verb and what."""
    segments = [s for s in uri.split("?", 1)[0].split("/") if s]
    if segments and segments[0] == "manage":
        segments = segments[1:]
    verb = segments[-1] if segments else "root"
    jobs = [segments[i + 1] for i, s in enumerate(segments[:-1]) if s == "job"]
    job_path = "/".join(jobs) or None
    if extra and verb == "createItem":
        return _created(segments, job_path, extra)
    for cls in _CLASSES:
        if cls in segments[:-1]:
            return f"{cls}.{verb}", _named_after(segments, cls) or job_path
    last_job = max((i for i, s in enumerate(segments[:-1]) if s == "job"), default=None)
    if last_job is not None:
        after = segments[last_job + 2 :]
        if len(after) >= 2 and after[0].isdigit():
            return f"build.{verb}", f"{job_path}#{after[0]}"
        return f"job.{verb}", job_path
    return f"jenkins.{verb}", None


def _created(segments: list[str], job_path: str | None, name: str) -> tuple[str, str | None]:
    # createItem names the new job in a request parameter, logged as "(name)".
    if "view" in segments[:-1]:
        return "view.createItem", name
    return "job.createItem", f"{job_path}/{name}" if job_path else name


def _named_after(segments: list[str], cls: str) -> str | None:
    """The segment after ``credential``/``computer``/``view``... names the object."""
    marker = "credential" if cls == "credentials" and "credential" in segments else cls
    index = segments.index(marker)
    if marker == "credentials":
        return "/".join(segments[index + 1 : -1]) or None
    return segments[index + 1] if index + 1 < len(segments) - 1 else None


def _auth(found: re.Match[str], time: Any) -> Parsed:
    action, outcome = _AUTH_ACTIONS[found["kind"]]
    return parsed(
        time=time,
        action=action,
        actor=require(str_or_none(found["user"]), "actor"),
        outcome=outcome,
        actor_type=ActorType.HUMAN,
    )


def _script(found: re.Match[str], time: Any) -> Parsed:
    user = found["user"]
    return parsed(
        time=time,
        action="script.executed",
        actor=user or _SYSTEM_ACTOR,
        outcome=Outcome.SUCCESS,
        actor_type=ActorType.HUMAN if user else ActorType.UNKNOWN,
        target=found["origin"],
        attributes={"origin": found["origin"]},
    )


def _credential_use(found: re.Match[str], time: Any) -> Parsed:
    return parsed(
        time=time,
        action="credentials.used",
        actor=found["user"],
        outcome=Outcome.SUCCESS,
        actor_type=ActorType.SERVICE,
        target=str_or_none(found["cred"]),
        attributes={"user_type": found["user_type"].removeprefix("class ")},
    )


def _build(found: re.Match[str], time: Any, action: str, outcome: Outcome) -> Parsed:
    started_by = _STARTED_BY_USER.search(found["cause"])
    job = _job_name(found["job"])
    return parsed(
        time=time,
        action=action,
        actor=started_by["user"].strip() if started_by else _SYSTEM_ACTOR,
        outcome=outcome,
        actor_type=ActorType.HUMAN if started_by else ActorType.SERVICE,
        target=f"{job}#{found['number']}",
        attributes={"cause": found["cause"].split(", Parameters:[", 1)[0][:200]},
    )


def _job_name(text: str) -> str:
    """``job/team/job/app/`` (a job's URL) or ``team » app`` (its display name) → ``team/app``."""
    return text.removeprefix("job/").removesuffix("/").replace("/job/", "/").replace(" » ", "/")


def _build_started(found: re.Match[str], time: Any) -> Parsed:
    return _build(found, time, "build.started", Outcome.SUCCESS)


def _build_done(found: re.Match[str], time: Any) -> Parsed:
    outcome = _RESULTS.get(found["result"], Outcome.UNKNOWN)
    parsed = _build(found, time, "build.completed", outcome)
    extra = {"node": found["node"], "result": found["result"]}
    return replace(parsed, attributes={**parsed.attributes, **extra})


_READERS = (
    (_AUTH, _auth),
    (_SCRIPT, _script),
    (_CREDENTIAL_USE, _credential_use),
    (_BUILD_DONE, _build_done),
    (_BUILD_STARTED, _build_started),
    (_REQUEST, _request),
)
_PATTERNS = tuple(pattern for pattern, _ in _READERS)
