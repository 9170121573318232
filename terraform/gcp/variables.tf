variable "project_id" {
  type        = string
  description = "ID of the GCP project that holds the cluster; the repositories and service accounts are created in it."
}

variable "region" {
  type        = string
  description = "GCP region of the Artifact Registry repositories (e.g. us-central1); images are served from <region>-docker.pkg.dev."
}

variable "container_repos" {
  type        = list(string)
  default     = []
  description = <<-EOT
    Names of the hubs (usually the hub's namespace) that get their own image registry. For each entry <name> this
    module creates the Docker repository <name>-registry, the service account <name>-registry-sa that may push to
    that repository only, and a JSON key for it. Removing an entry destroys the repository, its images, the service
    account and the key. `provision gcp` appends entries to this list in projects/<cluster>.tfvars.
  EOT

  validation {
    condition     = alltrue([for name in var.container_repos : can(regex("^[a-z][a-z0-9-]*$", name))])
    error_message = "Each container_repos entry must start with a lowercase letter and use only lowercase letters, digits and hyphens (^[a-z][a-z0-9-]*$); invalid: ${join(", ", [for name in var.container_repos : jsonencode(name) if !can(regex("^[a-z][a-z0-9-]*$", name))])}."
  }

  validation {
    condition     = alltrue([for name in var.container_repos : length(name) <= 18])
    error_message = "Each container_repos entry must be at most 18 characters long so that the service account ID \"<name>-registry-sa\" fits GCP's 30-character limit; too long: ${join(", ", [for name in var.container_repos : jsonencode(name) if length(name) > 18])}."
  }

  validation {
    condition     = length(distinct(var.container_repos)) == length(var.container_repos)
    error_message = "The container_repos entries must be unique (no duplicates)."
  }
}

variable "registry_reader_members" {
  type        = list(string)
  default     = []
  description = <<-EOT
    IAM principals granted roles/artifactregistry.reader on every repository of this module, e.g.
    "serviceAccount:<cluster-nodes>@<project>.iam.gserviceaccount.com" so the cluster's nodes can pull the images
    without an image pull secret. Not needed when the node service account already has that role project-wide
    (as in 2i2c's terraform/gcp/cluster.tf).
  EOT

  validation {
    condition     = alltrue([for member in var.registry_reader_members : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):.+$", member))])
    error_message = "Each registry_reader_members entry must be an IAM principal such as \"serviceAccount:<email>\", \"user:<email>\", \"group:<email>\" or \"domain:<domain>\"."
  }

  validation {
    condition     = length(distinct(var.registry_reader_members)) == length(var.registry_reader_members)
    error_message = "The registry_reader_members entries must be unique (no duplicates)."
  }
}

variable "cleanup_keep_recent" {
  type        = number
  default     = null
  nullable    = true
  description = <<-EOT
    If set, a KEEP cleanup policy retains the N most recent versions of every image, whatever the delete policy
    says. A keep policy alone deletes nothing; it only protects versions from cleanup_untagged_older_than_days.
    null (the default) adds no keep policy.
  EOT

  validation {
    condition     = var.cleanup_keep_recent == null ? true : (var.cleanup_keep_recent >= 1 && floor(var.cleanup_keep_recent) == var.cleanup_keep_recent)
    error_message = "The cleanup_keep_recent value must be null or a whole number of at least 1."
  }
}

variable "cleanup_untagged_older_than_days" {
  type        = number
  default     = null
  nullable    = true
  description = <<-EOT
    If set, a DELETE cleanup policy removes untagged image versions older than this many days (BinderHub tags
    every image it builds, so this mostly removes layers orphaned by re-pushed tags). null (the default) deletes
    nothing automatically.
  EOT

  validation {
    condition     = var.cleanup_untagged_older_than_days == null ? true : (var.cleanup_untagged_older_than_days >= 1 && floor(var.cleanup_untagged_older_than_days) == var.cleanup_untagged_older_than_days)
    error_message = "The cleanup_untagged_older_than_days value must be null or a whole number of days, at least 1."
  }
}

variable "registry_retention" {
  type = map(object({
    keep_recent                     = optional(number)
    delete_older_than_days          = optional(number)
    delete_untagged_older_than_days = optional(number)
  }))
  default     = {}
  description = <<-EOT
    Cleanup policies per hub, keyed by container_repos entry; a hub with an entry ignores the module-wide
    cleanup_* defaults. keep_recent = N: KEEP the N most recent versions of each image (keep beats delete).
    delete_older_than_days = D: DELETE versions, tagged or not, older than D days; 0 deletes every version that
    keep_recent does not keep (keep_recent required). delete_untagged_older_than_days = D: DELETE untagged
    versions older than D days. `provision gcp --keep-tags N --prune-older-than D` sets the hub's entry.
  EOT

  validation {
    condition     = alltrue([for policy in values(var.registry_retention) : policy.keep_recent == null ? true : (policy.keep_recent >= 1 && floor(policy.keep_recent) == policy.keep_recent)])
    error_message = "Each registry_retention keep_recent must be null or a whole number of at least 1."
  }

  validation {
    condition     = alltrue([for policy in values(var.registry_retention) : alltrue([for days in [policy.delete_older_than_days, policy.delete_untagged_older_than_days] : days == null ? true : (days >= 0 && floor(days) == days)])])
    error_message = "Each registry_retention delete_older_than_days and delete_untagged_older_than_days must be null or a whole number of days."
  }

  validation {
    condition     = alltrue([for policy in values(var.registry_retention) : policy.delete_untagged_older_than_days != 0])
    error_message = "A registry_retention delete_untagged_older_than_days of 0 would delete every untagged version at once; use at least 1."
  }

  validation {
    condition     = alltrue([for policy in values(var.registry_retention) : policy.delete_older_than_days != 0 || policy.keep_recent != null])
    error_message = "A registry_retention delete_older_than_days of 0 deletes every version that keep_recent does not keep: it needs keep_recent (without it every image would be deleted)."
  }
}
