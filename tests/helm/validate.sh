#!/usr/bin/env bash
# Renders and validates the Helm chart deploy/helm/pond without a cluster:
#   - helm lint --strict (values.schema.json checks the values), with the defaults and with
#     tests/helm/values-full.yaml (every option away from its default);
#   - helm template of both, validated against Kubernetes' OpenAPI schemas (strict: unknown
#     fields fail) by kubernetes-validate from PyPI, which ships the schemas, for the oldest
#     Kubernetes the chart supports and the newest the validator knows;
#   - a few assertions on the rendered manifests, and values that must be refused.
# Installs Helm (tests/go-tool.sh, Go module proxy) and kubernetes-validate (a venv of
# its own, $POND_HELM_VENV, default ~/.cache/pond-helm-venv) on first run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
chart=deploy/helm/pond
full=tests/helm/values-full.yaml
kube_versions=(1.27.0 1.37.0)
validator_version=1.37.0

tests/go-tool.sh helm helm.sh/helm/v4/cmd/helm@v4.3.2 "${HELM_BIN:-$HOME/go/bin/helm}"
helm="$(command -v helm || echo "${HELM_BIN:-$HOME/go/bin/helm}")"

venv="${POND_HELM_VENV:-$HOME/.cache/pond-helm-venv}"
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qF "$validator_version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# The defaults leave storage.url empty (it is required); this is the minimal install.
minimal=(--set storage.url=s3://example-bucket/pond)

echo "== $("$helm" version --short 2>/dev/null || "$helm" version), kubernetes-validate $validator_version"

echo "== helm lint --strict (defaults, and $full)"
"$helm" lint --strict "$chart" "${minimal[@]}"
"$helm" lint --strict "$chart" -f "$full"

echo "== helm template"
"$helm" template pond "$chart" --namespace pond "${minimal[@]}" > "$out/default.yaml"
"$helm" template pond "$chart" --namespace pond -f "$full" > "$out/full.yaml"

for kube in "${kube_versions[@]}"; do
  for rendering in default full; do
    echo "== kubernetes-validate --strict -k $kube: $rendering rendering"
    "$venv/bin/kubernetes-validate" --strict --no-warn -k "$kube" "$out/$rendering.yaml"
  done
done

echo "== assertions on the rendered manifests"
"$venv/bin/python" - "$out/default.yaml" "$out/full.yaml" <<'PY'
import sys, yaml

def load(path):
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(path)) if d}

def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")

for path, drain, mem, cpu, replicas in [(sys.argv[1], 30, "5120Mi", "2", 2), (sys.argv[2], 120, "10Gi", "4", 3)]:
    text = open(path).read()
    docs = load(path)
    kinds = sorted(k for k, _ in docs)
    print(f"{path.rsplit('/', 1)[1]}: {', '.join(kinds)}")
    coord = next(d for (k, n), d in docs.items() if k == "Deployment" and n.endswith("-coordinator"))
    duck = next(d for (k, n), d in docs.items() if k == "Deployment" and n.endswith("-duckling"))
    check(coord["spec"]["replicas"] == replicas, f"coordinator replicas = {replicas}")
    check(any(k == "Service" for k, _ in docs), "a Service")
    for dep in (coord, duck):
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        name = dep["metadata"]["name"]
        check(pod["terminationGracePeriodSeconds"] > drain, f"{name}: terminationGracePeriodSeconds > drain timeout {drain}s")
        check(f"--drain-timeout={drain}s" in c["args"], f"{name}: --drain-timeout={drain}s")
        check(pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
              and c["securityContext"]["capabilities"]["drop"] == ["ALL"], f"{name}: non-root, read-only root, no capabilities")
        check(not any("postgres://" in a for a in c["args"]), f"{name}: no catalog URL in args")
    cenv = {e["name"]: e for e in coord["spec"]["template"]["spec"]["containers"][0]["env"]}
    check("secretKeyRef" in cenv["POND_CATALOG"]["valueFrom"], "POND_CATALOG from a Secret")
    check("grpc" in coord["spec"]["template"]["spec"]["containers"][0]["readinessProbe"], "coordinator readiness: grpc health")
    denv = {e["name"]: e for e in duck["spec"]["template"]["spec"]["containers"][0]["env"]}
    check("secretKeyRef" in denv["POND_CLUSTER_SECRET"]["valueFrom"], "POND_CLUSTER_SECRET from a Secret")
    check("POND_CATALOG" not in denv, "ducklings get no catalog URL")
    res = duck["spec"]["template"]["spec"]["containers"][0]["resources"]
    check(res["requests"]["memory"] == mem and str(res["requests"]["cpu"]) == cpu, f"duckling requests {cpu} CPU, {mem}")
    check(any(k == "PodDisruptionBudget" for k, _ in docs), "a PodDisruptionBudget")
    check(("Secret" in kinds) == ("full" in path), "Secrets rendered only with createSecrets.enabled")
PY

echo "== values that must be refused"
refuse() {
  local what="$1"; shift
  if "$helm" template pond "$chart" "$@" > "$out/refused.yaml" 2> "$out/refused.err"; then
    echo "FAILED: accepted $what" >&2; exit 1
  fi
  echo "ok: refused $what: $(grep -m1 -v '^$' "$out/refused.err" | cut -c1-160)"
}
refuse "no storage.url"
refuse "a file:// storage URL" --set storage.url=file:///data
refuse "a string for duckling.memoryGiB" "${minimal[@]}" --set-string duckling.memoryGiB=4GB
refuse "an unknown value" "${minimal[@]}" --set coordinator.replica=2
refuse "a short createSecrets.clusterKey" "${minimal[@]}" --set createSecrets.enabled=true \
  --set createSecrets.catalogUrl=postgres://u:p@h/d --set createSecrets.clusterKey=short

echo "== the chart renders and validates: $chart"
