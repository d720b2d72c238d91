################################################################################
# RAM roles for the ECS instances of the API and the workers. Each statement names one
# prefix of the data bucket or the one KMS key; no action or resource wildcards beyond that.
################################################################################

locals {
  data_bucket_arn = "acs:oss:*:${local.account_id}:${local.data_bucket_name}"
  kms_key_arn     = "acs:kms:${local.region}:${local.account_id}:key/${alicloud_kms_key.this.id}"

  ecs_assume_role_policy = jsonencode({
    Version = "1"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = ["ecs.aliyuncs.com"] }
    }]
  })
}

resource "alicloud_ram_role" "worker" {
  name        = "${var.name}-worker"
  description = "Enclave GPU workers: read inputs/ and models/, write outputs/"
  document    = local.ecs_assume_role_policy
}

resource "alicloud_ram_policy" "worker" {
  policy_name = "${var.name}-worker"
  description = "Enclave GPU workers: read inputs/ and models/, write outputs/"
  policy_document = jsonencode({
    Version = "1"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["oss:GetObject"]
        Resource = ["${local.data_bucket_arn}/${local.prefixes.inputs}*", "${local.data_bucket_arn}/${local.prefixes.models}*"]
      },
      {
        Effect   = "Allow"
        Action   = ["oss:PutObject"]
        Resource = ["${local.data_bucket_arn}/${local.prefixes.outputs}*"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [local.kms_key_arn]
      },
    ]
  })
}

resource "alicloud_ram_role_policy_attachment" "worker" {
  role_name   = alicloud_ram_role.worker.name
  policy_name = alicloud_ram_policy.worker.policy_name
  policy_type = "Custom"
}

resource "alicloud_ram_role" "api" {
  name        = "${var.name}-api"
  description = "Enclave API: presigned uploads to inputs/, reads of outputs/"
  document    = local.ecs_assume_role_policy
}

resource "alicloud_ram_policy" "api" {
  policy_name = "${var.name}-api"
  description = "Enclave API: presigned uploads to inputs/, reads of outputs/"
  policy_document = jsonencode({
    Version = "1"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["oss:PutObject"]
        Resource = ["${local.data_bucket_arn}/${local.prefixes.inputs}*"]
      },
      {
        Effect   = "Allow"
        Action   = ["oss:GetObject"]
        Resource = ["${local.data_bucket_arn}/${local.prefixes.outputs}*"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = [local.kms_key_arn]
      },
    ]
  })
}

resource "alicloud_ram_role_policy_attachment" "api" {
  role_name   = alicloud_ram_role.api.name
  policy_name = alicloud_ram_policy.api.policy_name
  policy_type = "Custom"
}
