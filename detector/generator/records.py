"""Vendor records for the scenario generator, in the four log formats ciwatch reads.

Each builder writes one record in the vendor's own JSON, as ciwatch's parsers
read it, and returns a :class:`~detector.generator.world.Record` carrying the id the
normalizer will give it (``<source>:<vendor id>``): GitHub audit-log streaming
(``_document_id``), Okta System Log (``uuid``), Kubernetes audit as EKS exports
it (``<auditID>:<stage>``) and CloudTrail (``eventID``). Addresses come from
the documentation ranges (RFC 5737) and private ranges, never real hosts.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detector.generator.world import Person, Place, Record, World, isoformat

__all__ = [
    "ACCOUNT",
    "BROWSER",
    "HUMAN_GROUPS",
    "IAM_USER",
    "TOOLS",
    "Machine",
    "Session",
    "ci_identity",
    "cloudtrail",
    "console_login",
    "github",
    "k8s",
    "okta",
    "sso_identity",
    "web_identity",
]

ORG, BUSINESS, ACCOUNT = "acme", "acme-corp", "111122223333"
CI_ROLE = "github-actions-deploy"
IAM_USER = "ops-admin"
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
TOOLS = {
    "git": "git/2.43.0",
    "kubectl": "kubectl/v1.29.1 (darwin/arm64) kubernetes/bc401b9",
    "deployer": "kubectl/v1.29.1 (linux/amd64) kubernetes/bc401b9",
    "operator": "external-secrets/v0.9.11",
    "aws-cli": "aws-cli/2.15.10 Python/3.11.6 Linux/6.5.0-1016-azure exe/x86_64.ubuntu.22",
    "aws-sdk": "aws-sdk-js/3.490.0 ua/2.0 os/linux lang/js md/nodejs#20.10.0",
    "hookshot": "GitHub-Hookshot/8f3ac41",
    "attacker": "python-requests/2.31.0",
}
HUMAN_GROUPS = ("acme:developers", "system:authenticated")
_OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


# --- GitHub ------------------------------------------------------------------------------


def github(
    w: World, t: datetime, action: str, actor: str, ip: str, place: Place, ua: str, **extra: Any
) -> Record:
    """A GitHub audit-log streaming record (epoch-millisecond ``@timestamp``).

    ``repo`` in ``extra`` is a bare name; the record gets ``org/name`` in both
    ``repo`` and ``repository``, as GitHub writes them.
    """
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    millis = int(t.timestamp() * 1000)
    doc_id = base64.b64encode(w.rng.randbytes(16)).decode()
    bot = actor.endswith("[bot]")
    doc: dict[str, Any] = {
        "@timestamp": millis,
        "_document_id": doc_id,
        "action": action,
        "actor": actor,
        "actor_id": zlib.crc32(actor.encode()),
        "actor_ip": ip,
        "actor_is_bot": bot,
        "actor_location": {"country_code": place.code},
        "business": BUSINESS,
        "business_id": 5550101,
        "created_at": millis,
        "operation_type": _operation(action),
        "org": ORG,
        "org_id": 9990101,
        "user_agent": ua,
    }
    if bot:
        doc["programmatic_access_type"] = "GitHub App server-to-server token"
    if "repo" in extra:
        extra["repo"] = extra["repository"] = f"{ORG}/{extra['repo']}"
        extra["repository_public"] = False
    doc.update(extra)
    return w.add(t, "github_audit", doc, doc_id)


def _operation(action: str) -> str:
    verb = action.rpartition(".")[2]
    if verb in ("clone", "fetch", "download_zip"):
        return "access"
    if verb.startswith(("create", "register", "add")):
        return "create"
    return "remove" if verb in ("destroy", "remove", "delete") else "modify"


# --- Okta --------------------------------------------------------------------------------

_OKTA_TEXT = {
    "user.session.start": ("User login to Okta", "core.user_auth.login_success"),
    "user.authentication.auth_via_mfa": (
        "Authentication of user via MFA",
        "core.user.factor.attempt_success",
    ),
    "user.authentication.sso": ("User single sign on to app", "app.auth.sso"),
    "user.mfa.factor.deactivate": ("Reset factor for user", "core.user.factor.deactivate"),
}


def okta(
    w: World,
    t: datetime,
    event_type: str,
    who: Person,
    place: Place,
    ip: str,
    *,
    result: str = "SUCCESS",
    reason: str | None = None,
    target: list[dict[str, Any]] | None = None,
    ua: str = BROWSER,
) -> Record:
    """An Okta System Log LogEvent as ``/api/v1/logs`` returns it."""
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    event_id = w.uid()
    message, legacy = _OKTA_TEXT.get(event_type, (event_type, None))
    if result != "SUCCESS" and legacy is not None:
        legacy = legacy.replace("success", "failed")
    session = "unknown" if result != "SUCCESS" else "102" + event_id.replace("-", "")[:22]
    doc: dict[str, Any] = {
        "uuid": event_id,
        "published": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventType": event_type,
        "version": "0",
        "severity": "INFO" if result == "SUCCESS" else "WARN",
        "legacyEventType": legacy,
        "displayMessage": message,
        "actor": {
            "id": who.okta_id,
            "type": "User",
            "alternateId": who.email,
            "displayName": who.display_name,
        },
        "client": _okta_client(place, ip, ua),
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": session},
        "outcome": {"result": result, "reason": reason},
        "securityContext": {"asOrg": place.isp, "isp": place.isp, "isProxy": False},
        "debugContext": {
            "debugData": {
                "requestId": event_id[:23],
                "requestUri": "/idp/idx/identify",
                "threatSuspected": "false",
            }
        },
        "transaction": {"type": "WEB", "id": event_id[:23]},
        "target": target,
    }
    return w.add(t, "okta_system_log", doc, event_id)


def _okta_client(place: Place, ip: str, ua: str) -> dict[str, Any]:
    system = "Windows" if "Windows" in ua else "Mac OS X" if "Mac" in ua else "Unknown"
    browser = "FIREFOX" if "Firefox" in ua else "CHROME" if "Chrome" in ua else "UNKNOWN"
    return {
        "userAgent": {"rawUserAgent": ua, "os": system, "browser": browser},
        "zone": "null",
        "device": "Computer",
        "ipAddress": ip,
        "geographicalContext": {"city": place.city, "country": place.country},
    }


# --- Kubernetes --------------------------------------------------------------------------


def k8s(
    w: World,
    t: datetime,
    verb: str,
    user: str,
    groups: Sequence[str],
    ip: str,
    *,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    api_group: str = "",
    ua: str = TOOLS["kubectl"],
    request_object: dict[str, Any] | None = None,
) -> Record:
    """A Kubernetes ``audit.k8s.io/v1`` Event at stage ResponseComplete, as EKS exports it."""
    audit_id = w.uid()
    version = f"/apis/{api_group}/v1" if api_group else "/api/v1"
    kind, _, sub = resource.partition("/")  # "pods/log": a resource and its subresource
    in_path = None if verb == "create" else name  # a create posts to the collection
    parts = (f"namespaces/{namespace}" if namespace else None, kind, in_path, sub)
    path = "/".join(part for part in parts if part)
    ref = {"resource": kind, "subresource": sub, "namespace": namespace, "name": name}
    ref.update(apiGroup=api_group, apiVersion="v1")
    doc: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse" if request_object else "Metadata",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": f"{version}/{path}",
        "verb": verb,
        "user": {"username": user, "uid": f"uid-{zlib.crc32(user.encode())}", "groups": [*groups]},
        "sourceIPs": [ip],
        "userAgent": ua,
        "objectRef": {key: value for key, value in ref.items() if value},
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        "requestReceivedTimestamp": _k8s_time(t),
        "stageTimestamp": _k8s_time(t + timedelta(milliseconds=12)),
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "RBAC: allowed",
        },
    }
    if request_object is not None:
        doc["requestObject"] = request_object
    return w.add(t, "k8s_audit", doc, f"{audit_id}:ResponseComplete")


def _k8s_time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- CloudTrail --------------------------------------------------------------------------


def cloudtrail(
    w: World,
    t: datetime,
    name: str,
    service: str,
    identity: dict[str, Any],
    ip: str,
    ua: str,
    **extra: Any,
) -> Record:
    """One CloudTrail record (``eventTime`` has second precision, as CloudTrail writes it)."""
    t = t.replace(microsecond=0)
    event_id = w.uid()
    doc: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": isoformat(t),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1" if service == "signin" else "eu-west-1",
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": None,
        "responseElements": None,
        "requestID": w.uid(),
        "eventID": event_id,
        "readOnly": name.startswith(("Describe", "List", "Get")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    doc.update(extra)
    return w.add(t, "cloudtrail", doc, event_id)


def sso_identity(person: Person) -> dict[str, Any]:
    """An IAM Identity Center session: AWS names the session after the person's email."""
    permission_set = "AdministratorAccess" if person.admin else "DeveloperAccess"
    return _role_identity(f"AWSReservedSSO_{permission_set}_5e8d2a", person.email, "AROASSO")


def ci_identity() -> dict[str, Any]:
    """The role GitHub Actions assumes through OIDC, with the default session name."""
    return _role_identity(CI_ROLE, "GitHubActions", "AROACI", federated=True)


def _role_identity(
    role: str, session: str, principal: str, *, federated: bool = False
) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"{principal}EXAMPLE:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEKEY",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"{principal}EXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "webIdFederationData": {"federatedProvider": _OIDC} if federated else {},
            "attributes": {"creationDate": "2026-01-05T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def web_identity(repo: str) -> dict[str, Any]:
    """The GitHub OIDC token that calls AssumeRoleWithWebIdentity (its subject names the repo)."""
    subject = f"repo:{ORG}/{repo}:ref:refs/heads/main"
    return {
        "type": "WebIdentityUser",
        "principalId": f"{_OIDC}:sts.amazonaws.com:{subject}",
        "userName": subject,
        "identityProvider": _OIDC,
    }


def console_login(w: World, t: datetime, ip: str, *, ok: bool, ua: str = BROWSER) -> Record:
    """A console sign-in of the IAM user ``ops-admin`` (with MFA when it succeeds)."""
    identity = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEOPS",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{IAM_USER}",
        "accountId": ACCOUNT,
        "userName": IAM_USER,
    }
    extra: dict[str, Any] = {
        "eventType": "AwsConsoleSignIn",
        "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if ok else "No",
        },
    }
    if not ok:
        extra["errorMessage"] = "Failed authentication"
    return cloudtrail(w, t, "ConsoleLogin", "signin", identity, ip, ua, **extra)


@dataclass(frozen=True, slots=True)
class Session:
    """A person acting from one place and address: the builders with those filled in.

    Each tool gets its usual client string (git, kubectl, a browser) unless
    ``ua`` names one for everything (an attacker's script).
    """

    w: World
    person: Person
    place: Place
    ip: str
    ua: str | None = None

    def github(self, t: datetime, action: str, **extra: Any) -> Record:
        ua = self.ua or (TOOLS["git"] if action.startswith("git.") else BROWSER)
        return github(self.w, t, action, self.person.login, self.ip, self.place, ua, **extra)

    def okta(self, t: datetime, event_type: str, **kwargs: Any) -> Record:
        ua = self.ua or BROWSER
        return okta(self.w, t, event_type, self.person, self.place, self.ip, ua=ua, **kwargs)

    def k8s(
        self, t: datetime, verb: str, resource: str, namespace: str | None, **kw: Any
    ) -> Record:
        options: dict[str, Any] = {
            "resource": resource,
            "namespace": namespace,
            "ua": self.ua or TOOLS["kubectl"],
        }
        return k8s(self.w, t, verb, self.person.email, HUMAN_GROUPS, self.ip, **options, **kw)

    def aws(self, t: datetime, name: str, service: str, **extra: Any) -> Record:
        """A call in the person's Identity Center console session."""
        identity, ua = sso_identity(self.person), self.ua or BROWSER
        extra.setdefault("sessionCredentialFromConsole", "true")
        return cloudtrail(self.w, t, name, service, identity, self.ip, ua, **extra)


@dataclass(frozen=True, slots=True)
class Machine:
    """A machine identity acting from one address: a GitHub App, a service account, a role.

    ``identity`` is its CloudTrail ``userIdentity``; ``groups`` its Kubernetes groups.
    """

    w: World
    name: str
    ip: str
    place: Place
    ua: str
    groups: tuple[str, ...] = ()
    identity: dict[str, Any] | None = None

    def github(self, t: datetime, action: str, **extra: Any) -> Record:
        return github(self.w, t, action, self.name, self.ip, self.place, self.ua, **extra)

    def k8s(
        self, t: datetime, verb: str, resource: str, namespace: str | None, **kw: Any
    ) -> Record:
        options: dict[str, Any] = {"resource": resource, "namespace": namespace, "ua": self.ua}
        return k8s(self.w, t, verb, self.name, self.groups, self.ip, **options, **kw)

    def aws(self, t: datetime, name: str, service: str, **extra: Any) -> Record:
        identity = self.identity or {}
        return cloudtrail(self.w, t, name, service, identity, self.ip, self.ua, **extra)
