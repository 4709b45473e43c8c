variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "region" {
  description = "Region of the queues."
  type        = string
}

variable "account_id" {
  description = "AWS account that owns the bucket and the queues."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "bucket" {
  description = "Name of the S3 bucket that holds the store."
  type        = string
}

variable "store_prefix" {
  description = "Key prefix of the store inside the bucket (s3://BUCKET/PREFIX); \"\" for the whole bucket."
  type        = string
  default     = "faas"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]*$", var.store_prefix)) && !strcontains(var.store_prefix, "*")
    error_message = "store_prefix may hold letters, digits, '.', '_', '-' and '/'."
  }
}

variable "endpoints" {
  description = "Names of the endpoints of this site; each gets the queues faas-NAME and faas-NAME-dlq."
  type        = list(string)

  validation {
    condition     = length(var.endpoints) > 0 && alltrue([for e in var.endpoints : can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", e))])
    error_message = "endpoints: at least one name of 1-63 letters, digits, '-' or '_', starting with a letter or digit (faas endpoint names)."
  }
}

variable "reply_queue_prefix" {
  description = "Name prefix of the reply queues clients create (the client setting reply_queue_prefix)."
  type        = string
  default     = "faas-reply-"

  validation {
    # A client's queue is PREFIX + 32 hex digits, and on close it also deletes PREFIX...-dlq:
    # both must fit SQS's 80 characters.
    condition     = can(regex("^[A-Za-z0-9_-]{1,44}$", var.reply_queue_prefix))
    error_message = "reply_queue_prefix: 1-44 letters, digits, '-' or '_'."
  }
}
