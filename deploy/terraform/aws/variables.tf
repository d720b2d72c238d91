################################################################################
# Naming and tagging
################################################################################

variable "name" {
  description = "Name prefix for every resource (lower case, digits and dashes; short enough for the NLB and target group name limits)."
  type        = string
  default     = "enclave"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: a lower-case letter, then lower-case letters, digits or dashes."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key, value in var.tags : length(key) > 0 && length(key) <= 128 && length(value) <= 256])
    error_message = "tag keys must be 1-128 characters and values at most 256 characters."
  }
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16, false)
    error_message = "vpc_cidr must be an IPv4 CIDR with a prefix length of /16 or longer."
  }
}

variable "availability_zones" {
  description = "Availability zones for the private subnets, one per entry of private_subnet_cidrs (the first also holds the NAT subnet)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && alltrue([for zone in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", zone))])
    error_message = "availability_zones must list at least two zone names such as eu-west-1a."
  }
}

variable "private_subnet_cidrs" {
  description = "CIDRs of the private subnets (API, workers, internal NLB, broker), one per availability zone. No public IPs are assigned in them."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]

  validation {
    condition     = length(var.private_subnet_cidrs) >= 2 && alltrue([for cidr in var.private_subnet_cidrs : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"])
    error_message = "private_subnet_cidrs must list at least two IPv4 CIDRs inside the VPC."
  }
}

variable "nat_subnet_cidr" {
  description = "CIDR of the single public subnet, which holds only the NAT gateway (egress for image pulls and model provisioning, never ingress)."
  type        = string
  default     = "10.0.0.0/28"

  validation {
    condition     = can(cidrnetmask(var.nat_subnet_cidr)) && try(tonumber(split("/", var.nat_subnet_cidr)[1]) >= 24, false)
    error_message = "nat_subnet_cidr must be an IPv4 CIDR of /24 or smaller: it holds one NAT gateway."
  }
}

variable "office_cidr" {
  description = "The only network allowed to reach the stack: TCP 443 to the internal NLB and to the S3 interface endpoint used by presigned URLs (over VPN or Direct Connect)."
  type        = string
  default     = "192.168.10.0/24"

  validation {
    condition     = can(cidrnetmask(var.office_cidr)) && try(tonumber(split("/", var.office_cidr)[1]) >= 8, false)
    error_message = "office_cidr must be an IPv4 CIDR with a prefix length of /8 or longer; 0.0.0.0/0 is never allowed."
  }
}

################################################################################
# Logging and keys
################################################################################

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (flow logs, CloudTrail) and of the log bucket's objects, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least one year (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "flow_log_traffic_type" {
  description = "Which VPC flow records to keep: REJECT (what the network refused) or ALL."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be REJECT or ALL: rejected traffic is always recorded."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the customer managed key is deleted after a destroy, in days."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

################################################################################
# Object storage
################################################################################

variable "inputs_expiration_days" {
  description = "Days after which uploaded inputs (inputs/) expire."
  type        = number
  default     = 7

  validation {
    condition     = var.inputs_expiration_days >= 1 && var.inputs_expiration_days <= 365
    error_message = "inputs_expiration_days must be between 1 and 365."
  }
}

variable "outputs_ia_transition_days" {
  description = "Days after which results (outputs/) move to STANDARD_IA (S3 requires at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.outputs_ia_transition_days >= 30 && var.outputs_ia_transition_days <= 3650
    error_message = "outputs_ia_transition_days must be between 30 and 3650."
  }
}

variable "outputs_expiration_days" {
  description = "Days after which results (outputs/) expire; must be later than outputs_ia_transition_days."
  type        = number
  default     = 90

  validation {
    condition     = var.outputs_expiration_days >= 31 && var.outputs_expiration_days <= 3650
    error_message = "outputs_expiration_days must be between 31 and 3650."
  }
}

variable "audit_archive_days" {
  description = "Days after which archived audit logs (audit/) move to Glacier Instant Retrieval; they never expire."
  type        = number
  default     = 90

  validation {
    condition     = var.audit_archive_days >= 1 && var.audit_archive_days <= 3650
    error_message = "audit_archive_days must be between 1 and 3650."
  }
}

variable "data_admin_role_arns" {
  description = "IAM roles allowed to read and write objects from outside the VPC endpoint (for example the operators' role that uploads models/). Empty: nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.data_admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "data_admin_role_arns must contain IAM role ARNs only (no users, no wildcards)."
  }
}

################################################################################
# Compute
################################################################################

variable "image_tag" {
  description = "Tag of the Enclave image in the module's private ECR repository (tags are immutable there)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid, immutable image tag (not 'latest')."
  }
}

variable "api_ami_id" {
  description = "AMI of the API instances: Linux with Docker and the AWS CLI (for example the ECS-optimized Amazon Linux 2023 AMI)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.api_ami_id))
    error_message = "api_ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "worker_ami_id" {
  description = "AMI of the GPU workers: Linux with Docker, the NVIDIA driver and container toolkit, and the AWS CLI (for example the ECS GPU-optimized AMI)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.worker_ami_id))
    error_message = "worker_ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "api_instance_type" {
  description = "EC2 instance type of the API instances."
  type        = string
  default     = "m6i.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.api_instance_type))
    error_message = "api_instance_type must be an EC2 instance type such as m6i.large."
  }
}

variable "worker_instance_type" {
  description = "EC2 instance type of the workers: a GPU family (g4dn, g5, g6, g6e, p3, p4d, p5...)."
  type        = string
  default     = "g5.xlarge"

  validation {
    condition     = can(regex("^(g4dn|g5|g6|g6e|gr6|p3|p3dn|p4d|p4de|p5|p5e)\\.[a-z0-9]+$", var.worker_instance_type))
    error_message = "worker_instance_type must be a GPU instance type (g4dn, g5, g6, g6e, gr6, p3, p4d, p5 families)."
  }
}

variable "serve_arguments" {
  description = "Arguments of the API container: the enclave serve command and its listen flags (the NLB forwards TCP 443)."
  type        = list(string)
  default     = ["serve", "--host", "0.0.0.0", "--port", "443"]

  validation {
    condition     = length(var.serve_arguments) > 0 && var.serve_arguments[0] == "serve" && alltrue([for arg in var.serve_arguments : can(regex("^[A-Za-z0-9._:/=,-]+$", arg))])
    error_message = "serve_arguments must start with serve and contain only plain tokens (letters, digits and . _ : / = , -)."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted root volume of API and worker instances, in GiB (image layers and models live there)."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_size_gb >= 30 && var.root_volume_size_gb <= 2000
    error_message = "root_volume_size_gb must be between 30 and 2000."
  }
}

variable "api_capacity" {
  description = "Minimum and maximum number of API instances behind the NLB."
  type = object({
    min = number
    max = number
  })
  default = { min = 2, max = 4 }

  validation {
    condition     = var.api_capacity.min >= 1 && var.api_capacity.max >= var.api_capacity.min && var.api_capacity.max <= 50
    error_message = "api_capacity needs 1 <= min <= max <= 50."
  }
}

variable "worker_capacity" {
  description = "Minimum and maximum number of GPU workers; the queue-depth policy scales between them."
  type = object({
    min = number
    max = number
  })
  default = { min = 1, max = 4 }

  validation {
    condition     = var.worker_capacity.min >= 0 && var.worker_capacity.max >= max(var.worker_capacity.min, 1) && var.worker_capacity.max <= 100
    error_message = "worker_capacity needs 0 <= min <= max, 1 <= max <= 100."
  }
}

variable "queue_depth_per_worker" {
  description = "Target number of queued jobs per running worker (target tracking on enclave_queue_depth divided by in-service workers)."
  type        = number
  default     = 4

  validation {
    condition     = var.queue_depth_per_worker > 0 && var.queue_depth_per_worker <= 1000
    error_message = "queue_depth_per_worker must be greater than 0 and at most 1000."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the API hosts publish enclave_queue_depth into (the only namespace their role may write)."
  type        = string
  default     = "Enclave"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

################################################################################
# Message broker (Amazon MQ for RabbitMQ)
################################################################################

variable "broker_instance_type" {
  description = "Amazon MQ host instance type."
  type        = string
  default     = "mq.m5.large"

  validation {
    condition     = can(regex("^mq\\.[a-z0-9]+\\.[a-z0-9]+$", var.broker_instance_type))
    error_message = "broker_instance_type must be an Amazon MQ instance type such as mq.m5.large."
  }
}

variable "broker_engine_version" {
  description = "RabbitMQ engine version on Amazon MQ."
  type        = string
  default     = "3.13"

  validation {
    condition     = can(regex("^3\\.[0-9]+(\\.[0-9]+)?$", var.broker_engine_version))
    error_message = "broker_engine_version must be a RabbitMQ 3.x version such as 3.13."
  }
}

variable "broker_deployment_mode" {
  description = "SINGLE_INSTANCE (jobs survive a broker loss: the database is the truth and queued jobs are re-dispatched) or CLUSTER_MULTI_AZ."
  type        = string
  default     = "SINGLE_INSTANCE"

  validation {
    condition     = contains(["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"], var.broker_deployment_mode)
    error_message = "broker_deployment_mode must be SINGLE_INSTANCE or CLUSTER_MULTI_AZ."
  }
}

variable "broker_username" {
  description = "RabbitMQ user the API and workers connect as."
  type        = string
  default     = "enclave"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.~-]{2,100}$", var.broker_username)) && lower(var.broker_username) != "guest"
    error_message = "broker_username must be 2-100 characters of letters, digits and _ . ~ - and not 'guest'."
  }
}

variable "broker_password" {
  description = "RabbitMQ password (pass it as TF_VAR_broker_password from a secret store). Stored only in an SSM SecureString encrypted with the module's key."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.broker_password) >= 16 && length(var.broker_password) <= 250 && !can(regex("[,:=]", var.broker_password))
    error_message = "broker_password must be 16-250 characters without commas, colons or equal signs (Amazon MQ rules)."
  }
}

################################################################################
# Job store (PostgreSQL, brought by the operator)
################################################################################

variable "database_url" {
  description = "Async SQLAlchemy URL of the PostgreSQL job store (postgresql+asyncpg://...), for example an RDS instance in the private subnets. Stored only in an SSM SecureString encrypted with the module's key."
  type        = string
  sensitive   = true

  validation {
    condition     = startswith(var.database_url, "postgresql+asyncpg://")
    error_message = "database_url must start with postgresql+asyncpg:// (the service's async driver)."
  }
}

################################################################################
# Protection
################################################################################

variable "deletion_protection" {
  description = "Protect the NLB from deletion (turn off only to destroy the stack)."
  type        = bool
  default     = true

  validation {
    condition     = var.deletion_protection != null
    error_message = "deletion_protection must be true or false."
  }
}
