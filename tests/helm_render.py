#!/usr/bin/env python3
"""`helm template` without the helm binary: renders a chart with Helm's own engine (the Go SDK,
through helm-python-sdk's C library) and prints the manifests as one YAML stream.

    helm_render.py CHART_DIR RELEASE NAMESPACE VALUES_JSON

Exit status 2 and Helm's message on stderr when the chart refuses the values (`fail`, `required`).
Used by tests/t05_deploy_manifests.rs.
"""
import json
import sys

import helm_python as helm


def main() -> int:
    chart_dir, release, namespace, values = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    with helm.Chart.load(chart_dir) as chart:
        try:
            manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
        except helm.HelmError as e:
            print(e, file=sys.stderr)
            return 2
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        print(f"---\n# Source: {path}\n{manifests[path]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
