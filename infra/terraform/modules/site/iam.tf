# Two roles, each with one managed policy holding only the actions the faas code calls, on only
# this site's resources (the documents are built in ./policy and checked by tests/test_terraform.py).
# The policies can also be attached to users or groups instead of assuming the roles.

locals {
  account_root      = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"
  client_principals = length(var.client_principals) > 0 ? var.client_principals : [local.account_root]
  site_principals   = length(var.site_principals) > 0 ? var.site_principals : [local.account_root]
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
  statement {
    sid     = "AssumeSiteRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.site_principals
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
  name        = "faas-${var.name}-site"
  description = "faas endpoint(s) of site ${var.name}: receive and delete tasks, write results, notify clients."
  policy      = module.policy.site_policy_json
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
  name                 = "faas-${var.name}-site"
  description          = "faas endpoint(s) of site ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.site_trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary
  tags                 = local.tags
}

resource "aws_iam_role_policy_attachment" "client" {
  role       = aws_iam_role.client.name
  policy_arn = aws_iam_policy.client.arn
}

resource "aws_iam_role_policy_attachment" "site" {
  role       = aws_iam_role.site.name
  policy_arn = aws_iam_policy.site.arn
}

resource "aws_iam_instance_profile" "site" {
  count = var.site_instance_profile ? 1 : 0
  name  = "faas-${var.name}-site"
  role  = aws_iam_role.site.name
  tags  = local.tags
}
