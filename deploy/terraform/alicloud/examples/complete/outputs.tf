output "api_security_group_id" {
  description = "Attach to the API instances."
  value       = module.enclave.api_security_group_id
}

output "bucket_name" {
  description = "The OSS data bucket."
  value       = module.enclave.bucket_name
}

output "oss_internal_endpoint_url" {
  description = "Where the service talks to OSS."
  value       = module.enclave.oss_internal_endpoint_url
}
