################################################################################
# VPC and vswitches
################################################################################

resource "alicloud_vpc" "this" {
  vpc_name   = var.name
  cidr_block = var.vpc_cidr

  tags = local.tags
}

resource "alicloud_vswitch" "private" {
  vswitch_name = "${var.name}-private"
  vpc_id       = alicloud_vpc.this.id
  cidr_block   = var.vswitch_cidr
  zone_id      = var.zone_id

  tags = local.tags
}

# Holds only the NAT gateway.
resource "alicloud_vswitch" "nat" {
  vswitch_name = "${var.name}-nat"
  vpc_id       = alicloud_vpc.this.id
  cidr_block   = var.nat_vswitch_cidr
  zone_id      = var.zone_id

  tags = local.tags
}

################################################################################
# NAT gateway: SNAT for the private vswitch (image pulls, model provisioning). There is no
# DNAT entry and no forward rule, so nothing on the internet can open a connection inward.
################################################################################

resource "alicloud_nat_gateway" "this" {
  vpc_id           = alicloud_vpc.this.id
  vswitch_id       = alicloud_vswitch.nat.id
  nat_gateway_name = var.name
  nat_type         = "Enhanced"
  payment_type     = "PayAsYouGo"

  tags = local.tags
}

resource "alicloud_eip_address" "nat" {
  address_name         = "${var.name}-nat"
  isp                  = "BGP"
  internet_charge_type = "PayByTraffic"
  payment_type         = "PayAsYouGo"

  tags = local.tags
}

resource "alicloud_eip_association" "nat" {
  allocation_id = alicloud_eip_address.nat.id
  instance_id   = alicloud_nat_gateway.this.id
  instance_type = "Nat"
}

resource "alicloud_snat_entry" "private" {
  snat_table_id     = alicloud_nat_gateway.this.snat_table_ids
  source_vswitch_id = alicloud_vswitch.private.id
  snat_ip           = alicloud_eip_address.nat.ip_address

  depends_on = [alicloud_eip_association.nat]
}
