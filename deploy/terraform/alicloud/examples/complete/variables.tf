variable "region" {
  description = "Alibaba Cloud region to deploy into."
  type        = string
  default     = "cn-shanghai"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z0-9]+)+$", var.region))
    error_message = "region must be an Alibaba Cloud region id such as cn-shanghai."
  }
}

variable "zone_id" {
  description = "Zone of the vswitches."
  type        = string
  default     = "cn-shanghai-l"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z0-9]+)+-[a-z]$", var.zone_id))
    error_message = "zone_id must be an Alibaba Cloud zone id such as cn-shanghai-l."
  }
}
