"""Deployment beyond one machine: checks of the Kubernetes manifests in ``deploy/kubernetes/``."""
