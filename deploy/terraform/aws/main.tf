# Enclave on AWS: a private VPC that only the office network can reach.
#
# The module is split by concern:
#   network.tf          VPC, subnets, NAT, routes, network ACLs, S3 gateway endpoint, flow logs
#   security_groups.tf  who may open a connection to whom (443 from the office to the NLB, ...)
#   kms.tf              the customer managed key and its policy
#   storage.tf          data bucket (inputs/, outputs/, models/, audit/) and the log bucket
#   iam.tf              least-privilege roles for the API, the workers, flow logs and CloudTrail
#   audit.tf            CloudTrail with S3 data events, CloudWatch log groups
#   registry.tf         the private ECR repository of the image
#   broker.tf           Amazon MQ for RabbitMQ (AMQPS only); SSM SecureStrings with broker and DB URLs
#   load_balancer.tf    internal NLB, TCP 443 passthrough so client certificates reach the app
#   compute.tf          launch templates and autoscaling groups (API, GPU workers, queue-depth scaling)

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  tags = merge(var.tags, {
    "enclave:stack" = var.name
  })

  # Bucket names are global: the account and region make them unique without a random suffix.
  data_bucket_name = "${var.name}-data-${local.account_id}-${local.region}"
  logs_bucket_name = "${var.name}-logs-${local.account_id}-${local.region}"

  # Object prefixes the service uses; the IAM policies and the lifecycle rules refer to these only.
  prefixes = {
    inputs  = "inputs/"
    outputs = "outputs/"
    models  = "models/"
    audit   = "audit/"
  }

  trail_name = "${var.name}-trail"
  trail_arn  = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"

  broker_url_parameter_name   = "/${var.name}/broker-url"
  database_url_parameter_name = "/${var.name}/database-url"
}
