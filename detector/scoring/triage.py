"""ATT&CK tags and a triage runbook per model family, carried by anomaly alerts as rules' are.

The tags name what an anomaly of the family most often is, from MITRE ATT&CK
(Enterprise): they are a starting point for the analyst, not a verdict.

- auth: T1078 Valid Accounts (a stolen password used from somewhere new) and
  T1110 Brute Force (failures, spread of addresses);
- code: T1213.003 Data from Information Repositories: Code Repositories (a
  sweep or bulk download), T1552.001 Unsecured Credentials in files (secrets
  read in bulk);
- infra: T1078.004 Valid Accounts: Cloud Accounts, T1098 Account
  Manipulation (permission changes), T1580 Cloud Infrastructure Discovery
  (a burst of reads across namespaces and resources);
- service: T1528 Steal Application Access Token and T1078 Valid Accounts (a
  bot's token used from a new client or on repositories it never touches).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["RUNBOOKS", "TAGS"]

TAGS: Mapping[str, tuple[str, ...]] = {
    "auth": (
        "attack.initial_access",
        "attack.credential_access",
        "attack.t1078",
        "attack.t1110",
    ),
    "code": ("attack.collection", "attack.t1213", "attack.t1213.003", "attack.t1552.001"),
    "infra": (
        "attack.persistence",
        "attack.privilege_escalation",
        "attack.discovery",
        "attack.t1078.004",
        "attack.t1098",
        "attack.t1580",
    ),
    "service": (
        "attack.credential_access",
        "attack.initial_access",
        "attack.t1528",
        "attack.t1078",
    ),
}
"""Family → ATT&CK tags (the rules' ``attack.<tactic>`` / ``attack.t<id>`` form)."""

_COMMON_LAST = (
    "If the activity is theirs and expected (a new laptop, a migration), note it on the alert; "
    "the models keep learning their routine."
)

RUNBOOKS: Mapping[str, str] = {
    "auth": (
        "1. Read the features named in the summary: new addresses, countries or user agents, "
        "or failures. Check the evidence events' IP and user agent.\n"
        "2. Ask the user whether they signed in from there. If not, reset the password, revoke "
        "sessions and check the MFA factors enrolled recently.\n"
        "3. Look for what the session did next (rule alerts and anomalies on the same actor "
        "in `related`).\n"
        f"4. {_COMMON_LAST}"
    ),
    "code": (
        "1. List the repositories the evidence events read, cloned or changed, and whether the "
        "actor works on them.\n"
        "2. A bulk read at an unusual hour or from a new address is exfiltration until shown "
        "otherwise: ask the user, and revoke their tokens and SSH keys if it was not them.\n"
        "3. Check secrets read or created, and workflow or runner changes in the same window.\n"
        f"4. {_COMMON_LAST}"
    ),
    "infra": (
        "1. Read which namespaces, resources or permissions the evidence events touched, and "
        "whether a change ticket or pipeline run covers them.\n"
        "2. A burst of reads (secrets, describe/list calls) is reconnaissance; permission "
        "changes are persistence: revert unexpected changes and rotate secrets that were read.\n"
        "3. If the credentials were not used by their owner, disable the access key or session.\n"
        f"4. {_COMMON_LAST}"
    ),
    "service": (
        "1. Compare the user agent, address and repositories or namespaces in the evidence "
        "events with what this bot or CI identity normally uses.\n"
        "2. A service token used from a new client is a stolen token until shown otherwise: "
        "rotate it and review what it did since.\n"
        "3. Check recent changes to the workflows or deployments that hold the token.\n"
        f"4. {_COMMON_LAST}"
    ),
}
"""Family → short triage text (steps), sent as the alert's ``runbook``."""
