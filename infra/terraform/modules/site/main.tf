# A faas site on AWS: the store bucket, a task queue and a dead-letter queue per endpoint, and the
# IAM roles of the clients and of each endpoint (iam.tf). The endpoint daemon, its pools and the
# clients need nothing else: result notices travel on reply queues that each client creates
# (faas-reply-<uuid>) and deletes when it closes.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  bucket     = coalesce(var.bucket_name, "faas-${var.name}-${local.account_id}")
  endpoints  = var.endpoints == null ? [var.name] : var.endpoints
  tags       = merge({ "faas:site" = var.name }, var.tags)
  prefix     = module.policy.key_prefix

  # One lifecycle rule per kind of object: the store keeps each kind under its own prefix.
  expirations = merge(
    {
      results        = var.results_expiration_days
      running        = var.results_expiration_days
      cancels        = var.results_expiration_days
      groups         = var.results_expiration_days
      journal        = var.results_expiration_days
      args           = var.args_expiration_days
      "dead-letters" = var.dead_letters_expiration_days
    },
    var.functions_expiration_days == null ? {} : { functions = var.functions_expiration_days },
  )
}

# Names, ARNs and policy documents (no provider: evaluated offline by the tests).
module "policy" {
  source             = "./policy"
  partition          = data.aws_partition.current.partition
  region             = data.aws_region.current.name
  account_id         = local.account_id
  bucket             = local.bucket
  store_prefix       = var.store_prefix
  endpoints          = local.endpoints
  reply_queue_prefix = var.reply_queue_prefix
}

# -- the store ---------------------------------------------------------------------------------

resource "aws_s3_bucket" "store" {
  #checkov:skip=CKV_AWS_144:Cross-region replication: the store holds short-lived task data that expires in days and can be recomputed by resubmitting; a replica would double storage and PUT costs for nothing a user can read back.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256, AWS-managed keys) encrypts every object at rest at no cost; a customer-managed KMS key costs $1/month plus $0.03 per 10,000 requests (one or more per task) and would need kms: grants in both roles.
  #checkov:skip=CKV2_AWS_62:Event notifications: faas signals work through SQS messages that clients and pools send themselves, not through S3 events.
  bucket        = local.bucket
  force_destroy = var.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "store" {
  bucket                  = aws_s3_bucket.store.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "store" {
  bucket = aws_s3_bucket.store.id
  rule {
    object_ownership = "BucketOwnerEnforced" # ACLs off: access is IAM's alone
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "store" {
  bucket = aws_s3_bucket.store.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256" # SSE-S3: no KMS key to pay for or grant
    }
  }
}

resource "aws_s3_bucket_versioning" "store" {
  count  = var.versioning ? 1 : 0
  bucket = aws_s3_bucket.store.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "store" {
  count         = var.access_log_bucket == null ? 0 : 1
  bucket        = aws_s3_bucket.store.id
  target_bucket = var.access_log_bucket
  target_prefix = var.access_log_prefix
}

resource "aws_s3_bucket_lifecycle_configuration" "store" {
  bucket = aws_s3_bucket.store.id

  dynamic "rule" {
    for_each = local.expirations
    content {
      id     = "expire-${rule.key}"
      status = "Enabled"
      filter {
        prefix = "${local.prefix}${rule.key}/"
      }
      expiration {
        days = rule.value
      }
    }
  }

  rule {
    id     = "whole-bucket"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    dynamic "noncurrent_version_expiration" {
      for_each = var.versioning ? [1] : []
      content {
        noncurrent_days = var.noncurrent_version_expiration_days
      }
    }
    dynamic "expiration" {
      for_each = var.versioning ? [1] : []
      content {
        expired_object_delete_marker = true
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.args_expiration_days * 86400 >= var.message_retention_seconds && var.results_expiration_days * 86400 >= var.message_retention_seconds
      error_message = "args_expiration_days and results_expiration_days must outlast message_retention_seconds: a task still queued would lose its arguments or its cancel marker."
    }
  }

  depends_on = [aws_s3_bucket_versioning.store]
}

resource "aws_s3_bucket_policy" "store" {
  bucket = aws_s3_bucket.store.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.store.arn, "${aws_s3_bucket.store.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyOldTls"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.store.arn, "${aws_s3_bucket.store.arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.store]
}

# -- the queues --------------------------------------------------------------------------------
# The endpoint daemon calls CreateQueue on both queues when it starts, with the attributes below;
# SQS then returns the existing queues as they are. The attributes the daemon sends must equal
# these (config.yaml gets max_receives and visibility_timeout from this module's outputs), or
# SQS answers QueueAlreadyExists and the daemon would need sqs:SetQueueAttributes, which the
# site role does not have.

resource "aws_sqs_queue" "dead_letters" {
  for_each                  = toset(local.endpoints)
  name                      = module.policy.queues[each.key].dlq_name
  message_retention_seconds = 1209600 # 14 days: what the daemon creates it with
  sqs_managed_sse_enabled   = true    # SSE-SQS: encrypted at rest, no KMS key to pay for
  tags                      = local.tags
}

resource "aws_sqs_queue" "tasks" {
  for_each                   = toset(local.endpoints)
  name                       = module.policy.queues[each.key].name
  visibility_timeout_seconds = var.visibility_timeout
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 0 # pools choose their own long-poll wait
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters[each.key].arn
    maxReceiveCount     = var.max_receives
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letters" {
  for_each  = toset(local.endpoints)
  queue_url = aws_sqs_queue.dead_letters[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.tasks[each.key].arn]
  })
}

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = merge(
    { for e in local.endpoints : module.policy.queues[e].name => aws_sqs_queue.tasks[e] },
    { for e in local.endpoints : module.policy.queues[e].dlq_name => aws_sqs_queue.dead_letters[e] },
  )
  queue_url = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sqs:*"
      Resource  = each.value.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}
