"""`python -m holocrm_cli`: the same CLI as the `holocrm` console script."""

from holocrm_cli import main

main()
