"""The kind-independent verbs: remove, rotate (what is live and where, and its proof), verify and fleet verify.
They drive registry kinds (provision.registries) through their interface and never name a kind."""
