################################################################################
# Least-privilege roles. Object permissions name a prefix each; no action wildcards; the
# only Resource "*" statements are for the two actions AWS cannot scope to a resource
# (ecr:GetAuthorizationToken, and cloudwatch:PutMetricData, pinned to one namespace).
################################################################################

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    sid     = "Ec2AssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

################################################################################
# Workers: read inputs/ and models/, write outputs/, delete the inputs they finished.
################################################################################

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  description        = "Enclave GPU workers: read inputs/ and models/, write outputs/, purge finished inputs/"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json

  tags = local.tags
}

resource "aws_iam_instance_profile" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.name

  tags = local.tags
}

resource "aws_iam_role_policy" "worker" {
  name   = "${var.name}-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid     = "ReadInputsAndModels"
    effect  = "Allow"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*",
      "${aws_s3_bucket.data.arn}/${local.prefixes.models}*",
    ]
  }

  statement {
    sid       = "WriteOutputs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.outputs}*"]
  }

  # A finished job's inputs (face images) are deleted at once, not left for the lifecycle
  # rule (app/jobs/worker.py, _purge_inputs).
  statement {
    sid       = "PurgeFinishedInputs"
    effect    = "Allow"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*"]
  }

  # Listing is limited to the prefixes above: the purge lists a job's inputs, the boot
  # script syncs models/ to the read-only model mount.
  statement {
    sid       = "ListOwnPrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.prefixes.models, "${local.prefixes.models}*", "${local.prefixes.inputs}*"]
    }
  }

  statement {
    sid       = "UseDataKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "PullImage"
    effect    = "Allow"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "RegistryLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadConnectionUrls"
    effect    = "Allow"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.broker_url.arn, aws_ssm_parameter.database_url.arn]
  }
}

################################################################################
# API: uploads into inputs/, reads (and presigned downloads) of outputs/, purges of a
# job's objects, and the audit/ archive.
################################################################################

resource "aws_iam_role" "api" {
  name               = "${var.name}-api"
  description        = "Enclave API: uploads to inputs/, reads of outputs/, job purges, audit/ archive"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json

  tags = local.tags
}

resource "aws_iam_instance_profile" "api" {
  name = "${var.name}-api"
  role = aws_iam_role.api.name

  tags = local.tags
}

resource "aws_iam_role_policy" "api" {
  name   = "${var.name}-api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

data "aws_iam_policy_document" "api" {
  # Presigned uploads are signed with this role; inline uploads are written directly.
  statement {
    sid       = "WriteInputs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*"]
  }

  # HEAD of an upload before a job is queued (its size is checked: app/jobs/service.py).
  statement {
    sid       = "CheckUploadedInputs"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*"]
  }

  statement {
    sid       = "ReadOutputs"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.outputs}*"]
  }

  # POST /compare runs the pipeline on the API host, so it syncs models/ at boot too.
  statement {
    sid       = "ReadModels"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.models}*"]
  }

  # Cancellation and the retention sweep delete a job's inputs and outputs.
  statement {
    sid     = "PurgeJobObjects"
    effect  = "Allow"
    actions = ["s3:DeleteObject"]
    resources = [
      "${aws_s3_bucket.data.arn}/${local.prefixes.inputs}*",
      "${aws_s3_bucket.data.arn}/${local.prefixes.outputs}*",
    ]
  }

  # The hash-chained audit log ships in batches to audit/<instance>/ and resumes from its
  # head object there (app/security/audit/object_sink.py).
  statement {
    sid       = "ShipAuditLog"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefixes.audit}*"]
  }

  statement {
    sid       = "ListOwnPrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefixes.inputs}*", "${local.prefixes.outputs}*", "${local.prefixes.audit}*", local.prefixes.models, "${local.prefixes.models}*"]
    }
  }

  statement {
    sid       = "UseDataKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "PullImage"
    effect    = "Allow"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "RegistryLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadConnectionUrls"
    effect    = "Allow"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.broker_url.arn, aws_ssm_parameter.database_url.arn]
  }

  # The autoscaling signal: the API host publishes enclave_queue_depth, in one namespace only.
  statement {
    sid       = "PublishQueueDepth"
    effect    = "Allow"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

################################################################################
# VPC flow logs -> CloudWatch Logs
################################################################################

resource "aws_iam_role" "flow_logs" {
  name               = "${var.name}-flow-logs"
  description        = "VPC flow logs delivery into the stack's log group"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json

  tags = local.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    sid     = "VpcFlowLogsAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "${var.name}-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogStreams"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

################################################################################
# CloudTrail -> CloudWatch Logs
################################################################################

resource "aws_iam_role" "cloudtrail" {
  name               = "${var.name}-cloudtrail"
  description        = "CloudTrail delivery into the stack's log group"
  assume_role_policy = data.aws_iam_policy_document.cloudtrail_assume.json

  tags = local.tags
}

data "aws_iam_policy_document" "cloudtrail_assume" {
  statement {
    sid     = "CloudTrailAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }
}

resource "aws_iam_role_policy" "cloudtrail" {
  name   = "${var.name}-cloudtrail"
  role   = aws_iam_role.cloudtrail.id
  policy = data.aws_iam_policy_document.cloudtrail.json
}

data "aws_iam_policy_document" "cloudtrail" {
  statement {
    sid       = "WriteTrailLogStreams"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.cloudtrail.arn}:*"]
  }
}
