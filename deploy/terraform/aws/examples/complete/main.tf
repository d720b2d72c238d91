provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project = "enclave"
    }
  }
}

module "enclave" {
  source = "../../"

  name               = "enclave"
  availability_zones = ["${var.region}a", "${var.region}b"]

  vpc_cidr             = "10.0.0.0/16"
  private_subnet_cidrs = ["10.0.1.0/24", "10.0.2.0/24"]
  nat_subnet_cidr      = "10.0.0.0/28"
  office_cidr          = "192.168.10.0/24"

  image_tag     = var.image_tag
  api_ami_id    = var.api_ami_id
  worker_ami_id = var.worker_ami_id

  worker_instance_type   = "g5.xlarge"
  worker_capacity        = { min = 1, max = 4 }
  queue_depth_per_worker = 4

  broker_password = var.broker_password
  database_url    = var.database_url

  tags = {
    Environment = "production"
  }
}
