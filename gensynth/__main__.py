from gensynth.cli import run

run()
