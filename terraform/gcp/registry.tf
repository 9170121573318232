# One Docker repository per container_repos entry, with a dedicated service account that may push to that
# repository only (roles/artifactregistry.writer granted on the repository, not on the project), and a JSON key
# for that service account (read back through the sensitive output registry_sa_keys).

resource "google_artifact_registry_repository" "registry" {
  for_each = toset(var.container_repos)

  project       = var.project_id
  location      = var.region
  repository_id = "${each.key}-registry"
  format        = "DOCKER"
  description   = "Images built by BinderHub for ${each.key} (managed by provision / terraform)"

  # Policies below are enforced, not only simulated.
  cleanup_policy_dry_run = false

  # Cleanup policies: the hub's own registry_retention entry when it has one, else the module-wide cleanup_*
  # defaults. Per hub, so that setting one hub's retention changes that hub's repository only (provision gcp
  # refuses a plan that changes other hubs' resources). Keep beats delete: a version matched by the KEEP policy
  # survives every DELETE policy. At most 3 of Artifact Registry's 10 policies per repository.
  dynamic "cleanup_policies" {
    for_each = local.retention[each.key].keep_recent == null ? [] : [local.retention[each.key].keep_recent]
    content {
      id     = "keep-most-recent"
      action = "KEEP"
      most_recent_versions {
        keep_count = cleanup_policies.value
      }
    }
  }

  dynamic "cleanup_policies" {
    for_each = local.retention[each.key].delete_untagged_older_than_days == null ? [] : [local.retention[each.key].delete_untagged_older_than_days]
    content {
      id     = "delete-untagged"
      action = "DELETE"
      condition {
        tag_state  = "UNTAGGED"
        older_than = "${cleanup_policies.value * 86400}s"
      }
    }
  }

  # Tagged or not. 0 days: no age condition, so every version the KEEP policy does not protect is deleted
  # (keep_recent is then required: see the variable's validation).
  dynamic "cleanup_policies" {
    for_each = local.retention[each.key].delete_older_than_days == null ? [] : [local.retention[each.key].delete_older_than_days]
    content {
      id     = cleanup_policies.value == 0 ? "delete-not-kept" : "delete-older"
      action = "DELETE"
      condition {
        tag_state  = "ANY"
        older_than = cleanup_policies.value == 0 ? null : "${cleanup_policies.value * 86400}s"
      }
    }
  }
}

locals {
  # Each repository's retention: its registry_retention entry, else the module-wide defaults (which apply to every
  # hub without an entry; changing them changes all those hubs' repositories at once).
  module_wide_retention = {
    keep_recent                     = var.cleanup_keep_recent
    delete_untagged_older_than_days = var.cleanup_untagged_older_than_days
    delete_older_than_days          = null
  }
  retention = {
    for name in var.container_repos : name => lookup(var.registry_retention, name, local.module_wide_retention)
  }
}

resource "google_service_account" "registry_sa" {
  for_each = toset(var.container_repos)

  project      = var.project_id
  account_id   = "${each.key}-registry-sa"
  display_name = "Image registry pusher for ${each.key}"
  description  = "Pushes BinderHub images to the ${each.key}-registry Artifact Registry repository only"
}

# Least privilege: push (and pull) on this hub's repository only. 2i2c grants the same role on the whole project,
# which lets every hub's key push to every repository of the project.
resource "google_artifact_registry_repository_iam_member" "registry_sa_writer" {
  for_each = toset(var.container_repos)

  project    = google_artifact_registry_repository.registry[each.key].project
  location   = google_artifact_registry_repository.registry[each.key].location
  repository = google_artifact_registry_repository.registry[each.key].name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.registry_sa[each.key].email}"
}

# "<repo>/<member>" => {repo, member}: one reader binding per repository and reader principal. The key is a plain
# string so adding a repository or a member never re-keys the existing bindings. Written here rather than in a
# local: `provision gcp` recognizes a hub's registry resources by a for_each that visibly derives from
# var.container_repos in the plan's configuration, and references through locals are not recorded there.
resource "google_artifact_registry_repository_iam_member" "registry_reader" {
  for_each = {
    for pair in setproduct(var.container_repos, var.registry_reader_members) :
    "${pair[0]}/${pair[1]}" => { repo = pair[0], member = pair[1] }
  }

  project    = google_artifact_registry_repository.registry[each.value.repo].project
  location   = google_artifact_registry_repository.registry[each.value.repo].location
  repository = google_artifact_registry_repository.registry[each.value.repo].name
  role       = "roles/artifactregistry.reader"
  member     = each.value.member
}

resource "google_service_account_key" "registry_sa_keys" {
  for_each = toset(var.container_repos)

  service_account_id = google_service_account.registry_sa[each.key].name
  public_key_type    = "TYPE_X509_PEM_FILE"
}
