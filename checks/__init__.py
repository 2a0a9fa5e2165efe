"""The check catalogue: one module per question, each exposing `check(context)`."""
