# A client role, and a site role per endpoint, each with one managed policy holding only the
# actions the faas code calls, on only this site's resources; an endpoint's role reaches only its
# own queues (the documents are built in ./policy and checked by tests/test_terraform.py). The
# policies can also be attached to users or groups instead of assuming the roles.

locals {
  account_root      = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"
  client_principals = length(var.client_principals) > 0 ? var.client_principals : [local.account_root]
  site_principals   = length(var.site_principals) > 0 ? var.site_principals : [local.account_root]
  # who may assume each endpoint's role: its own list if given, else site_principals
  endpoint_principals = {
    for e in local.endpoints : e => length(lookup(var.endpoint_principals, e, [])) > 0 ? var.endpoint_principals[e] : local.site_principals
  }
  # faas-NAME-site for the endpoint named like the site (the default one-endpoint site keeps the
  # name it always had), faas-NAME-site-ENDPOINT for the others
  site_role_names = {
    for e in local.endpoints : e => e == var.name ? "faas-${var.name}-site" : "faas-${var.name}-site-${e}"
  }
}

data "aws_iam_policy_document" "client_trust" {
  statement {
    sid     = "AssumeClientRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.client_principals
    }
  }
}

data "aws_iam_policy_document" "site_trust" {
  for_each = toset(local.endpoints)

  statement {
    sid     = "AssumeSiteRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.endpoint_principals[each.key]
    }
  }

  dynamic "statement" {
    for_each = var.site_instance_profile ? [1] : []
    content {
      sid     = "Ec2LoginNode"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = ["ec2.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "client" {
  name        = "faas-${var.name}-client"
  description = "faas clients of site ${var.name}: store functions and arguments, send tasks, read results."
  policy      = module.policy.client_policy_json
  tags        = local.tags
}

resource "aws_iam_policy" "site" {
  for_each    = toset(local.endpoints)
  name        = local.site_role_names[each.key]
  description = "faas endpoint ${each.key} of site ${var.name}: receive and delete its tasks, write results, notify clients."
  policy      = module.policy.site_policies_json[each.key]
  tags        = local.tags
}

resource "aws_iam_role" "client" {
  name                 = "faas-${var.name}-client"
  description          = "faas clients of site ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.client_trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary
  tags                 = local.tags
}

resource "aws_iam_role" "site" {
  for_each             = toset(local.endpoints)
  name                 = local.site_role_names[each.key]
  description          = "faas endpoint ${each.key} of site ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.site_trust[each.key].json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary
  tags                 = local.tags

  lifecycle {
    precondition {
      # a misspelt name would silently leave its endpoint to site_principals
      condition     = alltrue([for e in keys(var.endpoint_principals) : contains(local.endpoints, e)])
      error_message = "endpoint_principals names endpoints that are not in endpoints: ${join(", ", [for e in keys(var.endpoint_principals) : e if !contains(local.endpoints, e)])}."
    }
  }
}

resource "aws_iam_role_policy_attachment" "client" {
  role       = aws_iam_role.client.name
  policy_arn = aws_iam_policy.client.arn
}

resource "aws_iam_role_policy_attachment" "site" {
  for_each   = toset(local.endpoints)
  role       = aws_iam_role.site[each.key].name
  policy_arn = aws_iam_policy.site[each.key].arn
}

resource "aws_iam_instance_profile" "site" {
  for_each = var.site_instance_profile ? toset(local.endpoints) : toset([])
  name     = local.site_role_names[each.key]
  role     = aws_iam_role.site[each.key].name
  tags     = local.tags
}
