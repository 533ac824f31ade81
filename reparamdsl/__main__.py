from reparamdsl.cli.main import entry

entry()
