"""The e2e pod runner: plays the node (kubelet + scheduler) for the lab's real control plane.

A test tool, never part of the product. The lab runs etcd, kube-apiserver and
kube-controller-manager but no kubelet, scheduler or container runtime, so Pods stay
Pending. The runner registers a Node, binds the unscheduled pods that fit it and runs each
of their containers as a local process, reporting status back the way the kubelet does. With
the real controller-manager this makes Deployment -> ReplicaSet -> Pod -> Running+Ready ->
``availableReplicas`` real.

    python -m e2e.podrunner --kubeconfig /var/tmp/cdc-lab/kubernetes/admin.kubeconfig \\
        [--namespace NS] [--selector app=x] [--node-name lab-node] \\
        [--path-map /var/lib/cassandra/cdc_raw=/var/tmp/cdc-lab/cassandra/node1/cdc_raw] \\
        [--entrypoint ghcr.io/acme/tool=/usr/bin/tool] [--state-dir DIR]

Tests use :class:`e2e.podrunner.api.PodRunner` (a context manager running it as a subprocess).

Modules, one responsibility each:
  node       the Node object, its Ready condition and its Lease heartbeat
  binding    "is it our node" (nodeSelector, required node affinity) and pods/binding
  sandbox    volumes as local directories, and each container's environment
  launch     runs in the container's mount namespace: bind mounts, then exec (stdlib only)
  supervise  processes: start, reap, restart per restartPolicy with backoff, probes, stop
  probes     readiness and liveness probes: httpGet, tcpSocket, exec
  status     the pod status we post (phase, conditions, containerStatuses)
  runner     the loop tying these together; api: the test-facing handle

Commands
  ``command`` + ``args`` run as given, with ``$(VAR)`` expansion. The image is ignored. PATH
  starts with the bin directory of the interpreter running the runner (the repo's .venv/bin),
  so ``cdc-replicator``, ``cdc-operator`` and ``python3`` resolve to the repo's code and
  dependencies. A container without ``command`` (the operator renders only ``args`` and relies
  on the image's ENTRYPOINT) gets the command mapped from its image name, tag stripped:
  ``ghcr.io/cassandra-cdc/replicator`` -> ``cdc-replicator``, ``ghcr.io/cassandra-cdc/operator``
  -> ``cdc-operator``; ``--entrypoint IMAGE=COMMAND`` adds more. An image's CMD is not known.

Mounts and paths: real bind mounts in a private mount namespace
  Each container starts as ``unshare --mount python launch.py spec.json``: in a mount namespace
  of its own, the launcher bind-mounts every volume (or its subPath) at its ``mountPath``
  (remounted read-only for ``readOnly``) and execs the command. So paths need no rewriting: a
  real ``cdc-replicator run --config /etc/cdc/config/replicator.yaml`` reads the paths written
  inside that config (``/var/lib/cassandra/cdc_raw``, ``/var/run/cdc/checkpoint.json``), and
  the kubernetes client's in-cluster config finds the token and CA at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` as in a real pod. This was chosen over
  rewriting mountPath prefixes in args and env because paths also hide in config files and in
  libraries (in-cluster config reads fixed paths), which rewriting cannot reach.
  Volume sources, per pod root ``<state>/pods/<ns>_<name>_<uid8>/volumes/<volume>``:
  configMap, secret (``items``, ``defaultMode``, per-item ``mode``, ``optional``), downwardAPI
  and projected (serviceAccountToken via a real TokenRequest bound to the pod, for its
  serviceAccountName and ``audience``; configMap such as ``kube-root-ca.crt``; secret;
  downwardAPI such as ``namespace``) are written once at start; emptyDir is an empty
  directory; hostPath is ``--path-map``-ped or used as it is; a PVC is a directory per claim
  under ``<state>/claims/<ns>/<claim>`` that outlives its pods. ``CDC_PODRUNNER_ROOT`` holds
  the pod root; the working directory is ``workingDir`` if it exists, else the pod root.
  ``KUBERNETES_SERVICE_HOST/PORT`` point at the lab API server (127.0.0.1:port).

Network
  There is no CNI: every pod shares the host's network, podIP = hostIP = 127.0.0.1. Two pods
  listening on one port collide (e.g. two replicators' metrics port 9400), so run one such
  pod per port, or configure different ports.

Limits
  - Needs root (or a user namespace allowed to mount) and util-linux ``unshare``/``nsenter``.
    A mountPath that does not exist on the host is created there, empty (e.g. ``/etc/cdc/config``,
    ``/var/run/secrets/kubernetes.io/serviceaccount``): mountpoints must exist; nothing is
    written into them outside the namespace.
  - No image contents, CMD, users (securityContext/runAsUser ignored: processes run as the
    runner's user), resources/limits, cgroups, PID or network isolation.
  - Volume contents are not refreshed (ConfigMap/Secret edits, token rotation: tokens ask for
    their expirationSeconds, default 1 h); a rolled Deployment gets fresh ones.
  - Not supported: sidecar-style init containers (``restartPolicy: Always`` on one: it would
    block the pod), startup probes, grpc probes, lifecycle hooks, resourceFieldRef env, ephemeral containers,
    volume types other than the ones above; taints/tolerations and resources are not checked
    when binding; preferred affinity is ignored.
  - Restart backoff doubles from 1 s up to 20 s (``--backoff-max``), shorter than the kubelet's
    10 s..5 min, so tests see restarts quickly.
  - On runner exit every process gets SIGTERM and, after at most 10 s, SIGKILL; the pods stay
    in the API as last reported (as when a kubelet dies). Delete workloads before stopping the
    runner, or nobody confirms their pods' deletion and their namespace hangs in Terminating.
  - Several runners may share a node name only with disjoint namespaces/selectors.
  - It runs whatever the pods it takes say, as its own (root) user: point it at the lab only,
    and prefer ``--namespace``.
"""
