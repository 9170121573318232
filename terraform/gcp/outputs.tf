output "registry_sa_keys" {
  description = "Map from container_repos entry to the JSON key file text of its push service account (the registry password, with username _json_key). Read it with `output -json registry_sa_keys`; never log it."
  sensitive   = true
  value = {
    for name, key in google_service_account_key.registry_sa_keys : name => base64decode(key.private_key)
  }
}

output "image_prefixes" {
  description = "Map from container_repos entry to the BinderHub image prefix: <region>-docker.pkg.dev/<project_id>/<name>-registry/."
  value = {
    for name in var.container_repos : name => "${var.region}-docker.pkg.dev/${var.project_id}/${name}-registry/"
  }
}

output "registry_servers" {
  description = "Map from container_repos entry to the registry server URL to log in to: https://<region>-docker.pkg.dev."
  value = {
    for name in var.container_repos : name => "https://${var.region}-docker.pkg.dev"
  }
}
