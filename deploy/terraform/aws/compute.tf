################################################################################
# Instances: the same image from the private ECR repository runs as `enclave serve` on the
# API hosts and `enclave worker` on the GPU hosts. IMDSv2 only (hop limit 1: containers
# use the host network, so no extra hop is needed), encrypted root volumes, no public IP,
# no SSH key. User data holds no secret: the broker URL is read from SSM at boot.
################################################################################

locals {
  image = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

  # The service's own settings (app/settings.py, ENCLAVE_* variables) for this stack.
  service_environment = {
    ENCLAVE_STORAGE_BACKEND = "s3"
    ENCLAVE_S3_BUCKET       = aws_s3_bucket.data.id
    ENCLAVE_S3_REGION       = local.region
    ENCLAVE_S3_SSE          = "aws:kms"
    ENCLAVE_S3_KMS_KEY_ID   = aws_kms_key.this.arn
    ENCLAVE_DISPATCH        = "celery"
    ENCLAVE_MODEL_DIR       = "/models"
  }

  # The API's mTLS files come from the operator's secret distribution into /etc/enclave/tls
  # (mounted at /run/secrets/enclave); its own network policy admits the office (client IPs
  # are preserved by the NLB) and loopback (the container's health check).
  api_environment = merge(local.service_environment, {
    ENCLAVE_SECURITY__TLS_CERT      = "/run/secrets/enclave/server.pem"
    ENCLAVE_SECURITY__TLS_KEY       = "/run/secrets/enclave/server.key"
    ENCLAVE_SECURITY__TLS_CA        = "/run/secrets/enclave/client-ca.pem"
    ENCLAVE_SECURITY__ALLOWED_CIDRS = jsonencode([var.office_cidr, "127.0.0.0/8"])
    ENCLAVE_SECURITY__AUDIT_SINK    = "object_store"
    ENCLAVE_CLOUDWATCH_NAMESPACE    = var.metrics_namespace
    ENCLAVE_CLOUDWATCH_STACK        = var.name
    # S3 through the interface endpoint, so presigned URLs work from the office network.
    ENCLAVE_S3_ENDPOINT_URL = "https://bucket.${replace(aws_vpc_endpoint.s3_presigned.dns_entry[0].dns_name, "*.", "")}"
  })

  boot_common = {
    region                 = local.region
    registry               = split("/", aws_ecr_repository.this.repository_url)[0]
    image                  = local.image
    broker_url_parameter   = aws_ssm_parameter.broker_url.name
    database_url_parameter = aws_ssm_parameter.database_url.name
    bucket                 = aws_s3_bucket.data.id
    models_prefix          = local.prefixes.models
    serve_arguments        = join(" ", var.serve_arguments)
  }
}

resource "aws_launch_template" "api" {
  name_prefix            = "${var.name}-api-"
  description            = "Enclave API (enclave serve, mTLS on 443)"
  image_id               = var.api_ami_id
  instance_type          = var.api_instance_type
  ebs_optimized          = true
  update_default_version = true
  user_data              = base64encode(templatefile("${path.module}/templates/boot.sh.tftpl", merge(local.boot_common, { role = "api", environment = local.api_environment })))

  iam_instance_profile {
    arn = aws_iam_instance_profile.api.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  network_interfaces {
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.api.id]
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-api", Role = "api" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-api", Role = "api" })
  }

  tags = local.tags
}

resource "aws_launch_template" "worker" {
  name_prefix            = "${var.name}-worker-"
  description            = "Enclave GPU worker (enclave worker)"
  image_id               = var.worker_ami_id
  instance_type          = var.worker_instance_type
  ebs_optimized          = true
  update_default_version = true
  user_data              = base64encode(templatefile("${path.module}/templates/boot.sh.tftpl", merge(local.boot_common, { role = "worker", environment = local.service_environment })))

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  network_interfaces {
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.worker.id]
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-worker", Role = "worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-worker", Role = "worker" })
  }

  tags = local.tags
}

################################################################################
# Autoscaling groups
################################################################################

resource "aws_autoscaling_group" "api" {
  name_prefix               = "${var.name}-api-"
  vpc_zone_identifier       = aws_subnet.private[*].id
  min_size                  = var.api_capacity.min
  max_size                  = var.api_capacity.max
  target_group_arns         = [aws_lb_target_group.api.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 300

  launch_template {
    id      = aws_launch_template.api.id
    version = aws_launch_template.api.latest_version
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-api" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

resource "aws_autoscaling_group" "worker" {
  name_prefix               = "${var.name}-worker-"
  vpc_zone_identifier       = aws_subnet.private[*].id
  min_size                  = var.worker_capacity.min
  max_size                  = var.worker_capacity.max
  health_check_type         = "EC2"
  health_check_grace_period = 600
  # The scaling policy divides the queue depth by this group metric.
  enabled_metrics = ["GroupInServiceInstances"]

  launch_template {
    id      = aws_launch_template.worker.id
    version = aws_launch_template.worker.latest_version
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-worker" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

# Target tracking on backlog per worker: enclave_queue_depth (jobs waiting, published by the
# API hosts) divided by in-service workers (at least 1, so an empty group still scales out).
resource "aws_autoscaling_policy" "worker_queue_depth" {
  name                   = "${var.name}-worker-queue-depth"
  autoscaling_group_name = aws_autoscaling_group.worker.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.queue_depth_per_worker

    customized_metric_specification {
      metrics {
        id          = "queue_depth"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = var.metrics_namespace
            metric_name = "enclave_queue_depth"

            dimensions {
              name  = "Stack"
              value = var.name
            }
          }
        }
      }

      metrics {
        id          = "workers"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"

            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.worker.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_worker"
        label       = "Queued jobs per in-service worker"
        expression  = "queue_depth / IF(workers > 0, workers, 1)"
        return_data = true
      }
    }
  }
}
