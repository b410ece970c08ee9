"""One module per `xor-rosetta` subcommand: NAME, HELP, add_arguments(parser), run(args) -> exit status.
`xor_rosetta.app.cli.COMMANDS` lists them."""
