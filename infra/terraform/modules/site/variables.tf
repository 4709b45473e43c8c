variable "name" {
  description = "Name of the site: names the bucket (faas-NAME-ACCOUNT unless bucket_name is set) and the IAM roles and policies (faas-NAME-client; per endpoint faas-NAME-site, or faas-NAME-site-ENDPOINT for an endpoint not named like the site: at most 64 characters, IAM's limit)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,29}$", var.name))
    error_message = "name: 1-30 lower-case letters, digits or '-' (it becomes part of a bucket name)."
  }
}

variable "endpoints" {
  description = "Endpoint names served by this site; each gets the queue faas-NAME, its dead-letter queue faas-NAME-dlq, and its own site role and policy (reaching only those queues). Defaults to [name]."
  type        = list(string)
  default     = null
}

variable "bucket_name" {
  description = "Name of the S3 bucket; null for faas-NAME-ACCOUNT_ID."
  type        = string
  default     = null
}

variable "store_prefix" {
  description = "Key prefix of the store inside the bucket: the store URL is s3://BUCKET/PREFIX."
  type        = string
  default     = "faas"
}

variable "results_expiration_days" {
  description = "Days after which results (results/), task markers (running/, cancels/), task groups (groups/) and the task journal (journal/) expire. get_result works until then."
  type        = number
  default     = 7

  validation {
    condition     = var.results_expiration_days >= 1
    error_message = "results_expiration_days must be >= 1."
  }
}

variable "args_expiration_days" {
  description = "Days after which spilled arguments (args/) expire; must outlast message_retention_seconds, or a queued task could lose its arguments."
  type        = number
  default     = 7

  validation {
    condition     = var.args_expiration_days >= 1
    error_message = "args_expiration_days must be >= 1."
  }
}

variable "dead_letters_expiration_days" {
  description = "Days after which copies of dead-lettered task messages (dead-letters/) expire."
  type        = number
  default     = 14

  validation {
    condition     = var.dead_letters_expiration_days >= 1
    error_message = "dead_letters_expiration_days must be >= 1."
  }
}

variable "functions_expiration_days" {
  description = "Days after which stored functions (functions/) expire; null (the default) keeps them. A client process re-stores a function only when it registers it anew, so a long-lived client could lose one it registered earlier."
  type        = number
  default     = null
}

variable "max_receives" {
  description = "Deliveries of a task before it goes to the dead-letter queue (the endpoint's max_receives: written to config.yaml by faas endpoint configure --from-terraform)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receives >= 1 && var.max_receives <= 1000 && floor(var.max_receives) == var.max_receives
    error_message = "max_receives must be a whole number in 1..1000."
  }
}

variable "visibility_timeout" {
  description = "Seconds a received task stays invisible (the endpoint's visibility_timeout; pools extend it while a task runs)."
  type        = number
  default     = 60

  validation {
    condition     = var.visibility_timeout >= 2 && var.visibility_timeout <= 43200 && floor(var.visibility_timeout) == var.visibility_timeout
    error_message = "visibility_timeout must be whole seconds in 2..43200."
  }
}

variable "message_retention_seconds" {
  description = "Seconds a task may wait in its queue before SQS drops it (60..1209600)."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be in 60..1209600."
  }
}

variable "reply_queue_prefix" {
  description = "Name prefix of the per-client reply queues (the client setting reply_queue_prefix). Clients may create and delete queues with this prefix; the site may send to them."
  type        = string
  default     = "faas-reply-"
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with everything in it. false: destroy fails while the bucket holds objects (empty it first)."
  type        = bool
  default     = false
}

variable "versioning" {
  description = "Keep earlier versions of overwritten or deleted objects for noncurrent_version_expiration_days. Off by default: the store holds task data that lifecycle rules expire and a re-run rewrites; versions would mostly keep the endpoint's 30 s heartbeat records."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "With versioning: days an earlier version is kept."
  type        = number
  default     = 7
}

variable "access_log_bucket" {
  description = "Name of an existing bucket for S3 server access logs; null for none."
  type        = string
  default     = null
}

variable "access_log_prefix" {
  description = "Key prefix of the access logs in access_log_bucket."
  type        = string
  default     = "faas/"
}

variable "client_principals" {
  description = "IAM principal ARNs (users, roles) that may assume the client role; [] for any principal of this account whose own policy allows sts:AssumeRole on it."
  type        = list(string)
  default     = []
}

variable "site_principals" {
  description = "IAM principal ARNs that may assume the endpoints' site roles (the identity an endpoint runs as), unless endpoint_principals names the endpoint; [] for any principal of this account allowed by its own policy."
  type        = list(string)
  default     = []
}

variable "endpoint_principals" {
  description = "Per endpoint name: the IAM principal ARNs that may assume that endpoint's site role, instead of site_principals (endpoints run by different people)."
  type        = map(list(string))
  default     = {}
}

variable "site_instance_profile" {
  description = "Also let EC2 assume the endpoints' site roles and make an instance profile per endpoint, named like its role (an endpoint on an EC2 login node)."
  type        = bool
  default     = false
}

variable "max_session_duration" {
  description = "Seconds a session of any of the roles lasts (boto3 renews assumed-role credentials by itself)."
  type        = number
  default     = 3600
}

variable "permissions_boundary" {
  description = "ARN of a permissions boundary for every role, where the organisation requires one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
