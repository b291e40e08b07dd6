"""Command line: argument parsing only; every command calls a public tbn function."""
