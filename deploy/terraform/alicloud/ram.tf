################################################################################
# RAM roles for the ECS instances of the API and the workers. Each statement names one
# prefix of the data bucket or the one KMS key; no action or resource wildcards beyond that.
################################################################################

locals {
  data_bucket_arn = "acs:oss:${local.region}:${local.account_id}:${local.data_bucket_name}"
  kms_key_arn     = "acs:kms:${local.region}:${local.account_id}:key/${alicloud_kms_key.this.id}"
}

data "alicloud_ram_policy_document" "ecs_assume" {
  version = "1"

  statement {
    effect = "Allow"
    action = ["sts:AssumeRole"]

    principal {
      entity      = "Service"
      identifiers = ["ecs.aliyuncs.com"]
    }
  }
}

################################################################################
# Workers: read inputs/ and models/, write outputs/, purge finished inputs/.
################################################################################

resource "alicloud_ram_role" "worker" {
  name        = "${var.name}-worker"
  description = "Enclave GPU workers: read inputs/ and models/, write outputs/, purge inputs/"
  document    = data.alicloud_ram_policy_document.ecs_assume.document
}

data "alicloud_ram_policy_document" "worker" {
  version = "1"

  statement {
    effect = "Allow"
    action = ["oss:GetObject"]
    resource = [
      "${local.data_bucket_arn}/${local.prefixes.inputs}*",
      "${local.data_bucket_arn}/${local.prefixes.models}*",
    ]
  }

  statement {
    effect   = "Allow"
    action   = ["oss:PutObject"]
    resource = ["${local.data_bucket_arn}/${local.prefixes.outputs}*"]
  }

  # Finished jobs' inputs are deleted at once (the privacy purge), not left to lifecycle.
  statement {
    effect   = "Allow"
    action   = ["oss:DeleteObject"]
    resource = ["${local.data_bucket_arn}/${local.prefixes.inputs}*"]
  }

  statement {
    effect   = "Allow"
    action   = ["oss:ListObjects"]
    resource = [local.data_bucket_arn]

    condition {
      operator = "StringLike"
      variable = "oss:Prefix"
      values   = ["${local.prefixes.inputs}*", "${local.prefixes.models}*"]
    }
  }

  statement {
    effect   = "Allow"
    action   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resource = [local.kms_key_arn]
  }
}

resource "alicloud_ram_policy" "worker" {
  policy_name     = "${var.name}-worker"
  description     = "Enclave GPU workers: read inputs/ and models/, write outputs/, purge inputs/"
  policy_document = data.alicloud_ram_policy_document.worker.document
}

resource "alicloud_ram_role_policy_attachment" "worker" {
  role_name   = alicloud_ram_role.worker.name
  policy_name = alicloud_ram_policy.worker.policy_name
  policy_type = "Custom"
}

################################################################################
# API: uploads into inputs/, reads of outputs/, job purges, the audit/ archive.
################################################################################

resource "alicloud_ram_role" "api" {
  name        = "${var.name}-api"
  description = "Enclave API: uploads, reads of outputs/, job purges, audit/ archive"
  document    = data.alicloud_ram_policy_document.ecs_assume.document
}

data "alicloud_ram_policy_document" "api" {
  version = "1"

  statement {
    effect   = "Allow"
    action   = ["oss:PutObject"]
    resource = ["${local.data_bucket_arn}/${local.prefixes.inputs}*"]
  }

  statement {
    effect = "Allow"
    action = ["oss:GetObject"]
    resource = [
      "${local.data_bucket_arn}/${local.prefixes.inputs}*",
      "${local.data_bucket_arn}/${local.prefixes.outputs}*",
      "${local.data_bucket_arn}/${local.prefixes.models}*",
    ]
  }

  statement {
    effect = "Allow"
    action = ["oss:DeleteObject"]
    resource = [
      "${local.data_bucket_arn}/${local.prefixes.inputs}*",
      "${local.data_bucket_arn}/${local.prefixes.outputs}*",
    ]
  }

  statement {
    effect   = "Allow"
    action   = ["oss:GetObject", "oss:PutObject"]
    resource = ["${local.data_bucket_arn}/${local.prefixes.audit}*"]
  }

  statement {
    effect   = "Allow"
    action   = ["oss:ListObjects"]
    resource = [local.data_bucket_arn]

    condition {
      operator = "StringLike"
      variable = "oss:Prefix"
      values   = ["${local.prefixes.inputs}*", "${local.prefixes.outputs}*", "${local.prefixes.audit}*", "${local.prefixes.models}*"]
    }
  }

  statement {
    effect   = "Allow"
    action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resource = [local.kms_key_arn]
  }
}

resource "alicloud_ram_policy" "api" {
  policy_name     = "${var.name}-api"
  description     = "Enclave API: uploads, reads of outputs/, job purges, audit/ archive"
  policy_document = data.alicloud_ram_policy_document.api.document
}

resource "alicloud_ram_role_policy_attachment" "api" {
  role_name   = alicloud_ram_role.api.name
  policy_name = alicloud_ram_policy.api.policy_name
  policy_type = "Custom"
}
