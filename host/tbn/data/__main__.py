"""``python -m tbn.data [--data-dir DIR] [--offline]``: find (or download) and verify MNIST's
four files and print the folder holding them; exit 2 naming where it looked when it cannot.
``make test`` runs it first, so a missing dataset is one message, not every test that reads it."""

from __future__ import annotations

import argparse
import sys

from tbn.data.mnist import SPLITS, MnistError, find_file, load_mnist


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tbn.data", description=__doc__)
    ap.add_argument("--data-dir", help="the only folder to look in (default: $TBN_DATA, "
                    "../shared/data, the user cache; see tbn.data.mnist)")
    ap.add_argument("--offline", action="store_true", help="never download")
    args = ap.parse_args(argv)
    try:
        for split in SPLITS:
            load_mnist(split, args.data_dir, download=not args.offline)
        folder = find_file(SPLITS["test"][0], args.data_dir, download=False).parent
    except MnistError as e:
        print(f"MNIST: {e}", file=sys.stderr)
        return 2
    print(f"MNIST: the four files, verified, in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
