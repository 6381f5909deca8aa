"""``python -m missrec``: the command line (also what ``torchrun -m missrec ...`` starts)."""

from .cli import main

if __name__ == "__main__":
    main()
