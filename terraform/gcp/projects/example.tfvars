# Example variables for one cluster. Copy to projects/<cluster>.tfvars (the workspace is named after the cluster)
# and use it with: tofu plan -var-file=projects/<cluster>.tfvars -out=tfplan

# GCP project that holds the cluster; the repositories and service accounts are created in it.
project_id = "example-project"

# Region of the repositories; images are pushed to and pulled from <region>-docker.pkg.dev.
region = "us-central1"

# One entry per hub that builds images (usually the hub's namespace). Each entry <name> creates the repository
# <name>-registry, the push-only service account <name>-registry-sa and its key. Entries: lowercase letters,
# digits and hyphens, starting with a letter, at most 18 characters. `provision gcp` appends to this list.
# Removing an entry destroys that repository and every image in it.
container_repos = [
  # "staging",
  # "binder-prod",
]

# Principals that may pull from every repository above (not needed when the node service account already has
# roles/artifactregistry.reader on the project).
# registry_reader_members = [
#   "serviceAccount:example-cluster-nodes@example-project.iam.gserviceaccount.com",
# ]

# Storage cleanup (Artifact Registry bills stored bytes). Leave both null to keep everything.
# Keep the N most recent versions of every image even when the delete policy matches them (e.g. 20). A keep
# policy alone deletes nothing.
cleanup_keep_recent = null
# Delete untagged versions older than this many days (e.g. 30).
cleanup_untagged_older_than_days = null

# Per-hub cleanup policies (keyed by container_repos entry; an entry replaces the two defaults above for that hub).
# `provision gcp --hub <name> --keep-tags N --prune-older-than DAYS` writes the hub's entry.
# registry_retention = {
#   "binder-prod" = { keep_recent = 30, delete_older_than_days = 90 }
# }
