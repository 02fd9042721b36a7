from gensynth.cli.main import run

run()
