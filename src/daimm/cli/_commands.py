"""The table of subcommands: name, where it lives, one line of help."""

from daimm.cli import register

register("version", "daimm.cli.info:version", "Print the daimm version.")
