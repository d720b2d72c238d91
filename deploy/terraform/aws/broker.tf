################################################################################
# Amazon MQ for RabbitMQ: Celery's broker. In the private subnets, not publicly
# accessible, AMQPS (TLS) only: Amazon MQ for RabbitMQ exposes no plaintext listener.
################################################################################

resource "aws_mq_broker" "this" {
  #checkov:skip=CKV_AWS_209:Amazon MQ for RabbitMQ supports only AWS owned keys for encryption at rest; messages hold job ids only, never images.
  broker_name                = "${var.name}-broker"
  engine_type                = "RabbitMQ"
  engine_version             = var.broker_engine_version
  host_instance_type         = var.broker_instance_type
  deployment_mode            = var.broker_deployment_mode
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  apply_immediately          = false
  security_groups            = [aws_security_group.broker.id]
  subnet_ids                 = var.broker_deployment_mode == "SINGLE_INSTANCE" ? [aws_subnet.private[0].id] : aws_subnet.private[*].id

  encryption_options {
    use_aws_owned_key = true
  }

  logs {
    general = true
  }

  maintenance_window_start_time {
    day_of_week = "SUNDAY"
    time_of_day = "03:00"
    time_zone   = "UTC"
  }

  user {
    username = var.broker_username
    password = var.broker_password
  }

  tags = local.tags
}

# The broker URL carries the password, so it lives in a SecureString under the stack's key;
# the instances read it at boot (ssm:GetParameter on this parameter only), never user data.
resource "aws_ssm_parameter" "broker_url" {
  name        = local.broker_url_parameter_name
  description = "AMQPS URL of the Enclave broker (Celery)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = replace(aws_mq_broker.this.instances[0].endpoints[0], "amqps://", "amqps://${urlencode(var.broker_username)}:${urlencode(var.broker_password)}@")

  tags = local.tags
}

# Same treatment for the job store's URL, which carries the database password.
resource "aws_ssm_parameter" "database_url" {
  name        = local.database_url_parameter_name
  description = "SQLAlchemy URL of the Enclave job store (PostgreSQL)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = var.database_url

  tags = local.tags
}
