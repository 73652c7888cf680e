"""Writes 60,000 small text files (600 packages of 100 modules, about 2.4 KiB each) under
sys.argv[1]/site-packages: the same bytes on every machine (seeded), compressible as source code
is. Used by bench/flake.nix's `smallfiles`."""

import os
import random
import sys

WORDS = ("def return import self value items config path module package class None True "
         "for in if else lambda yield async await with raise except").split()


def main(out):
    rng = random.Random(60000)
    for d in range(600):
        package = os.path.join(out, "site-packages", f"pkg{d:03d}")
        os.makedirs(package)
        for f in range(100):
            lines, size = [], 0
            while size < 2450:
                line = " ".join(rng.choice(WORDS) for _ in range(8)) + f"  # {d}.{f}.{size}\n"
                lines.append(line)
                size += len(line)
            with open(os.path.join(package, f"mod{f:02d}.py"), "w") as fh:
                fh.write("".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
