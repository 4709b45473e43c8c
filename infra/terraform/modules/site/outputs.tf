output "faas" {
  description = "Everything an endpoint and a client need: read by `faas endpoint configure NAME --from-terraform outputs.json` and `faas profile create NAME --from-terraform outputs.json` (outputs.json: `terraform output -json`)."
  value = {
    schema             = 2
    site               = var.name
    partition          = data.aws_partition.current.partition
    region             = data.aws_region.current.name
    account_id         = local.account_id
    bucket             = aws_s3_bucket.store.id
    store              = module.policy.store_url
    reply_queue_prefix = var.reply_queue_prefix
    max_receives       = var.max_receives
    visibility_timeout = var.visibility_timeout
    endpoints = {
      for e in local.endpoints : e => {
        queue_url             = aws_sqs_queue.tasks[e].url
        queue_arn             = aws_sqs_queue.tasks[e].arn
        dead_letter_queue_url = aws_sqs_queue.dead_letters[e].url
        dead_letter_queue_arn = aws_sqs_queue.dead_letters[e].arn
        site_role_arn         = aws_iam_role.site[e].arn
        site_policy_arn       = aws_iam_policy.site[e].arn
        site_instance_profile = var.site_instance_profile ? aws_iam_instance_profile.site[e].name : null
      }
    }
    client_role_arn   = aws_iam_role.client.arn
    client_policy_arn = aws_iam_policy.client.arn
  }
}

output "bucket" {
  description = "The store's bucket."
  value       = aws_s3_bucket.store.id
}

output "store_url" {
  description = "The store URL (s3://BUCKET/PREFIX) for clients and endpoints."
  value       = module.policy.store_url
}

output "queue_urls" {
  description = "Task queue URL of each endpoint."
  value       = { for e in local.endpoints : e => aws_sqs_queue.tasks[e].url }
}

output "client_role_arn" {
  description = "Role for clients (role_arn of an AWS profile)."
  value       = aws_iam_role.client.arn
}

output "site_role_arns" {
  description = "Per endpoint: the role its daemon and pools run as (role_arn of an AWS profile)."
  value       = { for e in local.endpoints : e => aws_iam_role.site[e].arn }
}

output "client_policy_arn" {
  description = "The client policy, to attach to users or groups instead of assuming the role."
  value       = aws_iam_policy.client.arn
}

output "site_policy_arns" {
  description = "Per endpoint: its site policy, to attach to a user or instance role instead of assuming the role."
  value       = { for e in local.endpoints : e => aws_iam_policy.site[e].arn }
}
