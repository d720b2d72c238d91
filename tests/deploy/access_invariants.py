"""Data and identity invariants of the deploy stacks: who may touch what, and how it is kept.

- ``role_policy_scope``: role policies (AWS IAM, Alibaba RAM) use no wildcard actions; a
  resource wildcard appears only as one of the service's prefixes (``inputs/*``,
  ``outputs/*``, ``models/*``, ``audit/*``) or a log group's streams; ``Resource "*"`` only for the
  actions AWS cannot scope; and the worker and API roles hold exactly their object grants.
- ``bucket_protection``: every bucket is versioned, encrypted, private (public access
  blocked, TLS-only policy); the service's data is under SSE-KMS and reachable only through
  the stack's VPC endpoints.
- ``instance_hardening``: IMDSv2 required, no public IP, encrypted root volumes, subnets
  that never hand out public addresses.
"""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.stack import Block, Stack, as_list
from tests.deploy.violation import Violation

SERVICE_PREFIXES = ("inputs/", "outputs/", "models/", "audit/")
# Actions AWS cannot scope to a resource; each is still pinned where a condition key exists.
RESOURCELESS_ACTIONS = frozenset({"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"})
REQUIRED_CONDITIONS = {"cloudwatch:PutMetricData": "cloudwatch:namespace"}
# The exact object grants of each role, (action, prefix), as the service uses them (see
# docs/decisions/0005-deploy-object-grants.md): anything more or less is reported.
OBJECT_GRANTS: dict[str, frozenset[tuple[str, str]]] = {
    "worker": frozenset(
        {
            ("GetObject", "inputs/"),
            ("GetObject", "models/"),
            ("PutObject", "outputs/"),
            ("DeleteObject", "inputs/"),
        }
    ),
    "api": frozenset(
        {
            ("PutObject", "inputs/"),
            ("GetObject", "inputs/"),
            ("DeleteObject", "inputs/"),
            ("GetObject", "outputs/"),
            ("DeleteObject", "outputs/"),
            ("GetObject", "models/"),
            ("GetObject", "audit/"),
            ("PutObject", "audit/"),
        }
    ),
}
_OBJECT_ACTION = re.compile(r"^(s3|oss):(\w*Object\w*)$")
_LOG_STREAMS = re.compile(r"^\$\{aws_cloudwatch_log_group\.\w+\.arn\}:\*$")


def _role_documents(stack: Stack) -> list[tuple[str, Block, list[dict[str, Any]]]]:
    """(role name, policy block, normalised statements) for every role policy."""
    found: list[tuple[str, Block, list[dict[str, Any]]]] = []
    for policy in stack.resources("aws_iam_role_policy"):
        role = stack.find(policy.body.get("role", ""))
        document = stack.find(policy.body.get("policy", ""))
        statements = [
            {
                "effect": s.get("effect", "Allow"),
                "actions": as_list(s.get("actions")) + as_list(s.get("not_actions")),
                "resources": as_list(s.get("resources")) + as_list(s.get("not_resources")),
                "negated": bool(s.get("not_actions") or s.get("not_resources")),
                "conditions": {
                    c.get("variable"): as_list(c.get("values")) for c in as_list(s.get("condition"))
                },
            }
            for s in (document.nested("statement") if document else [])
        ]
        found.append((role.name if role else "?", document or policy, statements))
    for attachment in stack.resources("alicloud_ram_role_policy_attachment"):
        role = stack.find(attachment.body.get("role_name", ""))
        policy = stack.find(attachment.body.get("policy_name", ""))
        document = stack.find(policy.body.get("policy_document", "")) if policy else None
        statements = [
            {
                "effect": s.get("effect", "Allow"),
                "actions": as_list(s.get("action")),
                "resources": as_list(s.get("resource")),
                "negated": False,
                "conditions": {
                    c.get("variable"): as_list(c.get("values")) for c in as_list(s.get("condition"))
                },
            }
            for s in (document.nested("statement") if document else [])
        ]
        found.append((role.name if role else "?", document or attachment, statements))
    return found


def _object_prefix(stack: Stack, resource: str) -> str | None:
    """``inputs/`` for ``<bucket arn>/inputs/*``; None for anything else."""
    resolved = str(stack.resolve(resource))
    for prefix in SERVICE_PREFIXES:
        if resolved.endswith(f"/{prefix}*"):
            return prefix
    return None


def role_policy_scope(stack: Stack) -> list[Violation]:
    """Role policies grant named actions on named resources and the agreed prefixes only."""
    violations: list[Violation] = []
    documents = _role_documents(stack)
    if (stack.has("aws_iam_role") or stack.has("alicloud_ram_role")) and not documents:
        violations.append(
            Violation("least-privilege", str(stack.directory), "no role policy found")
        )
    for role, block, statements in documents:

        def report(detail: str, where: str = block.where) -> None:
            violations.append(Violation("least-privilege", where, detail))

        if not statements:
            report(f"role {role}: policy is not a checkable policy-document data source")
        grants: set[tuple[str, str]] = set()
        for statement in statements:
            if statement["effect"] != "Allow":
                continue
            if statement["negated"]:
                report("NotAction/NotResource grants everything except a list")
            actions = [str(action) for action in statement["actions"]]
            for action in actions:
                if "*" in action:
                    report(f"wildcard action {action}")
            for resource in statement["resources"]:
                resolved = str(stack.resolve(resource))
                if resolved == "*":
                    scoped = [a for a in actions if a not in RESOURCELESS_ACTIONS]
                    if scoped:
                        report(f'Resource "*" for scopable actions {scoped}')
                    for action, key in REQUIRED_CONDITIONS.items():
                        if action in actions and key not in statement["conditions"]:
                            report(f'{action} on "*" without a {key} condition')
                elif "*" in resolved:
                    prefix = _object_prefix(stack, resolved)
                    if prefix is None and not _LOG_STREAMS.match(resolved):
                        report(f"wildcard resource {resolved}")
                    for action in actions:
                        matched = _OBJECT_ACTION.match(action)
                        if matched and prefix:
                            grants.add((matched[2], prefix))
            if "s3:ListBucket" in actions:
                listed = [
                    str(stack.resolve(v)) for v in statement["conditions"].get("s3:prefix", [])
                ]
                if not listed or not all(v.startswith(SERVICE_PREFIXES) for v in listed):
                    report("listing without a prefix condition on a service prefix")
        expected = OBJECT_GRANTS.get(role)
        if expected is not None and grants != expected:
            extra = sorted(grants - expected)
            missing = sorted(expected - grants)
            report(f"role {role} object grants differ: extra {extra}, missing {missing}")
    return violations


def _aws_bucket_checks(stack: Stack, bucket: Block, data_buckets: set[str]) -> list[str]:
    problems: list[str] = []
    versioning = stack.referencing("aws_s3_bucket_versioning", "bucket", bucket)
    if not any(v.first("versioning_configuration").get("status") == "Enabled" for v in versioning):
        problems.append("versioning is not enabled")
    encryption = stack.referencing(
        "aws_s3_bucket_server_side_encryption_configuration", "bucket", bucket
    )
    defaults = [
        e.first("rule").get("apply_server_side_encryption_by_default", [{}]) for e in encryption
    ]
    algorithms = {
        d[0].get("sse_algorithm") if isinstance(d, list) and d else None for d in defaults
    }
    if not encryption or None in algorithms:
        problems.append("no default encryption")
    if bucket.name in data_buckets:
        keys = [d[0].get("kms_master_key_id") for d in defaults if isinstance(d, list) and d]
        if algorithms != {"aws:kms"} or not all(keys):
            problems.append("service data must be SSE-KMS with the stack's key")
    blocks = stack.referencing("aws_s3_bucket_public_access_block", "bucket", bucket)
    flags = (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    )
    if not any(all(b.body.get(flag) is True for flag in flags) for b in blocks):
        problems.append("public access is not fully blocked")
    policies = stack.referencing("aws_s3_bucket_policy", "bucket", bucket)
    documents = [stack.find(p.body.get("policy", "")) for p in policies]
    denies = [s for d in documents if d for s in d.nested("statement") if s.get("effect") == "Deny"]
    variables = {c.get("variable") for s in denies for c in as_list(s.get("condition"))}
    if "aws:SecureTransport" not in variables:
        problems.append("bucket policy does not refuse plain HTTP")
    if bucket.name in data_buckets and "aws:SourceVpce" not in variables:
        problems.append("bucket policy does not restrict object access to the VPC endpoints")
    return problems


def _alicloud_bucket_checks(stack: Stack, bucket: Block) -> list[str]:
    problems: list[str] = []
    if bucket.first("versioning").get("status") != "Enabled":
        problems.append("versioning is not enabled")
    encryption = bucket.first("server_side_encryption_rule")
    if encryption.get("sse_algorithm") != "KMS" or not encryption.get("kms_master_key_id"):
        problems.append("not SSE-KMS with the stack's key")
    if not any(
        a.body.get("acl") == "private"
        for a in stack.referencing("alicloud_oss_bucket_acl", "bucket", bucket)
    ):
        problems.append("ACL is not private")
    blocks = stack.referencing("alicloud_oss_bucket_public_access_block", "bucket", bucket)
    if not any(b.body.get("block_public_access") is True for b in blocks):
        problems.append("public access is not blocked")
    for policy in stack.referencing("alicloud_oss_bucket_policy", "bucket", bucket):
        text = str(policy.body.get("policy"))
        if "acs:SecureTransport" not in text or "acs:SourceVpc" not in text:
            problems.append("bucket policy must refuse plain HTTP and access from outside the VPC")
    return problems


def bucket_protection(stack: Stack) -> list[Violation]:
    """Buckets are versioned, encrypted, private and TLS-only; service data stays in the VPC."""
    role_text = " ".join(
        str(statement["resources"])
        for _, _, statements in _role_documents(stack)
        for statement in statements
    )
    data_buckets = {
        bucket.name
        for bucket in stack.resources("aws_s3_bucket")
        if f"${{aws_s3_bucket.{bucket.name}.arn}}" in role_text
    }
    if stack.has("aws_s3_bucket") and not data_buckets:
        return [Violation("bucket", str(stack.directory), "no bucket is used by the roles")]
    violations = [
        Violation("bucket", bucket.where, problem)
        for bucket in stack.resources("aws_s3_bucket")
        for problem in _aws_bucket_checks(stack, bucket, data_buckets)
    ]
    violations += [
        Violation("bucket", bucket.where, problem)
        for bucket in stack.resources("alicloud_oss_bucket")
        for problem in _alicloud_bucket_checks(stack, bucket)
    ]
    return violations


def instance_hardening(stack: Stack) -> list[Violation]:
    """IMDSv2 only, no public IPs, encrypted root volumes, private subnets stay private."""
    violations: list[Violation] = []
    templates = stack.resources("aws_launch_template")
    if stack.has("aws_autoscaling_group") and not templates:
        violations.append(Violation("instance", str(stack.directory), "no launch template"))
    for template in templates:

        def report(detail: str, where: str = template.where) -> None:
            violations.append(Violation("instance", where, detail))

        if template.first("metadata_options").get("http_tokens") != "required":
            report("IMDSv2 is not required (metadata_options.http_tokens)")
        interfaces = template.nested("network_interfaces")
        if not interfaces or any(
            i.get("associate_public_ip_address") is not False for i in interfaces
        ):
            report("network interfaces must set associate_public_ip_address = false")
        volumes = [m.get("ebs", [{}])[0] for m in template.nested("block_device_mappings")]
        if not volumes or any(volume.get("encrypted") is not True for volume in volumes):
            report("root volume is not encrypted")
    for instance in stack.resources("aws_instance"):
        if instance.first("metadata_options").get("http_tokens") != "required":
            violations.append(Violation("instance", instance.where, "IMDSv2 is not required"))
        if instance.body.get("associate_public_ip_address") is not False:
            violations.append(Violation("instance", instance.where, "instance may get a public IP"))
    for subnet in stack.resources("aws_subnet"):
        if subnet.body.get("map_public_ip_on_launch") is not False:
            violations.append(
                Violation(
                    "instance", subnet.where, "subnet must set map_public_ip_on_launch = false"
                )
            )
    return violations
