"""The default rule pack (pipelines/rules): it loads, covers issue 3's list, tests itself,
and agrees with the verdicts other projects published for the same situations.

Agreement is measured on the published samples in tests/data/samples: each line maps
to a publisher's rule (Panther's rule id, Falco's test name); :data:`PUBLISHER_RULES`
says which of our rules covers the same situation. A match rule agrees when it fires on
an event the publisher expected an alert for and stays quiet on one it did not; a
threshold rule is judged on whether the event counts toward its threshold. Published
fragments without a timestamp get one, so that the rule logic is what gets judged.
docs/rule-pack.md lists the figures and explains each disagreement.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from detector.config import PipelineConfig
from detector.events.model import DeadLetterReason, Event
from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.features.observation import Observation
from detector.rules.context import ChangeWindow, RuleContext
from detector.rules.engine import RuleEngine
from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import DistinctSpec, Rule, RuleKind, ThresholdSpec
from detector.ruletests import run_rule_tests
from detector.sources.record import Position, RawRecord
from tests.samples import Sample, load_samples

# Issue 3, part 3: every item needs an enabled rule of the default pack.
REQUIRED_COVERAGE: dict[str, tuple[str, ...]] = {
    "brute force per user: Okta": ("okta-brute-force",),
    "brute force per user: AWS console": ("aws-console-brute-force",),
    "brute force per user: GitLab": ("gitlab-brute-force",),
    "brute force per user: Entra ID": ("entra-brute-force",),
    "brute force per user: Microsoft 365": ("m365-brute-force",),
    "brute force per user: Jenkins": ("jenkins-brute-force",),
    "password spray per IP": ("password-spray-per-ip",),
    "success after failures": ("sign-in-after-failures",),
    "MFA factor removed / 2FA requirement disabled": (
        "mfa-factor-removed",
        "mfa-requirement-disabled",
    ),
    "branch protection or ruleset removed": ("branch-protection-removed",),
    "org owner/admin granted": (
        "org-owner-granted",
        "idp-admin-role-granted",
        "azure-admin-role-granted",
        "gcp-admin-role-granted",
        "ado-admin-group-member-added",
    ),
    "audit logging stopped": (
        "cloudtrail-logging-stopped",
        "audit-stream-removed",
        "m365-audit-logging-disabled",
        "azure-audit-logging-stopped",
        "gcp-audit-logging-stopped",
        "ado-audit-stream-stopped",
    ),
    "unexpected infrastructure change": (
        "k8s-manual-production-change",
        "aws-manual-infrastructure-change",
        "azure-manual-infrastructure-change",
        "gcp-manual-infrastructure-change",
    ),
    "secrets read in bulk": (
        "k8s-secrets-many-namespaces",
        "azure-secrets-read",
        "gcp-many-secrets-read",
    ),
    "cluster-admin binding": ("k8s-cluster-admin-binding",),
    "secret reads across many namespaces": ("k8s-secrets-many-namespaces",),
    "mass clone/download": ("mass-repository-clone",),
    "self-hosted runner registered": ("self-hosted-runner-registered",),
    "Actions secret created": ("actions-secret-created",),
    "login from a new country": ("login-new-country",),
}

# Our rule → the publishers' rules that judge the same situation, optionally narrowed to
# the cases whose name contains a text (a publisher rule that covers more than ours).
PUBLISHER_RULES: dict[str, tuple[str | tuple[str, str], ...]] = {
    "okta-brute-force": (("Standard.BruteForceByUser", "Okta"),),
    "aws-console-brute-force": (
        ("Standard.BruteForceByUser", "AWS"),
        "AWS.Console.RootLoginFailed",
    ),
    "entra-brute-force": ("Azure.Audit.ManyFailedSignIns", "Azure.Audit.ExcessiveAccountLockouts"),
    "password-spray-per-ip": ("Standard.BruteForceByIP", "AWS.CloudTrail.PasswordSpraying"),
    "mfa-requirement-disabled": (
        ("Standard.MFADisabled", "GitHub"),
        ("GitHub.Org.AuthChange", "Two Factor"),
        "Okta.Global.MFA.Disabled",
        "Azure.Audit.MFADisabled",
        "Azure.Audit.PolicyChanged",
    ),
    "m365-brute-force": ("Microsoft365.Brute.Force.Login.by.User",),
    "azure-admin-role-granted": ("Azure.MonitorActivity.RoleAssignment.PrivilegedOrElevated",),
    "azure-audit-logging-stopped": (
        "Azure.MonitorActivity.DiagnosticSettings.Deleted",
        "Azure.MonitorActivity.LogAnalyticsWorkspace.Deleted",
        "Azure.MonitorActivity.Network.WatcherDeleted",
    ),
    "azure-secrets-read": (
        "Azure.MonitorActivity.KeyVault.SecretAccessedOrRecovered",
        "Azure.MonitorActivity.StorageAccount.KeysListed",
    ),
    "gcp-admin-role-granted": (
        ("Standard.AdminRoleAssigned", "GCP"),
        "GCP.Permissions.Granted.to.Create.or.Manage.Service.Account.Key",
    ),
    "gcp-audit-logging-stopped": (
        "GCP.Log.Bucket.Or.Sink.Deleted",
        "GCP.Logging.Sink.Modified",
        "GCP.Logging.Settings.Modified",
        "GCP.VPC.Flow.Logs.Disabled",
    ),
    "sign-in-without-mfa": ("Azure.Audit.ROPCLoginNoMFA",),
    "entra-app-credential-added": ("Azure.Audit.ServicePrincipalCredentialsAdded",),
    "entra-federation-trust-changed": (
        "Azure.Audit.DomainSettingsModified",
        "Azure.Audit.OIDC.Changed",
    ),
    # We report every invitation, also within the inviter's own domain (Panther's "Same org").
    "entra-guest-invited": (
        ("Azure.Audit.InviteExternalUsers", "Successful Invite external"),
        ("Azure.Audit.InviteExternalUsers", "Unsuccessful"),
    ),
    # Deleted conditional access policies are mfa-requirement-disabled's (mapped above).
    "entra-policy-changed": (("Azure.Audit.PolicyChanged", "Added"),),
    "entra-legacy-auth-sign-in": (
        ("Azure.Audit.LegacyAuth", "legacy auth ["),
        ("Azure.Audit.LegacyAuth", "Failed"),
        "Azure.Audit.ROPCLoginNoMFA",
    ),
    # Every device code sign-in, not only the authentication broker's.
    "entra-device-code-sign-in": (("Azure.Audit.DeviceCodeBrokerClient", "with Broker"),),
    "okta-api-token-created": ("Okta.APIKeyCreated",),
    "gcp-service-account-key-created": (
        ("GCP.Service.Account.or.Keys.Created", "Key"),
        ("GCP.Service.Account.or.Keys.Created", "Other"),
    ),
    "gcp-manual-infrastructure-change": (
        "GCP.Cloud.Storage.Buckets.Modified.Or.Deleted",
        "GCP.Firewall.Rule.Created",
        "GCP.Firewall.Rule.Deleted",
        "GCP.Firewall.Rule.Modified",
        "GCP.DNS.Zone.Modified.or.Deleted",
        "GCP.SQL.ConfigChanges",
        "GCP.IAM.OrgFolderIAMChanges",
    ),
    "mfa-factor-removed": (
        "Microsoft365.MFA.Disabled",
        ("Standard.MFADisabled", "Okta"),
        "Okta.User.MFA.Reset.All",
        "Okta.User.MFA.Reset.Single",
        "Okta.User.MFA.Factor.Suspend",
    ),
    "idp-admin-role-granted": (
        "Okta.AdminRoleAssigned",
        "Okta.Group.Admin.Role.Assigned",
        "Azure.Audit.RoleChangedPIM",
        "Azure.Audit.ElevateUserAccessAdministrator",
    ),
    "org-owner-granted": (("Standard.AdminRoleAssigned", "Github"), "GitHub.User.RoleUpdated"),
    "branch-protection-removed": (
        "GitHub.Branch.ProtectionDisabled",
        "GitHub.Repo.RulesetModified",
    ),
    "branch-protection-overridden": ("GitHub.Branch.PolicyOverride",),
    "cloudtrail-logging-stopped": (
        "AWS.CloudTrail.Stopped",
        "AWS.CloudTrail.EventSelectorsDisabled",
        "AWS.CloudTrail.SecurityConfigurationChange",
    ),
    "aws-security-logging-disabled": (
        "AWS.VPCFlow.LogsDeleted",
        "AWS.CloudTrail.DNSLogsDeleted",
        "AWS.S3.DisableBucketLogging",
        "AWS.ConfigService.DisabledDeleted",
        "AWS.Bedrock.DeleteModelInvocationLoggingConfiguration",
    ),
    "aws-manual-infrastructure-change": (
        "AWS.EC2.SecurityGroupModified",
        "AWS.EC2.ManualSecurityGroupChange",
        "AWS.EC2.NetworkACLModified",
        "AWS.EC2.RouteTableModified",
        "AWS.EC2.VPCModified",
        "AWS.EC2.GatewayModified",
        "AWS.CloudTrail.IAMAnythingChanged",
        "AWS.IAM.PolicyModified",
    ),
    "aws-admin-policy-attached": ("AWS.IAM.AttachAdminRolePolicy", "AWS.IAM.AttachAdminUserPolicy"),
    "aws-root-sign-in": ("AWS.Console.RootLogin",),
    "aws-console-sign-in-without-mfa": ("AWS.Console.LoginWithoutMFA",),
    "aws-secrets-mass-retrieval": (
        "AWS.SecretsManager.RetrieveSecrets",
        "AWS.SSM.DecryptSSMParams",
    ),
    "aws-secrets-batch-retrieval": (
        "AWS.SecretsManager.BatchRetrieveSecretsCatchAll",
        "AWS.SecretsManager.BatchRetrieveSecrets",
    ),
    "aws-credentials-for-other-user": (
        "AWS.IAM.Backdoor.User.Keys",
        "AWS.CloudTrail.LoginProfileCreatedOrModified",
        "AWS.User.Login.Profile.Modified",
    ),
    "aws-instance-credentials-used-elsewhere": ("AWS.CloudTrail.IMDSCredentialExfiltration",),
    "aws-snapshot-or-image-shared": (
        "AWS.CloudTrail.SnapshotMadePublic",
        "AWS.CloudTrail.AMIModifiedForPublicAccess",
        "AWS.RDS.SnapshotShared",
    ),
    "aws-kms-key-deletion": ("AWS.KMS.CustomerManagedKeyLoss",),
    "aws-s3-bucket-made-public": (
        "AWS.S3.DeletePublicAccessBlock",
        ("AWS.CloudTrail.ResourceMadePublic", "S3"),
    ),
    # Panther's S3 and CloudFormation-made cases belong to the S3 rule / automation.
    "aws-resource-made-public": (
        ("AWS.CloudTrail.ResourceMadePublic", "(Should"),
        "AWS.RDS.InstanceMadePublic",
        "AWS.RDS.PublicRestore",
        "AWS.CloudTrail.CodebuildProjectMadePublic",
    ),
    "aws-recovery-protection-removed": (
        "AWS.S3.SuspendVersioning",
        "AWS.S3.DisableMfaDelete",
        ("AWS.S3.SecurityControlDisabling", "Versioning"),
        ("AWS.S3.SecurityControlDisabling", "MFA Delete"),
        "AWS.RDS.AutomatedBackupDeleted",
        "AWS.RDS.DeletionProtectionDisabled",
    ),
    "aws-ec2-user-data-modified": ("AWS.EC2.Startup.Script.Change",),
    "aws-shell-access-to-instance": ("AWS.EC2.MultiInstanceConnect",),
    "aws-console-session-from-access-keys": ("AWS.Console.GetSigninToken.Abuse",),
    "aws-root-credentials-changed": (
        "AWS.CloudTrail.RootAccessKeyCreated",
        "AWS.CloudTrail.RootPasswordChanged",
    ),
    "k8s-pod-exec-or-port-forward": ("Kubernetes.Pod.Exec", "falco:pod_exec", "falco:pod_attach"),
    # Run-as-root is not a node-level privilege for us; Falco's "trusted" variants judge an
    # image allow-list we do not have.
    "k8s-privileged-workload-created": (
        ("Kubernetes.Pod.Privileged.Created", "Privileged"),
        ("Kubernetes.Pod.Privileged.Created", "Error"),
        "Kubernetes.Pod.Host.IPC",
        "Kubernetes.Pod.Host.Network",
        "Kubernetes.Pod.Host.PID",
        "Kubernetes.Pod.HostPath.Volume",
        "Kubernetes.Pod.Dangerous.Capabilities",
        "falco:create_privileged_pod",
        "falco:create_privileged_2nd_container_pod",
        "falco:create_privileged_no_secctx_1st_container_2nd_container_pod",
        "falco:create_unprivileged_pod",
        "falco:create_hostnetwork_pod",
        "falco:create_nohostnetwork_pod",
        "falco:compat_engine_v4_create_privileged_pod",
        "falco:compat_engine_v4_create_hostnetwork_pod",
        "falco:compat_engine_v4_create_unprivileged_pod",
    ),
    # Named reads only: a list has no names to count.
    "k8s-secrets-read-in-bulk": (
        ("Kubernetes.BulkSecretAccess", "Gets"),
        ("Kubernetes.BulkSecretAccess", "Excluded"),
        ("Kubernetes.BulkSecretAccess", "Non-Secret"),
    ),
    "k8s-service-account-token-created": ("Kubernetes.ServiceAccount.TokenCreated",),
    "repository-made-public": ("Github.Repo.VisibilityChange",),
    "deploy-key-or-access-token-added": ("GitHub.User.AccessKeyCreated",),
    "code-host-security-control-disabled": (
        "GitHub.Advanced.Security.Change",
        "GitHub.Org.IpAllowlist",
        ("GitHub.Org.AuthChange", "SAML Disabled"),
        ("GitHub.Org.AuthChange", "OAuth App Restrictions Disabled"),
        ("GitHub.Org.AuthChange", "Non"),
    ),
    "github-app-installed": ("Github.Organization.App.Integration.Installed",),
    "k8s-cluster-admin-binding": (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "falco:attach_cluster_admin_role",
    ),
    "k8s-secrets-many-namespaces": ("Kubernetes.BulkSecretAccess",),
    "k8s-secrets-listed-cluster-wide": ("Kubernetes.Secrets.DumpAllNamespaces",),
    "k8s-manual-production-change": (
        "Kubernetes.SystemRole.Modified",
        "Kubernetes.Pod.Exec",
        "falco:pod_exec",
        "falco:pod_attach",
        "falco:create_clusterrolebinding",
        "falco:delete_clusterrolebinding",
        "falco:create_clusterrole",
        "falco:delete_clusterrole",
        "falco:system_clusterrole_modified",
        "falco:system_clusterrole_deleted",
    ),
    # Anonymous /version reads and refused anonymous requests are left out on purpose.
    "k8s-anonymous-request-allowed": (
        "Kubernetes.API.AnonymousAccess",
        "Amazon.EKS.AnonymousAPIAccess",
        "falco:anonymous_user",
    ),
    "k8s-forbidden-requests-burst": (
        "Kubernetes.API.Multiple403.PublicIP",
        "Amazon.EKS.Audit.Multiple403",
    ),
    "k8s-admission-webhook-changed": ("Kubernetes.AdmissionController.Created",),
    "k8s-client-certificate-requested": ("Kubernetes.ClientCertificate.Created",),
    "k8s-system-namespace-workload": (
        "Kubernetes.Pod.SystemNamespace",
        "falco:create_pod_in_kube_system_namespace",
        "falco:create_pod_in_kube_public_namespace",
        "falco:create_serviceaccount_in_kube_system_namespace",
        "falco:create_serviceaccount_in_kube_public_namespace",
    ),
    "gcp-service-account-impersonated": (
        "GCP.IAM.serviceAccounts.getAccessToken.Privilege.Escalation",
        "GCP.IAM.serviceAccounts.signBlob",
        "GCP.IAM.serviceAccounts.signJwt.Privilege.Escalation",
    ),
    "gcp-kms-key-version-destroyed": ("GCP.KMS.EraseKey",),
    "gcp-resource-made-public": ("GCP.GCS.Public",),
    "azure-security-alerts-suppressed": (
        "Azure.MonitorActivity.Security.AlertSuppressionRuleCreated",
    ),
    "azure-disk-export-link-created": ("Azure.MonitorActivity.Compute.DiskSASURIGenerated",),
    "azure-packet-capture-started": ("Azure.MonitorActivity.Network.PacketCaptureEnabled",),
    "okta-threat-detected": ("Okta.ThreatInsight.Security.Threat.Detected",),
    "okta-user-reported-suspicious-activity": ("Okta.User.Reported.Suspicious.Activity",),
    "okta-inbound-federation-changed": (
        "Okta.Identity.Provider.Created.Modified",
        "Okta.Org2org.Creation.Modification",
    ),
    "okta-support-access": ("Okta.Support.Access", "Okta.Support.Reset"),
    "okta-fastpass-phishing-blocked": ("Okta.Phishing.Attempt.Blocked.FastPass",),
    "okta-sign-in-via-anonymizing-proxy": ("Okta.Anonymizing.VPN.Login",),
    "okta-admin-console-new-device-and-ip": ("Okta.New.Behavior.Accessing.Admin.Console",),
    "okta-unauthorized-app-access": ("Okta.App.Unauthorized.Access.Attempt",),
    "repository-transferred-or-exported": ("Github.Repository.Transfer",),
    # Webhook deletions are not alerted (Panther reports them at INFO).
    "github-webhook-added": (("GitHub.Webhook.Modified", "Created"),),
    "secret-committed-to-repository": ("GitHub.Secret.Scanning.Alert.Created",),
    "actions-token-permissions-changed": ("GitHub.Workflow.PermissionsModified",),
}

# Where a published fragment without a timestamp gets one (the rules never read it).
_TIME_FIELD = {
    "github_audit": "created_at",
    "gitlab_audit": "created_at",
    "okta_system_log": "published",
    "cloudtrail": "eventTime",
    "k8s_audit": "requestReceivedTimestamp",
    "azure_entra_id": "time",
    "m365_audit": "CreationTime",
    "azure_activity": "time",
    "gcp_audit": "timestamp",
}
_FILLER_TIME = "2026-01-05T10:00:00Z"
VENDORS = tuple(_TIME_FIELD)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One published sample judged by one of our rules."""

    rule: str
    publisher: str
    line: int
    case: str
    expected: bool
    fired: bool | None  # None: the sample does not become an event

    @property
    def agrees(self) -> bool:
        return self.fired is not None and self.fired == self.expected


def publisher_rule(sample: Sample) -> str | None:
    """``Panther.Rule.Id``, ``falco:<test>`` or ``wazuh:<description>``; None for format samples."""
    if sample.source.startswith("panther-labs/") and not sample.case.startswith("test scenario"):
        return sample.case.split(":", 1)[0].strip()
    if sample.source.startswith("falcosecurity/"):
        return "falco:" + sample.case.split("'")[1]
    if sample.source.startswith("wazuh/"):
        return "wazuh:" + sample.case.split("[", 1)[1].split("]", 1)[0]
    return None


def to_events(normalizer: Normalizer, vendor: str, sample: Sample) -> list[Event]:
    """The sample's events, a filler timestamp added to fragments published without one."""
    results = normalizer.normalize(_record(sample.event, sample.line))
    undated = any(getattr(r, "reason", None) is DeadLetterReason.MISSING_TIME for r in results)
    if undated and isinstance(sample.event, dict):
        dated = {**sample.event, _TIME_FIELD[vendor]: _FILLER_TIME}
        results = normalizer.normalize(_record(dated, sample.line))
    return [r for r in results if isinstance(r, Event)]


def _record(doc: Any, line: int) -> RawRecord:
    return RawRecord(json.dumps(doc).encode(), Position("sample", line))


def single_event_form(rule: Rule) -> Rule | None:
    """The rule as judged on one event: thresholds fire on the first counted event."""
    if rule.kind is RuleKind.MATCH:
        return rule
    if rule.kind is RuleKind.THRESHOLD and rule.threshold is not None:
        spec = rule.threshold
        one = (
            ThresholdSpec(
                window=spec.window, distinct=DistinctSpec(field=spec.distinct.field, count=1)
            )
            if spec.distinct is not None
            else ThresholdSpec(window=spec.window, count=1)
        )
        return rule.model_copy(update={"threshold": one})
    return None  # new_value and sequence rules need history, not one event


def fires(rule: Rule, events: Iterable[Event]) -> bool:
    engine = RuleEngine([rule], RuleContext())
    return any(engine.evaluate(Observation(event=event)) for event in events)


def _selected(rule_id: str, publisher: str, case: str) -> bool:
    for entry in PUBLISHER_RULES.get(rule_id, ()):
        name, narrow = (entry, "") if isinstance(entry, str) else entry
        if name == publisher and narrow.casefold() in case.casefold():
            return True
    return False


def verdicts(
    rules: Iterable[Rule], samples: dict[str, tuple[Sample, ...]], normalizer: Normalizer
) -> Iterator[Verdict]:
    """Every (our rule, mapped published sample with a verdict) pair, judged."""
    judged = [(rule, form) for rule in rules if (form := single_event_form(rule)) is not None]
    for vendor, items in samples.items():
        for sample in items:
            publisher = publisher_rule(sample)
            if publisher is None or sample.expected_alert is None:
                continue
            mine = [(r, f) for r, f in judged if _selected(r.id, publisher, sample.case)]
            if not mine:
                continue
            events = to_events(normalizer, vendor, sample)
            for rule, form in mine:
                fired = fires(form, events) if events else None
                yield Verdict(
                    rule.id, publisher, sample.line, sample.case, sample.expected_alert, fired
                )


@pytest.fixture(scope="module")
def pack() -> list[Rule]:
    return load_rules([bundled_rules_dir()])


@pytest.fixture(scope="module")
def judged(pack: list[Rule]) -> list[Verdict]:
    samples = {vendor: load_samples(vendor) for vendor in VENDORS}
    return list(verdicts(pack, samples, Normalizer(Taxonomy.bundled())))


def test_every_rule_documents_itself(pack: list[Rule]) -> None:
    for rule in pack:
        assert rule.runbook.strip(), rule.id
        assert rule.summary, rule.id
        assert any(tag.startswith("attack.t") for tag in rule.tags), rule.id


@pytest.mark.parametrize("item", sorted(REQUIRED_COVERAGE))
def test_every_required_situation_has_an_enabled_rule(pack: list[Rule], item: str) -> None:
    enabled = {rule.id for rule in pack if rule.enabled}
    assert set(REQUIRED_COVERAGE[item]) <= enabled


def test_every_enabled_rule_tests_both_ways(pack: list[Rule]) -> None:
    for rule in pack:
        if rule.enabled:
            expected = [test.alerts for test in rule.tests]
            assert any(n > 0 for n in expected) and 0 in expected, rule.id


def test_embedded_tests_pass(pack: list[Rule]) -> None:
    failed = [r for r in run_rule_tests(pack, PipelineConfig()) if not r.passed]
    assert not failed, [(r.rule, r.test, r.expected, r.alerts, r.error) for r in failed]


@pytest.mark.parametrize(
    "rule_id",
    [
        "k8s-manual-production-change",
        "aws-manual-infrastructure-change",
        "azure-manual-infrastructure-change",
        "gcp-manual-infrastructure-change",
    ],
)
def test_manual_change_rules_stay_quiet_inside_a_change_window(
    pack: list[Rule], rule_id: str
) -> None:
    always = ChangeWindow(start="00:00", end="23:59")
    config = PipelineConfig(change_windows=(always,))
    rule = next(r for r in pack if r.id == rule_id)
    assert all(result.alerts == 0 for result in run_rule_tests([rule], config))


# Measured on tests/data/samples when the pack was tuned; see docs/rule-pack.md. Raise them
# when a change improves agreement; a drop means a rule lost a published situation.
AGREEMENT_FLOOR = {"judged": 516, "agreed": 465}
RULE_AGREEMENT_FLOOR = {
    "actions-token-permissions-changed": 2,
    "aws-admin-policy-attached": 4,
    "aws-console-brute-force": 5,
    "aws-console-session-from-access-keys": 3,
    "aws-console-sign-in-without-mfa": 9,
    "aws-credentials-for-other-user": 7,
    "aws-ec2-user-data-modified": 1,
    "aws-instance-credentials-used-elsewhere": 10,
    "aws-kms-key-deletion": 5,
    "aws-manual-infrastructure-change": 23,
    "aws-recovery-protection-removed": 28,
    "aws-resource-made-public": 19,
    "aws-root-credentials-changed": 4,
    "aws-root-sign-in": 2,
    "aws-s3-bucket-made-public": 7,
    "aws-secrets-mass-retrieval": 4,
    "aws-security-logging-disabled": 11,
    "aws-shell-access-to-instance": 4,
    "aws-snapshot-or-image-shared": 12,
    "azure-admin-role-granted": 3,
    "azure-audit-logging-stopped": 9,
    "azure-disk-export-link-created": 5,
    "azure-packet-capture-started": 4,
    "azure-secrets-read": 7,
    "azure-security-alerts-suppressed": 3,
    "branch-protection-overridden": 2,
    "branch-protection-removed": 5,
    "cloudtrail-logging-stopped": 11,
    "code-host-security-control-disabled": 16,
    "deploy-key-or-access-token-added": 2,
    "entra-app-credential-added": 2,
    "entra-brute-force": 3,
    "entra-device-code-sign-in": 1,
    "entra-federation-trust-changed": 4,
    "entra-guest-invited": 2,
    "entra-legacy-auth-sign-in": 4,
    "entra-policy-changed": 1,
    "gcp-admin-role-granted": 4,
    "gcp-audit-logging-stopped": 10,
    "gcp-kms-key-version-destroyed": 3,
    "gcp-manual-infrastructure-change": 17,
    "gcp-resource-made-public": 1,
    "gcp-service-account-impersonated": 6,
    "gcp-service-account-key-created": 2,
    "github-app-installed": 3,
    "github-webhook-added": 2,
    "idp-admin-role-granted": 7,
    "k8s-admission-webhook-changed": 2,
    "k8s-anonymous-request-allowed": 3,
    "k8s-client-certificate-requested": 7,
    "k8s-cluster-admin-binding": 8,
    "k8s-forbidden-requests-burst": 4,
    "k8s-manual-production-change": 11,
    "k8s-pod-exec-or-port-forward": 4,
    "k8s-privileged-workload-created": 19,
    "k8s-secrets-listed-cluster-wide": 8,
    "k8s-secrets-many-namespaces": 7,
    "k8s-secrets-read-in-bulk": 5,
    "k8s-service-account-token-created": 7,
    "k8s-system-namespace-workload": 9,
    "m365-brute-force": 2,
    "mfa-factor-removed": 9,
    "mfa-requirement-disabled": 11,
    "okta-admin-console-new-device-and-ip": 4,
    "okta-api-token-created": 1,
    "okta-brute-force": 2,
    "okta-fastpass-phishing-blocked": 2,
    "okta-inbound-federation-changed": 5,
    "okta-sign-in-via-anonymizing-proxy": 3,
    "okta-support-access": 4,
    "okta-threat-detected": 3,
    "okta-unauthorized-app-access": 2,
    "okta-user-reported-suspicious-activity": 2,
    "org-owner-granted": 5,
    "password-spray-per-ip": 7,
    "repository-made-public": 2,
    "repository-transferred-or-exported": 4,
    "secret-committed-to-repository": 2,
    "sign-in-without-mfa": 2,
}


def test_samples_agreement_does_not_drop(judged: list[Verdict]) -> None:
    evaluable = [v for v in judged if v.fired is not None]
    assert len(evaluable) >= AGREEMENT_FLOOR["judged"]
    assert sum(v.agrees for v in evaluable) >= AGREEMENT_FLOOR["agreed"]
    per_rule = Counter(v.rule for v in evaluable if v.agrees)
    for rule_id, floor in RULE_AGREEMENT_FLOOR.items():
        assert per_rule[rule_id] >= floor, rule_id
