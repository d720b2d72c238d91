output "vpc_id" {
  description = "ID of the VPC."
  value       = try(aws_vpc.this.id, null)
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (API, workers, NLB, broker; place the job store's database here too)."
  value       = try(aws_subnet.private[*].id, null)
}

output "nat_subnet_id" {
  description = "ID of the public subnet that holds only the NAT gateway."
  value       = try(aws_subnet.nat.id, null)
}

output "nat_public_ip" {
  description = "Egress address of the stack (for allowlists at model sources)."
  value       = try(aws_eip.nat.public_ip, null)
}

output "nlb_dns_name" {
  description = "Internal DNS name of the NLB; clients on the office network connect here with their certificates."
  value       = try(aws_lb.api.dns_name, null)
}

output "s3_presign_endpoint_url" {
  description = "S3 endpoint URL of the API (ENCLAVE_S3_ENDPOINT_URL, set by the stack): the interface endpoint, so presigned URLs reach the bucket privately from the office."
  value       = try("https://bucket.${replace(aws_vpc_endpoint.s3_presigned.dns_entry[0].dns_name, "*.", "")}", null)
}

output "s3_gateway_endpoint_id" {
  description = "ID of the S3 gateway endpoint the instances use (named in the bucket policy)."
  value       = try(aws_vpc_endpoint.s3.id, null)
}

output "bucket_name" {
  description = "Name of the data bucket (ENCLAVE_S3_BUCKET)."
  value       = try(aws_s3_bucket.data.id, null)
}

output "bucket_arn" {
  description = "ARN of the data bucket."
  value       = try(aws_s3_bucket.data.arn, null)
}

output "log_bucket_name" {
  description = "Name of the bucket holding S3 access logs and CloudTrail files."
  value       = try(aws_s3_bucket.logs.id, null)
}

output "kms_key_arn" {
  description = "ARN of the customer managed key (ENCLAVE_S3_KMS_KEY_ID)."
  value       = try(aws_kms_key.this.arn, null)
}

output "ecr_repository_url" {
  description = "Private ECR repository to push the Enclave image to."
  value       = try(aws_ecr_repository.this.repository_url, null)
}

output "api_role_arn" {
  description = "ARN of the API instances' role."
  value       = try(aws_iam_role.api.arn, null)
}

output "worker_role_arn" {
  description = "ARN of the workers' role."
  value       = try(aws_iam_role.worker.arn, null)
}

output "api_security_group_id" {
  description = "Security group of the API instances (allow it on the database's security group)."
  value       = try(aws_security_group.api.id, null)
}

output "worker_security_group_id" {
  description = "Security group of the workers (allow it on the database's security group)."
  value       = try(aws_security_group.worker.id, null)
}

output "api_autoscaling_group_name" {
  description = "Name of the API autoscaling group."
  value       = try(aws_autoscaling_group.api.name, null)
}

output "worker_autoscaling_group_name" {
  description = "Name of the GPU worker autoscaling group."
  value       = try(aws_autoscaling_group.worker.name, null)
}

output "broker_amqps_endpoint" {
  description = "AMQPS endpoint of the broker (the full URL with credentials is only in SSM)."
  value       = try(aws_mq_broker.this.instances[0].endpoints[0], null)
}

output "broker_url_parameter_name" {
  description = "SSM SecureString holding ENCLAVE_BROKER_URL."
  value       = try(aws_ssm_parameter.broker_url.name, null)
}

output "database_url_parameter_name" {
  description = "SSM SecureString holding ENCLAVE_DATABASE_URL."
  value       = try(aws_ssm_parameter.database_url.name, null)
}

output "flow_log_group_name" {
  description = "CloudWatch log group of the VPC flow logs."
  value       = try(aws_cloudwatch_log_group.flow_logs.name, null)
}

output "cloudtrail_arn" {
  description = "ARN of the CloudTrail trail (management events and S3 data events of the data bucket)."
  value       = try(aws_cloudtrail.this.arn, null)
}
