# A faas site from zero:
#   terraform init && terraform apply
#   terraform output -json > outputs.json
#   faas endpoint configure mysite --from-terraform outputs.json     (on the site, as the site role)
#   faas profile create mysite --from-terraform outputs.json         (on each client, as the client role)
# See ../README.md.

provider "aws" {
  region = var.region

  default_tags {
    tags = { project = "faas" }
  }
}

module "site" {
  source = "../modules/site"

  name                    = var.name
  endpoints               = var.endpoints
  max_receives            = var.max_receives
  visibility_timeout      = var.visibility_timeout
  results_expiration_days = var.results_expiration_days
  args_expiration_days    = var.args_expiration_days
  force_destroy           = var.force_destroy
  client_principals       = var.client_principals
  site_principals         = var.site_principals
  endpoint_principals     = var.endpoint_principals
}
