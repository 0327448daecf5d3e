"""Deployment beyond one machine: checks of the Kubernetes manifests in ``deploy/kubernetes/`` (validate.py), replicas
behind HAProxy with Prometheus (replicas.py) and the drill that measures them (drill.py).

Exceptions: none of its own. A missing kubectl, kubernetes-validate, HAProxy or Prometheus is
``tritonkit.tools.ToolMissing`` (naming ``make tools`` or ``make setup``); a bad layout of ports or replicas is
``tritonkit.server.errors.SettingsError``.
"""
