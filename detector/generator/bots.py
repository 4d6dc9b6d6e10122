"""More machine identities, for organisations where bots are a larger share of who acts.

Every organisation has its few machines (``org``: CI, the deploy bot, the
dependency bot, the secret-sync operator). A shape with a ``bot_share`` adds
service bots until machines make up that share of all identities (none when
the organisation's own machines already do), each in one
of three kinds, in turn: a GitHub App fetching a few repositories, a
Kubernetes service account reading pods and config maps in its namespace, and
an AWS role describing resources. Each keeps its own period (between half an
hour and four hours, a little jitter around it) day and night, from one address,
with one client, as bots do. They are labeled as one benign scenario,
``service-bots``, so that alerts on them count as false alerts on a look-alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from detector.generator.org import BENIGN, NAMESPACES, REPOS, Org
from detector.generator.people import PLACES
from detector.generator.records import ACCOUNT, TOOLS, Machine
from detector.generator.world import START, World

__all__ = ["BASE_MACHINES", "SERVICE_BOTS", "bot_count", "service_bots"]

SERVICE_BOTS = "service-bots"
BASE_MACHINES = 12
"""The organisation's own machine identities, however many people: github-actions[bot],
deploy-bot[bot], renovate[bot], the deployer and secret-sync service accounts, the CI role,
the five services' GitHub OIDC subjects and the break-glass IAM user."""
K8S_READS = (("get", "pods"), ("list", "pods"), ("get", "configmaps"), ("list", "endpoints"))
AWS_READS = (
    *(("ec2", "DescribeInstances"), ("monitoring", "GetMetricData"), ("s3", "ListBuckets")),
    *(("logs", "DescribeLogGroups"), ("ecr", "DescribeImages"), ("rds", "DescribeDBInstances")),
)
BOT_NAMESPACES = NAMESPACES[:6]


def bot_count(people: int, share_percent: int) -> int:
    """How many service bots make machines ``share_percent`` % of all identities (0 for none)."""
    if share_percent <= 0:
        return 0
    share = share_percent / 100
    machines = math.ceil(share * people / (1 - share))
    return max(machines - BASE_MACHINES, 0)


def service_bots(w: World, org: Org) -> None:
    """Add the shape's service bots and their round-the-clock work (nothing by default)."""
    count = bot_count(len(org.people), w.shape.bot_share)
    kinds: tuple[Callable[[World, int], None], ...] = (_github_app, _service_account, _aws_role)
    for index in range(count):
        kinds[index % len(kinds)](w, index)


def _rounds(w: World) -> list[datetime]:
    """A bot's run times: a period of its own (30 min to 4 h), 10 % jitter, day and night."""
    period = w.rng.uniform(30, 240)
    moment, times = START + timedelta(minutes=w.rng.uniform(0, period)), []
    while moment < w.end - timedelta(minutes=10):
        times.append(moment)
        moment += timedelta(minutes=period * w.rng.uniform(0.9, 1.1))
    return times


def _internal_ip(index: int) -> str:
    return f"10.20.{index // 250}.{index % 250 + 1}"


def _github_app(w: World, index: int) -> None:
    name = f"svc-{index:03d}[bot]"
    app = Machine(w, name, _internal_ip(index), PLACES["ashburn"], TOOLS["git"])
    repos = w.rng.sample(REPOS, 3)
    about = "service bots work around the clock, each at its own pace"
    for moment in _rounds(w):
        with w.scenario(SERVICE_BOTS, BENIGN, about, [name]):
            for step, repo in enumerate(w.rng.sample(repos, w.rng.randint(1, 3))):
                app.github(moment + timedelta(seconds=5 * step), "git.fetch", repo=repo)


def _service_account(w: World, index: int) -> None:
    namespace = w.rng.choice(BOT_NAMESPACES)
    name = f"system:serviceaccount:{namespace}:svc-{index:03d}"
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
    account = Machine(w, name, _internal_ip(index), PLACES["ashburn"], TOOLS["deployer"], groups)
    about = "service bots work around the clock, each at its own pace"
    for moment in _rounds(w):
        with w.scenario(SERVICE_BOTS, BENIGN, about, [name]):
            for step in range(w.rng.randint(1, 3)):
                verb, resource = w.rng.choice(K8S_READS)
                when = moment + timedelta(seconds=2 * step)
                account.k8s(when, verb, resource, namespace)


def _aws_role(w: World, index: int) -> None:
    role, session = f"svc-{index:03d}", f"svc-{index:03d}-session"
    identity = _bot_identity(role, session)
    machine = Machine(
        w, role, _internal_ip(index), PLACES["ashburn"], TOOLS["aws-sdk"], identity=identity
    )
    about = "service bots work around the clock, each at its own pace"
    for moment in _rounds(w):
        with w.scenario(SERVICE_BOTS, BENIGN, about, [f"{role}/{session}"]):
            for step in range(w.rng.randint(1, 3)):
                service, call = w.rng.choice(AWS_READS)
                machine.aws(moment + timedelta(seconds=3 * step), call, service)


def _bot_identity(role: str, session: str) -> dict[str, object]:
    """An assumed role of a workload (no MFA, no console), as CloudTrail writes it."""
    return {
        "type": "AssumedRole",
        "principalId": f"AROABOTEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEBOT",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROABOTEXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-01-05T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }
