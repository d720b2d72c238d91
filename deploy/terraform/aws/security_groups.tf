################################################################################
# Security groups: one rule per resource, so each permission is reviewed on its own.
#
#   office_cidr --443--> nlb --443--> api --5671--> broker <--5671-- worker
#   office_cidr, api --443--> s3 interface endpoint (presigned URLs; the API's S3 calls)
#   api, worker --5432--> the job store's PostgreSQL (in the VPC, the operator's)
#
# Workers accept no connection at all. Every group allows only the egress it needs.
################################################################################

resource "aws_security_group" "nlb" {
  name        = "${var.name}-nlb"
  description = "Internal NLB: TLS from the office network only"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-nlb" })
}

resource "aws_vpc_security_group_ingress_rule" "nlb_service_from_office" {
  security_group_id = aws_security_group.nlb.id
  description       = "mTLS clients on the office network"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.office_cidr

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "nlb_service_to_api" {
  security_group_id            = aws_security_group.nlb.id
  description                  = "Pass TLS through to the API instances"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.api.id

  tags = local.tags
}

resource "aws_security_group" "api" {
  name        = "${var.name}-api"
  description = "API instances: TLS from the NLB only"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-api" })
}

resource "aws_vpc_security_group_ingress_rule" "api_service_from_nlb" {
  security_group_id            = aws_security_group.api.id
  description                  = "TLS passed through by the NLB (client certificates intact)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.nlb.id

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "api_https" {
  security_group_id = aws_security_group.api.id
  description       = "HTTPS to AWS APIs (S3 through the gateway endpoint, ECR, SSM, CloudWatch) and through the NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "api_postgres" {
  security_group_id = aws_security_group.api.id
  description       = "PostgreSQL job store inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = var.vpc_cidr

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "api_amqps" {
  security_group_id            = aws_security_group.api.id
  description                  = "AMQPS to the broker"
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
  referenced_security_group_id = aws_security_group.broker.id

  tags = local.tags
}

# Workers take jobs from the broker and write results to S3; nothing connects to them.
resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "GPU workers: no inbound connections"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-worker" })
}

resource "aws_vpc_security_group_egress_rule" "worker_https" {
  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to AWS APIs (S3 through the gateway endpoint, ECR, SSM) and model sources through the NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "worker_postgres" {
  security_group_id = aws_security_group.worker.id
  description       = "PostgreSQL job store inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = var.vpc_cidr

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "worker_amqps" {
  security_group_id            = aws_security_group.worker.id
  description                  = "AMQPS to the broker"
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
  referenced_security_group_id = aws_security_group.broker.id

  tags = local.tags
}

# The broker answers on its AMQPS port to the API and the workers, and opens nothing itself.
resource "aws_security_group" "broker" {
  name        = "${var.name}-broker"
  description = "Amazon MQ broker: AMQPS from the API and workers only"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-broker" })
}

resource "aws_vpc_security_group_ingress_rule" "broker_amqps_from_api" {
  security_group_id            = aws_security_group.broker.id
  description                  = "AMQPS from the API"
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
  referenced_security_group_id = aws_security_group.api.id

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "broker_amqps_from_worker" {
  security_group_id            = aws_security_group.broker.id
  description                  = "AMQPS from the workers"
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
  referenced_security_group_id = aws_security_group.worker.id

  tags = local.tags
}

# Clients on the office network follow presigned URLs to this endpoint, and the API makes
# its own S3 calls through it; nobody else may.
resource "aws_security_group" "s3_presigned_endpoint" {
  name        = "${var.name}-s3-presigned-endpoint"
  description = "S3 interface endpoint: HTTPS from the office network and the API only"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${var.name}-s3-presigned-endpoint" })
}

resource "aws_vpc_security_group_ingress_rule" "s3_presigned_endpoint_from_office" {
  security_group_id = aws_security_group.s3_presigned_endpoint.id
  description       = "Presigned S3 requests from the office network"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.office_cidr

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "s3_presigned_endpoint_from_api" {
  security_group_id            = aws_security_group.s3_presigned_endpoint.id
  description                  = "The API's own S3 calls (it presigns against this endpoint)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.api.id

  tags = local.tags
}
