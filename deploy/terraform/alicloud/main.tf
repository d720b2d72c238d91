# Enclave on Alibaba Cloud: the same private shape as the AWS stack.
#
#   network.tf         VPC, vswitches, NAT gateway with SNAT only (egress, never ingress)
#   security_group.tf  443 accepted from the office CIDR, every other ingress dropped
#   storage.tf         KMS key, OSS data bucket (private, SSE-KMS, versioned, lifecycle), log bucket
#   ram.tf             least-privilege RAM roles for the API and the workers
#   logging.tf         SLS project and logstores (audit, VPC flow logs)

data "alicloud_account" "current" {}
data "alicloud_regions" "current" {
  current = true
}

locals {
  account_id = data.alicloud_account.current.id
  region     = data.alicloud_regions.current.regions[0].id

  tags = merge(var.tags, {
    "enclave:stack" = var.name
  })

  data_bucket_name = "${var.name}-data-${local.account_id}"
  logs_bucket_name = "${var.name}-logs-${local.account_id}"

  # Object prefixes the service uses; RAM policies and lifecycle rules refer to these only.
  prefixes = {
    inputs  = "inputs/"
    outputs = "outputs/"
    models  = "models/"
    audit   = "audit/"
  }

  # Instances in the VPC reach OSS on its internal endpoint, never over the internet.
  oss_internal_endpoint = "oss-${local.region}-internal.aliyuncs.com"
}
