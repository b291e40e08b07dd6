"""Host side of the MicroPython example: write the first N MNIST test images as float32, the
way tbn's models take them, to a file for /rom (``python images.py 20 images.bin``)."""

import sys

from tbn.data import load_mnist


def main() -> int:
    n, out = int(sys.argv[1]), sys.argv[2]
    test = load_mnist("test")
    with open(out, "wb") as f:
        f.write(test.normalized(n).tobytes())
    print(f"wrote {n} images to {out}; their labels: {' '.join(map(str, test.labels[:n]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
