provider "alicloud" {
  region = var.region
}

module "enclave" {
  source = "../../"

  name    = "enclave"
  zone_id = var.zone_id

  vpc_cidr         = "10.0.0.0/16"
  vswitch_cidr     = "10.0.1.0/24"
  nat_vswitch_cidr = "10.0.0.0/28"
  office_cidr      = "192.168.10.0/24"

  tags = {
    Environment = "production"
  }
}
