# No provider: this module only computes names and policy documents, so it can be evaluated
# (terraform init/apply/console) with no network, which is what tests/test_terraform.py does.
terraform {
  required_version = ">= 1.5"
}
