"""A hub's files: values and sops secrets written (write) and cleaned (remove), the cluster.yaml
that lists them (cluster), the profile list a hub inherits (shared_profiles), and the checks made before any
remote write (preflight)."""
