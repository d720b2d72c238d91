"""Network invariants of the deploy stacks: who may open a connection to what.

Each check takes a parsed ``Stack`` and returns the ``Violation``s it finds (empty when the
rule holds), so the tests run the same function on the real stack and on mutated copies.

- ``no_world_ingress``: nothing admits 0.0.0.0/0 or ::/0 inbound. The one exception is a
  stateless network-ACL allow for TCP replies on ports >= 1024 (answers to connections the
  instances opened through the NAT or the S3 endpoint); no security group opens those.
- ``https_only_from_office``: every CIDR-based security-group ingress is TCP 443 from
  ``var.office_cidr``; ACL allows on 443 come from the office or the VPC itself.
- ``explicit_deny_acl``: each network ACL ends in numbered deny-all rules (both directions)
  placed after every allow rule; the default ACL allows nothing.
- ``alicloud_drop_rule``: each Alibaba security group drops all other ingress at a lower
  priority (a higher number) than any rule it accepts.
- ``default_security_group_closed`` and ``workers_accept_nothing``.
"""

from __future__ import annotations

from typing import Any

from tests.deploy.stack import WORLD_CIDRS, Block, Stack, as_int, as_list
from tests.deploy.violation import Violation

OFFICE = "${var.office_cidr}"
VPC = "${var.vpc_cidr}"
HTTPS = 443
ALL_PROTOCOLS = frozenset({"-1", "all", -1})
TCP = frozenset({"tcp", "6", 6})
FIRST_EPHEMERAL_PORT = 1024


def _covers(stack: Stack, body: dict[str, Any], port: int) -> bool:
    if body.get("protocol", body.get("ip_protocol")) in ALL_PROTOCOLS:
        return True
    low = as_int(stack.resolve(body.get("from_port")))
    high = as_int(stack.resolve(body.get("to_port")))
    return low is not None and high is not None and low <= port <= high


def _is_reply_traffic(stack: Stack, body: dict[str, Any]) -> bool:
    low = as_int(stack.resolve(body.get("from_port")))
    high = as_int(stack.resolve(body.get("to_port")))
    return (
        body.get("protocol") in TCP
        and low is not None
        and low >= FIRST_EPHEMERAL_PORT
        and high == 65535
    )


def _world(stack: Stack, *values: Any) -> bool:
    return any(stack.resolve(value) in WORLD_CIDRS for value in values)


def _acl_ingress_allows(stack: Stack) -> list[tuple[Block, dict[str, Any]]]:
    """Every allow rule for inbound traffic, standalone or inline, with its ACL block."""
    found = [
        (rule, rule.body)
        for rule in stack.resources("aws_network_acl_rule")
        if rule.body.get("egress") is not True and rule.body.get("rule_action") == "allow"
    ]
    for acl_type in ("aws_network_acl", "aws_default_network_acl"):
        for acl in stack.resources(acl_type):
            found += [
                (acl, entry) for entry in acl.nested("ingress") if entry.get("action") == "allow"
            ]
    return found


def no_world_ingress(stack: Stack) -> list[Violation]:
    """No security group, ACL or Alibaba rule admits the whole internet inbound."""
    violations: list[Violation] = []

    def report(block: Block, detail: str) -> None:
        violations.append(Violation("world-ingress", block.where, detail))

    for rule in stack.resources("aws_vpc_security_group_ingress_rule"):
        if _world(stack, rule.body.get("cidr_ipv4"), rule.body.get("cidr_ipv6")):
            report(rule, "security group ingress from the whole internet")
    for rule in stack.resources("aws_security_group_rule"):
        cidrs = as_list(rule.body.get("cidr_blocks")) + as_list(rule.body.get("ipv6_cidr_blocks"))
        if rule.body.get("type") == "ingress" and _world(stack, *cidrs):
            report(rule, "security group ingress from the whole internet")
    for group_type in ("aws_security_group", "aws_default_security_group"):
        for group in stack.resources(group_type):
            for entry in group.nested("ingress"):
                cidrs = as_list(entry.get("cidr_blocks")) + as_list(entry.get("ipv6_cidr_blocks"))
                if _world(stack, *cidrs):
                    report(group, "inline ingress from the whole internet")
    for block, entry in _acl_ingress_allows(stack):
        sources = (entry.get("cidr_block"), entry.get("ipv6_cidr_block"))
        if _world(stack, *sources) and not _is_reply_traffic(stack, entry):
            report(block, "network ACL allows new inbound traffic from the whole internet")
    for rule in stack.resources("alicloud_security_group_rule"):
        body = rule.body
        accepts = body.get("type") == "ingress" and body.get("policy", "accept") == "accept"
        if accepts and _world(stack, body.get("cidr_ip"), body.get("ipv6_cidr_ip")):
            report(rule, "security group accepts ingress from the whole internet")
    return violations


def https_only_from_office(stack: Stack) -> list[Violation]:
    """CIDR-based ingress exists only as TCP 443 from ``var.office_cidr``."""
    violations: list[Violation] = []

    def report(block: Block, detail: str) -> None:
        violations.append(Violation("office-only-443", block.where, detail))

    office = stack.variables.get("office_cidr")
    if office is None:
        violations.append(
            Violation("office-only-443", str(stack.directory), "no office_cidr variable")
        )
    elif stack.resolve(OFFICE) in WORLD_CIDRS or "validation" not in office:
        violations.append(
            Violation(
                "office-only-443",
                f"{stack.directory.name}/variables.tf: var.office_cidr",
                "office_cidr must default to a private range and carry a validation block",
            )
        )
    for rule in stack.resources("aws_vpc_security_group_ingress_rule"):
        body = rule.body
        cidr = body.get("cidr_ipv4", body.get("cidr_ipv6"))
        if cidr is None:
            if body.get("referenced_security_group_id") is None:
                report(rule, "ingress rule names neither the office CIDR nor a security group")
            continue
        if cidr != OFFICE:
            report(rule, f"ingress from {cidr}, not var.office_cidr")
        ports = (as_int(body.get("from_port")), as_int(body.get("to_port")))
        if body.get("ip_protocol") != "tcp" or ports != (HTTPS, HTTPS):
            report(
                rule, f"office ingress must be TCP 443 only, not {body.get('ip_protocol')} {ports}"
            )
    for group in stack.resources("aws_security_group"):
        if group.nested("ingress"):
            report(group, "inline ingress blocks bypass the one-rule-per-resource review")
    for block, entry in _acl_ingress_allows(stack):
        if _covers(stack, entry, HTTPS) and entry.get("cidr_block") not in (OFFICE, VPC):
            report(block, f"ACL admits 443 from {entry.get('cidr_block')}")
    for rule in stack.resources("alicloud_security_group_rule"):
        body = rule.body
        if body.get("type") != "ingress" or body.get("policy", "accept") != "accept":
            continue
        if body.get("cidr_ip") != OFFICE or body.get("port_range") != "443/443":
            report(rule, f"accepts {body.get('port_range')} from {body.get('cidr_ip')}")
        if body.get("ip_protocol") != "tcp":
            report(rule, f"accepts protocol {body.get('ip_protocol')}, not tcp")
    return violations


def _is_deny_all(stack: Stack, body: dict[str, Any]) -> bool:
    return (
        body.get("rule_action") == "deny"
        and body.get("protocol") in ALL_PROTOCOLS
        and _world(stack, body.get("cidr_block"))
    )


def explicit_deny_acl(stack: Stack) -> list[Violation]:
    """Every network ACL ends in deny-all rules numbered after all of its allow rules."""
    violations: list[Violation] = []
    acls = stack.resources("aws_network_acl")
    if stack.has("aws_vpc") and not acls:
        violations.append(Violation("deny-acl", str(stack.directory), "the VPC has no network ACL"))
    for acl in acls:
        if not acl.body.get("subnet_ids"):
            violations.append(Violation("deny-acl", acl.where, "ACL is attached to no subnet"))
        rules = stack.referencing("aws_network_acl_rule", "network_acl_id", acl)
        for egress, direction in ((False, "ingress"), (True, "egress")):
            mine = [rule.body for rule in rules if (rule.body.get("egress") is True) == egress]
            denies = [as_int(body.get("rule_number")) for body in mine if _is_deny_all(stack, body)]
            allows = [
                as_int(body.get("rule_number"))
                for body in mine
                if body.get("rule_action") == "allow"
            ]
            if not denies or None in denies:
                violations.append(
                    Violation("deny-acl", acl.where, f"no numbered deny-all {direction} rule")
                )
                continue
            if None in allows:
                violations.append(
                    Violation("deny-acl", acl.where, f"{direction} allow without a literal number")
                )
                continue
            first_deny = min(n for n in denies if n is not None)
            late_allows = sorted(n for n in allows if n is not None and n >= first_deny)
            if late_allows:
                violations.append(
                    Violation(
                        "deny-acl",
                        acl.where,
                        f"{direction} deny-all #{first_deny} precedes allows {late_allows}",
                    )
                )
    for default in stack.resources("aws_default_network_acl"):
        for direction in ("ingress", "egress"):
            if any(entry.get("action") == "allow" for entry in default.nested(direction)):
                violations.append(
                    Violation("deny-acl", default.where, f"default ACL allows {direction}")
                )
    return violations


def alicloud_drop_rule(stack: Stack) -> list[Violation]:
    """Every Alibaba security group drops all other ingress below its accept rules."""
    violations: list[Violation] = []
    groups = stack.resources("alicloud_security_group")
    if stack.has("alicloud_vpc") and not groups:
        violations.append(Violation("drop-rule", str(stack.directory), "no security group"))
    for group in groups:
        ingress = [
            rule.body
            for rule in stack.referencing(
                "alicloud_security_group_rule", "security_group_id", group
            )
            if rule.body.get("type") == "ingress"
        ]
        drops = [
            as_int(body.get("priority", 1))
            for body in ingress
            if body.get("policy") == "drop"
            and body.get("ip_protocol") == "all"
            and body.get("port_range") == "-1/-1"
            and _world(stack, body.get("cidr_ip"))
        ]
        accepts = [
            as_int(body.get("priority", 1)) or 1
            for body in ingress
            if body.get("policy", "accept") == "accept"
        ]
        if not drops or None in drops:
            violations.append(
                Violation("drop-rule", group.where, "no explicit drop of all other ingress")
            )
            continue
        strongest_drop = min(n for n in drops if n is not None)
        # Lower number = higher priority, and at equal priority a drop wins: the accepts
        # must be strictly stronger than the catch-all drop or office traffic is dropped.
        blocked = sorted(n for n in accepts if n >= strongest_drop)
        if blocked:
            violations.append(
                Violation(
                    "drop-rule",
                    group.where,
                    f"drop at priority {strongest_drop} overrides accepts at {blocked}",
                )
            )
    return violations


def default_security_group_closed(stack: Stack) -> list[Violation]:
    """The VPC's default security group is managed and has no rules at all."""
    if not stack.has("aws_vpc"):
        return []
    defaults = stack.resources("aws_default_security_group")
    if not defaults:
        return [Violation("default-sg", str(stack.directory), "default security group unmanaged")]
    return [
        Violation("default-sg", group.where, f"default security group has {direction} rules")
        for group in defaults
        for direction in ("ingress", "egress")
        if group.nested(direction)
    ]


def workers_accept_nothing(stack: Stack) -> list[Violation]:
    """The workers' security groups have no ingress rule of any kind."""
    violations: list[Violation] = []
    for template in stack.resources("aws_launch_template"):
        if "worker" not in template.name:
            continue
        for interface in template.nested("network_interfaces"):
            for group_reference in as_list(interface.get("security_groups")):
                group = stack.find(group_reference)
                if group is None:
                    continue
                for rule_type in ("aws_vpc_security_group_ingress_rule", "aws_security_group_rule"):
                    for rule in stack.referencing(rule_type, "security_group_id", group):
                        if rule_type.endswith("ingress_rule") or rule.body.get("type") == "ingress":
                            violations.append(
                                Violation(
                                    "worker-ingress", rule.where, "workers accept a connection"
                                )
                            )
    for group in stack.resources("alicloud_security_group"):
        if "worker" not in group.name:
            continue
        for rule in stack.referencing("alicloud_security_group_rule", "security_group_id", group):
            body = rule.body
            if body.get("type") == "ingress" and body.get("policy", "accept") == "accept":
                violations.append(
                    Violation("worker-ingress", rule.where, "workers accept a connection")
                )
    return violations
