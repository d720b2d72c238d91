"""The real stacks satisfy every invariant, and the invariants have something to bite on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy import access_invariants, network_invariants
from tests.deploy.conftest import TERRAFORM
from tests.deploy.stack import Stack
from tests.deploy.violation import Violation

CHECKS: list[Callable[[Stack], list[Violation]]] = [
    network_invariants.no_world_ingress,
    network_invariants.https_only_from_office,
    network_invariants.explicit_deny_acl,
    network_invariants.alicloud_drop_rule,
    network_invariants.default_security_group_closed,
    network_invariants.workers_accept_nothing,
    access_invariants.role_policy_scope,
    access_invariants.bucket_protection,
    access_invariants.instance_hardening,
]


@pytest.fixture(scope="module")
def aws() -> Stack:
    return Stack(TERRAFORM / "aws")


@pytest.fixture(scope="module")
def alicloud() -> Stack:
    return Stack(TERRAFORM / "alicloud")


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_stack_satisfies_invariant(stack_dir: Path, check: Callable[[Stack], list[Violation]]):
    violations = check(Stack(stack_dir))
    assert violations == [], "\n".join(map(str, violations))


def test_aws_network_is_the_designed_private_network(aws: Stack):
    assert aws.resolve("${var.vpc_cidr}") == "10.0.0.0/16"
    assert aws.resolve("${var.private_subnet_cidrs}") == ["10.0.1.0/24", "10.0.2.0/24"]
    assert aws.resolve("${var.office_cidr}") == "192.168.10.0/24"
    private = aws.resources("aws_subnet")
    assert {s.name for s in private} == {"private", "nat"}
    # The only route to the internet gateway is the NAT subnet's.
    routes = {r.name: r.body for r in aws.resources("aws_route")}
    gateway_routes = [name for name, body in routes.items() if "gateway_id" in body]
    assert gateway_routes == ["nat_internet"]
    assert routes["private_egress"]["nat_gateway_id"] == "${aws_nat_gateway.this.id}"


def test_aws_acls_deny_everything_after_numbered_allows(aws: Stack):
    acls = aws.resources("aws_network_acl")
    assert {acl.name for acl in acls} == {"private", "nat"}
    for acl in acls:
        rules = aws.referencing("aws_network_acl_rule", "network_acl_id", acl)
        ingress = [r.body for r in rules if r.body["egress"] is False]
        allows = [r["rule_number"] for r in ingress if r["rule_action"] == "allow"]
        denies = [r["rule_number"] for r in ingress if r["rule_action"] == "deny"]
        assert allows and denies == [32000]
        assert max(allows) < 32000


def test_only_the_office_reaches_443(aws: Stack):
    office_rules = [
        rule.name
        for rule in aws.resources("aws_vpc_security_group_ingress_rule")
        if rule.body.get("cidr_ipv4") == "${var.office_cidr}"
    ]
    assert sorted(office_rules) == ["nlb_service_from_office", "s3_presigned_endpoint_from_office"]
    service = {r.name: r.body for r in aws.resources("aws_vpc_security_group_ingress_rule")}
    assert service["api_service_from_nlb"]["referenced_security_group_id"] == (
        "${aws_security_group.nlb.id}"
    )


def test_nlb_passes_tls_through_to_the_service(aws: Stack):
    (balancer,) = aws.resources("aws_lb")
    assert balancer.body["internal"] is True
    assert balancer.body["load_balancer_type"] == "network"
    (listener,) = aws.resources("aws_lb_listener")
    assert (listener.body["port"], listener.body["protocol"]) == (443, "TCP")
    assert "certificate_arn" not in listener.body
    (target_group,) = aws.resources("aws_lb_target_group")
    assert (target_group.body["port"], target_group.body["protocol"]) == (443, "TCP")


def test_logs_are_kept_encrypted_and_trail_records_object_access(aws: Stack):
    for group in aws.resources("aws_cloudwatch_log_group"):
        assert group.body["kms_key_id"] == "${aws_kms_key.this.arn}"
        assert aws.resolve(group.body["retention_in_days"]) >= 365
    (flow_log,) = aws.resources("aws_flow_log")
    assert aws.resolve(flow_log.body["traffic_type"]) in {"REJECT", "ALL"}
    (trail,) = aws.resources("aws_cloudtrail")
    selector = trail.first("event_selector")
    data_resource = selector["data_resource"][0]
    assert data_resource["type"] == "AWS::S3::Object"
    assert data_resource["values"] == ["${aws_s3_bucket.data.arn}/"]
    assert trail.body["enable_log_file_validation"] is True
    (key,) = aws.resources("aws_kms_key")
    assert key.body["enable_key_rotation"] is True


def test_data_lifecycle_is_hot_then_cold_and_keeps_audit(aws: Stack):
    lifecycle = next(
        block
        for block in aws.resources("aws_s3_bucket_lifecycle_configuration")
        if block.name == "data"
    )
    rules = {
        aws.resolve(rule.get("filter", [{}])[0].get("prefix", "")): rule
        for rule in lifecycle.nested("rule")
    }
    assert "expiration" in rules["inputs/"]
    assert rules["outputs/"]["transition"][0]["storage_class"] == "STANDARD_IA"
    assert "expiration" in rules["outputs/"]
    assert "expiration" not in rules["audit/"]
    # A bucket-wide rule may only abort uploads: anything more would also hit audit/.
    assert set(rules[""]) - {"id", "status", "filter"} == {"abort_incomplete_multipart_upload"}


def test_workers_scale_on_queue_depth(aws: Stack):
    (policy,) = aws.resources("aws_autoscaling_policy")
    assert policy.body["autoscaling_group_name"] == "${aws_autoscaling_group.worker.name}"
    metrics = policy.first("target_tracking_configuration")["customized_metric_specification"][0]
    names = [
        m["metric_stat"][0]["metric"][0]["metric_name"]
        for m in metrics["metrics"]
        if "metric_stat" in m
    ]
    assert "enclave_queue_depth" in names


def test_broker_is_private_rabbitmq(aws: Stack):
    (broker,) = aws.resources("aws_mq_broker")
    assert broker.body["engine_type"] == "RabbitMQ"
    assert broker.body["publicly_accessible"] is False
    assert broker.body["security_groups"] == ["${aws_security_group.broker.id}"]


def test_alicloud_mirrors_the_design(alicloud: Stack):
    (vswitch,) = [v for v in alicloud.resources("alicloud_vswitch") if v.name == "private"]
    assert alicloud.resolve(vswitch.body["cidr_block"]) == "10.0.1.0/24"
    rules = {r.name: r.body for r in alicloud.resources("alicloud_security_group_rule")}
    accept, drop = rules["api_https_from_office"], rules["api_drop_all_other_ingress"]
    assert (accept["policy"], accept["cidr_ip"], accept["port_range"]) == (
        "accept",
        "${var.office_cidr}",
        "443/443",
    )
    assert (drop["policy"], drop["cidr_ip"], drop["ip_protocol"]) == ("drop", "0.0.0.0/0", "all")
    assert drop["priority"] > accept["priority"]
    # Egress only: SNAT for the private vswitch, and no DNAT/forward entry anywhere.
    assert alicloud.has("alicloud_snat_entry")
    assert not alicloud.has("alicloud_forward_entry")
    assert alicloud.has("alicloud_log_store")
