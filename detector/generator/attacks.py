"""The rule-shaped attacks, and the benign look-alikes placed by hand.

Each attack here is one rule-shaped situation of ciwatch's default rule pack,
built from the vendor records an attacker (or a compromised or careless
insider) would leave; ``behavioural`` registers the attacks no rule covers, and
``schedule`` places them all. Every attack is over within 30 minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from detector.generator.org import BENIGN, NAMESPACES, PLACES, REPOS, SERVICES, Org, factor, workday
from detector.generator.records import ACCOUNT, IAM_USER, TOOLS, Session, console_login
from detector.generator.world import Person, World

__all__ = [
    "ATTACK",
    "ATTACKS",
    "BEHAVIOURAL",
    "NEW_COUNTRY",
    "RULE",
    "AttackSpec",
    "Matches",
    "at_home",
    "attack",
    "lookalikes",
    "seconds_after",
]

ATTACK = "attack"
RULE, BEHAVIOURAL = "rule", "behavioural"
Matches = tuple[Sequence[str], Sequence[str]]
"""What an alert about an attack may name: actors (the main one first), then keys (addresses)."""
Build = Callable[[World, Org, datetime], Matches]
NEW_COUNTRY = "okta-new-country-login"
PROXY_ISP = "M247 Europe SRL"  # a hosting provider, where no one of the organisation signs in
BROWSER_OF_ATTACKER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/121.0"


@dataclass(frozen=True, slots=True)
class AttackSpec:
    """A registered attack: what catches it (``rule`` or ``behavioural``), what it is, its builder.

    The builder adds the attack's records at the time given and returns what an
    alert about it may name.
    """

    kind: str
    about: str
    build: Build


ATTACKS: dict[str, AttackSpec] = {}
"""Every attack by label id, in registration order: the rule-shaped ones first."""


def attack(sid: str, about: str, kind: str = RULE) -> Callable[[Build], Build]:
    """Register an attack under its label id."""

    def register(build: Build) -> Build:
        ATTACKS[sid] = AttackSpec(kind, about, build)
        return build

    return register


def seconds_after(t: datetime, seconds: float) -> datetime:
    """``t`` plus ``seconds``."""
    return t + timedelta(seconds=seconds)


def _suspect(w: World, org: Org, power: str = "") -> Person:
    """Someone to cast as the attacker or victim: not one of the look-alikes' people."""
    return w.cast(org.staff(power), avoid=org.calm)


def at_home(w: World, person: Person) -> Session:
    """``person`` acting from home with their own tools."""
    return Session(w, person, person.home, person.ip)


def _sign_in_failures(you: Session, t: datetime, count: int, gap: tuple[float, float]) -> datetime:
    """``count`` wrong passwords ``gap`` seconds apart; returns the time of the last."""
    for index in range(count):
        if index:
            t = seconds_after(t, you.w.rng.uniform(*gap))
        you.okta(t, "user.session.start", result="FAILURE", reason="INVALID_CREDENTIALS")
    return t


# --- identity ----------------------------------------------------------------------------


@attack("okta-brute-force", "15 failed Okta sign-ins for one user within 5 minutes")
def _okta_brute_force(w: World, org: Org, t: datetime) -> Matches:
    victim, ip = _suspect(w, org), w.new_ip()
    you = Session(w, victim, PLACES["amsterdam"], ip, TOOLS["attacker"])
    _sign_in_failures(you, t, 15, (17, 20))
    return [victim.email], [ip]


@attack("okta-password-spray", "one address tries a password on 12 Okta users in 10 minutes")
def _okta_password_spray(w: World, org: Org, t: datetime) -> Matches:
    ip = w.new_ip()
    for index, user in enumerate(w.rng.sample(org.staff(), 12)):
        you = Session(w, user, PLACES["amsterdam"], ip, TOOLS["attacker"])
        _sign_in_failures(you, seconds_after(t, 48 * index + w.rng.uniform(0, 5)), 1, (0, 0))
    return [ip], []


@attack("okta-success-after-failures", "8 failed Okta sign-ins, then a success with MFA")
def _okta_success_after_failures(w: World, org: Org, t: datetime) -> Matches:
    americans = [p for p in org.staff() if p.home.code == "US"]
    victim, ip = w.cast(americans or org.staff(), avoid=org.calm), w.new_ip()
    # A proxy in the victim's own country: nothing new about the country.
    proxy = PLACES["ashburn"] if americans else replace(victim.home, isp=PROXY_ISP)
    you = Session(w, victim, proxy, ip, BROWSER_OF_ATTACKER)
    last = _sign_in_failures(you, t, 8, (70, 100))
    you.okta(seconds_after(last, 40), "user.session.start")
    you.okta(seconds_after(last, 55), "user.authentication.auth_via_mfa", target=factor())
    return [victim.email], [ip]


@attack("aws-console-brute-force", "12 failed console sign-ins of one IAM user in 6 minutes")
def _aws_console_brute_force(w: World, org: Org, t: datetime) -> Matches:
    ip = w.new_ip()
    for index in range(12):
        console_login(w, seconds_after(t, 30 * index + w.rng.uniform(0, 4)), ip, ok=False)
    return [IAM_USER], [ip]


@attack("okta-mfa-factor-removed", "a user's Okta Verify factor is deactivated")
def _okta_mfa_factor_removed(w: World, org: Org, t: datetime) -> Matches:
    victim = _suspect(w, org)
    user = {"id": victim.okta_id, "type": "User", "alternateId": victim.email}
    target = [{**user, "displayName": victim.display_name}, *factor()]
    at_home(w, victim).okta(t, "user.mfa.factor.deactivate", target=target)
    return [victim.email], []


@attack(NEW_COUNTRY, "a user with days of history signs in from a country never seen for them")
def _okta_new_country_login(w: World, org: Org, t: datetime) -> Matches:
    person, ip = _suspect(w, org), w.new_ip()
    you = Session(w, person, PLACES["hanoi"], ip)
    you.okta(t, "user.session.start")
    you.okta(seconds_after(t, 12), "user.authentication.auth_via_mfa", target=factor())
    return [person.email], [ip]


# --- source control ----------------------------------------------------------------------


@attack("github-branch-protection-removed", "a person deletes the main branch's protection")
def _github_branch_protection_removed(w: World, org: Org, t: datetime) -> Matches:
    dev = _suspect(w, org)
    at_home(w, dev).github(t, "protected_branch.destroy", repo=dev.repos[0], branch="main")
    return [dev.login], []


@attack("github-org-owner-granted", "an org owner makes another member an owner")
def _github_org_owner_granted(w: World, org: Org, t: datetime) -> Matches:
    admin = w.cast(org.staff("admin"))
    member = w.rng.choice([p for p in org.staff() if not p.admin])
    changes = {"user": member.login, "permission": "admin", "old_permission": "read"}
    at_home(w, admin).github(t, "org.update_member", **changes)
    return [admin.login, member.login], []


@attack("github-audit-stream-removed", "the organisation's audit-log stream is deleted")
def _github_audit_stream_removed(w: World, org: Org, t: datetime) -> Matches:
    admin = w.cast(org.staff("admin"))
    at_home(w, admin).github(t, "audit_log_streaming.destroy")
    return [admin.login], []


@attack("github-mass-clone", "one person clones 40 repositories in under 30 minutes")
def _github_mass_clone(w: World, org: Org, t: datetime) -> Matches:
    dev = _suspect(w, org)
    you = at_home(w, dev)
    for index, repo in enumerate(w.rng.sample(REPOS, 40)):
        moment = seconds_after(t, 41 * index + w.rng.uniform(0, 5))
        you.github(moment, "git.clone", repo=repo, transport_protocol_name="http")
    return [dev.login], []


@attack("github-self-hosted-runner", "a person registers a self-hosted runner on a repository")
def _github_self_hosted_runner(w: World, org: Org, t: datetime) -> Matches:
    dev = _suspect(w, org)
    runner = {"runner_id": w.rng.randint(100, 999), "runner_name": f"{dev.login}-workstation"}
    at_home(w, dev).github(t, "repo.register_self_hosted_runner", repo=dev.repos[1], **runner)
    return [dev.login], []


@attack("github-actions-secret-created", "a person adds an Actions secret to a repository")
def _github_actions_secret_created(w: World, org: Org, t: datetime) -> Matches:
    dev = _suspect(w, org)
    at_home(w, dev).github(t, "repo.create_actions_secret", repo=dev.repos[2])
    return [dev.login], []


# --- Kubernetes and AWS ------------------------------------------------------------------


@attack("k8s-production-workload-change", "a person patches, then deletes, production deployments")
def _k8s_production_workload_change(w: World, org: Org, t: datetime) -> Matches:
    user = _suspect(w, org, "k8s")
    you = at_home(w, user)
    patched, deleted = w.rng.sample(SERVICES, 2)
    you.k8s(t, "patch", "deployments", "production", name=patched, api_group="apps")
    later = seconds_after(t, w.rng.uniform(120, 300))
    you.k8s(later, "delete", "deployments", "production", name=deleted, api_group="apps")
    return [user.email], []


@attack("k8s-cluster-admin-binding", "a person binds a user to cluster-admin")
def _k8s_cluster_admin_binding(w: World, org: Org, t: datetime) -> Matches:
    user = _suspect(w, org, "k8s")
    rbac, name = "rbac.authorization.k8s.io", f"{user.login}-debug"
    binding: dict[str, Any] = {
        "kind": "ClusterRoleBinding",
        "apiVersion": f"{rbac}/v1",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": rbac, "kind": "User", "name": user.email}],
    }
    at_home(w, user).k8s(
        t, "create", "clusterrolebindings", None, name=name, api_group=rbac, request_object=binding
    )
    return [user.email], []


@attack("k8s-secrets-across-namespaces", "a person lists secrets in 7 namespaces in 8 minutes")
def _k8s_secrets_across_namespaces(w: World, org: Org, t: datetime) -> Matches:
    user = _suspect(w, org, "k8s")
    you = at_home(w, user)
    for index, namespace in enumerate(w.rng.sample(NAMESPACES, 7)):
        moment = seconds_after(t, 65 * index + w.rng.uniform(0, 5))
        you.k8s(moment, "list", "secrets", namespace)
        if index in (1, 4):
            you.k8s(seconds_after(moment, 15), "get", "secrets", namespace, name="db-credentials")
    return [user.email], []


@attack("cloudtrail-stop-logging", "a person stops the organisation's CloudTrail trail")
def _cloudtrail_stop_logging(w: World, org: Org, t: datetime) -> Matches:
    admin = w.cast(org.staff("admin"))
    trail = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/org-trail"
    at_home(w, admin).aws(t, "StopLogging", "cloudtrail", requestParameters={"name": trail})
    return [admin.email], []


# --- benign look-alikes placed by hand ---------------------------------------------------


def lookalikes(w: World, org: Org) -> Org:
    """Password typos and an admin adjusting branch protection; their people stay calm."""
    typists = w.rng.sample(org.staff(), 3)
    for person, day in zip(typists, (1, 2, 3), strict=True):
        work = workday(w, person, min(day, w.days - 1))
        if work is None:
            continue
        about = "a person mistypes their password three times, then signs in with MFA"
        with w.scenario("password-typos", BENIGN, about, [p.email for p in typists]):
            you, moment = work.session, work.when()
            last = _sign_in_failures(you, moment, 3, (8, 20))
            you.okta(seconds_after(last, 15), "user.session.start")
            you.okta(seconds_after(last, 27), "user.authentication.auth_via_mfa", target=factor())
    admin = org.staff("admin")[0]
    work = workday(w, admin, 1)
    if work is not None:
        about = "an admin tightens branch protection (admin enforcement, review count)"
        with w.scenario("admin-adjusts-branch-protection", BENIGN, about, [admin.login]):
            moment, repo = work.when(), admin.repos[0]
            work.session.github(moment, "protected_branch.update_admin_enforced", repo=repo)
            later = seconds_after(moment, 140)
            work.session.github(
                later, "protected_branch.update_required_approving_review_count", repo=repo
            )
    calm = {p.login for p in typists} | {admin.login}
    return replace(org, calm=tuple(sorted(calm)))
