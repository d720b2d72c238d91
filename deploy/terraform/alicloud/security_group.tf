################################################################################
# Security groups. Alibaba Cloud security groups can drop, so the "deny everything else"
# lives here: 443 from the office is accepted at priority 1 (the highest) on the API's
# group, and every other ingress is dropped at priority 100 (the lowest) on both groups.
# Workers accept nothing at all.
################################################################################

resource "alicloud_security_group" "api" {
  name                = "${var.name}-api"
  description         = "Enclave API: 443 from the office network only"
  vpc_id              = alicloud_vpc.this.id
  inner_access_policy = "Drop"

  tags = local.tags
}

resource "alicloud_security_group_rule" "api_https_from_office" {
  security_group_id = alicloud_security_group.api.id
  description       = "mTLS clients on the office network"
  type              = "ingress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "443/443"
  priority          = 1
  cidr_ip           = var.office_cidr
}

resource "alicloud_security_group_rule" "api_drop_all_other_ingress" {
  security_group_id = alicloud_security_group.api.id
  description       = "Explicit drop of every other inbound packet"
  type              = "ingress"
  ip_protocol       = "all"
  nic_type          = "intranet"
  policy            = "drop"
  port_range        = "-1/-1"
  priority          = 100
  cidr_ip           = "0.0.0.0/0"
}

resource "alicloud_security_group" "worker" {
  name                = "${var.name}-worker"
  description         = "Enclave GPU workers: no inbound connections"
  vpc_id              = alicloud_vpc.this.id
  inner_access_policy = "Drop"

  tags = local.tags
}

resource "alicloud_security_group_rule" "worker_drop_all_ingress" {
  security_group_id = alicloud_security_group.worker.id
  description       = "Explicit drop of every inbound packet"
  type              = "ingress"
  ip_protocol       = "all"
  nic_type          = "intranet"
  policy            = "drop"
  port_range        = "-1/-1"
  priority          = 100
  cidr_ip           = "0.0.0.0/0"
}

resource "alicloud_security_group_rule" "api_https_egress" {
  security_group_id = alicloud_security_group.api.id
  description       = "HTTPS to OSS (internal endpoint), KMS, SLS and through the NAT"
  type              = "egress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "443/443"
  priority          = 1
  cidr_ip           = "0.0.0.0/0"
}

resource "alicloud_security_group_rule" "api_amqps_egress" {
  security_group_id = alicloud_security_group.api.id
  description       = "AMQPS to the broker inside the VPC"
  type              = "egress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "5671/5671"
  priority          = 1
  cidr_ip           = var.vpc_cidr
}

resource "alicloud_security_group_rule" "api_postgres_egress" {
  security_group_id = alicloud_security_group.api.id
  description       = "PostgreSQL job store inside the VPC"
  type              = "egress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "5432/5432"
  priority          = 1
  cidr_ip           = var.vpc_cidr
}

resource "alicloud_security_group_rule" "api_drop_all_other_egress" {
  security_group_id = alicloud_security_group.api.id
  description       = "Explicit drop of every other outbound packet"
  type              = "egress"
  ip_protocol       = "all"
  nic_type          = "intranet"
  policy            = "drop"
  port_range        = "-1/-1"
  priority          = 100
  cidr_ip           = "0.0.0.0/0"
}

resource "alicloud_security_group_rule" "worker_https_egress" {
  security_group_id = alicloud_security_group.worker.id
  description       = "HTTPS to OSS (internal endpoint), KMS, SLS and through the NAT"
  type              = "egress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "443/443"
  priority          = 1
  cidr_ip           = "0.0.0.0/0"
}

resource "alicloud_security_group_rule" "worker_amqps_egress" {
  security_group_id = alicloud_security_group.worker.id
  description       = "AMQPS to the broker inside the VPC"
  type              = "egress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "5671/5671"
  priority          = 1
  cidr_ip           = var.vpc_cidr
}

resource "alicloud_security_group_rule" "worker_postgres_egress" {
  security_group_id = alicloud_security_group.worker.id
  description       = "PostgreSQL job store inside the VPC"
  type              = "egress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "5432/5432"
  priority          = 1
  cidr_ip           = var.vpc_cidr
}

resource "alicloud_security_group_rule" "worker_drop_all_other_egress" {
  security_group_id = alicloud_security_group.worker.id
  description       = "Explicit drop of every other outbound packet"
  type              = "egress"
  ip_protocol       = "all"
  nic_type          = "intranet"
  policy            = "drop"
  port_range        = "-1/-1"
  priority          = 100
  cidr_ip           = "0.0.0.0/0"
}
