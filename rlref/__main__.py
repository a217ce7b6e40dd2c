"""``python -m rlref``: the same command line as the ``rlref`` console script (``rlref reproduce ...``)."""

from rlref.reproduce import cli

if __name__ == "__main__":
    cli()
