################################################################################
# SLS: one project with a logstore for the service's audit chain (shipped by Logtail from
# the hosts) and one for VPC flow logs. Encrypted with the stack's KMS key, kept a year+.
################################################################################

resource "alicloud_log_project" "this" {
  project_name = "${var.name}-${local.account_id}"
  description  = "Enclave audit and network logs"

  tags = local.tags
}

resource "alicloud_log_store" "audit" {
  project_name          = alicloud_log_project.this.project_name
  logstore_name         = "audit"
  retention_period      = var.log_retention_days
  shard_count           = 2
  auto_split            = true
  max_split_shard_count = 16
  append_meta           = true

  encrypt_conf {
    enable       = true
    encrypt_type = "default"

    user_cmk_info {
      cmk_key_id = alicloud_kms_key.this.id
      arn        = alicloud_ram_role.sls_kms.arn
      region_id  = local.region
    }
  }
}

resource "alicloud_log_store" "flow_logs" {
  project_name          = alicloud_log_project.this.project_name
  logstore_name         = "vpc-flow-logs"
  retention_period      = var.log_retention_days
  shard_count           = 2
  auto_split            = true
  max_split_shard_count = 16
  append_meta           = true

  encrypt_conf {
    enable       = true
    encrypt_type = "default"

    user_cmk_info {
      cmk_key_id = alicloud_kms_key.this.id
      arn        = alicloud_ram_role.sls_kms.arn
      region_id  = local.region
    }
  }
}

# Every accepted and dropped flow of the VPC.
resource "alicloud_vpc_flow_log" "this" {
  flow_log_name  = "${var.name}-vpc"
  resource_type  = "VPC"
  resource_id    = alicloud_vpc.this.id
  traffic_type   = "All"
  project_name   = alicloud_log_project.this.project_name
  log_store_name = alicloud_log_store.flow_logs.logstore_name
}

# SLS encrypts the logstores with the stack's key through this role (bring-your-own-key).
data "alicloud_ram_policy_document" "sls_assume" {
  version = "1"

  statement {
    effect = "Allow"
    action = ["sts:AssumeRole"]

    principal {
      entity      = "Service"
      identifiers = ["log.aliyuncs.com"]
    }
  }
}

resource "alicloud_ram_role" "sls_kms" {
  name        = "${var.name}-sls-kms"
  description = "SLS uses the Enclave KMS key to encrypt the logstores"
  document    = data.alicloud_ram_policy_document.sls_assume.document
}

data "alicloud_ram_policy_document" "sls_kms" {
  version = "1"

  statement {
    effect   = "Allow"
    action   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resource = [local.kms_key_arn]
  }
}

resource "alicloud_ram_policy" "sls_kms" {
  policy_name     = "${var.name}-sls-kms"
  description     = "SLS encrypts the Enclave logstores with the stack's key"
  policy_document = data.alicloud_ram_policy_document.sls_kms.document
}

resource "alicloud_ram_role_policy_attachment" "sls_kms" {
  role_name   = alicloud_ram_role.sls_kms.name
  policy_name = alicloud_ram_policy.sls_kms.policy_name
  policy_type = "Custom"
}
