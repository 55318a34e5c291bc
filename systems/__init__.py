"""The water templates (``*.pdb``) that ``omm_symbreak.systems`` loads, installed as the package
``omm_symbreak.templates``; ``generate.py`` regenerates them."""
