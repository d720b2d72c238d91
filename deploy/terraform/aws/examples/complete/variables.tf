variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "image_tag" {
  description = "Tag of the Enclave image pushed to the stack's ECR repository."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid, immutable image tag (not 'latest')."
  }
}

variable "api_ami_id" {
  description = "AMI of the API instances (Docker and the AWS CLI installed)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.api_ami_id))
    error_message = "api_ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "worker_ami_id" {
  description = "AMI of the GPU workers (Docker, NVIDIA driver and container toolkit, AWS CLI)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.worker_ami_id))
    error_message = "worker_ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "broker_password" {
  description = "RabbitMQ password (export TF_VAR_broker_password from your secret store)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.broker_password) >= 16
    error_message = "broker_password must be at least 16 characters."
  }
}

variable "database_url" {
  description = "postgresql+asyncpg:// URL of the job store (export TF_VAR_database_url from your secret store)."
  type        = string
  sensitive   = true

  validation {
    condition     = startswith(var.database_url, "postgresql+asyncpg://")
    error_message = "database_url must start with postgresql+asyncpg://."
  }
}
