output "store_url" {
  description = "The store URL clients and endpoints use (s3://BUCKET/PREFIX)."
  value       = local.store_url
}

output "key_prefix" {
  description = "Key prefix inside the bucket, with its trailing slash (\"\" for none)."
  value       = local.key_prefix
}

output "bucket_arn" {
  value = local.bucket_arn
}

output "queues" {
  description = "Per endpoint: name, arn, dlq_name, dlq_arn of its task and dead-letter queues."
  value       = local.queues
}

output "reply_queues_arn" {
  description = "ARN pattern of the clients' reply queues."
  value       = local.reply_queues_arn
}

output "client_policy_json" {
  description = "IAM policy document of the client role."
  value       = jsonencode(local.client_policy)

  precondition {
    condition     = length(local.overlaps) == 0
    error_message = "The queue name(s) ${join(", ", local.overlaps)} start with reply_queue_prefix, so every client could read and delete them: rename the endpoint or change reply_queue_prefix."
  }
}

output "site_policies_json" {
  description = "Per endpoint: the IAM policy document of its site role (its own queues, record and journal only)."
  value       = { for e, policy in local.site_policies : e => jsonencode(policy) }

  precondition {
    condition     = length(local.overlaps) == 0
    error_message = "The queue name(s) ${join(", ", local.overlaps)} start with reply_queue_prefix: rename the endpoint or change reply_queue_prefix."
  }
}
