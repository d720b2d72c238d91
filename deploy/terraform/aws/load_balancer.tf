################################################################################
# Internal NLB: TCP 443 passthrough. TLS is not terminated here, so the client
# certificate reaches the service, which does the mTLS handshake and maps the verified
# certificate to an identity. Client IPs are preserved for the service's CIDR policy.
################################################################################

resource "aws_lb" "api" {
  #checkov:skip=CKV_AWS_91:An NLB writes access logs only for TLS listeners; this one passes TLS through (TCP) so the app sees client certificates. Connections are in the VPC flow logs and every request in the app's audit log.
  name                             = "${var.name}-api"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = aws_subnet.private[*].id
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection

  tags = local.tags
}

resource "aws_lb_target_group" "api" {
  name                 = "${var.name}-api"
  port                 = 443
  protocol             = "TCP"
  vpc_id               = aws_vpc.this.id
  target_type          = "instance"
  preserve_client_ip   = "true"
  deregistration_delay = 30

  # A TCP check: an HTTPS check would be refused by the mTLS handshake (the NLB has no
  # client certificate). The container's own HEALTHCHECK calls /healthz with one.
  health_check {
    enabled             = true
    protocol            = "TCP"
    port                = "traffic-port"
    interval            = 10
    healthy_threshold   = 3
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  tags = local.tags
}
