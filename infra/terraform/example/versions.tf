terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30"
    }
  }

  # State stays in this folder (terraform.tfstate) unless you add a backend here, e.g.
  # backend "s3" { bucket = "my-tf-state" key = "faas/mysite.tfstate" region = "us-east-1" }
}
