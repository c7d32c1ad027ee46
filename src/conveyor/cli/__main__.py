from conveyor.cli.main import run

run()
