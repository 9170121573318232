terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
  }

  # Partial backend configuration: the bucket (and optionally the prefix) are given at init time, e.g.
  #   tofu init -backend-config=bucket=<state-bucket> -backend-config=prefix=terraform/state/registries
  # or -backend-config=backends/<name>.hcl. State is then kept in one workspace per cluster.
  backend "gcs" {}
}
