################################################################################
# VPC
################################################################################

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(local.tags, { Name = var.name })
}

# Managed with no rules at all: an interface that lands in the default group by mistake can
# neither receive nor send anything.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-default-no-rules" })
}

# The default ACL loses its allow-all rules; every subnet below is associated with an
# explicit ACL, so this one only catches a subnet someone adds by hand.
resource "aws_default_network_acl" "this" {
  default_network_acl_id = aws_vpc.this.default_network_acl_id

  tags = merge(local.tags, { Name = "${var.name}-default-deny" })

  lifecycle {
    ignore_changes = [subnet_ids]
  }
}

################################################################################
# Subnets
################################################################################

resource "aws_subnet" "private" {
  count = length(var.private_subnet_cidrs)

  vpc_id                  = aws_vpc.this.id
  cidr_block              = var.private_subnet_cidrs[count.index]
  availability_zone       = var.availability_zones[count.index]
  map_public_ip_on_launch = false

  tags = merge(local.tags, {
    Name = "${var.name}-private-${var.availability_zones[count.index]}"
    Tier = "private"
  })
}

# The only public subnet: it holds the NAT gateway and nothing else. Nothing in it accepts
# connections from the internet (see the nat network ACL).
resource "aws_subnet" "nat" {
  vpc_id                  = aws_vpc.this.id
  cidr_block              = var.nat_subnet_cidr
  availability_zone       = var.availability_zones[0]
  map_public_ip_on_launch = false

  tags = merge(local.tags, {
    Name = "${var.name}-nat-${var.availability_zones[0]}"
    Tier = "nat"
  })
}

################################################################################
# Egress: internet gateway + NAT gateway (for image pulls and model provisioning)
################################################################################

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.tags, { Name = var.name })
}

resource "aws_eip" "nat" {
  domain = "vpc"

  tags = merge(local.tags, { Name = "${var.name}-nat" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.nat.id

  tags = merge(local.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "nat" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-nat" })
}

resource "aws_route" "nat_internet" {
  route_table_id         = aws_route_table.nat.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "nat" {
  subnet_id      = aws_subnet.nat.id
  route_table_id = aws_route_table.nat.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-private" })
}

resource "aws_route" "private_egress" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this.id
}

resource "aws_route_table_association" "private" {
  count = length(aws_subnet.private)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

################################################################################
# S3 gateway endpoint: bucket traffic never leaves the AWS network, and the bucket policy
# refuses object access that does not come through it (aws:SourceVpce).
################################################################################

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
  policy            = data.aws_iam_policy_document.s3_endpoint.json

  tags = merge(local.tags, { Name = "${var.name}-s3" })
}

# What may travel through the endpoint at all: the service's object operations on its own
# bucket, and ECR's layer downloads (ECR serves image layers from S3).
data "aws_iam_policy_document" "s3_endpoint" {
  statement {
    sid       = "EnclaveObjects"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.api.arn, aws_iam_role.worker.arn]
    }
  }

  statement {
    sid       = "EcrImageLayers"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::prod-${local.region}-starport-layer-bucket/*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.api.arn, aws_iam_role.worker.arn]
    }
  }
}

# Presigned URLs are used by clients on the office network, which cannot use a gateway
# endpoint (gateway endpoints serve only traffic from inside the VPC). This interface
# endpoint gives them a private path to the bucket. The API talks to S3 through it as well
# (ENCLAVE_S3_ENDPOINT_URL), so the URLs it presigns name this endpoint; the bucket policy
# accepts it as a second SourceVpce.
resource "aws_vpc_endpoint" "s3_presigned" {
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.s3_presigned_endpoint.id]
  private_dns_enabled = false
  policy              = data.aws_iam_policy_document.s3_presigned_endpoint.json

  tags = merge(local.tags, { Name = "${var.name}-s3-presigned" })
}

# Through this endpoint only requests signed by the API role (its own calls and the
# presigned ones it hands out), on the stack's bucket.
data "aws_iam_policy_document" "s3_presigned_endpoint" {
  statement {
    sid       = "ApiRoleOnEnclaveBucket"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.api.arn]
    }
  }
}

################################################################################
# Network ACLs: stateless, so they carry the explicit "deny everything else" the design
# asks for (security groups cannot deny). Allow rules are numbered 100-199, the deny-all
# rules 32000, after every allow (ACLs evaluate the lowest number first).
################################################################################

resource "aws_network_acl" "private" {
  vpc_id     = aws_vpc.this.id
  subnet_ids = aws_subnet.private[*].id

  tags = merge(local.tags, { Name = "${var.name}-private" })
}

resource "aws_network_acl_rule" "private_in_service_from_office" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 100
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.office_cidr
  from_port      = 443
  to_port        = 443
}

resource "aws_network_acl_rule" "private_in_service_from_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 110
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 443
  to_port        = 443
}

resource "aws_network_acl_rule" "private_in_amqps_from_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 120
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 5671
  to_port        = 5671
}

resource "aws_network_acl_rule" "private_in_postgres_from_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 125
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 5432
  to_port        = 5432
}

resource "aws_network_acl_rule" "private_in_replies_from_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 130
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 1024
  to_port        = 65535
}

# Linux ephemeral ports (net.ipv4.ip_local_port_range 32768-60999, rounded up): replies to
# connections the instances opened (S3 endpoint, NAT) come back on these from anywhere.
# Stateless ACLs must admit them; no security group opens them, so no new connection can.
resource "aws_network_acl_rule" "private_in_replies_from_egress" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 140
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = "0.0.0.0/0"
  from_port      = 32768
  to_port        = 65535
}

resource "aws_network_acl_rule" "private_in_deny_all" {
  #checkov:skip=CKV_AWS_352:This rule DENIES every port; the check reads from_port only and ignores rule_action.
  network_acl_id = aws_network_acl.private.id
  rule_number    = 32000
  egress         = false
  protocol       = "-1"
  rule_action    = "deny"
  cidr_block     = "0.0.0.0/0"
  from_port      = 0
  to_port        = 0
}

resource "aws_network_acl_rule" "private_out_https" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 100
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = "0.0.0.0/0"
  from_port      = 443
  to_port        = 443
}

resource "aws_network_acl_rule" "private_out_amqps_to_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 110
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 5671
  to_port        = 5671
}

resource "aws_network_acl_rule" "private_out_postgres_to_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 120
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 5432
  to_port        = 5432
}

resource "aws_network_acl_rule" "private_out_replies_to_vpc" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 130
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 1024
  to_port        = 65535
}

resource "aws_network_acl_rule" "private_out_replies_to_office" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 140
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.office_cidr
  from_port      = 1024
  to_port        = 65535
}

resource "aws_network_acl_rule" "private_out_deny_all" {
  network_acl_id = aws_network_acl.private.id
  rule_number    = 32000
  egress         = true
  protocol       = "-1"
  rule_action    = "deny"
  cidr_block     = "0.0.0.0/0"
  from_port      = 0
  to_port        = 0
}

resource "aws_network_acl" "nat" {
  vpc_id     = aws_vpc.this.id
  subnet_ids = [aws_subnet.nat.id]

  tags = merge(local.tags, { Name = "${var.name}-nat" })
}

resource "aws_network_acl_rule" "nat_in_https_from_vpc" {
  network_acl_id = aws_network_acl.nat.id
  rule_number    = 100
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 443
  to_port        = 443
}

# The NAT gateway picks its source ports from 1024-65535, so replies from the internet come
# back on that whole range. Nothing in this subnet listens: the NAT gateway accepts no
# inbound connections, and there is no instance here.
resource "aws_network_acl_rule" "nat_in_replies_from_internet" {
  #checkov:skip=CKV_AWS_231:Stateless return path of the NAT gateway (ports 1024-65535); nothing in the NAT subnet listens on 3389 or any port.
  network_acl_id = aws_network_acl.nat.id
  rule_number    = 110
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = "0.0.0.0/0"
  from_port      = 1024
  to_port        = 65535
}

resource "aws_network_acl_rule" "nat_in_deny_all" {
  #checkov:skip=CKV_AWS_352:This rule DENIES every port; the check reads from_port only and ignores rule_action.
  network_acl_id = aws_network_acl.nat.id
  rule_number    = 32000
  egress         = false
  protocol       = "-1"
  rule_action    = "deny"
  cidr_block     = "0.0.0.0/0"
  from_port      = 0
  to_port        = 0
}

resource "aws_network_acl_rule" "nat_out_https" {
  network_acl_id = aws_network_acl.nat.id
  rule_number    = 100
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = "0.0.0.0/0"
  from_port      = 443
  to_port        = 443
}

resource "aws_network_acl_rule" "nat_out_replies_to_vpc" {
  network_acl_id = aws_network_acl.nat.id
  rule_number    = 110
  egress         = true
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = var.vpc_cidr
  from_port      = 1024
  to_port        = 65535
}

resource "aws_network_acl_rule" "nat_out_deny_all" {
  network_acl_id = aws_network_acl.nat.id
  rule_number    = 32000
  egress         = true
  protocol       = "-1"
  rule_action    = "deny"
  cidr_block     = "0.0.0.0/0"
  from_port      = 0
  to_port        = 0
}
