################################################################################
# VPC flow logs: every rejected (or every) connection attempt, kept for a year or more in
# a log group encrypted with the stack's key.
################################################################################

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/enclave/${var.name}/vpc-flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = local.tags
}

resource "aws_flow_log" "vpc" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = var.flow_log_traffic_type
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60

  tags = merge(local.tags, { Name = "${var.name}-vpc" })
}

################################################################################
# CloudTrail: management events everywhere, plus S3 data events (every object read and
# write) on the data bucket. Files go to the log bucket encrypted with the stack's key and
# signed (log file validation); a copy streams into CloudWatch Logs for alarms.
################################################################################

resource "aws_cloudwatch_log_group" "cloudtrail" {
  name              = "/enclave/${var.name}/cloudtrail"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = local.tags
}

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_252:No SNS subscriber exists for file-delivery notices; delivery is monitored through the CloudWatch Logs copy of the trail.
  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.logs.id
  s3_key_prefix                 = "cloudtrail"
  kms_key_id                    = aws_kms_key.this.arn
  enable_log_file_validation    = true
  is_multi_region_trail         = true
  include_global_service_events = true
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.cloudtrail.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.cloudtrail.arn

  event_selector {
    read_write_type           = "All"
    include_management_events = true

    data_resource {
      type   = "AWS::S3::Object"
      values = ["${aws_s3_bucket.data.arn}/"]
    }
  }

  tags = local.tags

  depends_on = [aws_s3_bucket_policy.logs, aws_iam_role_policy.cloudtrail]
}
