output "vpc_id" {
  description = "ID of the VPC."
  value       = try(alicloud_vpc.this.id, null)
}

output "vswitch_id" {
  description = "ID of the private vswitch (API and workers)."
  value       = try(alicloud_vswitch.private.id, null)
}

output "api_security_group_id" {
  description = "Security group for the API instances (443 from the office only, all else dropped)."
  value       = try(alicloud_security_group.api.id, null)
}

output "worker_security_group_id" {
  description = "Security group for the workers (all ingress dropped)."
  value       = try(alicloud_security_group.worker.id, null)
}

output "nat_egress_ip" {
  description = "Egress address of the stack."
  value       = try(alicloud_eip_address.nat.ip_address, null)
}

output "bucket_name" {
  description = "Name of the OSS data bucket (ENCLAVE_S3_BUCKET)."
  value       = try(alicloud_oss_bucket.data.bucket, null)
}

output "oss_internal_endpoint_url" {
  description = "Internal OSS endpoint the service uses (ENCLAVE_S3_ENDPOINT_URL)."
  value       = "https://${local.oss_internal_endpoint}"
}

output "kms_key_id" {
  description = "ID of the KMS key (ENCLAVE_S3_KMS_KEY_ID)."
  value       = try(alicloud_kms_key.this.id, null)
}

output "api_ram_role_name" {
  description = "RAM role to attach to the API instances."
  value       = try(alicloud_ram_role.api.name, null)
}

output "worker_ram_role_name" {
  description = "RAM role to attach to the worker instances."
  value       = try(alicloud_ram_role.worker.name, null)
}

output "log_project_name" {
  description = "SLS project holding the audit and VPC flow logstores."
  value       = try(alicloud_log_project.this.project_name, null)
}
