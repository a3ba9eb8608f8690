"""The `lepton` command the comparison scripts run (vs_flaml.py, vs_sklearn_text.py)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lepton_binary(given):
    """`given` (a path, or None: $LEPTON_BIN), else a release build made now."""
    given = given or os.environ.get("LEPTON_BIN")
    if given:
        return Path(given)
    subprocess.run(["cargo", "build", "--release", "--bin", "lepton"], cwd=ROOT, check=True)
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target_dir / "release" / "lepton"
