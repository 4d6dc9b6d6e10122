"""Attacks no rule of the default pack covers: only a model of normal behaviour can see them.

Each stays under every rule's threshold or outside every rule's condition, and
is unusual only for who does it, when, from where or how much: a developer
downloading fifteen repositories they never touch at night (the mass-clone
rule wants twenty), secrets listed in four namespaces (the rule wants five), a
burst of AWS reconnaissance from someone who never used AWS, an Okta user
signing in from three new browsers and a new address at night, and the deploy
bot's token used from a person's laptop. Their people are cast away from the
rule-shaped attacks nearby in time, so no rule sees their events together.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from detector.generator.attacks import (
    ATTACK,
    BEHAVIOURAL,
    RULE,
    Matches,
    at_home,
    attack,
    seconds_after,
)
from detector.generator.org import NAMESPACES, REPOS, SERVICES, Org, factor
from detector.generator.records import BROWSER, TOOLS, Machine, Session, cloudtrail, sso_identity
from detector.generator.world import Person, World

__all__ = ["DEEP_NIGHT", "from_deep_night"]

DEEP_NIGHT = 2.0  # local hour the night-time attacks aim for
NEARBY = timedelta(hours=2)  # longer than any rule window plus its suppression
LAPTOP_GIT = "git/2.39.3 (Apple Git-145)"
NEW_BROWSERS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
)
RECON = (
    *(("sts", "GetCallerIdentity"), ("iam", "ListUsers"), ("iam", "ListRoles")),
    *(("iam", "ListPolicies"), ("iam", "ListAccessKeys"), ("ec2", "DescribeInstances")),
    *(("ec2", "DescribeSecurityGroups"), ("ec2", "DescribeVpcs"), ("ec2", "DescribeSubnets")),
    *(("s3", "ListBuckets"), ("rds", "DescribeDBInstances"), ("lambda", "ListFunctions20150331")),
    *(("kms", "ListKeys"), ("eks", "ListClusters"), ("ecr", "DescribeRepositories")),
    *(("organizations", "ListAccounts"), ("secretsmanager", "ListSecrets")),
)


def from_deep_night(person: Person, t: datetime) -> float:
    """Hours between ``person``'s local time at ``t`` and :data:`DEEP_NIGHT`, either way round."""
    local = (t.hour + t.minute / 60 + person.home.offset) % 24
    distance = abs(local - DEEP_NIGHT)
    return min(distance, 24 - distance)


def _busy(w: World, t: datetime) -> set[str]:
    """Actors of the rule-shaped attacks within :data:`NEARBY` of ``t``."""
    return {
        actor
        for s in w.scenarios.values()
        if s.label == ATTACK and s.kind == RULE and s.records
        if s.start - NEARBY <= t <= s.end + NEARBY
        for actor in s.actors
    }


def _free(w: World, org: Org, t: datetime, power: str = "") -> list[Person]:
    """Staff (with ``power``) outside the look-alikes and the rule-shaped attacks nearby."""
    busy = _busy(w, t)
    staff = [p for p in org.staff(power) if p.login not in org.calm]
    return [p for p in staff if not {p.login, p.email} & busy] or staff or org.staff(power)


def _night_owl(w: World, org: Org, t: datetime, power: str = "") -> Person:
    """Someone free for whom ``t`` is as deep in the night as anyone's."""
    pool = _free(w, org, t, power)
    nearest = min(from_deep_night(p, t) for p in pool)
    return w.cast([p for p in pool if from_deep_night(p, t) == nearest])


@attack(
    "github-night-repo-sweep",
    "at night, a developer downloads 15 repositories they never work on (the rule wants 20)",
    BEHAVIOURAL,
)
def _night_repo_sweep(w: World, org: Org, t: datetime) -> Matches:
    dev = _night_owl(w, org, t)
    you = at_home(w, dev)
    strangers = [repo for repo in REPOS if repo not in dev.repos]
    for index, repo in enumerate(w.rng.sample(strangers, 15)):
        moment = seconds_after(t, 95 * index + w.rng.uniform(0, 10))
        if index % 3 == 2:
            you.github(moment, "repo.download_zip", repo=repo)
        else:
            you.github(moment, "git.clone", repo=repo, transport_protocol_name="http")
    return [dev.login], []


@attack(
    "k8s-secrets-few-namespaces",
    "at night, a person lists secrets in 4 namespaces and reads two (the rule wants 5)",
    BEHAVIOURAL,
)
def _k8s_secrets_few_namespaces(w: World, org: Org, t: datetime) -> Matches:
    user = _night_owl(w, org, t, "k8s")
    you = at_home(w, user)
    for index, namespace in enumerate(w.rng.sample(NAMESPACES[:6], 4)):
        moment = seconds_after(t, 110 * index + w.rng.uniform(0, 10))
        you.k8s(moment, "list", "secrets", namespace)
        if index % 2:
            you.k8s(seconds_after(moment, 20), "get", "secrets", namespace, name="db-credentials")
    return [user.email], []


@attack(
    "aws-recon-burst",
    "someone who never used AWS lists users, roles, instances, buckets and keys from the CLI",
    BEHAVIOURAL,
)
def _aws_recon_burst(w: World, org: Org, t: datetime) -> Matches:
    pool = _free(w, org, t)
    person = w.cast([p for p in pool if not p.aws] or pool)
    identity, cli = sso_identity(person), TOOLS["aws-cli"]
    calls = [*RECON, *w.rng.sample(RECON, 12)]
    for index, (service, name) in enumerate(calls):
        moment = seconds_after(t, 16 * index + w.rng.uniform(0, 6))
        cloudtrail(w, moment, name, service, identity, person.ip, cli)
    return [person.email], []


@attack(
    "okta-new-browsers-at-night",
    "at night, a user signs in with MFA from a new address with three browsers never seen",
    BEHAVIOURAL,
)
def _okta_new_browsers_at_night(w: World, org: Org, t: datetime) -> Matches:
    person, ip = _night_owl(w, org, t), w.new_ip()
    for index, browser in enumerate(NEW_BROWSERS):
        you = Session(w, person, person.home, ip, browser)
        moment = seconds_after(t, 300 * index + w.rng.uniform(0, 30))
        you.okta(moment, "user.session.start")
        mfa_at = seconds_after(moment, w.rng.uniform(5, 15))
        you.okta(mfa_at, "user.authentication.auth_via_mfa", target=factor())
    return [person.email], [ip]


@attack(
    "ci-bot-token-from-laptop",
    "the deploy bot's token clones service repositories from a person's laptop and browser",
    BEHAVIOURAL,
)
def _ci_bot_token_from_laptop(w: World, org: Org, t: datetime) -> Matches:
    owner = w.cast(_free(w, org, t))
    git = Machine(w, "deploy-bot[bot]", owner.ip, owner.home, LAPTOP_GIT)
    browser = Machine(w, "deploy-bot[bot]", owner.ip, owner.home, BROWSER)
    for index, repo in enumerate(w.rng.sample(SERVICES, 4)):
        moment = seconds_after(t, 40 * index + w.rng.uniform(0, 5))
        git.github(moment, "git.clone", repo=repo, transport_protocol_name="http")
    browser.github(seconds_after(t, 200), "repo.download_zip", repo="deploy-manifests")
    git.github(seconds_after(t, 260), "git.push", repo="deploy-manifests")
    return ["deploy-bot[bot]"], [owner.ip]
