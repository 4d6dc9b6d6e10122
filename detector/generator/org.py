"""The generated organisation and its everyday, benign activity.

People in seven countries (twenty unless asked for more) with working hours in their own time zones
(GitHub and Okta; Kubernetes and AWS for some), and machine identities that
work around the clock: GitHub Actions and a deploy App, the Kubernetes service
account ``ci:deployer`` rolling out to ``production``, the AWS role
``github-actions-deploy`` assumed through GitHub's OIDC, a dependency bot that
clones every repository, and a secret-sync operator. The look-alikes among
them (CI at night, bot clones, routine clones, changes outside production, a
traveller back in a country seen before, the break-glass user's sign-ins) are
labeled benign.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detector.generator.people import PLACES, TRAVELLER, roster
from detector.generator.records import (
    ACCOUNT,
    IAM_USER,
    TOOLS,
    Machine,
    Session,
    ci_identity,
    console_login,
    web_identity,
)
from detector.generator.world import START, Person, World

__all__ = [
    "BENIGN",
    "NAMESPACES",
    "PLACES",
    "REPOS",
    "SERVICES",
    "Org",
    "Workday",
    "everyday",
    "factor",
    "organisation",
    "workday",
]

BENIGN = "benign"
DEPLOYER = "system:serviceaccount:ci:deployer"
CI_ROLE = "github-actions-deploy"
SECRET_SYNC = "system:serviceaccount:external-secrets:external-secrets"
NAMESPACES = (
    *("production", "staging", "dev", "payments", "data", "monitoring"),
    *("ci", "ingress-nginx", "cert-manager", "kube-system"),
)
SERVICES = ("billing-api", "accounts-api", "search-api", "payments-worker", "catalog-web")
REPOS = tuple(
    f"{area}-{kind}"
    for area in ("billing", "accounts", "search", "payments", "catalog", "notify", "reports")
    for kind in ("api", "web", "worker", "sdk", "infra", "docs", "jobs", "proto", "mobile")
)
IAM_USER_OWNER = "bruno.costa"
TOKYO_IPS = ("198.51.100.200", "198.51.100.201")  # hotel and partner office
RUNNERS = tuple(f"192.0.2.{host}" for host in range(130, 150))  # GitHub-hosted runners
RENOVATE_IP, SECRET_SYNC_IP = "192.0.2.60", "10.0.4.17"
SA_GROUPS = ("system:serviceaccounts", "system:authenticated")
APPS = ("GitHub Enterprise Cloud", "AWS IAM Identity Center", "Slack", "Grafana")
K8S_READS = (
    *(("get", "pods"), ("list", "pods"), ("get", "pods/log")),
    *(("get", "deployments"), ("list", "deployments"), ("get", "configmaps")),
)
AWS_READS = (
    *(("ec2", "DescribeInstances"), ("s3", "ListBuckets"), ("logs", "DescribeLogGroups")),
    *(("logs", "FilterLogEvents"), ("monitoring", "GetMetricData")),
    *(("eks", "DescribeCluster"), ("ecr", "DescribeRepositories")),
)


@dataclass(frozen=True, slots=True)
class Org:
    """The people; ``calm`` are those the benign look-alikes use, kept out of attacks."""

    people: tuple[Person, ...]
    calm: tuple[str, ...] = ()

    def staff(self, power: str = "") -> list[Person]:
        """Everyone but the traveller, optionally only those with ``power`` (admin, k8s, aws)."""
        return [p for p in self.people if p.name != TRAVELLER and (not power or getattr(p, power))]


@dataclass(frozen=True, slots=True)
class Workday:
    """One person's working hours on one day, with where they are and their address."""

    session: Session
    begin: datetime
    end: datetime

    def when(self) -> datetime:
        return self.session.w.between(self.begin, self.end)


def organisation(w: World, people: int) -> Org:
    """The first ``people`` of the roster, in the world's shape, each on five repositories."""
    staff = []
    for m in roster(people, w.shape):
        repos = tuple(w.rng.sample(REPOS, 5))
        staff.append(Person(m.login, m.name, m.home, m.ip, m.admin, m.k8s, m.aws, repos))
    return Org(tuple(staff))


def factor() -> list[dict[str, Any]]:
    """The Okta Verify enrollment, as sign-in and factor events name it among their targets."""
    enrollment = {"id": "opf1a2b3c4", "type": "AuthenticatorEnrollment", "alternateId": "unknown"}
    return [{**enrollment, "displayName": "Okta Verify"}]


# --- people at work ----------------------------------------------------------------------


def workday(w: World, person: Person, day: int) -> Workday | None:
    """``person``'s hours on ``day`` (None on most weekend days), inside the world's span."""
    place, ip = person.home, person.ip
    if person.name == TRAVELLER and day in _trips(w.days)[0] + _trips(w.days)[1]:
        place, ip = PLACES["tokyo"], w.rng.choice(TOKYO_IPS)
    weekday = (START + timedelta(days=day)).weekday() < 5
    if not weekday and w.rng.random() > 0.1:
        return None
    local_midnight = START + timedelta(days=day, hours=-place.offset)
    start = float(w.shape.work_start)  # 8.0 by default: the same draws as ever
    begin = local_midnight + timedelta(hours=w.rng.uniform(start, start + 2.0))
    end = begin + timedelta(hours=w.rng.uniform(7.5, 9.5) if weekday else 1.0)
    begin, end = max(begin, START + timedelta(minutes=5)), min(end, w.end - timedelta(minutes=5))
    return Workday(Session(w, person, place, ip), begin, end) if begin < end else None


def _trips(days: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The traveller's days abroad: first in their first days, then again later."""
    later = tuple(d for d in (3, 4) if d < days) or (days - 1,)
    return (0, 1), later


def everyday(w: World, org: Org) -> None:
    """Every person's working days, then the machines' round-the-clock work."""
    for day in range(w.days):
        for person in org.people:
            if person.name != TRAVELLER or day not in _trips(w.days)[1]:
                _human_day(w, person, day)
                continue
            about = "a traveller signs in with MFA from a country seen in their first days"
            actors = [person.email, person.login]
            with w.scenario("traveller-known-country", BENIGN, about, actors):
                _human_day(w, person, day)
    _ci_deploys(w)
    _dependency_bot(w)
    _secret_sync(w)


def _human_day(w: World, person: Person, day: int) -> None:
    work = workday(w, person, day)
    if work is None:
        return
    _okta_day(w, work)
    _github_day(w, work)
    if person.k8s:
        _k8s_day(w, work)
    if person.aws:
        _aws_day(w, work)


def _okta_day(w: World, work: Workday) -> None:
    you = work.session
    you.okta(work.begin, "user.session.start")
    mfa_at = work.begin + timedelta(seconds=w.rng.uniform(4, 20))
    you.okta(mfa_at, "user.authentication.auth_via_mfa", target=factor())
    for _ in range(w.rng.randint(1, 4)):
        app = w.rng.choice(APPS)
        target = {"id": f"0oa{zlib.crc32(app.encode())}", "type": "AppInstance"}
        target.update(alternateId=app, displayName=app)
        you.okta(work.when(), "user.authentication.sso", target=[target])


def _github_day(w: World, work: Workday) -> None:
    you, rng, repos = work.session, w.rng, work.session.person.repos
    for action in ["git.fetch"] * rng.randint(2, 6) + ["git.push"] * rng.randint(0, 3):
        you.github(work.when(), action, repo=rng.choice(repos), transport_protocol_name="http")
    for action, share in (("pull_request.create", 0.5), ("pull_request.merge", 0.3)):
        if rng.random() < share:
            you.github(work.when(), action, repo=rng.choice(repos))
    if rng.random() < 0.25:
        about = "people clone one to three of their own repos"
        with w.scenario("routine-clones", BENIGN, about, [you.person.login]):
            start = work.when()
            for index, repo in enumerate(rng.sample(repos, rng.randint(1, 3))):
                moment = start + timedelta(minutes=3 * index)
                you.github(moment, "git.clone", repo=repo, transport_protocol_name="http")


def _k8s_day(w: World, work: Workday) -> None:
    you, rng = work.session, w.rng
    for _ in range(rng.randint(2, 6)):
        verb, resource = rng.choice(K8S_READS)
        namespace = rng.choice(("dev", "dev", "staging", "staging", "production"))
        name = rng.choice(SERVICES) if verb == "get" else None
        group = "apps" if resource == "deployments" else ""
        you.k8s(work.when(), verb, resource, namespace, name=name, api_group=group)
    if rng.random() < 0.15:
        you.k8s(work.when(), "get", "secrets", "dev", name=f"{rng.choice(SERVICES)}-env")
    if rng.random() < 0.3:
        about = "people change workloads in dev and staging, never in production"
        with w.scenario("non-production-changes", BENIGN, about, [you.person.email]):
            service = rng.choice(SERVICES)
            you.k8s(work.when(), "patch", "deployments", "staging", name=service, api_group="apps")
            you.k8s(work.when(), "create", "configmaps", "dev", name=f"{service}-flags")


def _aws_day(w: World, work: Workday) -> None:
    you = work.session
    for _ in range(w.rng.randint(2, 6)):
        service, name = w.rng.choice(AWS_READS)
        you.aws(work.when(), name, service)
    weekday = work.begin.weekday() < 5
    if you.person.name == IAM_USER_OWNER and weekday and w.rng.random() < 0.6:
        about = "the break-glass IAM user signs in to the console with MFA"
        with w.scenario("ops-admin-console-sign-ins", BENIGN, about, [IAM_USER]):
            console_login(w, work.when(), you.ip, ok=True)


# --- machines around the clock ----------------------------------------------------------


def _every(w: World, low: float, high: float) -> list[datetime]:
    """Times from the start to half an hour before the end, ``low``..``high`` minutes apart."""
    times, moment = [], START + timedelta(minutes=w.rng.uniform(0, low))
    while moment < w.end - timedelta(minutes=30):
        times.append(moment)
        moment += timedelta(minutes=w.rng.uniform(low, high))
    return times


def _ci_deploys(w: World) -> None:
    about = "CI builds, pushes an image and rolls it out to production, day and night"
    actors = [DEPLOYER, "deploy-bot[bot]", "github-actions[bot]", f"{CI_ROLE}/GitHubActions"]
    for moment in _every(w, 25, 70):
        service, runner = w.rng.choice(SERVICES), w.rng.choice(RUNNERS)
        oidc_subject = web_identity(service)["userName"]
        with w.scenario("ci-deploys-around-the-clock", BENIGN, about, [*actors, oidc_subject]):
            _deploy(w, moment, service, runner)


def _deploy(w: World, t: datetime, service: str, runner: str) -> None:
    def at(seconds: int) -> datetime:
        return t + timedelta(seconds=seconds)

    def bot(name: str, ua: str, **more: Any) -> Machine:
        return Machine(w, name, runner, PLACES["ashburn"], TOOLS[ua], **more)

    actions = bot("github-actions[bot]", "hookshot")
    actions.github(t, "workflows.created_workflow_run", repo=service, event="push", name="deploy")
    assume = {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/{CI_ROLE}", "durationSeconds": 3600}
    oidc = bot("", "aws-sdk", identity=web_identity(service))
    oidc.aws(
        at(15),
        "AssumeRoleWithWebIdentity",
        "sts",
        requestParameters={**assume, "roleSessionName": "GitHubActions"},
    )
    role = bot("", "aws-cli", identity=ci_identity())
    role.aws(at(25), "GetAuthorizationToken", "ecr")
    image = {"repositoryName": service, "imageTag": w.uid()[:12]}
    role.aws(at(95), "PutImage", "ecr", requestParameters=image)
    role.aws(at(100), "DescribeCluster", "eks", requestParameters={"name": "prod"})
    deployer = bot(DEPLOYER, "deployer", groups=SA_GROUPS)
    rollout = [(110, "get", "deployments", service), (112, "patch", "deployments", service)]
    if w.rng.random() < 0.3:
        rollout.append((118, "get", "secrets", f"{service}-env"))
    for seconds, verb, resource, name in [*rollout, (125, "list", "pods", None)]:
        group = "apps" if resource == "deployments" else ""
        deployer.k8s(at(seconds), verb, resource, "production", name=name, api_group=group)
    bot("deploy-bot[bot]", "git").github(at(150), "git.push", repo="deploy-manifests")
    actions.github(
        at(160),
        "workflows.completed_workflow_run",
        repo=service,
        name="deploy",
        conclusion="success",
    )


def _dependency_bot(w: World) -> None:
    about = "the dependency bot clones every repository every few hours"
    renovate = Machine(w, "renovate[bot]", RENOVATE_IP, PLACES["ashburn"], TOOLS["git"])
    for moment in _every(w, 300, 420):
        with w.scenario("dependency-bot-clones", BENIGN, about, [renovate.name], [RENOVATE_IP]):
            for index, repo in enumerate(REPOS):
                renovate.github(moment + timedelta(seconds=17 * index), "git.clone", repo=repo)


def _secret_sync(w: World) -> None:
    about = "an operator reads the app secrets of six namespaces every hour"
    groups = ("system:serviceaccounts", "system:serviceaccounts:external-secrets")
    operator = Machine(
        w, SECRET_SYNC, SECRET_SYNC_IP, PLACES["ashburn"], TOOLS["operator"], groups=groups
    )
    for moment in _every(w, 58, 62):
        with w.scenario("secret-sync-operator", BENIGN, about, [SECRET_SYNC]):
            for index, namespace in enumerate(NAMESPACES[:6]):
                when = moment + timedelta(seconds=index)
                operator.k8s(when, "get", "secrets", namespace, name="app-credentials")
