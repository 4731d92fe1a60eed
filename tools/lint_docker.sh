#!/usr/bin/env bash
# Lint docker/: hadolint over the Dockerfiles (docker/*.Dockerfile, with the settings in
# docker/hadolint.yaml: every finding fails) and check-jsonschema over the compose file
# (docker/compose.yaml against the compose-spec schema that check-jsonschema vendors). The
# images themselves are not built here (no container registry on these machines):
# docker/README.md. Run by tools/test.sh; on its own: `tools/lint_docker.sh [FILE...]`,
# where each FILE is a Dockerfile (any name but *.yaml / *.yml) or a compose file. Installs
# the pins of requirements-lint.txt into .venv on first use (and when they change).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [[ ! -x $venv/bin/python ]]; then
    source tools/bootstrap.sh
fi
stamp="$venv/.graspq-lint-reqs.sha256"
sum="$(sha256sum requirements-lint.txt | cut -d' ' -f1)"
if [[ ! -f $stamp || $(<"$stamp") != "$sum" || ! -x $venv/bin/hadolint ]]; then
    echo "lint_docker: installing requirements-lint.txt into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-lint.txt
    echo "$sum" >"$stamp"
fi

if (($# == 0)); then
    set -- docker/*.Dockerfile docker/compose.yaml
fi
dockerfiles=()
composefiles=()
for f in "$@"; do
    case "$f" in
        *.yaml | *.yml) composefiles+=("$f") ;;
        *) dockerfiles+=("$f") ;;
    esac
done

rc=0
if ((${#dockerfiles[@]})); then
    "$venv/bin/hadolint" --no-color --config docker/hadolint.yaml "${dockerfiles[@]}" || rc=1
fi
if ((${#composefiles[@]})); then
    "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "${composefiles[@]}" \
        || rc=1
fi
if ((rc == 0)); then
    echo "lint_docker: ${#dockerfiles[@]} Dockerfile(s) and ${#composefiles[@]} compose file(s) clean"
else
    echo "lint_docker: problems found (above)" >&2
fi
exit "$rc"
