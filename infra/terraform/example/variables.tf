variable "region" {
  description = "AWS region of the site's bucket and queues (near the site: latency per task is a few round trips to it)."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Site name: bucket faas-NAME-ACCOUNT, roles faas-NAME-client and, per endpoint, faas-NAME-site (the endpoint named like the site) or faas-NAME-site-ENDPOINT."
  type        = string
  default     = "mysite"
}

variable "endpoints" {
  description = "Endpoint names (faas endpoint configure NAME ...); each gets faas-NAME and faas-NAME-dlq."
  type        = list(string)
  default     = ["mysite"]
}

variable "max_receives" {
  description = "Deliveries of a task before it is dead-lettered."
  type        = number
  default     = 5
}

variable "visibility_timeout" {
  description = "Seconds a received task stays invisible (extended while it runs)."
  type        = number
  default     = 60
}

variable "results_expiration_days" {
  description = "Days results stay in the store."
  type        = number
  default     = 7
}

variable "args_expiration_days" {
  description = "Days spilled arguments stay in the store."
  type        = number
  default     = 7
}

variable "force_destroy" {
  description = "terraform destroy also deletes every object in the bucket."
  type        = bool
  default     = false
}

variable "client_principals" {
  description = "ARNs allowed to assume the client role ([]: this account's principals, by their own policies)."
  type        = list(string)
  default     = []
}

variable "site_principals" {
  description = "ARNs allowed to assume the endpoints' site roles ([]: this account's principals, by their own policies)."
  type        = list(string)
  default     = []
}

variable "endpoint_principals" {
  description = "Per endpoint: ARNs allowed to assume its site role instead of site_principals."
  type        = map(list(string))
  default     = {}
}
