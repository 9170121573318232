"""Terraform / OpenTofu as a library: `runner` (commands, diagnostics), `binary` (tofu or terraform), `backend`
(which backend, init without needless migrations), `tfvars` (the tfvars editor) and `plan_judge` (which planned
changes are which hub's registry). It knows nothing of registries or hubs' files."""
