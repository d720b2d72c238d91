output "nlb_dns_name" {
  description = "Where clients on the office network connect (mTLS on 443)."
  value       = module.enclave.nlb_dns_name
}

output "ecr_repository_url" {
  description = "Push the image here before applying a new image_tag."
  value       = module.enclave.ecr_repository_url
}

output "bucket_name" {
  description = "The data bucket."
  value       = module.enclave.bucket_name
}

output "s3_presign_endpoint_url" {
  description = "Endpoint URL the API presigns against."
  value       = module.enclave.s3_presign_endpoint_url
}
