################################################################################
# KMS key for the bucket and the logstores; automatic rotation on.
################################################################################

resource "alicloud_kms_key" "this" {
  description            = "${var.name}: OSS data bucket and SLS logstores"
  status                 = "Enabled"
  pending_window_in_days = var.kms_pending_window_days
  automatic_rotation     = "Enabled"
  rotation_interval      = "365d"

  tags = local.tags
}

################################################################################
# OSS data bucket: inputs/, outputs/, models/, audit/. Private, SSE-KMS, versioned,
# public access blocked, reachable for object data only from the stack's VPC over
# HTTPS (bucket policy), through the internal endpoint.
################################################################################

resource "alicloud_oss_bucket" "data" {
  #checkov:skip=CKV_ALI_11:Transfer acceleration routes data over the public internet; the bucket is used only through its internal endpoint.
  bucket        = local.data_bucket_name
  storage_class = "Standard"
  force_destroy = false

  versioning {
    status = "Enabled"
  }

  server_side_encryption_rule {
    sse_algorithm     = "KMS"
    kms_master_key_id = alicloud_kms_key.this.id
  }

  logging {
    target_bucket = alicloud_oss_bucket.logs.id
    target_prefix = "oss-access/${local.data_bucket_name}/"
  }

  lifecycle_rule {
    id      = "abort-incomplete-uploads"
    enabled = true

    abort_multipart_upload {
      days = 1
    }
  }

  lifecycle_rule {
    id      = "inputs-expire"
    prefix  = local.prefixes.inputs
    enabled = true

    expiration {
      days = var.inputs_expiration_days
    }

    noncurrent_version_expiration {
      days = 1
    }
  }

  lifecycle_rule {
    id      = "outputs-cool-then-expire"
    prefix  = local.prefixes.outputs
    enabled = true

    transitions {
      days          = var.outputs_ia_transition_days
      storage_class = "IA"
    }

    expiration {
      days = var.outputs_expiration_days
    }

    noncurrent_version_expiration {
      days = 7
    }
  }

  lifecycle_rule {
    id      = "audit-retained"
    prefix  = local.prefixes.audit
    enabled = true

    transitions {
      days          = var.audit_archive_days
      storage_class = "Archive"
    }
  }

  lifecycle_rule_allow_same_action_overlap = true

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.outputs_expiration_days > var.outputs_ia_transition_days
      error_message = "outputs_expiration_days must be later than outputs_ia_transition_days."
    }
  }
}

resource "alicloud_oss_bucket_acl" "data" {
  bucket = alicloud_oss_bucket.data.id
  acl    = "private"
}

resource "alicloud_oss_bucket_public_access_block" "data" {
  bucket              = alicloud_oss_bucket.data.id
  block_public_access = true
}

resource "alicloud_oss_bucket_policy" "data" {
  bucket = alicloud_oss_bucket.data.id
  policy = jsonencode({
    Version = "1"
    Statement = [
      {
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = ["*"]
        Action    = ["oss:*"]
        Resource  = ["acs:oss:*:${local.account_id}:${local.data_bucket_name}", "acs:oss:*:${local.account_id}:${local.data_bucket_name}/*"]
        Condition = { Bool = { "acs:SecureTransport" = ["false"] } }
      },
      {
        Sid       = "DenyObjectAccessOutsideVpc"
        Effect    = "Deny"
        Principal = ["*"]
        Action    = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject"]
        Resource  = ["acs:oss:*:${local.account_id}:${local.data_bucket_name}/*"]
        Condition = { StringNotEquals = { "acs:SourceVpc" = [alicloud_vpc.this.id] } }
      },
    ]
  })
}

################################################################################
# Log bucket: OSS access logs of the data bucket.
################################################################################

resource "alicloud_oss_bucket" "logs" {
  #checkov:skip=CKV_ALI_12:This is the access-log target; logging it into itself would loop.
  #checkov:skip=CKV_ALI_11:Transfer acceleration routes data over the public internet; logs stay on the internal network.
  bucket        = local.logs_bucket_name
  storage_class = "Standard"
  force_destroy = false

  versioning {
    status = "Enabled"
  }

  server_side_encryption_rule {
    sse_algorithm     = "KMS"
    kms_master_key_id = alicloud_kms_key.this.id
  }

  lifecycle_rule {
    id      = "logs-retention"
    enabled = true

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      days = 30
    }

    abort_multipart_upload {
      days = 1
    }
  }

  tags = local.tags
}

resource "alicloud_oss_bucket_acl" "logs" {
  bucket = alicloud_oss_bucket.logs.id
  acl    = "private"
}

resource "alicloud_oss_bucket_public_access_block" "logs" {
  bucket              = alicloud_oss_bucket.logs.id
  block_public_access = true
}
