"""The throwaway PostgreSQL cluster the local sandbox runs: initdb once into a template, copy, start, remove."""
