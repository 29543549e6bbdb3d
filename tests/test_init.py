"""regdrop/__init__.py: the subpackages reachable from `import regdrop`."""

import subprocess
import sys


def test_callbacks_reachable_after_import_regdrop_without_loading_lightning_eagerly() -> None:
    code = (
        "import sys, regdrop\n"
        "assert 'lightning' not in sys.modules, 'import regdrop loaded lightning'\n"
        "c = regdrop.callbacks.MaxNorm(3.0)\n"
        "assert type(c).__name__ == 'MaxNorm'\n"
        "try:\n    regdrop.nope\nexcept AttributeError as e:\n    assert 'nope' in str(e)\n"
        "else:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
