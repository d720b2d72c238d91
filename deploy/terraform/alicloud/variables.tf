################################################################################
# Naming and tagging
################################################################################

variable "name" {
  description = "Name prefix for every resource (lower case, digits and dashes)."
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
    condition     = alltrue([for key, value in var.tags : length(key) > 0 && length(key) <= 128 && length(value) <= 128])
    error_message = "tag keys must be 1-128 characters and values at most 128 characters."
  }
}

################################################################################
# Network
################################################################################

variable "zone_id" {
  description = "Zone of the vswitches, for example cn-shanghai-l."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z0-9]+)+-[a-z]$", var.zone_id))
    error_message = "zone_id must be an Alibaba Cloud zone id such as cn-shanghai-l."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 8, false)
    error_message = "vpc_cidr must be an IPv4 CIDR with a prefix length of /8 or longer."
  }
}

variable "vswitch_cidr" {
  description = "CIDR of the private vswitch that holds the API and the workers."
  type        = string
  default     = "10.0.1.0/24"

  validation {
    condition     = can(cidrnetmask(var.vswitch_cidr)) && var.vswitch_cidr != "0.0.0.0/0"
    error_message = "vswitch_cidr must be an IPv4 CIDR inside the VPC."
  }
}

variable "nat_vswitch_cidr" {
  description = "CIDR of the vswitch that holds only the NAT gateway (egress only: no DNAT entries exist)."
  type        = string
  default     = "10.0.0.0/28"

  validation {
    condition     = can(cidrnetmask(var.nat_vswitch_cidr)) && try(tonumber(split("/", var.nat_vswitch_cidr)[1]) >= 24, false)
    error_message = "nat_vswitch_cidr must be an IPv4 CIDR of /24 or smaller."
  }
}

variable "office_cidr" {
  description = "The only network allowed to reach the service on TCP 443 (over VPN or Express Connect)."
  type        = string
  default     = "192.168.10.0/24"

  validation {
    condition     = can(cidrnetmask(var.office_cidr)) && try(tonumber(split("/", var.office_cidr)[1]) >= 8, false)
    error_message = "office_cidr must be an IPv4 CIDR with a prefix length of /8 or longer; 0.0.0.0/0 is never allowed."
  }
}

################################################################################
# Keys, storage and logs
################################################################################

variable "kms_pending_window_days" {
  description = "Waiting period before the KMS key is deleted after a destroy, in days."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_pending_window_days >= 7 && var.kms_pending_window_days <= 30
    error_message = "kms_pending_window_days must be between 7 and 30."
  }
}

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
  description = "Days after which results (outputs/) move to the IA storage class."
  type        = number
  default     = 30

  validation {
    condition     = var.outputs_ia_transition_days >= 1 && var.outputs_ia_transition_days <= 3650
    error_message = "outputs_ia_transition_days must be between 1 and 3650."
  }
}

variable "outputs_expiration_days" {
  description = "Days after which results (outputs/) expire; must be later than outputs_ia_transition_days."
  type        = number
  default     = 90

  validation {
    condition     = var.outputs_expiration_days >= 2 && var.outputs_expiration_days <= 3650
    error_message = "outputs_expiration_days must be between 2 and 3650."
  }
}

variable "audit_archive_days" {
  description = "Days after which archived audit logs (audit/) move to the Archive class; they never expire."
  type        = number
  default     = 90

  validation {
    condition     = var.audit_archive_days >= 1 && var.audit_archive_days <= 3650
    error_message = "audit_archive_days must be between 1 and 3650."
  }
}

variable "log_retention_days" {
  description = "Retention of the SLS logstores (audit, VPC flow logs) and of the OSS access logs, in days."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_days >= 365 && var.log_retention_days <= 3650
    error_message = "log_retention_days must be between 365 and 3650."
  }
}
