"""Break one security control in a copy of a stack: the matching invariant must report it.

Each case is (stack, file, mutation, check, rule). A case whose anchor text no longer
exists fails loudly instead of passing, so these tests follow the stacks as they change.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.deploy.access_invariants import bucket_protection, instance_hardening, role_policy_scope
from tests.deploy.conftest import Mutation, append, remove_block, replace_in_block
from tests.deploy.network_invariants import (
    alicloud_drop_rule,
    default_security_group_closed,
    explicit_deny_acl,
    https_only_from_office,
    no_world_ingress,
    workers_accept_nothing,
)
from tests.deploy.stack import Stack
from tests.deploy.violation import Violation, rules

Check = Callable[[Stack], list[Violation]]

PRIVATE_DENY = 'resource "aws_network_acl_rule" "private_in_deny_all" {'
OFFICE_SG_RULE = 'resource "aws_vpc_security_group_ingress_rule" "nlb_service_from_office" {'
OFFICE_ACL_RULE = 'resource "aws_network_acl_rule" "private_in_service_from_office" {'
WORKER_POLICY = 'data "aws_iam_policy_document" "worker" {'
API_POLICY = 'data "aws_iam_policy_document" "api" {'
WORKER_TEMPLATE = 'resource "aws_launch_template" "worker" {'
ALI_DROP = 'resource "alicloud_security_group_rule" "api_drop_all_other_ingress" {'
ALI_ACCEPT = 'resource "alicloud_security_group_rule" "api_https_from_office" {'

WORKER_INGRESS_RULE = """
resource "aws_vpc_security_group_ingress_rule" "worker_from_office" {
  security_group_id = aws_security_group.worker.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.office_cidr
}
"""

ALI_WORKER_SSH = """
resource "alicloud_security_group_rule" "worker_ssh_from_office" {
  security_group_id = alicloud_security_group.worker.id
  type              = "ingress"
  ip_protocol       = "tcp"
  policy            = "accept"
  port_range        = "22/22"
  priority          = 1
  cidr_ip           = var.office_cidr
}
"""

CASES: list[tuple[str, str, str, Mutation, Check, str]] = [
    # -- network ACLs: the explicit deny
    (
        "deny rule removed",
        "aws",
        "network.tf",
        remove_block(PRIVATE_DENY),
        explicit_deny_acl,
        "deny-acl",
    ),
    (
        "deny rule numbered before the allows",
        "aws",
        "network.tf",
        replace_in_block(PRIVATE_DENY, "32000", "90"),
        explicit_deny_acl,
        "deny-acl",
    ),
    (
        "deny rule turned into an allow",
        "aws",
        "network.tf",
        replace_in_block(PRIVATE_DENY, '"deny"', '"allow"'),
        no_world_ingress,
        "world-ingress",
    ),
    # -- 443 from the office only
    (
        "office security-group rule widened to the internet",
        "aws",
        "security_groups.tf",
        replace_in_block(OFFICE_SG_RULE, "var.office_cidr", '"0.0.0.0/0"'),
        no_world_ingress,
        "world-ingress",
    ),
    (
        "office security-group rule names another CIDR",
        "aws",
        "security_groups.tf",
        replace_in_block(OFFICE_SG_RULE, "var.office_cidr", '"10.20.0.0/16"'),
        https_only_from_office,
        "office-only-443",
    ),
    (
        "office_cidr default widened to the internet",
        "aws",
        "variables.tf",
        replace_in_block('variable "office_cidr" {', '"192.168.10.0/24"', '"0.0.0.0/0"'),
        no_world_ingress,
        "world-ingress",
    ),
    (
        "ACL admits 443 from anywhere",
        "aws",
        "network.tf",
        replace_in_block(OFFICE_ACL_RULE, "var.office_cidr", '"0.0.0.0/0"'),
        no_world_ingress,
        "world-ingress",
    ),
    (
        "office rule opens SSH instead of 443",
        "aws",
        "security_groups.tf",
        replace_in_block(OFFICE_SG_RULE, "from_port         = 443", "from_port         = 22"),
        https_only_from_office,
        "office-only-443",
    ),
    (
        "workers accept a connection",
        "aws",
        "security_groups.tf",
        append(WORKER_INGRESS_RULE),
        workers_accept_nothing,
        "worker-ingress",
    ),
    (
        "default security group gains a rule",
        "aws",
        "network.tf",
        replace_in_block(
            'resource "aws_default_security_group" "this" {',
            "vpc_id = aws_vpc.this.id",
            "vpc_id = aws_vpc.this.id\n  ingress {\n    protocol  = -1\n    self      = true\n"
            "    from_port = 0\n    to_port   = 0\n  }",
        ),
        default_security_group_closed,
        "default-sg",
    ),
    (
        "reply-traffic exception stretched down to SSH",
        "aws",
        "network.tf",
        replace_in_block(
            'resource "aws_network_acl_rule" "private_in_replies_from_egress" {',
            "from_port      = 32768",
            "from_port      = 22",
        ),
        no_world_ingress,
        "world-ingress",
    ),
    # -- least privilege
    (
        "wildcard action on the worker",
        "aws",
        "iam.tf",
        replace_in_block(WORKER_POLICY, '"s3:PutObject"', '"s3:*"'),
        role_policy_scope,
        "least-privilege",
    ),
    (
        "worker may write the whole bucket",
        "aws",
        "iam.tf",
        replace_in_block(WORKER_POLICY, "${local.prefixes.outputs}*", "*"),
        role_policy_scope,
        "least-privilege",
    ),
    (
        "API may overwrite models",
        "aws",
        "iam.tf",
        replace_in_block(
            API_POLICY,
            'resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*"]',
            'resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.models}*"]',
        ),
        role_policy_scope,
        "least-privilege",
    ),
    (
        'S3 upload on Resource "*"',
        "aws",
        "iam.tf",
        replace_in_block(
            API_POLICY,
            'resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*"]',
            'resources = ["*"]',
        ),
        role_policy_scope,
        "least-privilege",
    ),
    (
        "metrics publishing in any namespace",
        "aws",
        "iam.tf",
        replace_in_block(
            API_POLICY, 'variable = "cloudwatch:namespace"', 'variable = "aws:RequestedRegion"'
        ),
        role_policy_scope,
        "least-privilege",
    ),
    (
        "listing beyond the service prefixes",
        "aws",
        "iam.tf",
        replace_in_block(
            WORKER_POLICY,
            '"${local.prefixes.inputs}*"]',
            '"*"]',
        ),
        role_policy_scope,
        "least-privilege",
    ),
    # -- instances
    (
        "IMDSv1 allowed on workers",
        "aws",
        "compute.tf",
        replace_in_block(WORKER_TEMPLATE, '"required"', '"optional"'),
        instance_hardening,
        "instance",
    ),
    (
        "public IP on workers",
        "aws",
        "compute.tf",
        replace_in_block(
            WORKER_TEMPLATE,
            "associate_public_ip_address = false",
            "associate_public_ip_address = true",
        ),
        instance_hardening,
        "instance",
    ),
    (
        "unencrypted worker root volume",
        "aws",
        "compute.tf",
        replace_in_block(
            WORKER_TEMPLATE, "encrypted             = true", "encrypted             = false"
        ),
        instance_hardening,
        "instance",
    ),
    (
        "private subnet hands out public IPs",
        "aws",
        "network.tf",
        replace_in_block(
            'resource "aws_subnet" "private" {',
            "map_public_ip_on_launch = false",
            "map_public_ip_on_launch = true",
        ),
        instance_hardening,
        "instance",
    ),
    # -- buckets
    (
        "data bucket versioning suspended",
        "aws",
        "storage.tf",
        replace_in_block(
            'resource "aws_s3_bucket_versioning" "data" {', '"Enabled"', '"Suspended"'
        ),
        bucket_protection,
        "bucket",
    ),
    (
        "data bucket on SSE-S3 instead of the key",
        "aws",
        "storage.tf",
        replace_in_block(
            'resource "aws_s3_bucket_server_side_encryption_configuration" "data" {',
            '"aws:kms"',
            '"AES256"',
        ),
        bucket_protection,
        "bucket",
    ),
    (
        "public access block removed",
        "aws",
        "storage.tf",
        remove_block('resource "aws_s3_bucket_public_access_block" "data" {'),
        bucket_protection,
        "bucket",
    ),
    (
        "bucket reachable from outside the VPC endpoints",
        "aws",
        "storage.tf",
        replace_in_block(
            'data "aws_iam_policy_document" "data_bucket" {', '"aws:SourceVpce"', '"aws:SourceIp"'
        ),
        bucket_protection,
        "bucket",
    ),
    (
        "plain HTTP allowed on the log bucket",
        "aws",
        "storage.tf",
        replace_in_block(
            'data "aws_iam_policy_document" "logs_bucket" {',
            '"aws:SecureTransport"',
            '"aws:UserAgent"',
        ),
        bucket_protection,
        "bucket",
    ),
    # -- Alibaba Cloud
    (
        "drop rule removed",
        "alicloud",
        "security_group.tf",
        remove_block(ALI_DROP),
        alicloud_drop_rule,
        "drop-rule",
    ),
    (
        "drop rule at the accept's priority",
        "alicloud",
        "security_group.tf",
        replace_in_block(ALI_DROP, "priority          = 100", "priority          = 1"),
        alicloud_drop_rule,
        "drop-rule",
    ),
    (
        "office accept widened to the internet",
        "alicloud",
        "security_group.tf",
        replace_in_block(ALI_ACCEPT, "var.office_cidr", '"0.0.0.0/0"'),
        no_world_ingress,
        "world-ingress",
    ),
    (
        "drop rule narrowed to TCP",
        "alicloud",
        "security_group.tf",
        replace_in_block(ALI_DROP, 'ip_protocol       = "all"', 'ip_protocol       = "tcp"'),
        alicloud_drop_rule,
        "drop-rule",
    ),
    (
        "Alibaba workers accept SSH",
        "alicloud",
        "security_group.tf",
        append(ALI_WORKER_SSH),
        workers_accept_nothing,
        "worker-ingress",
    ),
    (
        "wildcard OSS action on the worker",
        "alicloud",
        "ram.tf",
        replace_in_block(
            'data "alicloud_ram_policy_document" "worker" {', '"oss:PutObject"', '"oss:*"'
        ),
        role_policy_scope,
        "least-privilege",
    ),
    (
        "OSS data bucket without KMS",
        "alicloud",
        "storage.tf",
        replace_in_block('resource "alicloud_oss_bucket" "data" {', '"KMS"', '"AES256"'),
        bucket_protection,
        "bucket",
    ),
    (
        "OSS versioning suspended",
        "alicloud",
        "storage.tf",
        replace_in_block('resource "alicloud_oss_bucket" "data" {', '"Enabled"', '"Suspended"'),
        bucket_protection,
        "bucket",
    ),
]


@pytest.mark.parametrize(
    ("stack", "file", "mutation", "check", "rule"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_broken_control_is_reported(mutated_stack, stack, file, mutation, check, rule):
    violations = check(mutated_stack(stack, file, mutation))
    assert rule in rules(violations), f"{check.__name__} missed it: {violations}"
